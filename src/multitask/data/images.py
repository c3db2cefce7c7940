"""Image files as RGB uint8 arrays: every mode PIL reads converted on a stated scale, broken files named.

Conversion rules (``to_rgb``):

- ``RGB``, ``L``, ``1``, ``P`` without transparency, ``YCbCr``: PIL's own conversion (exact for these);
- 16-bit grayscale (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``) and 32-bit integer ``I``: the 0-65535 range mapped
  onto 0-255 (value × 255 / 65535, rounded; ``I`` values outside 0-65535 are clipped first) — PIL itself would
  clip at 255, which saturates almost every pixel of a 16-bit image;
- float ``F``: the 0-1 range mapped onto 0-255 (clipped; NaN is 0);
- ``CMYK``: R = (255 - C)(255 - K) / 255, and so on;
- modes with alpha (``RGBA``, ``LA``, ``PA``, ``P`` with transparency, ``RGBa``, ``La``): composited over white.

Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) is enforced for every file, as a LabelError
naming the file and the declared size.

>>> from PIL import Image
>>> to_rgb(Image.fromarray(np.array([[0, 257, 65535]], dtype=np.uint16)))[0, :, 0].tolist()
[0, 1, 255]
>>> to_rgb(Image.new("LA", (1, 1), (0, 0)))[0, 0].tolist()
[255, 255, 255]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from multitask.errors import LabelError

SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError, Image.DecompressionBombError)


def _gray(values: np.ndarray) -> np.ndarray:
    return np.repeat(values.astype(np.uint8)[..., None], 3, axis=2)


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.uint32)[..., None]
    return ((rgb.astype(np.uint32) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def to_rgb(image: Image.Image) -> np.ndarray:
    """The image as an (H, W, 3) uint8 array (rules in the module docstring)."""
    mode = image.mode
    if mode in SIXTEEN_BIT or mode == "I":
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        return _gray((values * 255 + 32767) // 65535)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        return _gray(np.round(np.clip(values, 0.0, 1.0) * 255))
    if mode == "CMYK":
        cmyk = np.asarray(image).astype(np.uint32)
        keep = 255 - cmyk[..., 3:4]
        return (((255 - cmyk[..., :3]) * keep + 127) // 255).astype(np.uint8)
    if mode == "P" and "transparency" in image.info or mode in _ALPHA:
        rgba = np.asarray(image.convert("RGBA"))
        return _over_white(rgba[..., :3], rgba[..., 3])
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    try:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except ValueError as error:
        raise LabelError(f"image mode {mode} cannot be converted to RGB ({error})",
                         file=getattr(image, "filename", None) or None) from None


def _check_size(image: Image.Image, path: str | Path) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit and width * height > limit:
        raise LabelError(f"image declares {width}x{height} pixels, over Pillow's decompression-bomb limit of "
                         f"{limit} (PIL.Image.MAX_IMAGE_PIXELS; raise it only for files you trust)", file=path)


def open_image(path: str | Path) -> Image.Image:
    """Open an image file (header only), refusing decompression bombs with the file named.

    (Pillow also warns about images between its limit and twice it; callers that check many files at once
    silence that warning around the whole check, since the LabelError says it.)
    """
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as error:
        raise LabelError(f"image over Pillow's decompression-bomb limit ({error})", file=path) from None
    _check_size(image, path)
    return image


def image_problem(path: str | Path, decode: bool = False) -> str | None:
    """Why an image file cannot be used (None when it can): missing, unreadable header, bomb, or (`decode`)
    broken data.

    >>> image_problem("/no/such.png")
    'image file not found'
    """
    if not Path(path).is_file():
        return "image file not found"
    try:
        with open_image(path) as image:
            if decode:
                image.load()
    except LabelError as error:
        return error.reason
    except DECODE_ERRORS as error:
        what = "image data broken" if decode else "image file unreadable"
        return f"{what} ({error.__class__.__name__}: {error})" if str(error) else f"{what} ({error.__class__.__name__})"
    return None


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8; LabelError naming the file when it cannot be decoded."""
    try:
        with open_image(path) as image:
            image.load()
            return to_rgb(image)
    except LabelError:
        raise
    except DECODE_ERRORS as error:
        raise LabelError(f"cannot decode image ({error.__class__.__name__}: {error})", file=path) from None
