"""Configuration, read once from TIPLINE_* environment variables and passed down."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Surface(StrEnum):
    public = "public"
    partner = "partner"
    staff = "staff"
    all = "all"


DEFAULT_ALLOWED_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "video/mp4",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIPLINE_", frozen=True, extra="ignore")

    data_dir: Path = Path("var")
    # Empty means the embedded SQLite database inside data_dir.
    database_url: str = ""
    site_name: str = "Tipline"
    # Where the quick-exit button sends a visitor: a neutral, busy site.
    quick_exit_url: str = "https://www.wikipedia.org/"
    # Country shown in the safety gate when the browser's language names none.
    default_country: str = ""
    # Browsers only send cookies marked Secure over HTTPS; production runs behind TLS.
    cookie_secure: bool = False

    max_files: int = Field(default=10, ge=0, le=100)
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_text_chars: int = Field(default=20_000, ge=100)
    allowed_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES
    # Partner API uploads (one file per request): evidence is whatever the platform found,
    # so any type by default ("*"), up to 2 GiB; a list of media types narrows it.
    esp_max_file_bytes: int = Field(default=2 * 1024**3, ge=1024)
    esp_allowed_types: tuple[str, ...] = ("*",)
    # How often a partner-surface server deletes unfinished partner reports past expiry
    # (0: never; then run `tipline partners purge-expired` from cron).
    esp_purge_interval_seconds: float = Field(default=600.0, ge=0)
    # Hash bank files uploaded on the staff pages (lists of hashes, not evidence): streamed
    # to a private file under data_dir/bank-files while imported; real ones reach
    # hundreds of MB. Larger files can still be imported with `tipline banks import`.
    bank_import_max_bytes: int = Field(default=2 * 1024**3, ge=1024)

    # Argon2id cost for follow-up codenames (memory in KiB); OWASP's minimum profile.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    codename_words: int = Field(default=7, ge=7, le=12)

    followup_session_minutes: int = Field(default=30, ge=1)
    followup_attempts_per_minute: int = Field(default=10, ge=1)

    # Known-content hashing off the request path (tipline.matching.worker): processes for
    # the CPU work (0: no hashing worker in this server), how often to look for new files
    # when nobody wakes the worker, how often to load bank entries other processes added,
    # and after how long a file claimed by a worker that stopped is hashed again.
    hash_workers: int = Field(default_factory=lambda: len(os.sched_getaffinity(0)), ge=0)
    hash_poll_seconds: float = Field(default=1.0, gt=0)
    hash_index_refresh_seconds: float = Field(default=15.0, gt=0)
    hash_stale_seconds: float = Field(default=300.0, ge=10)

    @field_validator("default_country")
    @classmethod
    def _upper_country(cls, value: str) -> str:
        return value.strip().upper()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tipline.db'}"

    @property
    def vault_dir(self) -> Path:
        return self.data_dir / "vault"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"
