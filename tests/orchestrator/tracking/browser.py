"""A headless Chromium driven over the DevTools protocol, for the tests that look at MLflow's UI
as a user's browser shows it (Debian's `chromium`; CI has none, and those tests skip there).

Small on purpose: open a page, run JavaScript in it, wait for a condition, click, take a
screenshot. aiohttp (which ray[default] brings) speaks the protocol's websocket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900", "--hide-scrollbars")


class Browser:
    """One Chromium and one page; `with Browser() as b: b.open(url)`."""

    def __init__(self, port: int):
        self.port, self._id = port, 0
        self.profile = Path(tempfile.mkdtemp(prefix="gansweep-chromium-"))
        self.proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={self.profile}",
             f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.loop = asyncio.new_event_loop()
        self.ws = self.session = None

    def __enter__(self) -> Browser:
        import aiohttp

        target = self._page_target()
        self.session = aiohttp.ClientSession(loop=self.loop)
        self.ws = self.loop.run_until_complete(self.session.ws_connect(
            target["webSocketDebuggerUrl"], max_msg_size=0))
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.ws.close())
            self.loop.run_until_complete(self.session.close())
        self.loop.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _page_target(self) -> dict:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list",
                                            timeout=2) as reply:
                    pages = [t for t in json.load(reply) if t["type"] == "page"]
                if pages:
                    return pages[0]
            time.sleep(0.2)
        raise RuntimeError("chromium did not open its debugging port")

    # -- the protocol ------------------------------------------------------------------------------
    def call(self, method: str, params: dict | None = None) -> dict:
        return self.loop.run_until_complete(self._call(method, params or {}))

    async def _call(self, method: str, params: dict) -> dict:
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            reply = await asyncio.wait_for(self.ws.receive_json(), 60)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    # -- what a test does --------------------------------------------------------------------------
    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when a promise)."""
        found = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in found:
            raise RuntimeError(f"{expression[:80]}: {found['exceptionDetails']}")
        return found["result"].get("value")

    def wait(self, what: str, expression: str, timeout: float = 60.0):
        """The first truthy value of `expression`, polled; an error after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                found = self.js(expression)
                if found:
                    return found
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what} (at {self.js('location.href')})")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path
