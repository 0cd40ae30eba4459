"""`tipline vault verify`: decrypt every blob and check its digests."""

from __future__ import annotations

import json
import time

import click

from tipline.cli.common import Progress, keys_and_blobs, load_settings, unit_of_work
from tipline.evidence import service as evidence
from tipline.evidence.blobstore import TMP_GRACE_SECONDS

# A blob this young may belong to an upload whose transaction has not committed yet.
ORPHAN_GRACE_SECONDS = TMP_GRACE_SECONDS


@click.group()
def vault() -> None:
    """The encrypted evidence vault."""


@vault.command()
@click.option("--remove-orphans", is_flag=True,
              help="Delete blobs that no evidence row refers to (older than 15 minutes).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--progress/--no-progress", default=None, help="Show progress (default: on a terminal).")
def verify(remove_orphans: bool, as_json: bool, progress: bool | None) -> None:
    """Exit status 1 if any blob is missing, altered or does not decrypt."""
    settings = load_settings()
    keys, blobs = keys_and_blobs(settings)
    with unit_of_work(settings) as session:
        result = evidence.verify_vault(
            session, blobs, keys,
            progress=Progress("verifying", force=bool(progress)) if progress is not False else None,
        )
    removed = 0
    if remove_orphans:
        cutoff = time.time() - ORPHAN_GRACE_SECONDS
        removed += blobs.sweep_tmp()
        for name in result.orphans:
            path = blobs.path_for(name)
            if path.exists() and path.stat().st_mtime < cutoff:
                blobs.delete(name)
                removed += 1
    if as_json:
        click.echo(json.dumps({"checked": result.checked, "ok": result.ok,
                               "failures": result.failures, "orphans": result.orphans,
                               "removed": removed}, indent=2))
    else:
        click.echo(f"checked {result.checked} files: {result.ok} intact, {len(result.failures)} failed")
        for failure in result.failures:
            click.echo(f"FAILED {failure}")
        for name in result.orphans:
            click.echo(f"orphan blob (no evidence row): {name}")
        if remove_orphans:
            click.echo(f"removed {removed} orphan or temporary files")
    if result.failures:
        raise SystemExit(1)
