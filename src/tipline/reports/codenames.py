"""Follow-up codenames: random words from the EFF long list (12.9 bits a word)."""

from __future__ import annotations

import math
import secrets
from functools import cache
from importlib import resources


@cache
def wordlist() -> tuple[str, ...]:
    text = resources.files("xkcdpass").joinpath("static/eff-long").read_text("utf-8")
    words = tuple(sorted({line.strip().lower() for line in text.splitlines() if line.strip().isalpha()}))
    if len(words) < 7000:
        raise RuntimeError("the EFF word list is incomplete; reinstall xkcdpass")
    return words


def new_codename(words: int) -> str:
    pool = wordlist()
    return " ".join(secrets.choice(pool) for _ in range(words))


def entropy_bits(words: int) -> float:
    return words * math.log2(len(wordlist()))


def normalise(codename: str) -> str:
    """Forgive case, extra spaces, hyphens and line breaks when people type it back."""
    return " ".join(codename.lower().replace("-", " ").split())
