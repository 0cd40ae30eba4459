"""In-memory sliding-window rate limits.

Keys are keyed digests that live only in this process's memory for a minute: a reporter's
address is never written to disk or logs, but one client cannot hammer the codename form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

from tipline.errors import RateLimited
from tipline.i18n import _


class RateLimiter:
    def __init__(self, per_minute: int, *, overall_per_minute: int | None = None) -> None:
        self.per_minute = per_minute
        self.overall = overall_per_minute or per_minute * 50
        self._salt = secrets.token_bytes(16)
        self._hits: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _key(self, client: str) -> str:
        return hmac.new(self._salt, client.encode(), hashlib.sha256).hexdigest()[:24]

    def check(self, client: str) -> None:
        now = time.monotonic()
        key = self._key(client)
        with self._lock:
            self._prune(now)
            hits = self._hits.setdefault(key, deque())
            if len(hits) >= self.per_minute or len(self._all) >= self.overall:
                raise RateLimited(_("Too many attempts. Please wait a minute and try again."))
            hits.append(now)
            self._all.append(now)

    def _prune(self, now: float) -> None:
        cutoff = now - 60
        while self._all and self._all[0] < cutoff:
            self._all.popleft()
        for key in list(self._hits):
            hits = self._hits[key]
            while hits and hits[0] < cutoff:
                hits.popleft()
            if not hits:
                del self._hits[key]
