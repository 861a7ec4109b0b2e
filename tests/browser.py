"""Headless Chromium driven over the DevTools protocol, and the reports folder served locally.

Test support only: tests/test_report_html.py loads pages with it and fails on empty sections,
saved figures a page does not show, and broken images or links. CI installs Debian's
``chromium`` (.ci/run); without it those tests skip.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Root in a container needs --no-sandbox; the rest keep a test run quiet and offline.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--window-size=1280,900",
]

# Run in the page once it has loaded: every image and every link, as the browser sees them, and
# each heading with whether anything a reader sees stands between it and the next heading
# (folded code and scripts do not count).
AUDIT = """(async () => {
  await Promise.all(Array.from(document.images).map(i => i.complete ? null :
    new Promise(r => { i.onload = i.onerror = r; })));
  const heads = Array.from(document.querySelectorAll("h1, h2, h3, h4, h5, h6"));
  const sections = heads.map((h, i) => {
    const range = document.createRange();
    range.setStartAfter(h);
    if (i + 1 < heads.length) range.setEndBefore(heads[i + 1]);
    else range.setEndAfter(document.body.lastChild);
    const part = range.cloneContents();
    part.querySelectorAll("details.cbv-code, script, style").forEach(e => e.remove());
    const media = part.querySelectorAll("img, table, svg, canvas").length;
    return {heading: h.textContent.replace("\u00b6", "").trim(),
            filled: media > 0 || part.textContent.trim().length > 0};
  });
  return JSON.stringify({
    images: Array.from(document.images).map(i => ({src: i.src, width: i.naturalWidth})),
    sections: sections,
    links: Array.from(document.querySelectorAll("a[href]")).map(a => ({
      href: a.href, raw: a.getAttribute("href"),
      // As browsers resolve a fragment: the id as written, else percent-decoded.
      target: a.hash ? !!(document.getElementById(a.hash.slice(1)) ||
        document.getElementById(decodeURIComponent(a.hash.slice(1)))) : null,
    })),
  });
})()"""


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # a test's output shows failures, not each request
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A browser may drop a connection it no longer needs; anything else is still shown."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve(folder: Path):
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_Files, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class Browser:
    """One headless Chromium with a fresh profile, and one page tab driven over DevTools."""

    def __init__(self, profile_dir: Path, timeout: float = 30):
        import websocket  # websocket-client (pinned in requirements.txt)

        self.timeout = timeout
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile_dir / "DevToolsActivePort"  # Chromium writes its port here
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"{CHROMIUM} did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True
        )
        self.next_id = 0
        self.events: list[dict] = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result; events that arrive are kept."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, event: str) -> dict:
        """Block until a DevTools event arrives (or was already kept)."""
        for i, msg in enumerate(self.events):
            if msg.get("method") == event:
                return self.events.pop(i)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == event:
                return msg

    def open(self, url: str) -> None:
        """Navigate to a page and wait for its load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def audit(self) -> dict:
        """Every image (its source and natural width, 0 when broken), link and section
        (heading, and whether anything is shown under it) of the loaded page."""
        return json.loads(self.evaluate(AUDIT))

    def screenshot(self, path: Path, max_height: int = 6000) -> Path:
        """A PNG of the whole page (up to ``max_height`` CSS pixels tall)."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height)}
        data = self.call(
            "Page.captureScreenshot",
            format="png",
            clip={**clip, "scale": 1},
            captureBeyondViewport=True,
        )["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
