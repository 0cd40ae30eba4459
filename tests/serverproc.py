"""A real `tipline serve` in a child process, for tests and benchmarks that need one.

Its output goes to a log file (a pipe nobody reads would fill and stall the server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import httpx

TIPLINE = str(Path(sys.executable).with_name("tipline"))


class ServerFailed(RuntimeError):
    """The server exited or did not answer /healthz in time; the message holds its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(self, env: dict[str, str], log: Path, *, surface: str = "all",
                 timeout: float = 30.0, port: int | None = None, workers: int = 1) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [TIPLINE, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--surface", surface,
             "--workers", str(workers)],
            env=env, stdout=self._out, stderr=subprocess.STDOUT,
        )
        self._wait_healthy(timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._out.close()
                raise ServerFailed(f"the server exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerFailed(f"the server did not answer /healthz within {timeout} s:\n{self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, as in a crash."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


@contextmanager
def serving_or_exit(env: dict[str, str], log: Path, surface: str) -> Iterator[tuple[str, int]]:
    """For benchmarks: (url, pid) of a running server, or exit with its log."""
    try:
        with ServerProcess(env, log, surface=surface) as server:
            yield server.url, server.pid
    except ServerFailed as exc:
        sys.exit(str(exc))
