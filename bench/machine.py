"""The machine a benchmark ran on: every benchmark prints this next to its table.

    python -m bench.machine [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def postgres_version(url: str) -> str:
    """The server's version, or why it could not be read (never raises)."""
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return str(conn.execute(text("SHOW server_version")).scalar_one())
        finally:
            engine.dispose()
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def describe(database_url: str | None = None) -> list[tuple[str, str]]:
    memory = memory_gib()
    rows = [
        ("CPU", cpu_model()),
        ("cores", f"{usable_cores()} usable ({os.cpu_count()} online)"),
        ("memory", f"{memory:.1f} GiB" if memory is not None else "unknown"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite", sqlite3.sqlite_version),
    ]
    if database_url and database_url.startswith("postgresql"):
        rows.append(("PostgreSQL", postgres_version(database_url)))
    return rows


def print_machine(database_url: str | None = None) -> None:
    rows = describe(database_url)
    width = max(len(name) for name, _ in rows)
    print("Machine")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TIPLINE_DATABASE_URL"),
                        help="a PostgreSQL URL whose server version to print")
    args = parser.parse_args()
    print_machine(args.database_url)


if __name__ == "__main__":
    main()
