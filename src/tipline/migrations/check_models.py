"""`python -m tipline.migrations.check_models`: migrate a scratch SQLite database and fail
if the models hold anything the migrations do not (alembic check)."""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

from alembic import command
from alembic.util.exc import CommandError

from tipline.migrations import alembic_config, upgrade_url


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'check.db'}"
        upgrade_url(url)
        try:
            with warnings.catch_warnings():
                # Indexes with a DESC column cannot be compared on SQLite; migration 0005
                # creates them by hand and tests/test_migrations.py checks they exist.
                warnings.filterwarnings("ignore", message="autogenerate skipping metadata-specified expression-based index")
                warnings.filterwarnings("ignore", message="autogenerate skipping functional index")
                command.check(alembic_config(url))
        except CommandError as exc:
            print(f"models and migrations disagree: {exc}")
            return 1
    print("models and migrations agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
