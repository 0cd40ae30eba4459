"""What every sub-command shares: settings, a database, keys, progress output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from tipline import crypto
from tipline.db import make_engine, make_sessionmaker, transaction
from tipline.evidence.blobstore import BlobStore
from tipline.settings import Settings


def load_settings() -> Settings:
    return Settings()


@contextmanager
def unit_of_work(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def keys_and_blobs(settings: Settings) -> tuple[crypto.Keys, BlobStore]:
    try:
        keys = crypto.load_keys(settings.keys_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    return keys, BlobStore(settings.vault_dir)


class Progress:
    """A one-line progress counter on stderr (only when it is a terminal or forced)."""

    def __init__(self, label: str, *, force: bool = False) -> None:
        self.label = label
        self.enabled = force or sys.stderr.isatty()
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        percent = 100 if total == 0 else done * 100 // total
        if percent != self._last or done == total:
            self._last = percent
            end = "\n" if done >= total else ""
            click.echo(f"\r{self.label}: {done}/{total} ({percent}%)", err=True, nl=False)
            if end:
                click.echo("", err=True)
