# SPDX-License-Identifier: MIT
"""Builders of the bad-input corpus: image files of every awkward kind, and broken index files.

Each image case carries what an independent conversion says its RGB pixels are (numpy arithmetic
on the samples that were encoded, or another decoder), or, for an unreadable one, the message
:class:`~solo_diversity.data.UnreadableImage` must carry. Tests anywhere in the suite reuse them:
``image_corpus()`` for the cases, ``write_corpus()`` to lay them out in a class folder tree next to
good images, and the ``*_index`` builders for bad index files.
"""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

MAX_PIXELS = 89_478_485  # the decoder's limit, written out rather than imported


@dataclass(frozen=True)
class ImageCase:
    """One corpus file.

    Attributes:
        kind: the corpus kind it belongs to (one test each), e.g. ``"16-bit PNG"``.
        name: its file name; the extension may lie on purpose.
        data: the file's bytes.
        expected: (H, W, 3) uint8 RGB from an independent conversion; None when unreadable.
        tolerance: largest accepted per-pixel difference from ``expected``.
        message: regex the unreadable-image message must match in full (None when readable).

    """

    kind: str
    name: str
    data: bytes
    expected: np.ndarray | None = None
    tolerance: int = 0
    message: str | None = None

    @property
    def readable(self) -> bool:
        return self.expected is not None


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def noise(height: int, width: int, channels: int, seed: int) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _png_chunk(tag: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(tag + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, pixels: bytes) -> bytes:
    """A PNG written by hand (no Pillow): one IHDR, one IDAT of filter-0 rows, IEND.

    ``pixels`` holds the rows back to back, big-endian samples; empty pixels give a header-only
    file (what a decompression bomb needs to declare its size).
    """
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    row = len(pixels) // height if pixels else 0
    raw = b"".join(b"\x00" + pixels[r * row : (r + 1) * row] for r in range(height if row else 0))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 header is rewritten to declare ``width`` x ``height``."""
    data = bytearray(encode(Image.fromarray(noise(8, 8, 3, 0)), "JPEG", quality=90))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def exif_rotated_jpeg(pixels: np.ndarray) -> bytes:
    """A JPEG of ``pixels`` whose EXIF says orientation 6 (display rotated 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())


def independent_jpeg(data: bytes) -> np.ndarray:
    """libjpeg-turbo through torchvision (not Pillow), EXIF ignored: (H, W, 3) uint8."""
    tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return decode_jpeg(tensor, mode=ImageReadMode.RGB).permute(1, 2, 0).numpy()


def on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite (H, W, 3) colours with (H, W) alpha over white, rounded."""
    a = alpha[..., None].astype(np.float64) / 255.0
    return np.round(rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)


def grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def _unreadable() -> list[ImageCase]:
    jpeg = encode(Image.fromarray(noise(32, 48, 3, 1)), "JPEG", quality=90)
    png = bytearray(encode(Image.fromarray(noise(32, 32, 3, 2)), "PNG"))
    png[60:200] = bytes(140)  # zeros in the middle of the compressed stream
    header = bytearray(jpeg)
    header[2:40] = bytes(38)  # the APP0/DQT markers after SOI are gone
    not_image = "not an image in a format Pillow reads"
    return [
        ImageCase("corrupt", "corrupt.png", bytes(png),
                  message="OSError: broken data stream when reading image file"),
        ImageCase("corrupt", "corrupt_header.jpg", bytes(header), message=not_image),
        ImageCase("truncated", "truncated.jpg", jpeg[: len(jpeg) // 2],
                  message=r"OSError: image file is truncated \(\d+ bytes not processed\)"),
        ImageCase("empty", "empty.jpg", b"", message="zero bytes"),
        ImageCase("not an image", "text.jpg", b"a text file with an image name\n",
                  message=not_image),
        ImageCase("huge header", "huge.png", raw_png(100_000, 100_000, 8, 2, b""),
                  message=rf"10000000000 pixels exceeds the limit of {MAX_PIXELS} "
                  r"\(a decompression bomb is never decoded\)"),
        ImageCase("huge header", "huge.jpg", jpeg_with_size(10_000, 10_000),
                  message=rf"10000x10000 = 100000000 pixels exceeds the limit of {MAX_PIXELS} "
                  r"\(a decompression bomb is never decoded\)"),
    ]  # fmt: skip


def _palette_cases() -> list[ImageCase]:
    palette = np.array([[0, 0, 255], [0, 255, 0], [200, 30, 90], [255, 255, 0]], dtype=np.uint8)
    indices = noise(6, 5, 1, 3) % 4
    img = Image.fromarray(indices, "P")
    img.putpalette(palette.ravel().tolist())
    alpha = np.array([0, 255, 128, 255], dtype=np.uint8)  # index 0 clear, index 2 half
    return [
        ImageCase("palette", "palette.png", encode(img, "PNG"), palette[indices]),
        ImageCase(
            "palette",
            "palette_alpha.png",
            encode(img, "PNG", transparency=alpha.tobytes()),
            on_white(palette[indices], alpha[indices]),
            tolerance=1,
        ),
    ]


def _readable() -> list[ImageCase]:
    rgb = noise(10, 12, 3, 4)
    jpeg = encode(Image.fromarray(noise(16, 20, 3, 5)), "JPEG", quality=90)
    cmyk = noise(8, 8, 4, 6)
    cmyk_jpeg = encode(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=100)
    # JPEG is lossy: take the stored CMYK samples, then the standard conversion.
    stored = np.asarray(Image.open(io.BytesIO(cmyk_jpeg))).astype(np.float64)
    cmyk_rgb = np.round((255 - stored[..., :3]) * (255 - stored[..., 3:]) / 255).astype(np.uint8)
    grey16 = (np.random.default_rng(7).integers(0, 65536, size=(5, 7))).astype(">u2")
    rgb16 = (np.random.default_rng(8).integers(0, 65536, size=(4, 6, 3))).astype(">u2")
    rgba, la = noise(6, 7, 4, 9), noise(5, 4, 2, 10)
    portrait = noise(24, 16, 3, 11)  # stored 16 wide, 24 high; displayed rotated it would be 24x16
    exif = exif_rotated_jpeg(portrait)
    return [
        ImageCase("wrong extension", "png_named.jpg", encode(Image.fromarray(rgb), "PNG"), rgb),
        ImageCase("wrong extension", "jpeg_named.png", jpeg, independent_jpeg(jpeg), tolerance=1),
        ImageCase("CMYK", "cmyk.jpg", cmyk_jpeg, cmyk_rgb, tolerance=1),
        # 16-bit grey: v / 257 rounded (not clipped to 255, not the low byte).
        ImageCase(
            "16-bit PNG",
            "grey16.png",
            raw_png(7, 5, 16, 0, grey16.tobytes()),
            grey_to_rgb(np.round(grey16.astype(np.float64) / 257)),
        ),
        # 16-bit RGB: Pillow keeps the high byte, within one level of v / 257.
        ImageCase(
            "16-bit PNG",
            "rgb16.png",
            raw_png(6, 4, 16, 2, rgb16.tobytes()),
            (rgb16.astype(np.int64) >> 8).astype(np.uint8),
        ),
        *_palette_cases(),
        ImageCase(
            "alpha",
            "rgba.png",
            encode(Image.fromarray(rgba, "RGBA"), "PNG"),
            on_white(rgba[..., :3], rgba[..., 3]),
            tolerance=1,
        ),
        ImageCase(
            "alpha",
            "la.png",
            encode(Image.fromarray(la, "LA"), "PNG"),
            grey_to_rgb(on_white(la[..., :1], la[..., 1])[..., 0]),
            tolerance=1,
        ),
        ImageCase(
            "1x1",
            "one_pixel.png",
            encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"),
            np.array([[[10, 200, 30]]], dtype=np.uint8),
        ),
        # EXIF orientation is not applied (solo-learn's PIL loader ignores it): stored pixels.
        ImageCase("EXIF-rotated", "exif_rotated.jpg", exif, independent_jpeg(exif), tolerance=1),
    ]


def image_corpus() -> list[ImageCase]:
    """Every corpus file: the unreadable kinds first, then the readable ones."""
    return _unreadable() + _readable()


KINDS = tuple(dict.fromkeys(case.kind for case in image_corpus()))


def cases_of(kind: str) -> list[ImageCase]:
    return [case for case in image_corpus() if case.kind == kind]


def write_corpus(root: Path, classes: int = 10) -> dict[str, ImageCase]:
    """Write every corpus file under ``root/c<k>/`` (round robin over ``classes`` folders).

    Returns:
        The relative path (``c<k>/<name>``) of each file -> its case.

    """
    written = {}
    for i, case in enumerate(image_corpus()):
        folder = root / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / case.name).write_bytes(case.data)
        written[f"c{i % classes}/{case.name}"] = case
    return written


# --- bad index files -----------------------------------------------------------------------


def foreign_hdf5(path: Path) -> Path:
    """An HDF5 file not made by solo-diversity (a dataset, no format attributes)."""
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(3)
        f.attrs["creator"] = "someone else"
    return path


def with_format_version(good: Path, path: Path, version: object) -> Path:
    """A copy of ``good`` whose ``format_version`` attribute says ``version``."""
    shutil.copy(good, path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = version
    return path


def truncated_copy(good: Path, path: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` share of ``good``'s bytes (an interrupted copy)."""
    data = good.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def not_hdf5(path: Path) -> Path:
    """A text file named like an index."""
    path.write_text("path,label\na.jpg,0\n" * 50)
    return path
