"""Headless Chromium driven over the DevTools protocol: what a person's browser does."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Headless Chromium's DevTools endpoint on 127.0.0.1, or a skip if none is installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    profile: Path = tmp_path_factory.mktemp("chromium")
    process = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text().strip():
            assert process.poll() is None and time.monotonic() < deadline, "no DevTools port"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


class Tab:
    """One page driven over the DevTools protocol: what a person's browser does."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=20)
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    async def until(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(await self.ws.receive_json(timeout=20))
        self.events = [e for e in self.events if e.get("method") != event]

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def is_problem(event: dict[str, Any]) -> bool:
    """An alert or confirm, an uncaught exception, or an error in the console (CSP)."""
    method = event.get("method")
    if method in ("Page.javascriptDialogOpening", "Runtime.exceptionThrown"):
        return True
    return method == "Log.entryAdded" and event["params"]["entry"]["level"] == "error"


@contextlib.asynccontextmanager
async def open_tab(
    devtools: str, domains: tuple[str, ...] = ("Page", "Runtime", "Log")
) -> AsyncIterator[Tab]:
    """A new tab with `domains` enabled, closed again afterwards."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.put(f"{devtools}/json/new?about:blank") as response:
            target = await response.json(content_type=None)
        try:
            async with session.ws_connect(
                target["webSocketDebuggerUrl"], max_msg_size=0
            ) as ws:
                tab = Tab(ws)
                for domain in domains:
                    await tab.call(f"{domain}.enable")
                yield tab
        finally:
            async with session.get(f"{devtools}/json/close/{target['id']}"):
                pass

