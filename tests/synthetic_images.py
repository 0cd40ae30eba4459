"""Generated pictures (shapes over a background), shared by the matching tests and the
hashing benchmark. Synthetic only: never real photographs."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def random_colour(rng: np.random.Generator, alpha: int | None = None) -> tuple[int, ...]:
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    return colour if alpha is None else (*colour, alpha)


def draw_shapes(rng: np.random.Generator, image: Image.Image, count: int, alpha: int) -> Image.Image:
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    width, height = image.size
    for _ in range(count):
        x0, x1 = sorted(int(v) for v in rng.integers(0, width, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, height, 2))
        fill = random_colour(rng, alpha)
        shape = int(rng.integers(0, 4))
        if shape == 0:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        elif shape == 1:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == 2:
            points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(5)]
            draw.polygon(points, fill=fill)
        else:
            draw.line((x0, y0, x1, y1), fill=fill, width=max(1, width // int(rng.integers(60, 400))))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
