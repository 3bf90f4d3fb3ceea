"""Image loading: the one home for decoding files into RGB uint8 arrays.

Any file OpenCV decodes is accepted: grayscale, RGBA, 16-bit and float images become RGB
uint8; very large images are downscaled for work while the original size is kept, so every
public coordinate still refers to the original pixels. An image is turned as its EXIF
orientation says (as every viewer and labelme show it), so "original pixels" are the pixels as
shown. Images with more than :data:`MAX_PIXELS` are refused from their header, before decoding.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from .image_header import orient, read_header

MAX_WORKING_SIDE = 4096  # larger images are downscaled to this for display and matching
MAX_PIXELS = 250_000_000  # a 200-megapixel phone photo passes; decoding more would need gigabytes


class ImageError(ValueError):
    """An image that cannot be used, with a message naming the file and the problem."""


@dataclass(frozen=True)
class LoadedImage:
    """Decoded pixels (possibly downscaled) plus the size of the image on disk."""

    pixels: np.ndarray  # H x W x 3 uint8 RGB
    original_size: tuple[int, int]  # (width, height) of the file's image
    path: str = ""

    @property
    def scale(self) -> float:
        """Original pixels per working pixel (1.0 unless the image was downscaled)."""
        return self.original_size[0] / self.pixels.shape[1]


def load_image(path, max_side: int = MAX_WORKING_SIDE) -> LoadedImage:
    """Read an image file; raise ImageError with a clear reason when it cannot be used."""
    path = os.fspath(path)
    name = os.path.basename(path) or path
    if not os.path.exists(path):
        raise ImageError(f"{name}: no such file")
    if os.path.isdir(path):
        raise ImageError(f"{name}: is a folder, not an image")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{name}: the file is empty")
    try:
        header = read_header(path)
        if header.size and header.size[0] * header.size[1] > MAX_PIXELS:
            width, height = header.size
            raise ImageError(f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, more than the "
                             f"{MAX_PIXELS / 1e6:.0f} this app decodes")
        decoded = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"{name}: cannot be decoded ({exc.msg.strip() or 'OpenCV error'})") from None
    except MemoryError:
        raise ImageError(f"{name}: too large to decode in the memory available") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if decoded is None:
        raise ImageError(f"{name}: not an image OpenCV can decode, or corrupt")
    return as_loaded(orient(decoded, header.orientation), path, channels="BGR", max_side=max_side)


def looks_like_image(path) -> bool:
    """Whether the file at ``path`` starts like an image OpenCV decodes (its signature, or a header
    :func:`read_header` knows): cheap enough for a list of many files; :func:`load_image` still
    checks the rest when it decodes."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return False
    try:
        return bool(cv2.haveImageReader(path)) or read_header(path).size is not None
    except (cv2.error, OSError):
        return False


def as_loaded(array: np.ndarray, path: str = "", channels: str = "RGB",
              max_side: int = MAX_WORKING_SIDE) -> LoadedImage:
    """Wrap an in-memory image (any dtype, 1-4 channels, ``channels`` order) as a LoadedImage;
    a file path is read with :func:`load_image`."""
    if isinstance(array, (str, os.PathLike)):
        return load_image(array, max_side)
    given, array = array, np.asarray(array)
    if array.ndim not in (2, 3):
        raise ImageError(f"expected an image (an H x W or H x W x C array, or a file path), got "
                         f"{type(given).__name__} of shape {array.shape}")
    height, width = array.shape[:2]
    if max(width, height) > max_side and array.size:
        factor = max_side / max(width, height)
        new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        if array.dtype in (np.uint8, np.uint16, np.float32) and array.ndim in (2, 3):
            array = cv2.resize(np.ascontiguousarray(array), new_size, interpolation=cv2.INTER_AREA)  # before the copies
        else:
            array = cv2.resize(to_rgb8(array, channels), new_size, interpolation=cv2.INTER_AREA)
            channels = "RGB"
    return LoadedImage(np.ascontiguousarray(to_rgb8(array, channels)), (width, height), path)


def to_rgb8(array: np.ndarray, channels: str = "RGB") -> np.ndarray:
    """Any 2-D or 3-D image array -> H x W x 3 uint8 RGB (alpha composited on white)."""
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ImageError(f"unsupported image shape {image.shape}")
    if image.size == 0:
        raise ImageError("the image has no pixels")
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:  # the common case: no float copy
        return np.ascontiguousarray(image[:, :, ::-1]) if channels == "BGR" else image.copy()
    image = _to_unit_float(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4]
        image = image[:, :, :3] * alpha + (1.0 - alpha)
    if channels == "BGR":
        image = image[:, :, ::-1]
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _to_unit_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        finite = np.nan_to_num(image.astype(np.float32))
        return np.clip(finite, 0.0, 1.0)
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    info = np.iinfo(image.dtype)
    return (image.astype(np.float32) - info.min) / float(info.max - info.min)
