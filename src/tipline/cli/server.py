"""`tipline init` and `tipline serve`."""

from __future__ import annotations

import gc
import os
from typing import Any

import click

from tipline import crypto
from tipline.cli.common import load_settings, unit_of_work
from tipline.evidence.blobstore import BlobStore
from tipline.settings import Surface


@click.command()
@click.option("--no-directory", is_flag=True, help="Do not import the bundled directory.")
def init(no_directory: bool) -> None:
    """Create the data directory, key files (0600) and database; import the directory."""
    from tipline import migrations
    from tipline.routing import service as routing

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    created = crypto.create_keys(settings.keys_dir)
    click.echo(f"keys: {'created' if created else 'already present'} in {settings.keys_dir}")
    BlobStore(settings.vault_dir).ensure()
    click.echo(f"vault: {settings.vault_dir}")
    click.echo("database: applying migrations…")
    migrations.upgrade(settings)
    click.echo("database: up to date")
    if not no_directory:
        with unit_of_work(settings) as session:
            result = routing.import_directory(session, routing.bundled_directory(), actor="cli:init")
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.counts().items() if v)
        click.echo(f"directory: {counts or 'unchanged'}")
    click.echo("ready: run `tipline serve`")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--surface", type=click.Choice([s.value for s in Surface]), default="all",
              show_default=True, help="Which routes to serve.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (partner surface only: the others keep rate limits and "
                   "caches in memory, which must be one per site).")
def serve(host: str, port: int, surface: str, workers: int) -> None:
    """Run the web server."""
    import uvicorn

    from tipline.app import create_app

    if workers > 1 and surface != Surface.partner.value:
        raise click.UsageError("--workers above 1 is for --surface partner only: the public and "
                               "staff surfaces keep rate limits and caches in one process's memory.")
    settings = load_settings()
    # access_log off: a reporter's address must never reach a log.
    options: dict[str, Any] = {"host": host, "port": port, "access_log": False, "proxy_headers": False,
                               "server_header": False, "log_level": "info"}
    if workers == 1:
        _collect_garbage_less_often()
        uvicorn.run(create_app(settings, Surface(surface)), **options)
        return
    # Each worker process builds its own app from the environment (settings are TIPLINE_*).
    os.environ[SURFACE_VARIABLE] = surface
    uvicorn.run("tipline.cli.server:app_from_environment", factory=True, workers=workers, **options)


SURFACE_VARIABLE = "TIPLINE_SERVE_SURFACE"


def app_from_environment() -> Any:
    """The app of one worker process of `tipline serve --workers N`."""
    from tipline.app import create_app

    _collect_garbage_less_often()
    return create_app(load_settings(), Surface(os.environ.get(SURFACE_VARIABLE, Surface.all.value)))


# The cyclic collector's first generation is examined after this many new objects, not
# Python's 700: most of a request's objects are freed by reference counting before then.
# With 700 a partner-ingest run of 300 reports ran about 650 collections (0.2 s of CPU), with
# 50,000 it ran 7 (0.12 s, start-up included; docs/performance.md). At most this many
# objects' worth of cyclic garbage waits between collections.
GC_FIRST_GENERATION = 50_000


def _collect_garbage_less_often() -> None:
    gc.set_threshold(GC_FIRST_GENERATION, *gc.get_threshold()[1:])
