"""A headless Debian chromium for the search page's tests: installed when missing, driven over the
DevTools protocol (a websocket on loopback), and kept off the network.

Chromium resolves no host name but 127.0.0.1 (``--host-resolver-rules``) and runs none of its
background services (updates, sync, metrics), so a test never reaches beyond loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from html.parser import HTMLParser
from typing import Any

__all__ = ["Browser", "PageParser", "chromium_flags", "dump_dom", "ensure_chromium"]

#: the browser binary of Debian's "chromium" package
NAMES = ("chromium", "chromium-browser")


def ensure_chromium() -> tuple[str | None, str]:
    """``(path, "")`` of chromium, installing Debian's package when it is missing; else
    ``(None, reason)`` saying why it cannot be had here."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found, ""
    if shutil.which("apt-get") is None:
        return None, "chromium is not installed and there is no apt-get to install it (install a chromium)"
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing it needs root: sudo apt-get install -y chromium"
    if [name for _, name in socket.if_nameindex()] == ["lo"]:  # a loopback-only namespace: no network
        return None, ("chromium is not installed and this loopback-only network namespace cannot download it: "
                      "apt-get install -y chromium (the first pass of `make test` does it)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = ""
    for command in (["apt-get", "install", "-y", "--no-install-recommends", "chromium"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        log = (run.stdout + run.stderr)[-600:]
        if command[1] == "install" and run.returncode == 0:
            break
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found, ""
    return None, f"apt-get could not install chromium: {log}"


def chromium_flags(profile: str) -> list[str]:
    """Headless, no sandbox (tests run as root), nothing but loopback, no background traffic."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
            "--disable-breakpad", "--disable-domain-reliability", "--no-pings", "--metrics-recording-only",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--window-size=1280,1000"]


def dump_dom(chromium: str, url: str, budget_ms: int = 20_000) -> str:
    """The page's DOM after its scripts ran (and their fetches answered) for ``budget_ms`` of virtual time."""
    with tempfile.TemporaryDirectory(prefix="ss-chromium-") as profile:
        run = subprocess.run([chromium, *chromium_flags(profile), f"--virtual-time-budget={budget_ms}", "--dump-dom",
                              url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


class PageParser(HTMLParser):
    """The hits rows and chart bars of a dumped search page (their ``data-*`` attributes)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.bars: list[dict[str, str]] = []
        self.stages: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-doc-id" in a:
            self.rows.append(a)
        elif tag == "g" and "bar" in a.get("class", "").split():
            self.bars.append(a)
        elif tag == "li" and "data-stage" in a:
            self.stages.append(a["data-stage"])


class Browser:
    """One headless chromium with one tab, driven over the DevTools protocol (websocket on loopback)."""

    def __init__(self, chromium: str) -> None:
        from websockets.sync.client import connect

        self._profile = tempfile.TemporaryDirectory(prefix="ss-chromium-")
        self.proc = subprocess.Popen([chromium, *chromium_flags(self._profile.name), "--remote-debugging-port=0",
                                      "--remote-debugging-address=127.0.0.1", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        endpoint = None
        t = time.monotonic()
        while endpoint is None and time.monotonic() - t < 60:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            found = re.search(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)", line)
            if found:
                endpoint = int(found.group(2))
        if endpoint is None:
            self.close()
            raise RuntimeError("chromium did not open its DevTools port")
        # keep reading its log, so that chromium never blocks on a full pipe
        threading.Thread(target=self.proc.stderr.read, daemon=True, name="chromium-log").start()
        with urllib.request.urlopen(f"http://127.0.0.1:{endpoint}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=20))
        self._id = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events in between are dropped)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0) -> Any:
        """Poll until ``expression`` is truthy in the page; its value."""
        t = time.monotonic()
        while time.monotonic() - t < timeout_s:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        status = self.evaluate("document.getElementById('status').textContent")
        raise TimeoutError(f"the page never made {expression!r} true; status: {status!r}")

    def goto(self, url: str) -> None:
        """Open ``url`` and wait for its document to load."""
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def type_text(self, text: str) -> None:
        """Type into the focused element, one key at a time, as a user does."""
        for ch in text:
            self.send("Input.dispatchKeyEvent", type="keyDown", text=ch, key=ch, unmodifiedText=ch)
            self.send("Input.dispatchKeyEvent", type="keyUp", key=ch)

    def press_enter(self) -> None:
        """Press Enter in the focused element (submits its form)."""
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13,
                      nativeVirtualKeyCode=13, **({"text": "\r"} if kind == "keyDown" else {}))

    def press_tab(self) -> None:
        """Move the focus to the next element, as the Tab key does."""
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key="Tab", code="Tab", windowsVirtualKeyCode=9,
                      nativeVirtualKeyCode=9)

    def screenshot(self, path: str) -> None:
        """Save a PNG of the page (for looking at it while working on it)."""
        import base64

        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        """Close the tab's connection and stop chromium."""
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
