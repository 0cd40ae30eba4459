"""A real `tipline serve` process per test and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKEND, environment_for
from tests.serverproc import TIPLINE, ServerFailed, ServerProcess, free_port
from tipline.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]



@dataclass(frozen=True)
class Server:
    base_url: str
    env: dict[str, str]
    log: Path

    @property
    def exit_url(self) -> str:
        return self.env["TIPLINE_QUICK_EXIT_URL"]

    def url(self, path: str) -> str:
        return self.base_url + path

    def cli(self, *args: str) -> str:
        """Runs `tipline ARGS` against the same data directory and database; returns stdout."""
        return _run(self.env, *args)

    def reports(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.cli("reports", "list", "--json"))
        return items


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(TIPLINE), *args], env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, f"tipline {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def sqlite_with_directory(database_template: str,
                          tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """On SQLite, a migrated database with the bundled directory imported once by the real
    command; each test starts from a copy. (PostgreSQL imports per test.)"""
    if BACKEND != "sqlite":
        return None
    folder = tmp_path_factory.mktemp("with-directory")
    path = folder / "tipline.db"
    shutil.copyfile(database_template, path)
    env = dict(os.environ, TIPLINE_DATA_DIR=str(folder), TIPLINE_DATABASE_URL=f"sqlite:///{path}")
    _run(env, "directory", "import")
    return path


@pytest.fixture
def server(settings: Settings, tmp_path: Path, sqlite_with_directory: Path | None) -> Iterator[Server]:
    """`tipline serve` on a free port, over a fresh data directory with the bundled directory
    of organisations imported (as `tipline init` does)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = environment_for(settings)
    # A page of this same server, so quick exit can be observed without any network.
    env["TIPLINE_QUICK_EXIT_URL"] = f"{base_url}/healthz"
    log = tmp_path / "server.log"
    running = Server(base_url=base_url, env=env, log=log)
    if sqlite_with_directory is None:
        running.cli("directory", "import")
    else:
        database = settings.resolved_database_url.removeprefix("sqlite:///")
        shutil.copyfile(sqlite_with_directory, database)
    try:
        process = ServerProcess(env, log, port=port)
    except ServerFailed as exc:
        pytest.fail(str(exc))
    with process:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser: Any) -> Iterator[Any]:
    """Makes browser contexts (British English unless told otherwise) and closes them after."""
    made: list[Any] = []

    def make(*, javascript: bool = True, **options: Any) -> Any:
        options.setdefault("extra_http_headers", {"Accept-Language": "en-GB"})
        context = browser.new_context(java_script_enabled=javascript, **options)
        context.set_default_timeout(15_000)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()

