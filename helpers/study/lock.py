"""Per-run locks: several workers share one store, and each run is computed by exactly one.

Workers are ``python -m helpers run`` (or ``report``) processes on one store: on one machine, one
per GPU, or cluster jobs on a shared file system. Before computing a run a worker claims it by
creating a lock file with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFSv3 and
later) that holds its host, pid, process start time and a random token; a heartbeat thread
touches the file while the run is computed. A lock is stale when its holder is dead: on the same
host, the pid is gone (or now belongs to a later process); from another host, the heartbeat is
older than ``STALE_AFTER``. A stale lock is taken over by creating the next *generation's* file,
again with ``O_EXCL``, so of several workers that see the same dead holder exactly one wins, and
the winner resumes the run from its last resume point. Before storing, a holder checks that no
later generation exists (fencing), so a holder wrongly presumed dead never overwrites its
successor. Lock files live in ``.locks/`` beside the run folders: ``<key>.<generation>.lock``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.files import full_disk_named
from helpers.study.store import Store, run_key
from helpers.training.ranks import agree, barrier, is_main

STALE_AFTER = 300.0  # seconds without a heartbeat before another host's lock counts as dead
HEARTBEAT = 30.0  # seconds between heartbeats: ten chances before STALE_AFTER
POLL = 5.0  # seconds between re-checks of runs held by other workers
LOCKS = ".locks"


IDLE = {"seconds": 0.0}  # this worker's time spent waiting for runs others hold (the bench)


def wait_for_others(poll: float = POLL) -> None:
    """Sleep while other workers hold the runs this one needs, and count it as idle."""
    time.sleep(poll)
    IDLE["seconds"] += poll


class Busy(Exception):
    """The run (or a run it needs) is being computed by another live worker; come back later."""


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), which tells a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # a zombie has finished: it is dead


def _alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` of this host runs (and is the one that started at ``started``)."""
    if Path("/proc/self/stat").exists():
        now = _start_time(pid)
        return now is not None and (started is None or now == started)
    try:  # no /proc (macOS): signal 0 probes existence only
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": _start_time(os.getpid()),
        "token": secrets.token_hex(8),
    }


class RunLock:
    """The lock of one run key in one folder of lock files (not re-entrant)."""

    def __init__(self, folder: Path, key: str, stale_after: float = STALE_AFTER):
        self.folder, self.key, self.stale_after = Path(folder), key, stale_after
        self.path: Path | None = None  # our lock file while we hold it
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _generations(self) -> list[tuple[int, Path]]:
        """Lock files of this key, oldest generation first."""
        if not self.folder.is_dir():
            return []
        out = []
        for name in os.listdir(self.folder):
            key, _, gen = name.removesuffix(".lock").rpartition(".")
            if name.endswith(".lock") and key == self.key and gen.isdigit():
                out.append((int(gen), self.folder / name))
        return sorted(out)

    def holder(self, path: Path) -> dict | None:
        """The owner record of a lock file and its heartbeat age; None if the file is gone."""
        try:
            age = time.time() - path.stat().st_mtime
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            info = json.loads(text)
        except ValueError:  # being written right now (created, content not yet in)
            info = {}
        return {**info, "age": age}

    def is_live(self, info: dict) -> bool:
        """Whether a lock's holder still runs (same host: its pid; another: its heartbeat)."""
        if info.get("host") == socket.gethostname() and "pid" in info:
            return _alive(int(info["pid"]), info.get("started"))
        return info["age"] < self.stale_after

    def acquire(self) -> bool:
        """Claim the run: True if we now hold it, False if a live worker does."""
        for _ in range(3):  # the newest file may vanish under us (released): look again
            gens = self._generations()
            target = 0
            if gens:
                info = self.holder(gens[-1][1])
                if info is None:
                    continue
                if self.is_live(info):
                    return False
                target = gens[-1][0] + 1  # the holder is dead: take over, one winner by O_EXCL
            path = self.folder / f"{self.key}.{target:06d}.lock"
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False  # another worker claimed it in between
            try:  # an empty lock file would read as a live holder: never leave one
                with full_disk_named(path), os.fdopen(fd, "w") as f:
                    json.dump(_owner(), f)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            self.path = path
            for _, old in gens:  # the dead holders' files
                old.unlink(missing_ok=True)
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, daemon=True)
            self._beat.start()
            return True
        return False

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                os.utime(self.path)
            except OSError:  # taken over (file removed): still_held() reports it
                return

    def still_held(self) -> bool:
        """Whether our lock is still ours: the file exists and no later generation does."""
        gens = self._generations()
        return self.path is not None and bool(gens) and gens[-1][1] == self.path

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.path is not None and self.still_held():
            self.path.unlink(missing_ok=True)
        self.path, self._beat = None, None


def run_lock(store: Store, config: dict) -> RunLock:
    """The lock of one run: in ``.locks/`` beside its folder, named by its key."""
    folder = store.run_dir(config)
    return RunLock(folder.parent / LOCKS, run_key(config))


class Claim:
    """A claimed run: ``todo`` says whether this worker computes it; ``fence`` before storing."""

    def __init__(self, lock: RunLock, todo: bool):
        self.lock, self.todo = lock, todo

    def fence(self) -> None:
        """Raise Busy unless the lock is still ours; call it on every process before storing."""
        if not agree(self.lock.still_held):
            raise Busy(f"run {self.lock.key} was taken over by another worker; left to it")


@contextmanager
def claim(store: Store, config: dict) -> Iterator[Claim]:
    """Claim a run: ``.todo`` is True if this worker must compute it, False if it is stored.

    Raises Busy when another live worker holds it. Under data parallelism the main process
    holds the lock and every process takes the same branch; on leaving, all wait for the main
    process to have stored the run before anyone reads it, and the lock is released.
    """
    lock = run_lock(store, config)

    def decide() -> str:
        if store.is_done(config):
            return "done"
        if not lock.acquire():
            return "busy"
        if store.is_done(config):  # finished and released between our two looks
            lock.release()
            return "done"
        return "mine"

    state = agree(decide)
    if state == "busy":
        raise Busy(f"run {run_key(config)} is being computed by another worker")
    try:
        yield Claim(lock, state == "mine")
    finally:
        barrier()
        if is_main():
            lock.release()
    if state == "mine" and is_main():  # one line per stored run: which worker computed it
        where = f"{socket.gethostname()}:{os.getpid()}"
        what = config.get("method") or config.get("role")  # a method's run, or a source model
        print(f"[{where}] computed and stored run {lock.key} ({what})", flush=True)


def work_through(
    items: Iterable[Hashable],
    do: Callable[[Hashable], object],
    wait: bool = True,
    poll: float = POLL,
    log: Callable[[str], None] = print,
) -> tuple[dict, list]:
    """Call ``do`` on every item in order; items another worker holds (Busy) are retried later.

    Returns (results by item, items still held elsewhere). With ``wait`` the busy items are
    re-checked every ``poll`` seconds until none is left, so every worker ends with all done.
    """
    results, pending, said = {}, list(items), None
    while pending:
        busy_now = []
        for item in pending:
            try:
                results[item] = do(item)
            except Busy:
                busy_now.append(item)
        pending = busy_now
        if not pending or not wait:
            break
        if len(pending) != said:  # one line per change, not one per poll
            log(f"waiting for {len(pending)} run(s) held by other workers ...")
            said = len(pending)
        wait_for_others(poll)
    return results, pending
