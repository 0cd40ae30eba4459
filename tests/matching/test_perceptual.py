"""PDQ and vPDQ on generated pictures and videos (shapes, gradients, noise; never real content)."""

from __future__ import annotations

import functools
import io
import itertools
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageOps

from tests.synthetic_images import draw_shapes, random_colour
from tipline.errors import TooLarge
from tipline.matching.perceptual import (
    PDQ_MATCH_DISTANCE,
    PDQ_QUALITY_THRESHOLD,
    ImageTooLarge,
    PdqResult,
    VpdqFrame,
    compare_vpdq,
    parse_pdq_hex,
    pdq_distance,
    pdq_from_bytes,
    vpdq_from_chunks,
    vpdq_from_path,
)

SIZE = (1024, 768)  # large enough that a 25 % copy (256x192) still keeps its PDQ


# ---- generated pictures ------------------------------------------------------------------


def _ramp(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    ramp = (ramp - ramp.min()) / np.ptp(ramp)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return Image.fromarray((start + (end - start) * ramp[..., None]).astype(np.uint8))


@functools.cache
def picture(kind: str, seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    rng = np.random.default_rng(seed)
    if kind == "shapes":
        return draw_shapes(rng, Image.new("RGB", size, random_colour(rng)), 12, 255)
    if kind == "gradient":  # a colour ramp seen through translucent shapes
        return draw_shapes(rng, _ramp(rng, size), 8, 160)
    if kind == "noise":  # random colour fields at a few scales plus fine grain
        fields = np.zeros((size[1], size[0], 3), np.float32)
        for cells, weight in ((4, 1.0), (12, 0.5), (40, 0.25)):
            grid = rng.integers(0, 256, (cells * 3 // 4, cells, 3), dtype=np.uint8)
            fields += weight * np.asarray(Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC))
        fields = fields / 1.75 + rng.normal(0, 8, fields.shape)
        return Image.fromarray(np.clip(fields, 0, 255).astype(np.uint8))
    raise ValueError(kind)


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def pdq(data: bytes) -> PdqResult:
    result = pdq_from_bytes(data)
    assert result is not None
    return result


# Seeds whose pictures have quality >= 50 (a smooth ramp alone has too little detail).
BANK = [("shapes", 1), ("shapes", 2), ("gradient", 0), ("gradient", 5), ("noise", 1), ("noise", 2)]
EDITS = {
    "jpeg q30": lambda image: encode(image, "JPEG", quality=30),
    "resize 25%": lambda image: encode(image.resize((image.width // 4, image.height // 4))),
    "greyscale": lambda image: encode(ImageOps.grayscale(image)),
}


@pytest.mark.parametrize(("kind", "seed"), BANK)
def test_re_encodings_match_their_bank_entry(kind: str, seed: int) -> None:
    original = picture(kind, seed)
    entry = pdq(encode(original))
    assert entry.matchable, entry.quality
    for name, edit in EDITS.items():
        copy = pdq(edit(original))
        assert pdq_distance(entry.hash, copy.hash) <= PDQ_MATCH_DISTANCE, name


def test_unrelated_pictures_do_not_match() -> None:
    entries = {key: pdq(encode(picture(*key))) for key in BANK}
    for first, second in itertools.combinations(entries, 2):
        assert pdq_distance(entries[first].hash, entries[second].hash) > PDQ_MATCH_DISTANCE
    # nor does a re-encoded copy match any other entry
    for key in BANK:
        copy = pdq(EDITS["jpeg q30"](picture(*key)))
        for other, entry in entries.items():
            if other != key:
                assert pdq_distance(copy.hash, entry.hash) > PDQ_MATCH_DISTANCE


def test_featureless_pictures_are_not_matchable() -> None:
    flat = pdq(encode(Image.new("RGB", (640, 480), (128, 128, 128))))
    assert flat.quality < PDQ_QUALITY_THRESHOLD
    assert not flat.matchable
    ramp = pdq(encode(_ramp(np.random.default_rng(3), (640, 480))))
    assert ramp.quality < PDQ_QUALITY_THRESHOLD


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image", b"%PDF-1.7\n", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, bytes(range(256)) * 8],
)
def test_undecodable_bytes_give_none(data: bytes) -> None:
    assert pdq_from_bytes(data) is None


def test_truncated_files_give_none() -> None:
    for fmt in ("PNG", "JPEG", "GIF", "WEBP"):
        whole = encode(picture("shapes", 1, (200, 150)), fmt)
        assert pdq_from_bytes(whole[: len(whole) // 2]) is None, fmt


def test_damaged_files_are_hashed_or_refused_never_crash() -> None:
    rng = np.random.default_rng(11)
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP"):
        whole = bytearray(encode(picture("noise", 1, (96, 64)), fmt))
        for _ in range(25):
            damaged = bytearray(whole)
            for position in rng.integers(0, len(damaged), 4):
                damaged[int(position)] = int(rng.integers(0, 256))
            try:
                result = pdq_from_bytes(bytes(damaged))
            except ImageTooLarge:
                continue  # a damaged header may claim a huge size
            assert result is None or len(result.hash) == 32


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.mark.parametrize("side", [10_000, 100_000])  # above Pillow's limit, and above twice it
def test_decompression_bombs_are_refused_before_decoding(side: int) -> None:
    with pytest.raises(ImageTooLarge) as refused:
        pdq_from_bytes(_png_header_only(side, side))
    assert isinstance(refused.value, TooLarge)
    assert refused.value.status_code == 413


def test_a_lower_pixel_limit_can_be_set() -> None:
    data = encode(picture("shapes", 1, (200, 150)))
    with pytest.raises(ImageTooLarge, match="200×150"):
        pdq_from_bytes(data, max_pixels=10_000)
    assert pdq_from_bytes(data, max_pixels=30_000) is not None


def _pytx_style(data: bytes) -> tuple[str, int]:
    """python-threatexchange's pdq_hasher, step for step: the pixel array as Pillow gives it
    (grey stacked into three channels), pdqhash.compute, the bits as 64 hex digits."""
    array = np.asarray(Image.open(io.BytesIO(data)))
    if array.ndim == 2:
        array = np.concatenate([array[..., np.newaxis]] * 3, axis=2)
    bits, quality = pdqhash.compute(array)
    return f"{int(''.join(str(bit) for bit in bits), 2):064x}", quality


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_hashes_are_identical_to_python_threatexchange(mode: str) -> None:
    image = picture("noise", 2, (400, 300)).convert(mode)
    for data in (encode(image), encode(image.convert("RGB"), "JPEG", quality=85)):
        ours = pdq(data)
        assert (ours.hash_hex, ours.quality) == _pytx_style(data)


def test_alpha_is_ignored_and_grey_modes_agree() -> None:
    base = picture("shapes", 2, (400, 300))
    rgb = pdq(encode(base))
    transparent = base.copy()
    transparent.putalpha(0)
    assert pdq(encode(transparent)) == rgb  # the colour under the alpha counts, as in py-tx
    grey = pdq(encode(base.convert("L")))
    assert pdq(encode(base.convert("LA"))) == grey
    sixteen_bit = Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
    assert sixteen_bit.mode == "I;16"
    assert pdq(encode(sixteen_bit)) == grey  # scaled to 8 bits, not clipped to white


def test_palette_and_cmyk_are_converted_to_colour_first() -> None:
    base = picture("shapes", 2, (400, 300))
    rgb = pdq(encode(base))
    palette = encode(base.quantize(256))
    cmyk = encode(base.convert("CMYK"), "JPEG", quality=95)
    assert pdq_distance(rgb.hash, pdq(palette).hash) <= 4
    assert pdq_distance(rgb.hash, pdq(cmyk).hash) <= 4
    # python-threatexchange would hash palette indices as grey and C, M, Y as R, G, B
    # (the complement: 256 bits away); we follow the C++ and Python references instead.
    for data in (palette, cmyk):
        assert pdq_distance(rgb.hash, bytes.fromhex(_pytx_style(data)[0])) > PDQ_MATCH_DISTANCE
    assert pdq_from_bytes(encode(base.convert("1"))) is not None


def test_exif_orientation_is_not_applied() -> None:
    """Banks hash the stored pixels (C++ reference, py-tx, HMA), so we do too."""
    base = picture("shapes", 1, (400, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    tagged = encode(base, "JPEG", quality=90, exif=exif.tobytes())
    plain = encode(base, "JPEG", quality=90)
    upright = encode(ImageOps.exif_transpose(Image.open(io.BytesIO(tagged))), "JPEG", quality=90)
    assert pdq(tagged) == pdq(plain)
    assert pdq_distance(pdq(tagged).hash, pdq(upright).hash) > PDQ_MATCH_DISTANCE


def test_animated_images_are_hashed_by_their_first_frame() -> None:
    first, second = picture("shapes", 1, (320, 240)), picture("noise", 2, (320, 240))
    animated = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    assert Image.open(io.BytesIO(animated)).n_frames == 2
    result = pdq(animated)
    assert pdq_distance(result.hash, pdq(encode(first)).hash) <= 8
    assert pdq_distance(result.hash, pdq(encode(second)).hash) > PDQ_MATCH_DISTANCE


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (7, 3), (1, 500), (64, 64)])
def test_very_small_images_are_hashed(size: tuple[int, int]) -> None:
    result = pdq(encode(picture("noise", 1, size)))
    assert len(result.hash) == 32
    assert 0 <= result.quality <= 100


def test_hex_form_and_distance() -> None:
    result = pdq(encode(picture("shapes", 1, (200, 150))))
    assert len(result.hash_hex) == 64
    assert result.hash_hex == result.hash_hex.lower()
    assert parse_pdq_hex(result.hash_hex.upper()) == result.hash
    assert pdq_distance(bytes(32), b"\xff" * 32) == 256
    assert pdq_distance(bytes(31) + b"\x05", bytes(32)) == 2
    with pytest.raises(ValueError):
        parse_pdq_hex("abc")
    with pytest.raises(ValueError):
        parse_pdq_hex("g" * 64)
    with pytest.raises(ValueError):
        pdq_distance(b"short", bytes(32))


# ---- vPDQ ------------------------------------------------------------------------------


ZERO = bytes(32)
NEAR_ZERO = b"\xff\xf0" + bytes(30)  # 12 bits from ZERO
FAR = b"\x33" * 32  # 128 bits from ZERO and from ONES
ONES = b"\xff" * 32


def frame(hash_value: bytes, quality: int = 100, number: int = 0) -> VpdqFrame:
    return VpdqFrame(hash=hash_value, quality=quality, frame_number=number, timestamp=float(number))


def test_vpdq_comparison_counts_distinct_good_frames() -> None:
    target = [frame(ZERO, number=0), frame(ZERO, number=1), frame(ONES, number=2),
              frame(FAR, quality=10, number=3)]
    query = [frame(ZERO), frame(NEAR_ZERO), frame(FAR)]
    result = compare_vpdq(query, target)
    # target: distinct good frames ZERO and ONES (FAR is below quality 50); ZERO is found
    assert result.target_match_percent == pytest.approx(50.0)
    # query: ZERO and NEAR_ZERO are found, FAR is not (its twin in the target is too poor)
    assert result.query_match_percent == pytest.approx(200 / 3)
    assert not result.is_match()
    assert result.is_match(target_threshold=50.0)
    assert compare_vpdq(query, target, distance=11).query_match_percent == pytest.approx(100 / 3)
    assert compare_vpdq(query, target, quality=5).target_match_percent == pytest.approx(200 / 3)


def test_vpdq_comparison_with_nothing_to_compare_never_matches() -> None:
    low = [frame(ZERO, quality=10)]
    result = compare_vpdq(low, low)
    assert (result.query_match_percent, result.target_match_percent) == (0.0, 0.0)
    assert not result.is_match(target_threshold=0.0, query_threshold=0.0)


def make_video(directory: Path, name: str, source: str, *extra: str) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "the ffmpeg command is needed to generate test videos (Debian: ffmpeg)"
    path = directory / name
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, *extra,
         "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # ImportError too: an installed vpdq whose FFmpeg libraries are missing cannot load
    pytest.importorskip("vpdq", reason="the vpdq package (built from source with FFmpeg) "
                        "cannot be imported", exc_type=ImportError)
    folder = tmp_path_factory.mktemp("videos")
    bank = make_video(folder, "bank.mp4", "testsrc=duration=6:size=640x480:rate=10")
    return {
        "bank": bank,
        # the same video at half the size, more compressed, in another container
        "copy": make_video(folder, "copy.mkv", f"movie={bank}", "-vf", "scale=320:240",
                           "-crf", "35"),
        "clip": make_video(folder, "clip.mp4", f"movie={bank}", "-ss", "2", "-t", "3"),
        "unrelated": make_video(folder, "other.mp4", "testsrc2=duration=4:size=640x480:rate=10"),
        "still": make_video(folder, "still.mp4", "smptehdbars=duration=3:size=320x240:rate=10"),
    }


def test_vpdq_hashes_one_frame_per_second(videos: dict[str, Path]) -> None:
    frames = vpdq_from_path(videos["bank"])
    assert frames is not None
    assert [f.frame_number for f in frames] == [0, 10, 20, 30, 40, 50]
    assert [f.timestamp for f in frames] == pytest.approx([0, 1, 2, 3, 4, 5])
    assert all(len(f.hash) == 32 and f.quality >= PDQ_QUALITY_THRESHOLD for f in frames)
    every_frame = vpdq_from_path(videos["bank"], seconds_per_hash=0)
    assert every_frame is not None
    assert len(every_frame) == 60


def test_re_encoded_video_matches_and_unrelated_does_not(videos: dict[str, Path]) -> None:
    bank, copy, other = (vpdq_from_path(videos[name]) for name in ("bank", "copy", "unrelated"))
    assert bank and copy and other
    same = compare_vpdq(copy, bank)
    assert same.is_match()
    assert same.target_match_percent == 100.0
    different = compare_vpdq(other, bank)
    assert not different.is_match()
    assert different.target_match_percent == 0.0


def test_a_clip_is_found_inside_the_longer_video(videos: dict[str, Path]) -> None:
    bank, clip = vpdq_from_path(videos["bank"]), vpdq_from_path(videos["clip"])
    assert bank and clip
    result = compare_vpdq(clip, bank)
    assert result.query_match_percent == 100.0  # every second of the clip is in the bank video
    assert result.target_match_percent == pytest.approx(50.0)  # 3 of its 6 seconds
    assert not result.is_match()  # the reference default wants 80 % of the bank video...
    assert result.is_match(target_threshold=0.0, query_threshold=80.0)  # ...py-tx's index rule


def test_a_still_video_counts_its_repeated_frame_once(videos: dict[str, Path]) -> None:
    frames = vpdq_from_path(videos["still"])
    assert frames is not None
    assert len(frames) == 3
    assert len({f.hash for f in frames}) == 1
    assert compare_vpdq(frames, frames[:1]).query_match_percent == 100.0


def test_vpdq_from_chunks_never_writes_a_file(videos: dict[str, Path]) -> None:
    data = videos["bank"].read_bytes()
    chunks = (data[start:start + 7000] for start in range(0, len(data), 7000))
    assert vpdq_from_chunks(chunks) == vpdq_from_path(videos["bank"])


def test_not_a_video(videos: dict[str, Path], tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    assert vpdq_from_path(text) is None
    assert vpdq_from_chunks([b"\0" * 1000]) is None
    with pytest.raises(FileNotFoundError):
        vpdq_from_path(tmp_path / "missing.mp4")
