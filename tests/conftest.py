"""Shared fixtures: tiny NIH-shaped raw folders made in tmp_path, and the real v2020 table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrsynth.data.metadata import NIH_HEADER_LINE

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# Never read this machine's torch hub cache: a weights file there must not change what a test sees.
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="cxrsynth-torch-home-")
# Under pytest-xdist (the README's `pytest -n auto`) each worker gets an equal share of the cores, and the
# stages it starts inherit that share (runtime.use_all_cores reads OMP_NUM_THREADS): workers that each
# took every core would oversubscribe them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))

#: The end-to-end graph tests that take longest (the demo, then the rehearsal), collected first: with
#: several workers each starts on one of them while the other workers share out the remaining files
#: (``--dist loadfile --no-loadscope-reorder`` in pyproject keeps this order).
LONGEST_FIRST = ("test_pipeline.py", "test_rehearsal.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


#: Debian chromium on a closed network: no background connections, no first-run work
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def system_chromium() -> str:
    """The system chromium's path. A missing browser fails the test (never a skip): the README's
    set-up and ``.ci/run`` install Debian's chromium package."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: apt-get install chromium (README: Set up)")
    return path


@pytest.fixture(scope="session")
def real_table():
    """The real v2020 table as shipped by torchxrayvision (112,120 rows)."""
    from cxrsynth.data.metadata import read_data_entry
    from cxrsynth.metadata_source import torchxrayvision_table

    table, report = read_data_entry(torchxrayvision_table())
    return table, report


def write_raw(folder: Path, rows: list[tuple[str, str]], size: int = 32, seed: int = 0) -> Path:
    """A raw NIH-layout folder: one CSV row and one L-mode PNG per (image, labels)."""
    rng = np.random.default_rng(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = [NIH_HEADER_LINE]
    for i, (name, labels) in enumerate(rows):
        pid = int(name[:8])
        lines.append(f"{name},{labels},{i},{pid},{40 + i % 30},{'MF'[i % 2]},{('PA', 'AP')[i % 2]},1024,1024,0.143,0.143")
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(images / name)
    (folder / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    return folder


ROOT = Path(__file__).parents[1]


def validate_params(workdir: Path) -> Path:
    """What the ``params`` stage does, for a test's (maybe partial) ``workdir/params.yaml``: each main
    section it has, validated with its defaults filled in, written to ``workdir/data/params/<section>.json``,
    where stages read them (``--params``, default ``data/params``). Returns that folder."""
    from cxrsynth.config.base import parse_section, read_params
    from cxrsynth.config.sections import SECTIONS
    from cxrsynth.io import write_json

    params, folder = read_params(Path(workdir) / "params.yaml"), Path(workdir) / "data" / "params"
    for name, model in SECTIONS.items():
        if name in params:
            write_json(folder / f"{name}.json", parse_section(params, model).model_dump(mode="json"))
    return folder


def dvc_stages(dvc_yaml: Path) -> dict:
    """A dvc.yaml's stages with its ``vars`` (``${paths.store}`` ...) and the params it names from the
    params.yaml beside it (``${gan.arch}``) put in, as DVC reads them."""
    import re

    import yaml

    text = Path(dvc_yaml).read_text()
    for entry in yaml.safe_load(text).get("vars", []):
        for group, values in (entry.items() if isinstance(entry, dict) else ()):
            for key, value in values.items():
                text = text.replace(f"${{{group}.{key}}}", value)
    assert "${paths." not in text, "a ${paths.<x>} that the vars do not define"
    params_file = Path(dvc_yaml).parent / "params.yaml"
    if params_file.exists():
        params = yaml.safe_load(params_file.read_text())

        def value(match):
            node = params
            for part in match.group(1).split("."):
                if not isinstance(node, dict) or part not in node:
                    return match.group(0)
                node = node[part]
            return str(node) if not isinstance(node, (dict, list)) else match.group(0)

        text = re.sub(r"\$\{([\w.]+)\}", value, text)
    return yaml.safe_load(text)["stages"]


def sh(cmd: list[str], cwd: Path, stdout_only: bool = False, timeout: int = 1500) -> str:
    """Run a command with the venv's tools first on PATH; fail the test with its output tails."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout if stdout_only else result.stdout + result.stderr


def copy_repo(dest: Path, prepare=None) -> Path:
    """A git + DVC copy of the repository's tracked and untracked-unignored files (no metrics, no
    lock), committed; ``prepare(dest)`` may change it before the commit."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split("\n")
    for name in filter(None, listed):
        if (ROOT / name).is_file() and not name.startswith(("metrics/", "dvc.lock")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    if prepare is not None:
        prepare(dest)
    git = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci"]
    sh(["git", "init", "-q"], dest)
    sh([*git, "add", "-A"], dest)
    sh([*git, "commit", "-qm", "copy"], dest)
    return dest


def demo_store(root: Path, n_images: int, size: int, workers: int = 1, split: bool = False, seed: int = 0) -> Path:
    """``root/store``: a prepared store of ``n_images`` demo phantoms (whole patients) at ``size`` px;
    with ``split``, also ``root/split.csv``, the patient split with default params."""
    from cxrsynth.config.data import DemoParams
    from cxrsynth.config.prepare import PrepareParams
    from cxrsynth.config.split import SplitParams
    from cxrsynth.data.store_writer import prepare_dataset
    from cxrsynth.data.sources.demo import write_demo
    from cxrsynth.data.split_assignment import make_split
    from cxrsynth.data.store import ImageStore

    write_demo(root / "raw", DemoParams(n_images=n_images, size=size, workers=workers, seed=seed))
    (root / "store").mkdir()
    prepare_dataset(root / "raw", root / "store", PrepareParams(size=size, workers=workers))
    if split:
        table, _, _ = make_split(ImageStore(root / "store").table, SplitParams(), root / "store")
        table.to_csv(root / "split.csv", index=False)
    return root / "store"


def compose_params(repo: Path, *overrides: str) -> None:
    """Write ``repo/params.yaml`` from its ``params/`` with Hydra overrides, as ``dvc exp run -S`` does
    (editing params.yaml by hand would be undone by the next ``dvc exp run``)."""
    from cxrsynth.config.profiles import write_params

    write_params(list(overrides), repo)


def params_text(*overrides: str) -> str:
    """The text of params.yaml composed from the repository's ``params/`` with Hydra overrides
    (``"archive.scorer=inception"``): a test's params file with one value changed."""
    from cxrsynth.config.profiles import write_params

    with tempfile.TemporaryDirectory() as folder:
        return write_params(list(overrides), ROOT, Path(folder) / "params.yaml").read_text()


def make_study(folder: Path, grids: int = 2, grid_size: int = 6, pairs: int = 3, display_size: int = 64,
               seed: int = 0) -> Path:
    """A reader study of random films (bright 'real', dark 'generated', so a scorer can tell them apart)."""
    from cxrsynth.reader_study.design import Films, plan_truth, write_study

    rng = np.random.default_rng(seed)
    screens = plan_truth(grids, grid_size, pairs, 0.5, rng)
    real = Films(rng.integers(128, 256, size=(60, 16, 16), dtype=np.uint8), [f"real_{i}.png" for i in range(60)])
    generated = Films(rng.integers(0, 128, size=(60, 16, 16), dtype=np.uint8), [f"gen_{i}.png" for i in range(60)])
    folder.mkdir(parents=True)
    write_study(folder, screens, real, generated, display_size, rng, {"test": True})
    return folder


@pytest.fixture
def study(tmp_path) -> Path:
    """A small study folder: 2 grids of 6 and 3 pairs at 64 px."""
    return make_study(tmp_path / "study")


class _OpensOnLoad:
    """Unpickling this calls ``open(marker, "w")``, which creates ``marker``: any code a hostile pickle
    could run instead."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def write_hostile_checkpoint(path: Path, marker: Path, key: str = "gan_state", protocol: int = 2) -> Path:
    """A torch checkpoint at ``path`` whose ``key`` entry creates ``marker`` when unpickled
    (``weights_only=False``); a ``weights_only=True`` load refuses it."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: _OpensOnLoad(marker), "state_dict": {}}, path, pickle_protocol=protocol)
    return path
