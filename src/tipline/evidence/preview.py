"""Safe previews: staff see a small, blurred, greyscale version of an image until they
choose to reveal the original."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageFilter, ImageOps

from tipline.errors import InvalidInput

# Refuse decompression bombs: no preview is worth 100 megapixels of memory.
MAX_PIXELS = 100_000_000
PREVIEWABLE = ("image/png", "image/jpeg", "image/gif", "image/webp")


def blurred_preview(data: bytes, *, size: int = 320, radius: int = 14) -> bytes:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.draft("RGB", (size * 2, size * 2))
                picture = ImageOps.exif_transpose(image).convert("L")
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput("This image cannot be previewed.") from exc
    picture.thumbnail((size, size))
    picture = picture.filter(ImageFilter.GaussianBlur(radius))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
