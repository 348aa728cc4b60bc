"""Running the emulator in a background thread, for synchronous callers (the official client is synchronous).

`start_emulator` serves on 127.0.0.1 from a daemon thread with its own asyncio loop and returns once
the server listens (or raises what stopped it from starting). State belongs to that loop: code on
other threads reaches the emulator only through `RunningEmulator.call`, which runs inside the loop
and so is consistent with in-flight requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kmock
import yaml

from rollout.testing.kubeapi.server import Fault, KubeApiEmulator


class RunningEmulator:
    """A started emulator: `url`, `api_client()`, `write_kubeconfig()`, `call()`, `stop()`."""

    def __init__(
        self,
        emulator: KubeApiEmulator,
        url: str,
        loop: asyncio.AbstractEventLoop,
        stop_event: asyncio.Event,
        thread: threading.Thread,
    ) -> None:
        self.emulator = emulator
        self.url = url.rstrip("/")
        self._loop = loop
        self._stop_event = stop_event
        self._thread = thread

    def call(self, fn: Callable[[KubeApiEmulator], Any]) -> Any:
        """Run `fn(emulator)` inside the server loop (consistent with in-flight requests)."""

        async def run() -> Any:
            return fn(self.emulator)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        objs: list[dict[str, Any]] = self.call(lambda e: e.objects_of(group, plural, namespace))
        return objs

    def add_fault(
        self,
        method: str,
        plural: str,
        status: int,
        times: int = 1,
        name: str | None = None,
        subresource: str | None = None,
    ) -> Fault:
        fault: Fault = self.call(lambda e: e.add_fault(method, plural, status, times, name, subresource))
        return fault

    def api_client(self) -> Any:
        from kubernetes import client as kc

        cfg = kc.Configuration(host=self.url)
        return kc.ApiClient(cfg)

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "emulator-has-no-auth"}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator"}}],
        }

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump(self.kubeconfig()), encoding="utf-8")
        return path

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(timeout=10)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(crd_directory: Path | None = None, port: int | None = None) -> RunningEmulator:
    """Start an emulator on 127.0.0.1 (random port unless given) in a daemon thread."""
    box: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> None:
        try:
            emu = KubeApiEmulator(crd_directory=crd_directory)
            server_kwargs: dict[str, Any] = {"port": port} if port else {}
            async with emu, kmock.Server(emu, **server_kwargs) as srv:
                stop = asyncio.Event()
                box.update(emu=emu, url=str(srv.url), loop=asyncio.get_running_loop(), stop=stop)
                ready.set()
                await stop.wait()
        except BaseException as exc:  # report start-up failures to the caller instead of hanging
            box["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="rk-kubeapi", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("the Kubernetes API emulator did not start within 60 s")
    if "error" in box:
        raise RuntimeError(f"the Kubernetes API emulator failed to start: {box['error']!r}")
    return RunningEmulator(box["emu"], box["url"], box["loop"], box["stop"], thread)
