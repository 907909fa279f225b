"""How grey films are resized, in one place, each rule with its rounding stated.

Every rule shrinks with an area (box) average and enlarges with bilinear interpolation, pixel
centres aligned (``align_corners=False``, as Pillow's). The project's sides are powers of two,
so shrinking averages whole f x f blocks; at other ratios torch's ``area`` (adaptive average
pooling: whole pixels) and Pillow's box (fractional pixel weights) differ widely. The rules
differ in where and how they round (``tests/test_resize.py`` measures each against Pillow):

- ``resize_to``: float [0, 1], not rounded: what the classifier and the scorers read.
- ``resize_uint8_as_classifier`` (numpy): ``resize_to`` scaled back by 255 and rounded to the
  nearest level; an exact half goes either way (float32 error in /255 and x255, then ties to
  even). Films stored at the classifier's size this way give it its own input to within 0.5/255.
- ``resize_uint8_half_up`` (torch): the exact mean on the 0..255 scale, halves rounded up.
  It differs from ``resize_uint8_as_classifier`` only at exact halves, by 1.
- ``pillow_resize`` / ``pillow_box``: Pillow's ``Image.resize`` (BOX down and BILINEAR up, or BOX
  always). On 8-bit films Pillow rounds twice, halves up: after the horizontal pass and after the
  vertical one, so it differs from ``resize_uint8_half_up`` by at most 1 (on about a third of
  the pixels of noise; not at all where the horizontal pass is exact, e.g. pairs of equal
  columns). On 32-bit float (``"F"``) films it does not round.

torch is imported only by the rules that use it, so the ``prepare`` stage's workers stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


def resize_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 1, r, r) → float [0, 1] at ``size`` (area when shrinking, bilinear when enlarging);
    float input is taken as already in [0, 1]. Not rounded; unchanged (scaled) at ``size``."""
    import torch
    from torch.nn import functional as F

    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    if x.shape[-1] == size:
        return x
    if x.shape[-1] > size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def resize_uint8_as_classifier(images: np.ndarray, size: int) -> np.ndarray:
    """(N, r, r) uint8 → (N, size, size) uint8 as the classifier resizes (``resize_to``), times 255,
    rounded to nearest (``torch.round``; an exact half may go either way after float32 error);
    ``images`` itself when already at ``size``."""
    import torch

    if images.shape[-1] == size:
        return images
    x = resize_to(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1), size)
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()


def resize_uint8_half_up(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, r, r) images at ``size`` x ``size`` (area average down, bilinear up), computed on the
    0..255 scale and rounded once, halves up (``floor(x + 0.5)``); ``images`` itself when already
    at ``size`` or empty."""
    import torch

    if images.shape[-1] == size or not len(images):
        return images
    x = images[:, None].float()
    mode = "area" if images.shape[-1] > size else "bilinear"
    x = torch.nn.functional.interpolate(x, size=(size, size), mode=mode,
                                        **({} if mode == "area" else {"align_corners": False}))
    return (x + 0.5).floor_().clamp_(0, 255).to(torch.uint8)[:, 0]


def pillow_resize(image: Image.Image, size: int) -> Image.Image:
    """``image`` at ``size`` x ``size`` with Pillow: box filter when shrinking, bilinear when enlarging
    (8-bit: rounded after each pass, halves up)."""
    shrink = image.size[0] > size
    return image.resize((size, size), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)


def pillow_box(image: Image.Image, size: int) -> Image.Image:
    """``image`` at ``size`` x ``size`` with Pillow's box filter, shrinking or enlarging (8-bit: rounded
    after each pass, halves up; ``"F"`` images not rounded)."""
    return image.resize((size, size), Image.Resampling.BOX)
