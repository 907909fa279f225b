"""After rejects, every reader of the store gets each listed image's own pixels and never a rejected slot.

The store keeps zero-filled array slots for rejected images (``data/store.py``). Each film here is
one flat grey value of its own, so a reader that mixes up rows, or reads a rejected slot (all
zero), gives itself away, in memory and memory-mapped alike.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_raw
from PIL import Image

from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.store_writer import prepare_dataset
from cxrsynth.data.store import ImageStore
from cxrsynth.data.store_splits import split_datasets
from cxrsynth.metrics.fid_sets import stream_real
from cxrsynth.models.gan import GANConfig
from cxrsynth.training.gan_data import RealImages, load_pyramid
from cxrsynth.training.gan_module import GANModule

N = 24
ROWS = [(f"{i // 2 + 1:08d}_{i % 2:03d}.png", ("No Finding", "Mass", "Effusion")[i % 3]) for i in range(N)]
REJECTED = {3, 10, 17}
VALUE = {name: 10 * (i + 1) for i, (name, _) in enumerate(ROWS)}  # 10 .. 240, never 0


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("rows")
    raw = write_raw(root / "raw", ROWS, size=16)
    for i, (name, _) in enumerate(ROWS):
        if i in REJECTED:
            (raw / "images" / name).write_bytes(b"not a png")
        else:
            Image.fromarray(np.full((16, 16), VALUE[name], dtype=np.uint8), "L").save(raw / "images" / name)
    (root / "store").mkdir()
    prepare_dataset(raw, root / "store", PrepareParams(size=16, workers=1, chunk=5, max_reject_fraction=0.2))
    store = ImageStore(root / "store")
    assert len(store.table) == N - len(REJECTED)
    assert (store.images(16)[sorted(set(range(N)) - set(store.table["row"]))] == 0).all()  # the rejected slots
    return store


def expected(store: ImageStore, rows: np.ndarray) -> np.ndarray:
    by_row = dict(zip(store.table["row"], store.table["image"].map(VALUE), strict=True))
    return np.array([by_row[r] for r in rows])


def test_store_read_returns_the_rows_asked_for(store):
    rows = store.table["row"].to_numpy()[::-1]  # any order, repeats allowed
    rows = np.concatenate([rows, rows[:3]])
    images = store.read(8, rows)
    assert (images == expected(store, rows)[:, None, None]).all()


@pytest.mark.parametrize("limit", [2.0 * 2**30, 0.0], ids=["in-memory", "memory-mapped"])
def test_classifier_datasets_read_each_rows_pixels(store, limit):
    names = np.array(["train", "val", "test"])[np.arange(len(store.table)) % 3]
    split = pd.DataFrame({"image": store.table["image"], "split": names})
    for name, dataset in split_datasets(store, split, 16, limit).items():
        assert isinstance(dataset.images, np.memmap) == (limit == 0.0)
        want = expected(store, dataset.rows)
        assert (dataset.all_images()[:, 0] == torch.from_numpy(want)[:, None, None]).all(), name
        first, _ = dataset[0]
        assert (first == int(want[0])).all()


@pytest.mark.parametrize("limit_gib", [4.0, 0.0], ids=["in-memory", "memory-mapped"])
def test_gan_images_are_the_listed_rows_only(store, limit_gib):
    pyramid = load_pyramid(store.folder, [4, 8, 16], limit_gib)
    listed = np.sort(store.table["row"].to_numpy())
    for res, pool in pyramid.items():
        assert pool.in_memory == (limit_gib > 0) and len(pool) == len(listed)
        index = torch.randint(len(pool), (200,), generator=torch.Generator().manual_seed(res))
        batch = pool.batch(index)
        assert batch.shape == (200, 1, res, res) and batch.dtype == torch.uint8
        want = expected(store, listed[index.numpy()])
        assert (batch[:, 0] == torch.from_numpy(want)[:, None, None]).all()


def test_no_rejected_slot_reaches_a_gan_training_batch(store):
    config = GANConfig(z_dim=8, channels=[8, 8, 8], fade_images=[0, 64, 64], stable_images=[64, 64, 64],
                       batch_sizes=[16, 16, 16])
    module = GANModule(asdict(config))
    module.attach_images(load_pyramid(store.folder, config.resolutions, limit_gib=0.0))
    seen = torch.cat([module._real_batch(16, 16) for _ in range(30)])  # what the discriminator is shown, in [-1, 1]
    values = torch.unique(((seen + 1) * 127.5).round().to(torch.int64)).tolist()
    assert 0 not in values and set(values) <= set(VALUE.values())
    assert len(values) == len(store.table)  # 480 draws reach every listed film


def test_real_features_stream_reads_each_rows_pixels(store):
    rows = store.table["row"].to_numpy()
    members = np.eye(len(rows), dtype=bool)  # one group per film: its group mean is the film
    _, _, means = stream_real(store.images(8), rows, members, [], batch_size=4)
    assert np.allclose(means.mean(axis=(1, 2)) * 255.0, expected(store, rows))


def test_real_images_refuses_an_empty_list(store):
    with pytest.raises(ValueError, match="no images"):
        RealImages(store.images(4), np.array([], dtype=np.int64), 1e9)
