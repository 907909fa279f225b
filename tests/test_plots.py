"""The DVC plots read right: `dvc plots show --json` on the repository's committed metrics.

One ROC curve per class, grouped (not stacked) bars, training curves with one quantity family
per plot (losses, AUROC, learning rate), and every Vega-Lite spec renders offline to a PNG.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]

ROC = "metrics/classifier_roc.csv"
# grouped bar plots: plot id -> the column whose values get a bar each within one y value
GROUPED_BARS = {
    "metrics/split_prevalence.csv": "split",
    "metrics/fid_table1.csv": "extractor",
    "metrics/prevalence.csv": "set",
    "metrics/synthetic_auroc.csv": "training",
    "metrics/archive_prevalence.csv": "set",
}
# the Vega plots dvc.yaml must define (and that have data in the committed metrics)
EXPECTED_VEGA = {
    ROC,
    *GROUPED_BARS,
    "metrics/fid_mds.csv",
    "gan losses",
    "classifier losses",
    "classifier val auroc",
}
LR_FILE = "metrics/classifier_train/plots/metrics/lr-Adam.tsv"
# keys of DVC's data rows that are not a plotted quantity
META_KEYS = {"rev", "step", "epoch", "filename", "field", "filename::field", "dvc_inferred_y_value"}


def family(name: str) -> str | None:
    """The quantity family of a logged metric name or file path (None when unknown)."""
    name = name.lower()
    for key, fam in (("auroc", "auroc"), ("loss", "loss"), ("lr-", "lr"), ("lr.", "lr")):
        if key in name:
            return fam
    return None


@pytest.fixture(scope="module")
def shown(tmp_path_factory) -> dict:
    """`dvc plots show --json`; its copies of the image plots go to a temporary folder."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    images = tmp_path_factory.mktemp("dvc_plots")
    result = subprocess.run(["dvc", "plots", "show", "--json", "-o", str(images)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def specs(shown) -> dict[str, dict]:
    """Plot id -> filled Vega-Lite spec (data inlined)."""
    out = {}
    for plot_id, entries in shown["data"].items():
        for entry in entries:
            if entry["type"] == "vega" and entry.get("content"):
                out[plot_id] = entry["content"]
    return out


def spec_for(specs: dict, plot_id: str) -> dict:
    assert plot_id in specs, f"{plot_id}: no Vega plot shown (dvc.yaml plots:, or its metrics file missing)"
    return specs[plot_id]


def encodings(node) -> list[dict]:
    """Every `encoding` block in a spec (top level, layers, facet `spec`)."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("encoding"), dict):
            found.append(node["encoding"])
        for key, value in node.items():
            if key != "data":
                found += encodings(value)
    elif isinstance(node, list):
        for value in node:
            found += encodings(value)
    return found


def channel_fields(spec: dict, channel: str) -> set[str]:
    return {enc[channel]["field"] for enc in encodings(spec)
            if isinstance(enc.get(channel), dict) and "field" in enc[channel]}


def rows(spec: dict) -> list[dict]:
    return spec["data"]["values"]


def test_roc_has_one_line_per_class(specs):
    from cxrsynth.labels import LABELS

    spec = spec_for(specs, ROC)
    assert "class" in channel_fields(spec, "color"), "ROC curves must be coloured by class"
    assert "rev" not in channel_fields(spec, "color"), "revisions need their own channel (strokeDash)"
    assert "rev" in channel_fields(spec, "strokeDash") | channel_fields(spec, "column") | channel_fields(spec, "row")
    classes = {row["class"] for row in rows(spec)}
    assert len(classes) == 15 and classes == set(LABELS)


@pytest.mark.parametrize("plot_id, group", sorted(GROUPED_BARS.items()))
def test_bars_are_grouped_not_stacked(specs, plot_id, group):
    spec = spec_for(specs, plot_id)
    assert group in channel_fields(spec, "yOffset"), f"{plot_id}: no yOffset on {group!r} (bars stack)"
    assert group in channel_fields(spec, "color"), f"{plot_id}: bars not coloured by {group!r}"
    assert all(group in row for row in rows(spec))


def plot_families(spec: dict) -> set[str]:
    """Quantity families (loss, auroc, lr) drawn in one plot, from its data rows."""
    names = set()
    for row in rows(spec):
        names |= {key for key in row if key not in META_KEYS}
        names |= {row[key] for key in ("filename", "field", "filename::field") if key in row}
    return {fam for name in names if (fam := family(name))}


def test_training_curves_keep_each_quantity_on_its_own_axes(specs):
    curves = {plot_id: plot_families(spec) for plot_id, spec in specs.items()
              if any("step" in row for row in rows(spec))}
    assert curves, "no training-curve plots shown"
    mixed = {plot_id: fams for plot_id, fams in curves.items() if len(fams) > 1}
    assert not mixed, f"plots mixing quantity families on one y axis: {mixed}"
    drawn = set().union(*curves.values())
    assert {"loss", "auroc"} <= drawn


def test_plot_definitions_separate_families_and_plot_the_learning_rate():
    """Static: every multi-file plot in dvc.yaml keeps to one family, and the classifier's learning
    rate (written once the classifier stage reruns with LearningRateMonitor) has a plot."""
    definitions = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    ys = []
    for definition in definitions:
        if isinstance(definition, dict):
            (plot_id, props), = definition.items()
            if isinstance((props or {}).get("y"), dict):
                ys.append((plot_id, props["y"]))
    for plot_id, y in ys:
        fams = {family(f"{path}::{field}") for path, fields in y.items()
                for field in (fields if isinstance(fields, list) else [fields])} - {None}
        assert len(fams) <= 1, f"{plot_id}: mixes {fams}"
    lr_plots = [plot_id for plot_id, y in ys if LR_FILE in y]
    assert lr_plots, f"no plot of {LR_FILE}"
    assert family(LR_FILE) == "lr"


def test_every_vega_plot_renders_to_png(specs, shown):
    vl_convert = pytest.importorskip("vl_convert")
    missing = EXPECTED_VEGA - set(specs)
    assert not missing, f"Vega plots not shown: {missing}; errors: {shown.get('errors')}"
    for plot_id, spec in specs.items():
        png = vl_convert.vegalite_to_png(spec)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, plot_id
