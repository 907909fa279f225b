"""Every image mode becomes one 8-bit grey channel; the pyramid is an exact area average."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cxrsynth.data.greyscale import area_pyramid, square_pad, to_grey

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (16, 16), dtype=np.uint8)


def test_l_as_is():
    out, how = to_grey(Image.fromarray(GREY, "L"))
    assert how == "L" and np.array_equal(out, GREY)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA"])
def test_equal_channels_take_the_channel(mode):
    out, how = to_grey(Image.fromarray(GREY, "L").convert(mode))
    assert how == "equal-channels" and np.array_equal(out, GREY)


def test_true_colour_to_luminance():
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    out, how = to_grey(Image.fromarray(rgb, "RGB"))
    assert how == "luminance" and out[0, 0] == 76  # ITU-R 601: 0.299 * 255


def test_palette_converted():
    out, how = to_grey(Image.fromarray(GREY, "L").convert("P"))
    assert how == "palette" and np.array_equal(out, GREY)


def test_16bit_png_rescaled(tmp_path):
    data = np.array([[1000, 2000], [3000, 5000]], dtype=np.uint16)
    Image.fromarray(data).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        assert image.mode.startswith("I")
        out, how = to_grey(image)
    assert how == "rescaled" and out.tolist() == [[0, 64], [128, 255]]


def test_square_pad_keeps_everything():
    out = square_pad(np.ones((2, 4), dtype=np.uint8))
    assert out.shape == (4, 4) and out.sum() == 8 and out[0].sum() == 0


def test_pyramid_levels_are_area_averages():
    image = RNG.integers(0, 256, (64, 64)).astype(np.uint8)
    pyramid = area_pyramid(image, 16, 4)
    assert sorted(pyramid) == [4, 8, 16]
    expected16 = image.reshape(16, 4, 16, 4).mean(axis=(1, 3))
    expected4 = image.reshape(4, 16, 4, 16).mean(axis=(1, 3))
    assert np.abs(pyramid[16].astype(float) - expected16).max() <= 0.5 + 1e-4
    assert np.abs(pyramid[4].astype(float) - expected4).max() <= 0.5 + 1e-4
    assert all(level.dtype == np.uint8 for level in pyramid.values())
