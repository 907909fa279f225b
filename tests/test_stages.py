"""Stage scripts: bad params fail in one line naming the key, and leave nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import params_text

ROOT = Path(__file__).parents[1]


def run_stage(tmp_path: Path, name: str, params: str, *args: str) -> subprocess.CompletedProcess:
    """The ``params`` stage on ``params``, then (when it passed) stage ``name``, as ``dvc repro`` runs them:
    a bad value fails in the params stage, before the stage that reads it has lost anything."""
    (tmp_path / "params.yaml").write_text(params)
    check = subprocess.run([sys.executable, str(ROOT / "stages" / "params.py"), "--out", "data/params"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        return check
    cmd = [sys.executable, str(ROOT / "stages" / f"{name}.py"), *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_bad_param_one_line_nonzero(tmp_path):
    params = params_text("prepare.size=60")
    result = run_stage(tmp_path, "prepare", params, "--raw", "raw", "--out", "store", "--metrics", "m.json",
                       "--samples", "s.png")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: params.yaml: prepare.size: must be a power of two >= 4 (got 60)"
    assert not (tmp_path / "store").exists()


def test_unknown_source_names_key(tmp_path):
    params = params_text("data.source=kaggle")
    result = run_stage(tmp_path, "download", params, "--out", "raw", "--downloads", "dl")
    assert result.returncode == 1 and "data.source" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "raw").exists()


def test_missing_input_is_one_line(tmp_path):
    result = run_stage(tmp_path, "split", (ROOT / "params.yaml").read_text(), "--store", "nowhere", "--out", "s.csv",
                       "--metrics", "m.json", "--plot", "p.csv", "--figure", "f.png")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: nowhere/store.json: not a prepared image store (run the prepare stage)"


def test_new_stages_fail_in_one_line_on_bad_params_or_missing_inputs(tmp_path):
    params = (ROOT / "params.yaml").read_text()
    bad = params_text("archive.scorer=inception")
    result = run_stage(tmp_path, "archive", bad, "--gan", "g", "--classifier", "c", "--d-classifier", "d",
                       "--store", "s", "--split", "x", "--verifier", "v", "--out", "a", "--metrics", "m.json", "--prevalence", "p.csv",
                       "--prevalence-figure", "p.png", "--examples", "e.png", "--series", "f.png")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "archive.scorer" in result.stderr and not (tmp_path / "a").exists()

    bad = params_text("prevalence.n_bootstrap=5")
    result = run_stage(tmp_path, "prevalence", bad, "--real", "r", "--gan", "g", "--classifier", "c",
                       "--metrics", "m.json", "--plot", "p.csv", "--figure", "f.png")
    assert result.returncode == 1 and "prevalence.n_bootstrap" in result.stderr

    result = run_stage(tmp_path, "fid", params, "--real", "nowhere", "--gan", "g", "--classifier", "c",
                       "--metrics", "m.json", "--table", "t.csv", "--matrix", "x.csv", "--mds", "d.csv",
                       "--figure", "f.png")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "nowhere/info.json" in result.stderr and not (tmp_path / "m.json").exists()

    result = run_stage(tmp_path, "synthetic_auroc", params_text("synthetic_auroc.val_fraction=1.5"),
                       "--store", "s", "--split", "x", "--archive", "a", "--embedded", "e", "--classifier", "c",
                       "--metrics", "m.json", "--markdown", "t.md", "--plot", "p.csv", "--figure", "f.png")
    assert result.returncode == 1 and "synthetic_auroc.val_fraction" in result.stderr

    bad = params_text("privacy.false_match_rate=1.5")
    result = run_stage(tmp_path, "verifier", bad, "--store", "s", "--split", "x", "--out", "v")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "privacy.false_match_rate" in result.stderr and not (tmp_path / "v").exists()

    result = run_stage(tmp_path, "privacy", params, "--store", "s", "--split", "x", "--classifier", "c",
                       "--verifier", "nowhere", "--archive", "a", "--metrics", "m.json", "--figure", "f.png")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "nowhere/verifier.pt: no verifier here" in result.stderr and not (tmp_path / "m.json").exists()


BUGGY_STAGE = """import argparse
from cxrsynth.cli import stage_main
from cxrsynth.errors import InputError, MissingInputError

def run(args):
    raise {error}

stage_main(run, argparse.ArgumentParser())
"""


def test_a_bug_keeps_its_traceback_and_user_errors_take_one_line(tmp_path):
    """A stage prints one line for the user's mistakes and keeps the traceback of anything else."""
    def run(error: str) -> subprocess.CompletedProcess:
        (tmp_path / "stage.py").write_text(BUGGY_STAGE.format(error=error))
        return subprocess.run([sys.executable, str(tmp_path / "stage.py")], capture_output=True, text=True, timeout=60)

    bug = run("ValueError('operands could not be broadcast together with shapes (3,4) (4,3)')")
    assert bug.returncode == 1 and "Traceback (most recent call last)" in bug.stderr and "broadcast" in bug.stderr
    bug = run("KeyError('row')")
    assert bug.returncode == 1 and "Traceback (most recent call last)" in bug.stderr
    for error in ("InputError('data/x.csv: line 3 has 4 fields, expected 11')",
                  "MissingInputError('data/prepared/store.json: not a prepared image store')",
                  "FileNotFoundError(2, 'No such file or directory', 'data/real/info.json')"):
        user = run(error)
        assert user.returncode == 1 and len(user.stderr.strip().splitlines()) == 1, user.stderr
        assert user.stderr.startswith("error: ") and "Traceback" not in user.stderr


WARNING_STAGE = """import argparse, os, tempfile, warnings
from cxrsynth.cli import stage_main

def run(args):
    import torch  # noqa: F401  (the record names the device torch would use)
    for _ in range(3):  # one entry, however often it is raised
        warnings.warn(f"checkpoint folder {tempfile.gettempdir()}/run-x1y2 is not empty", UserWarning)
    warnings.warn(f"weights not in {os.getcwd()}/weights; training from random initialisation", RuntimeWarning)

stage_main(run, argparse.ArgumentParser())
"""


def test_provenance_records_device_versions_and_every_warning_machine_independently(tmp_path):
    import json

    (tmp_path / "stage.py").write_text(WARNING_STAGE)
    result = subprocess.run([sys.executable, str(tmp_path / "stage.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "warning: checkpoint folder" in result.stderr  # still shown as it happens, one line
    record = json.loads((tmp_path / "metrics/provenance/stage.json").read_text())
    assert record["stage"] == "stage" and record["device"].startswith(("cpu: ", "cuda: ")) and "torch" in record
    assert record["warnings"] == ["UserWarning: checkpoint folder <tmp> is not empty",
                                  "RuntimeWarning: weights not in ./weights; training from random initialisation"]


@pytest.mark.parametrize("env, first", [
    ({}, True),
    ({"RANK": "0"}, True), ({"RANK": "3"}, False),                       # torchrun
    ({"SLURM_PROCID": "0"}, True), ({"SLURM_PROCID": "5"}, False),       # srun
    ({"LOCAL_RANK": "1"}, False), ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False),  # Lightning's launcher
])
def test_the_writing_process_is_global_rank_0_however_launched(monkeypatch, env, first):
    from cxrsynth.distributed import is_first_process

    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert is_first_process() is first


NAMED_STAGE = """import argparse
from cxrsynth.cli import stage_main

def run(args):
    return {"img_per_s": 12.5}

parser = argparse.ArgumentParser()
parser.add_argument("--system", required=True)
stage_main(run, parser, name=lambda args: f"baselines/{args.system}")
"""


def test_a_stages_records_are_named_after_it(tmp_path):
    """stage_main writes metrics/timings/<name>.json and metrics/provenance/<name>.json, ``name`` given as
    a function of the arguments (a foreach stage's entry) or, by default, the script's name."""
    import json

    (tmp_path / "stage.py").write_text(NAMED_STAGE)
    result = subprocess.run([sys.executable, "stage.py", "--system", "vae"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    timings = json.loads((tmp_path / "metrics/timings/baselines/vae.json").read_text())
    assert timings["stage"] == "baselines/vae" and timings["img_per_s"] == 12.5 and timings["seconds"] >= 0
    assert json.loads((tmp_path / "metrics/provenance/baselines/vae.json").read_text())["stage"] == "baselines/vae"
    assert sorted(p.name for p in (tmp_path / "metrics").rglob("*.json")) == ["vae.json", "vae.json"]


def test_every_stage_script_is_a_table_of_contents():
    """Issue 28's rule: a stage script is at most 90 lines and defines only ``run`` (its logic lives in
    the library, where tests reach it); everything else is imports, a docstring and argument parsing."""
    import ast

    problems = []
    for script in sorted((ROOT / "stages").glob("*.py")):
        text = script.read_text()
        tree = ast.parse(text)
        defined = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        if len(text.splitlines()) > 90:
            problems.append(f"{script.name}: {len(text.splitlines())} lines")
        if defined != ["run"]:
            problems.append(f"{script.name}: defines {defined}")
    assert len(list((ROOT / "stages").glob("*.py"))) >= 20 and not problems, problems
