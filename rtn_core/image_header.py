"""Image file headers: pixel size and EXIF orientation, read without decoding the pixels.

The size lets :func:`rtn_core.images.load_image` refuse an image too big to decode before
allocating it (a 1.7 MB PNG of zeros can hold 600 million pixels); the orientation tells how a
phone photo is meant to be shown, which OpenCV ignores when it keeps 16-bit and alpha data.
JPEG, PNG, BMP, WebP and TIFF are read; for other files both stay unknown.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

ORIENTATION_TAG, WIDTH_TAG, HEIGHT_TAG = 0x0112, 0x0100, 0x0101
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class Header:
    size: tuple[int, int] | None = None  # (width, height) as stored, before orientation
    orientation: int = 1  # EXIF: 1 as stored, 6 turn 90 degrees clockwise to show, ...

    @property
    def shown_size(self) -> tuple[int, int] | None:
        """(width, height) as viewers show the image: orientations 5 to 8 swap the sides."""
        if self.size is None:
            return None
        return self.size[::-1] if self.orientation in (5, 6, 7, 8) else self.size


def read_header(path: str) -> Header:
    """The header of the image file at ``path`` (unknown parts stay None / 1)."""
    with open(path, "rb") as stream:
        start = stream.read(32)
        if start.startswith(b"\xff\xd8"):
            return _jpeg(stream)
        stream.seek(0)
        data = stream.read(1 << 20)
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(data)
        if data.startswith(b"BM") and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return Header((width, abs(height)))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            tags = _tiff_tags(data)
            size = (tags[WIDTH_TAG], tags[HEIGHT_TAG]) if WIDTH_TAG in tags and HEIGHT_TAG in tags else None
            return Header(size, _orientation(tags))
    except (struct.error, IndexError, ValueError):
        pass  # a damaged header: the decoder will say what is wrong
    return Header()


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``pixels`` (H x W [x C]) turned and mirrored as EXIF ``orientation`` says they are shown."""
    if orientation in (5, 6, 7, 8):
        pixels = pixels.swapaxes(0, 1)  # 5 is the transpose; the others add a flip
    flips = {2: (slice(None), slice(None, None, -1)), 3: (slice(None, None, -1), slice(None, None, -1)),
             4: (slice(None, None, -1),), 6: (slice(None), slice(None, None, -1)),
             7: (slice(None, None, -1), slice(None, None, -1)), 8: (slice(None, None, -1),)}
    return pixels[flips[orientation]] if orientation in flips else pixels


def _jpeg(stream) -> Header:
    """Walk the JPEG's segments (seeking past each) up to the frame header."""
    stream.seek(2)
    size, orientation = None, 1
    while size is None:
        marker = stream.read(4)
        if len(marker) < 4 or marker[0] != 0xFF:
            break
        kind, length = marker[1], struct.unpack(">H", marker[2:])[0]
        if kind == 0xFF:  # fill byte before a marker
            stream.seek(-3, 1)
            continue
        if length < 2:
            break
        if kind == 0xE1:
            segment = stream.read(length - 2)
            if segment.startswith(b"Exif\x00\x00"):
                try:
                    orientation = _orientation(_tiff_tags(segment[6:]))
                except (struct.error, IndexError, ValueError):
                    pass
            continue
        if kind in _JPEG_FRAMES:
            frame = stream.read(5)
            if len(frame) == 5:
                height, width = struct.unpack(">HH", frame[1:5])
                size = (width, height)
            break
        stream.seek(length - 2, 1)
    return Header(size, orientation)


def _png(data: bytes) -> Header:
    width, height = struct.unpack(">II", data[16:24])
    orientation, offset = 1, 8
    while offset + 8 <= len(data):  # an eXIf chunk comes before the image data
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"eXIf":
            orientation = _orientation(_tiff_tags(data[offset + 8:offset + 8 + length]))
        if kind == b"IDAT":
            break
        offset += 12 + length
    return Header((width, height), orientation)


def _webp(data: bytes) -> Header:
    size, orientation, offset = None, 1, 12
    while offset + 8 <= len(data):
        kind, length = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        body = data[offset + 8:offset + 8 + length]
        if kind == b"VP8X":
            size = (1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little"))
        elif kind == b"VP8 " and size is None:
            width, height = struct.unpack("<HH", body[6:10])
            size = (width & 0x3FFF, height & 0x3FFF)
        elif kind == b"VP8L" and size is None:
            bits = int.from_bytes(body[1:5], "little")
            size = (1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
        elif kind == b"EXIF":
            orientation = _orientation(_tiff_tags(body[6:] if body.startswith(b"Exif") else body))
        offset += 8 + length + (length & 1)
    return Header(size, orientation)


def _tiff_tags(data: bytes) -> dict[int, int]:
    """Integer tags of a TIFF structure's first directory (EXIF is one), by tag number."""
    order = {b"II": "<", b"MM": ">"}[data[:2]]
    (first,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[first:first + 2])
    tags = {}
    for index in range(min(count, 512)):
        entry = data[first + 2 + 12 * index:first + 14 + 12 * index]
        tag, kind, _ = struct.unpack(order + "HHI", entry[:8])
        if kind == 3:
            tags[tag] = struct.unpack(order + "H", entry[8:10])[0]
        elif kind == 4:
            tags[tag] = struct.unpack(order + "I", entry[8:12])[0]
    return tags


def _orientation(tags: dict[int, int]) -> int:
    value = tags.get(ORIENTATION_TAG, 1)
    return value if 1 <= value <= 8 else 1
