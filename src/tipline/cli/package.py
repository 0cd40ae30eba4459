"""`tipline package verify FILE`: check a referral package offline (no database, no keys)."""

from __future__ import annotations

import base64
from pathlib import Path

import click

from tipline.cli.common import load_settings


@click.group()
def package() -> None:
    """Signed referral packages."""


@package.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The signing key the package must be signed with (base64 text or 32 raw bytes).")
def verify(file: Path, public_key_file: Path | None) -> None:
    """Check every SHA-256 in the manifest and the Ed25519 signature. Exit status 1 on any
    failure, including a file that is not a readable package at all."""
    from tipline.cases.package import read_public_key, verify_package

    pinned = None
    if public_key_file is not None:
        try:
            pinned = read_public_key(public_key_file.read_bytes())
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    result = verify_package(file.read_bytes(), pinned_key=pinned)
    for line in result.checks:
        click.echo(f"ok      {line}")
    for line in result.failures:
        click.echo(f"FAILED  {line}")
    if result.fingerprint:
        click.echo(f"signing key fingerprint: {result.fingerprint}")
        if pinned is None:
            click.echo("(compare it with the fingerprint your Tipline instance publishes, "
                       "or pass --public-key)")
    if result.ok:
        click.echo(f"VERIFIED: {file.name} is intact and signed")
        return
    click.echo(f"NOT VERIFIED: {file.name} was altered or is not a Tipline package")
    raise SystemExit(1)


@package.command("public-key")
def public_key() -> None:
    """Print this instance's package-signing public key (base64) and its fingerprint,
    creating the key on first use."""
    from tipline import crypto
    from tipline.cases.package import public_key as load_public_key

    key = load_public_key(load_settings().keys_dir)
    click.echo(base64.b64encode(key).decode())
    click.echo(f"fingerprint: {crypto.key_fingerprint(key)}", err=True)
