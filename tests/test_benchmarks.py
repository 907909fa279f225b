"""benchmarks/gpu_check.sh: its dry run (toy sizes on the CPU) prints and writes every row of the table."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]
ROWS = ["GAN 4 px stable", "GAN 8 px fade-in", "GAN 8 px stable", "GAN 16 px fade-in", "GAN 16 px stable",
        "GAN schedule, projected", "classifier densenet121 32 px training", "class optimisation, one at a time",
        "class optimisation, batched", "class optimisation speed-up"]


def test_gpu_check_dry_run_prints_every_figure(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("DRY RUN")
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and [r["figure"] for r in report["rows"]] == ROWS
    printed = result.stdout.splitlines()
    for name in ROWS:
        assert sum(line.startswith(name) for line in printed) == 1, name
    rows = {r["figure"]: r for r in report["rows"]}
    for name in ROWS[:7]:  # every GAN phase, the projection and the classifier were measured
        assert rows[name]["value"] > 0 and math.isfinite(rows[name]["value"]), name
    phases = [r["value"] for r in report["rows"][:5]]
    images = [800] * 5  # the toy schedule: 800 images a phase
    expected = sum(n / rate for n, rate in zip(images, phases)) / 3600
    assert math.isclose(rows["GAN schedule, projected"]["value"], expected, rel_tol=1e-3)
    assert rows["class optimisation, batched"]["value"] >= 0
    assert rows["class optimisation speed-up"]["unit"] == "x"
