"""Hashing cost per core: PDQ at full resolution against faster decode paths (and how far
each path's hash drifts from the full-resolution one), and MD5 + SHA-1 + SHA-256 in one pass.

    flock /tmp/tipline-heavy.lock .venv/bin/python -m bench.hashing
    .venv/bin/python -m bench.hashing --scale 0.1            # a quick look
    ... --pytx-hasher /path/to/threatexchange/signal_type/pdq/pdq_hasher.py

The corpus is generated, never real content: shapes, gradients, fractal noise, text-like
pages and photo-like blends (sky gradient, noise "terrain", blurred shapes, sensor noise),
at 640x480 .. 6000x4000, mostly JPEG at qualities 50-95 (4:2:0 and 4:4:4), some PNG.
Each image is hashed by every path once, one thread; times are means per image of CPU
time (process_time), which the other users of a shared machine disturb less than the
wall clock; the wall/CPU ratio of the whole run is printed as a check. Drift is
the Hamming distance from the full-resolution hash, counted only over images the path
actually changes (a path that leaves an image alone drifts 0 there and would hide its
drift elsewhere). "q>=50" rows keep only images whose full-resolution quality is 50 or
more: the others are never matched (HMA discards them), so their drift does not matter.

--pytx-hasher loads python-threatexchange's pdq_hasher.py by path (it needs only pdqhash,
numpy and Pillow), to time it and check that our hashes are identical to its hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import os
import signal
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

import numpy as np
from bench.machine import print_machine
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from tests.synthetic_images import draw_shapes, random_colour

from tipline.matching.digests import Digester
from tipline.matching.perceptual import (
    PDQ_QUALITY_THRESHOLD,
    PdqResult,
    pdq_distance,
    pdq_from_bytes,
    pdq_from_image,
)

# (width, height, images at --scale 1). Portrait 2000x3000 and the 12 MP phone size are
# there because draft mode picks its scale from the shorter side.
PLAN = [
    (640, 480, 50),
    (1280, 960, 50),
    (3000, 2000, 60),
    (2000, 3000, 30),
    (4032, 3024, 60),
    (6000, 4000, 60),
]
KINDS = ("shapes", "gradient", "noise", "text", "photo")
TIMING_SUBSET = 12  # per size: decode-only, PDQ-only and py-tx are timed on this many
FLOOR_MS = {(640, 480): 5.3, (1280, 960): 27.7, (3000, 2000): 195.9}  # hashing.md, JPEG


@dataclass
class Sample:
    size: tuple[int, int]
    kind: str
    fmt: str
    data: bytes


# ---- corpus --------------------------------------------------------------------------


def fractal_noise(rng: np.random.Generator, size: tuple[int, int], octaves: int = 6) -> np.ndarray:
    """Sum of upscaled random grids, each octave half the amplitude: a 1/f-like field."""
    width, height = size
    field = np.zeros((height, width), np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        cells = 3 * 2**octave
        grid = rng.standard_normal((max(2, cells * height // width), cells)).astype(np.float32)
        layer = Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC)
        field += amplitude * np.asarray(layer)
        amplitude *= 0.55
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def gradient_rgb(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    cx, cy = rng.uniform(0, 1, 2)
    radial = np.hypot(xs - cx, ys - cy)
    radial /= max(float(radial.max()), 1e-6)
    start, end, centre = (rng.uniform(0, 255, 3).astype(np.float32) for _ in range(3))
    mix = float(rng.uniform(0.2, 0.8))
    out = start + (end - start) * ramp[..., None]
    return out * mix + (1 - mix) * (centre * (1 - radial[..., None]) + end * radial[..., None])


def text_page(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    width, height = size
    page = Image.new("RGB", size, random_colour(rng) if rng.random() < 0.3 else (245, 245, 240))
    draw = ImageDraw.Draw(page)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz     "))
    y = int(rng.integers(0, height // 20 + 1))
    while y < height:
        font_size = int(max(8, height * rng.uniform(0.012, 0.05)))
        font = ImageFont.load_default(size=font_size)
        line = "".join(rng.choice(letters, int(rng.integers(20, 90))))
        ink = (20, 20, 30) if rng.random() < 0.8 else random_colour(rng)
        draw.text((int(rng.integers(0, width // 10 + 1)), y), line, fill=ink, font=font)
        y += int(font_size * rng.uniform(1.2, 2.5))
    if rng.random() < 0.5:  # a picture block, as in a screenshot of a page
        return draw_shapes(rng, page, 3, 255)
    return page


def make_image(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> Image.Image:
    # Drawn at half size and upscaled (the cost of 24 MP drawing adds nothing), then
    # fine per-pixel noise at full size, like a camera's.
    design = (max(1, size[0] // 2), max(1, size[1] // 2))
    if kind == "shapes":
        picture = draw_shapes(rng, Image.new("RGB", design, random_colour(rng)), 40, 255)
    elif kind == "gradient":
        base = Image.fromarray(np.clip(gradient_rgb(rng, design), 0, 255).astype(np.uint8))
        picture = draw_shapes(rng, base, 6, int(rng.integers(40, 160)))
    elif kind == "noise":
        channels = [fractal_noise(rng, design) for _ in range(3)]
        picture = Image.fromarray((np.stack(channels, -1) * 255).astype(np.uint8))
    elif kind == "text":
        picture = text_page(rng, design)
    else:
        sky = gradient_rgb(rng, design)
        terrain = fractal_noise(rng, design)[..., None] * rng.uniform(60, 200, 3).astype(np.float32)
        horizon = np.linspace(0, 1, design[1], dtype=np.float32)[:, None, None] > rng.uniform(0.3, 0.7)
        base = Image.fromarray(np.clip(np.where(horizon, terrain, sky), 0, 255).astype(np.uint8))
        picture = draw_shapes(rng, base, 12, 220).filter(ImageFilter.GaussianBlur(rng.uniform(0, 4)))
    picture = picture.resize(size, Image.Resampling.BICUBIC)
    sigma = float(rng.uniform(0, 8))
    if sigma > 1:
        pixels = np.asarray(picture, dtype=np.float32)
        pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * sigma
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return picture


def corpus(seed: int, scale: float, sizes: set[tuple[int, int]] | None) -> Iterator[Sample]:
    rng = np.random.default_rng(seed)
    for width, height, count in PLAN:
        if sizes is not None and (width, height) not in sizes:
            continue
        for index in range(max(1, round(count * scale))):
            kind = KINDS[index % len(KINDS)]
            picture = make_image(rng, kind, (width, height))
            out = io.BytesIO()
            if rng.random() < 0.15:
                picture.save(out, "PNG", compress_level=1)
                fmt = "PNG"
            else:
                quality = int(rng.choice([50, 70, 80, 90, 95]))
                subsampling = 0 if rng.random() < 0.3 else 2
                picture.save(out, "JPEG", quality=quality, subsampling=subsampling)
                fmt = f"JPEG q{quality} {'4:4:4' if subsampling == 0 else '4:2:0'}"
            yield Sample((width, height), kind, fmt, out.getvalue())


# ---- the paths ---------------------------------------------------------------------------


def drafted(data: bytes, mode: str, target: int | None) -> Image.Image | None:
    """JPEG decoded by libjpeg's DCT scaling (1/2, 1/4, 1/8) so both sides stay >= target
    (None: full size), in `mode` ("L" decodes luma only); None for other formats."""
    image = Image.open(io.BytesIO(data))
    if image.format != "JPEG" and image.format != "MPO":
        return None
    original = image.size
    image.draft(mode, image.size if target is None else (target, target))
    if image.mode != "L" and image.size == original:
        return None  # nothing to gain: the same decode as the full path
    image.load()
    return image


def path_draft(mode: str, target: int | None) -> Callable[[bytes], PdqResult | None]:
    def run(data: bytes) -> PdqResult | None:
        image = drafted(data, mode, target)
        return None if image is None else pdq_from_image(image)
    return run


def path_reduce(target: int) -> Callable[[bytes], PdqResult | None]:
    def run(data: bytes) -> PdqResult | None:
        image = Image.open(io.BytesIO(data))
        factor = min(image.size) // target
        if factor < 2:
            return None
        image.load()
        return pdq_from_image(image.reduce(factor))
    return run


def path_naive_thumbnail(data: bytes) -> PdqResult | None:
    """hashing.md's "fast" path: JPEG draft, then thumbnail to <= 512 px."""
    image = Image.open(io.BytesIO(data))
    if max(image.size) <= 512:
        return None
    image.draft("RGB", (512, 512))
    image.thumbnail((512, 512))
    return pdq_from_image(image)


FAST_PATHS: dict[str, Callable[[bytes], PdqResult | None]] = {
    "luma (JPEG Y only, full size)": path_draft("L", None),
    "draft >=1024": path_draft("RGB", 1024),
    "draft >=512": path_draft("RGB", 512),
    "luma + draft >=1024": path_draft("L", 1024),
    "reduce >=1024 (box, any format)": path_reduce(1024),
    "naive: draft + thumbnail 512": path_naive_thumbnail,
}


def load_pytx(path: str | None) -> ModuleType | None:
    if not path:
        return None
    spec = importlib.util.spec_from_file_location("pytx_pdq_hasher", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(function: Callable[..., object], *args: object) -> tuple[float, object]:
    """CPU milliseconds of this (single-threaded) process: on a shared 2-core machine the
    wall clock also counts other people's work."""
    start = time.process_time()
    result = function(*args)
    return (time.process_time() - start) * 1000, result


# ---- measuring ---------------------------------------------------------------------------


@dataclass
class Tally:
    times: dict[tuple[tuple[int, int], str], list[float]]
    # path -> (distance, full-resolution quality, size)
    drift: dict[str, list[tuple[int, int, tuple[int, int]]]]
    file_kb: dict[tuple[int, int], list[float]]
    pytx_same: list[bool]
    first_jpeg: dict[tuple[int, int], bytes]


def new_tally() -> Tally:
    return Tally(defaultdict(list), defaultdict(list), defaultdict(list), [], {})


def measure(tally: Tally, samples: Iterator[Sample], pytx: ModuleType | None, verbose: bool) -> None:
    """Fills `tally` as it goes, so that an interrupted run can still report."""
    subset: dict[tuple[int, int], int] = defaultdict(int)
    for number, sample in enumerate(samples, 1):
        key = sample.size
        tally.file_kb[key].append(len(sample.data) / 1024)
        if sample.fmt.startswith("JPEG"):
            tally.first_jpeg.setdefault(key, sample.data)
        elapsed, full = timed(pdq_from_bytes, sample.data)
        assert isinstance(full, PdqResult)
        tally.times[(key, "full")].append(elapsed)
        if subset[key] < TIMING_SUBSET:
            subset[key] += 1
            elapsed, image = timed(_decoded, sample.data)
            tally.times[(key, "decode only")].append(elapsed)
            elapsed, _ = timed(pdq_from_image, image)
            tally.times[(key, "PDQ only")].append(elapsed)
            if pytx is not None:
                elapsed, theirs = timed(pytx.pdq_from_bytes, sample.data)
                tally.times[(key, "py-tx pdq_from_bytes")].append(elapsed)
                assert isinstance(theirs, tuple)
                tally.pytx_same.append(theirs == (full.hash_hex, full.quality))
        for name, path in FAST_PATHS.items():
            elapsed, result = timed(path, sample.data)
            if result is None:  # the path leaves this image alone: same cost, no drift
                tally.times[(key, name)].append(tally.times[(key, "full")][-1])
                continue
            assert isinstance(result, PdqResult)
            tally.times[(key, name)].append(elapsed)
            tally.drift[name].append((pdq_distance(full.hash, result.hash), full.quality, key))
        if verbose and number % 20 == 0:
            print(f"  ... {number} images", flush=True)


def warm_repeats(tally: Tally, seconds: float = 1.5) -> dict[tuple[int, int], list[float]]:
    """Median ms of full decode, decode only and PDQ only, each repeated on one JPEG per
    size with warm caches (the way hashing.md timed its loops)."""
    rows = {}
    for size, data in tally.first_jpeg.items():
        image = _decoded(data)
        medians = []
        for function, argument in ((pdq_from_bytes, data), (_decoded, data), (pdq_from_image, image)):
            spent: list[float] = []
            while sum(spent) < seconds * 1000 or len(spent) < 5:
                spent.append(timed(function, argument)[0])
            medians.append(statistics.median(spent))
        rows[size] = medians
    return rows


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def digest_throughput(megabytes: int = 256, chunk: int = 1 << 20) -> list[tuple[str, float]]:
    buffer = np.random.default_rng(7).integers(0, 256, megabytes << 20, dtype=np.uint8).tobytes()
    view = memoryview(buffer)
    rows = []
    for name in ("md5", "sha1", "sha256"):
        digest = hashlib.new(name, usedforsecurity=False)
        start = time.process_time()
        for offset in range(0, len(view), chunk):
            digest.update(view[offset : offset + chunk])
        rows.append((f"{name.upper()} alone", megabytes / (time.process_time() - start)))
    digester = Digester()
    start = time.process_time()
    for offset in range(0, len(view), chunk):
        digester.update(view[offset : offset + chunk])
    digester.result()
    rows.append(("MD5 + SHA-1 + SHA-256, one pass (Digester)", megabytes / (time.process_time() - start)))
    return rows


# ---- reporting ---------------------------------------------------------------------------


def mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.1f}" if values else "–"


def print_speed(tally: Tally) -> None:
    sizes = [(w, h) for w, h, _ in PLAN if tally.file_kb.get((w, h))]
    columns = ["full", "decode only", "PDQ only"]
    if any(key[1].startswith("py-tx") for key in tally.times):
        columns.append("py-tx pdq_from_bytes")
    columns += list(FAST_PATHS)
    print("\n### Decode + PDQ, mean CPU ms per image, one core\n")
    print("| size | n | file KB | " + " | ".join(columns) + " | hashing.md floor |")
    print("|---|---|---|" + "---|" * len(columns) + "---|")
    for size in sizes:
        cells = [mean(tally.times[(size, column)]) for column in columns]
        floor = FLOOR_MS.get(size)
        print(f"| {size[0]}x{size[1]} | {len(tally.file_kb[size])} | {mean(tally.file_kb[size])} | "
              + " | ".join(cells) + f" | {floor if floor else '–'} |")


def print_drift(tally: Tally) -> None:
    print("\n### Drift from the full-resolution hash (bits), over the images each path changes\n")
    print("| path | images | p50 | p90 | p99 | max | q>=50: images | p50 | p99 | max | verdict (p99 <= 4 on q>=50) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in FAST_PATHS:
        rows = tally.drift.get(name, [])
        every = np.array([d for d, _, _ in rows]) if rows else np.zeros(0)
        good = np.array([d for d, q, _ in rows if q >= PDQ_QUALITY_THRESHOLD]) if rows else np.zeros(0)
        def stats(values: np.ndarray, qs: tuple[int, ...]) -> list[str]:
            if len(values) == 0:
                return ["–"] * len(qs)
            return [f"{np.percentile(values, q):.1f}" for q in qs]
        verdict = "–" if len(good) == 0 else ("within" if np.percentile(good, 99) <= 4 else "exceeds")
        print(f"| {name} | {len(every)} | " + " | ".join(stats(every, (50, 90, 99)))
              + f" | {int(every.max()) if len(every) else '–'} | {len(good)} | "
              + " | ".join(stats(good, (50, 99))) + f" | {int(good.max()) if len(good) else '–'} | {verdict} |")


def print_drift_by_size(tally: Tally) -> None:
    sizes = [(w, h) for w, h, _ in PLAN if tally.file_kb.get((w, h))]
    print("\n### Drift by size, images with quality >= 50: p99 / max (images)\n")
    print("| path | " + " | ".join(f"{w}x{h}" for w, h in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in FAST_PATHS:
        cells = []
        for size in sizes:
            values = [d for d, q, s in tally.drift.get(name, []) if s == size and q >= PDQ_QUALITY_THRESHOLD]
            cells.append(f"{np.percentile(values, 99):.0f} / {max(values)} ({len(values)})" if values else "–")
        print(f"| {name} | " + " | ".join(cells) + " |")


def print_warm(rows: dict[tuple[int, int], list[float]]) -> None:
    print("\n### Warm repeats on one JPEG per size, median CPU ms (comparable with hashing.md)\n")
    print("| size | decode + PDQ | decode only | PDQ only | hashing.md decode + PDQ |")
    print("|---|---|---|---|---|")
    for (width, height), (full, decode, pdq_only) in rows.items():
        floor = FLOOR_MS.get((width, height), "–")
        print(f"| {width}x{height} | {full:.1f} | {decode:.1f} | {pdq_only:.1f} | {floor} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the corpus to use")
    parser.add_argument("--seed", type=int, default=20261)
    parser.add_argument("--digest-mb", type=int, default=256)
    parser.add_argument("--pytx-hasher", default=os.environ.get("PYTX_PDQ_HASHER"),
                        help="path of python-threatexchange's signal_type/pdq/pdq_hasher.py")
    parser.add_argument("--sizes", help="only these sizes, e.g. 4032x3024,6000x4000")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    sizes = None
    if args.sizes:
        pairs = (item.split("x") for item in args.sizes.split(","))
        sizes = {(int(width), int(height)) for width, height in pairs}
    # A stopped run (SIGTERM, Ctrl-C) still prints what it measured.
    signal.signal(signal.SIGTERM, _interrupt)

    pytx = load_pytx(args.pytx_hasher)
    # warm up imports and code paths, outside the timings
    warm = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(warm, "JPEG")
    pdq_from_bytes(warm.getvalue())

    started, started_cpu = time.perf_counter(), time.process_time()
    tally = new_tally()
    interrupted = False
    try:
        measure(tally, corpus(args.seed, args.scale, sizes), pytx, verbose=not args.quiet)
    except KeyboardInterrupt:
        interrupted = True
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    print_machine(None)
    print(f"  numpy {np.__version__}, Pillow {Image.__version__}, "
          f"pdqhash {_version('pdqhash')}, libjpeg-turbo {_libjpeg()}")
    print(f"\n{sum(len(v) for v in tally.file_kb.values())} generated images, "
          f"seed {args.seed}, {wall:.0f} s wall / {cpu:.0f} s CPU (ratio {wall / cpu:.2f})")
    if interrupted:
        print("(interrupted: partial results)")
    print_speed(tally)
    print_drift(tally)
    print_drift_by_size(tally)
    if tally.pytx_same:
        print(f"\npy-tx pdq_from_bytes gave the identical hash and quality on "
              f"{sum(tally.pytx_same)}/{len(tally.pytx_same)} images")
    if interrupted:
        return
    try:
        print_warm(warm_repeats(tally))
        print("\n### Cryptographic digests, 1 MiB chunks, one core\n")
        print("| digest | MB/s |")
        print("|---|---|")
        for name, rate in digest_throughput(args.digest_mb):
            print(f"| {name} | {rate:,.0f} |")
    except KeyboardInterrupt:
        print("(interrupted)")


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _libjpeg() -> str:
    from PIL import features
    return str(features.version("jpg"))


if __name__ == "__main__":
    main()
