"""The resize rules against Pillow's ``Image.resize``: which filter, where they agree bit for bit, by how much
they differ elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cxrsynth.resize import (
    pillow_box,
    pillow_resize,
    resize_to,
    resize_uint8_as_classifier,
    resize_uint8_half_up,
)

RNG = np.random.default_rng(0)
NOISE = RNG.integers(0, 256, (64, 16, 16), dtype=np.uint8)  # the worst case for rounding


def pillow(images: np.ndarray, size: int, resample) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), resample)) for im in images])


def half_up(images: np.ndarray, size: int) -> np.ndarray:
    return resize_uint8_half_up(torch.from_numpy(images), size).numpy()


def block_sums(images: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    f = images.shape[-1] // size
    return images.reshape(len(images), size, f, size, f).astype(np.int64).sum(axis=(2, 4)), f * f


def test_unchanged_at_the_same_size():
    assert resize_uint8_as_classifier(NOISE, 16) is NOISE
    tensor = torch.from_numpy(NOISE)
    assert resize_uint8_half_up(tensor, 16) is tensor
    empty = torch.zeros((0, 16, 16), dtype=torch.uint8)
    assert resize_uint8_half_up(empty, 8) is empty
    assert torch.equal(resize_to(tensor[:, None], 16), tensor[:, None].float() / 255.0)


@pytest.mark.parametrize("size", [8, 4, 2])
def test_half_up_is_the_block_mean_rounded_once_halves_up(size):
    sums, n = block_sums(NOISE, size)
    out = half_up(NOISE, size)
    assert out.dtype == np.uint8 and out.shape == (len(NOISE), size, size)
    assert (out == (2 * sums + n) // (2 * n)).all()  # floor(mean + 1/2), exactly


@pytest.mark.parametrize("size", [8, 4])
def test_as_classifier_differs_from_half_up_only_at_exact_halves(size):
    sums, n = block_sums(NOISE, size)
    ties = 2 * (sums % n) == n
    ours = resize_uint8_as_classifier(NOISE, size).astype(int)
    diff = ours - half_up(NOISE, size).astype(int)
    assert ties.any() and (diff[~ties] == 0).all() and set(np.unique(diff[ties])) <= {-1, 0}
    # and it is the classifier's own float input, rounded
    seen = resize_to(torch.from_numpy(NOISE)[:, None], size)[:, 0].numpy()
    assert np.abs(ours / 255.0 - seen).max() <= 0.5 / 255 + 1e-6


def test_as_classifier_enlarges_bilinearly_within_half_a_level():
    big = resize_uint8_as_classifier(NOISE[:4], 64)
    seen = resize_to(torch.from_numpy(NOISE[:4])[:, None], 64)[:, 0].numpy()
    assert big.shape == (4, 64, 64) and np.abs(big / 255.0 - seen).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("size", [8, 4, 2])
def test_pillow_box_rounds_after_each_pass_so_it_is_within_one_level(size):
    f = 16 // size
    ours = pillow(NOISE, size, Image.Resampling.BOX).astype(int)
    # Pillow on 8-bit films: the horizontal pass's means rounded half up, then the vertical pass's
    rows = (2 * NOISE.reshape(len(NOISE), 16, size, f).astype(int).sum(-1) + f) // (2 * f)
    model = (2 * rows.reshape(len(NOISE), size, f, size).sum(2) + f) // (2 * f)
    assert (ours == model).all()
    diff = np.abs(ours - half_up(NOISE, size).astype(int))
    assert diff.max() == 1 and 0.05 < (diff > 0).mean() < 0.6


def test_pillow_box_and_half_up_agree_where_the_horizontal_pass_is_exact():
    pairs = np.repeat(NOISE[:, :, ::2], 2, axis=2)  # every pair of columns equal
    assert (pillow(pairs, 8, Image.Resampling.BOX) == half_up(pairs, 8)).all()
    blocks = np.kron(NOISE[:, :4, :4], np.ones((4, 4), np.uint8))  # constant 4x4 blocks: every rule is exact
    for size in (8, 4):
        want = np.kron(NOISE[:, :4, :4], np.ones((size // 4, size // 4), np.uint8))
        assert (pillow(blocks, size, Image.Resampling.BOX) == want).all()
        assert (half_up(blocks, size) == want).all() and (resize_uint8_as_classifier(blocks, size) == want).all()


@pytest.mark.parametrize("size", [32, 64])
def test_bilinear_enlarging_matches_pillow_within_one_level(size):
    ours = half_up(NOISE, size).astype(int)
    theirs = pillow(NOISE, size, Image.Resampling.BILINEAR).astype(int)
    assert np.abs(ours - theirs).max() == 1  # the same weights; Pillow rounds after each pass
    rows = np.repeat(NOISE[:, :, :1], 16, axis=2)  # constant rows: Pillow's first pass is exact
    assert (half_up(rows, size) == pillow(rows, size, Image.Resampling.BILINEAR)).all()


def test_other_ratios_are_not_pillows_box():
    # torch's area averages whole pixels (adaptive pooling), Pillow's box weighs fractions of them
    diff = np.abs(half_up(NOISE, 12).astype(int) - pillow(NOISE, 12, Image.Resampling.BOX).astype(int))
    assert diff.max() > 10


def test_pillow_helpers_are_the_filters_they_name():
    image = Image.fromarray(NOISE[0])
    assert np.array_equal(pillow_resize(image, 8), pillow(NOISE[:1], 8, Image.Resampling.BOX)[0])
    assert np.array_equal(pillow_resize(image, 32), pillow(NOISE[:1], 32, Image.Resampling.BILINEAR)[0])
    assert np.array_equal(pillow_box(image, 32), pillow(NOISE[:1], 32, Image.Resampling.BOX)[0])
    # on float ("F") images the box filter does not round: the exact block mean, to float32
    grey = pillow_box(image.convert("F"), 4)
    sums, n = block_sums(NOISE[:1], 4)
    np.testing.assert_allclose(np.asarray(grey), sums[0] / n, atol=1e-4)
