"""Static checks of dvc.yaml that keep experiments cheap to run."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]


def outputs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            path, options = (out, {}) if isinstance(out, str) else next(iter(out.items()))
            yield name, path, options or {}


def test_every_uncached_output_is_kept_in_git():
    """An output that is neither cached nor in git is missing from the temporary copy that
    `dvc exp run --temp` / `--queue` works in, so DVC would rerun its stage (the GAN, say) for
    every experiment. Uncached outputs must therefore be the git-tracked metrics."""
    uncached = [(name, path) for name, path, options in outputs() if options.get("cache") is False]
    assert uncached, "expected the metrics to be uncached outputs"
    assert all(path.startswith("metrics/") for _, path in uncached), uncached
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/metrics/*" not in ignored and "metrics/" not in ignored


def test_data_outputs_are_cached():
    data = [(name, path) for name, path, options in outputs() if path.startswith("data/")]
    assert {path for _, path in data} >= {"data/raw", "data/gan/model", "data/gan/checkpoints", "data/archive"}
    assert all(options.get("cache", True) for _, path, options in outputs() if path.startswith("data/"))
