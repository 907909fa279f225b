"""Decode any PNG the archive may hold into one 8-bit grey channel."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cxrsynth.resize import pillow_box


def to_grey(image: Image.Image) -> tuple[np.ndarray, str]:
    """Return (uint8 H x W array, how) for an opened Pillow image.

    - ``L``: as is.
    - ``LA`` / ``RGB`` / ``RGBA`` whose colour channels are equal: that channel (alpha dropped),
      which is what NIH's RGBA files hold.
    - true colour: ITU-R 601 luminance.
    - palette (``P``), bilevel (``1``), ``CMYK``...: converted through RGB as above.
    - 16-bit and float (``I;16*``, ``I``, ``F``): stretched linearly from the image's own
      minimum and maximum to 0..255 (the usual window for x-rays stored with more bits).

    ``how`` names the path taken ('L', 'equal-channels', 'luminance', 'palette', 'rescaled').
    """
    mode = image.mode
    if mode == "L":
        return np.asarray(image, dtype=np.uint8), "L"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        data = np.asarray(image, dtype=np.float64)
        lo, hi = float(data.min()), float(data.max())
        scaled = (data - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(data)
        return np.rint(scaled).astype(np.uint8), "rescaled"
    how = "palette" if mode in ("P", "PA", "1") else None
    if mode == "LA":
        return np.asarray(image, dtype=np.uint8)[..., 0].copy(), "equal-channels"
    if mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode or "transparency" in image.info else "RGB")
    rgb = np.asarray(image, dtype=np.uint8)[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0].copy(), how or "equal-channels"
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.uint8), how or "luminance"


def square_pad(grey: np.ndarray) -> np.ndarray:
    """Pad a non-square image with black, centred, so nothing is cropped away."""
    h, w = grey.shape
    if h == w:
        return grey
    side = max(h, w)
    out = np.zeros((side, side), dtype=grey.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = grey
    return out


def area_pyramid(grey: np.ndarray, size: int, min_size: int = 4) -> dict[int, np.ndarray]:
    """Resize to ``size`` with an area (box) filter, then halve by 2x2 means down to ``min_size``.

    Levels are computed in float from the level above and rounded once each, so every level
    is the exact area average of the original pixels (up to one rounding).
    """
    top = pillow_box(Image.fromarray(square_pad(grey)).convert("F"), size)
    level = np.asarray(top, dtype=np.float32)
    pyramid = {}
    res = size
    while res >= min_size:
        pyramid[res] = np.clip(np.rint(level), 0, 255).astype(np.uint8)
        if res == min_size:
            break
        level = level.reshape(res // 2, 2, res // 2, 2).mean(axis=(1, 3))
        res //= 2
    return pyramid
