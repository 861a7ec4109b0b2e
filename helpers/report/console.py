"""What a report run shows in the user's console: progress lines, and no kernel warnings.

Each notebook runs in its own Jupyter kernel. Its output goes into the notebook; only the lines
that ``helpers.study.progress`` marks are forwarded here, so a long headless run still says which
run of how many it is on.
"""

from __future__ import annotations

import sys


def kernel_config():
    """Kernel launch settings that keep its traffic private, hence ipykernel quiet.

    ipykernel warns ("Kernel is running over TCP without encryption") whenever its ZMQ
    sockets are plain TCP. With CurveZMQ in pyzmq (its wheels bundle it) the kernel manager
    provisions keys for kernels that declare support (ipykernel's spec does); without it, local
    IPC sockets carry the traffic instead, which do not touch the network at all.
    """
    import zmq
    from traitlets.config import Config

    if zmq.has("curve"):
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config({"KernelManager": {"transport": "ipc"}})


class ProgressEcho:
    """A file-like sink for a kernel's stderr: prints the progress lines, drops the rest.

    The kernel sends its stream in chunks that can split or join lines, so text is buffered up to
    each newline. The rest of stderr (library warnings) stays in the executed notebook.
    """

    def __init__(self, prefix: str, indent: str = "    ", out=None):
        self.prefix, self.indent, self.out = prefix, indent, out
        self.pending = ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            if line.startswith(self.prefix):
                print(self.indent + line[len(self.prefix) :], file=self.out or sys.stdout)
        return len(text)

    def flush(self) -> None:
        (self.out or sys.stdout).flush()
