"""Synthetic test data: generated images and invented report answers only."""

from __future__ import annotations

import io
import random
import re
from typing import Any

from PIL import Image, ImageDraw


def png_bytes(seed: int = 1, size: tuple[int, int] = (320, 200), noise: bool = False) -> bytes:
    """A generated screenshot-like picture: a gradient with shapes (and optional noise)."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size)
    pixels = image.load()
    assert pixels is not None
    base = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    for y in range(height):
        for x in range(width):
            shade = (x * 255 // max(width - 1, 1) + y * 128 // max(height - 1, 1)) % 256
            value = (base[0] + shade) % 256, (base[1] + shade // 2) % 256, base[2]
            if noise:
                value = tuple(min(255, c + rng.randrange(64)) for c in value)  # type: ignore[assignment]
            pixels[x, y] = value
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        draw.rectangle((x0, y0, x0 + rng.randrange(10, 80), y0 + rng.randrange(10, 50)),
                       fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def report_fields(**overrides: Any) -> dict[str, Any]:
    """The fields of the HTML form, as a browser would send them."""
    fields: dict[str, Any] = {
        "reporter_role": "parent_carer",
        "incident_types": ["sextortion"],
        "frequency": "repeated",
        "certainty": "certain",
        "platform": "ExampleChat",
        "urls": "https://chat.example.org/u/shadowfox",
        "suspect_usernames": "shadowfox_99",
        "child_age_band": "13_15",
        "child_country": "GB",
        "reporter_country": "GB",
        "description": "An account keeps messaging my son and demands money.",
        "sextortion_demands": ["money"],
        "sextortion_deadline": "Friday evening",
        "anonymous": "yes",
    }
    fields.update(overrides)
    return fields


def report_json(**overrides: Any) -> dict[str, Any]:
    """The same report for the JSON API."""
    data: dict[str, Any] = {
        "reporter_role": "other_adult",
        "incident_types": ["image_pressure"],
        "certainty": "suspicious",
        "platform": "PixelPlay",
        "urls": ["https://pixelplay.example.com/profile/quietowl"],
        "suspect": {"usernames": ["quietowl"], "details": "Says he is 15."},
        "child_age_band": "9_12",
        "child_country": "US",
        "child_region": "Ohio",
        "description": "A player asks a 11-year-old girl to go on camera.",
    }
    data.update(overrides)
    return data


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def codename_from(html: str) -> str:
    match = re.search(r'id="codename">([^<]+)<', html)
    assert match, "the receipt shows no codename"
    return match.group(1).strip()


def reference_from(html: str) -> str:
    match = re.search(r'id="reference">([^<]+)<', html)
    assert match, "the receipt shows no reference"
    return match.group(1).strip()
