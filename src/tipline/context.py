"""Everything a request needs, built once per app and kept on app.state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tipline import crypto
from tipline.batching import GroupCommitWriter
from tipline.evidence.blobstore import BlobStore
from tipline.ratelimit import RateLimiter
from tipline.routing.directory import DirectoryCache
from tipline.settings import Settings, Surface


@dataclass
class AppContext:
    settings: Settings
    surface: Surface
    engine: Engine
    sessions: sessionmaker[Session]
    keys: crypto.Keys
    blobs: BlobStore
    directory: DirectoryCache
    followup_limiter: RateLimiter
    # Group commit for the partner API (tipline.batching).
    esp_writer: GroupCommitWriter

    @property
    def argon2_cost(self) -> crypto.Argon2Cost:
        s = self.settings
        return crypto.Argon2Cost(s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism)
