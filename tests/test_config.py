"""Params: YAML 1.2 floats survive `dvc exp run -S`, and bad keys are named in one line."""

from __future__ import annotations

import pytest

from cxrsynth.config.base import ParamsError, load_section, parse_section, read_params
from cxrsynth.config.data import DataParams
from cxrsynth.config.split import SplitParams


def test_exponent_float_stays_float(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  nih:\n    backoff_s: 1e-05\n")
    params = read_params(tmp_path / "params.yaml")
    assert isinstance(params["data"]["nih"]["backoff_s"], float)
    assert load_section(DataParams, tmp_path / "params.yaml").nih.backoff_s == 1e-05


@pytest.mark.parametrize(
    "text, key",
    [
        ("prepare:\n  size: 48\n", "prepare.size"),
        ("prepare:\n  sise: 64\n", "prepare.sise"),
        ("split:\n  fractions: [0.7, 0.2, 0.2]\n", "split.fractions"),
        ("data:\n  demo:\n    n_images: many\n", "data.demo.n_images"),
        ("data:\n  nih:\n    archives: [13]\n", "data.nih.archives"),
        ("data:\n  source: local\n", "data"),
        ("archive:\n  follow_ups: [6, 3]\n", "archive.follow_ups"),
        ("fid:\n  extractor: clip\n", "fid.extractor"),
        ("synthetic_auroc:\n  val_fraction: 0\n", "synthetic_auroc.val_fraction"),
    ],
)
def test_bad_param_names_key(tmp_path, text, key):
    (tmp_path / "p.yaml").write_text(text)
    from cxrsynth.config.sections import SECTIONS

    with pytest.raises(ParamsError) as err:
        load_section(SECTIONS[key.split(".")[0]], tmp_path / "p.yaml")
    message = str(err.value)
    assert key in message and "\n" not in message


def test_missing_section():
    with pytest.raises(ParamsError, match="missing section 'split'"):
        parse_section({"data": {}}, SplitParams)


def test_load_validated_reads_a_params_stages_file_and_fails_in_one_line(tmp_path):
    import json

    from cxrsynth.config.base import load_validated
    from cxrsynth.config.baselines import CommonParams
    from cxrsynth.errors import MissingInputError

    path = tmp_path / "split.json"
    with pytest.raises(MissingInputError, match=r"split.json: not found \(run `dvc repro x`\)"):
        load_validated(SplitParams, path, "run `dvc repro x`")
    with pytest.raises(MissingInputError, match=r"not found \(run the params stage\)"):
        load_validated(SplitParams, path)
    section = load_section(SplitParams, _repo_params())
    path.write_text(json.dumps(section.model_dump(mode="json")))
    assert load_validated(SplitParams, path) == section
    for text, key in ((json.dumps({"fractions": [0.7, 0.2, 0.2]}), "split.fractions"), ("[1, 2]", "JSON object"),
                      ("{not json", "not valid JSON")):
        path.write_text(text)
        with pytest.raises(ParamsError) as err:
            load_validated(SplitParams, path)
        assert key in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    common = tmp_path / "common.json"  # a model without a section of its own: the key is named by the file
    common.write_text(json.dumps({"n_samples": 3}))
    with pytest.raises(ParamsError, match=r"common.json: common.n_samples: .*16 \(got 3\)"):
        load_validated(CommonParams, common)


def _repo_params():
    from pathlib import Path

    return Path(__file__).parents[1] / "params.yaml"


def test_write_validated_writes_every_file_and_removes_leftovers(tmp_path):
    """A section renamed (``synth`` → ``synthetic_auroc``) or a baseline system removed leaves no file
    behind for a reader of the folder (the report reads every file there)."""
    import json

    from cxrsynth.config.base import write_validated
    from cxrsynth.config.split import SplitParams

    (tmp_path / "synth.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("kept: not a section file")
    write_validated(tmp_path, {"split": SplitParams(), "systems": ["vae", "cgan"]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "split.json", "systems.json"]
    assert json.loads((tmp_path / "split.json").read_text()) == SplitParams().model_dump(mode="json")
    assert json.loads((tmp_path / "systems.json").read_text()) == ["vae", "cgan"]
