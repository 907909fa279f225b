"""The layers: the networks, data, metrics and sampling never import the training code above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cxrsynth"
#: what may not import from ``cxrsynth.training`` (packages searched recursively)
BELOW_TRAINING = ("models", "data", "metrics", "sampling.py")


def imported_modules(path: Path, root: Path = PACKAGE) -> list[str]:
    """Absolute names of the modules ``path`` (a file of the package at ``root``) imports, anywhere in
    the file, relative imports resolved; ``from a import b`` names both ``a`` and ``a.b``."""
    package = ["cxrsynth", *path.relative_to(root).parts[:-1]]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


def upward_imports(paths: list[Path], root: Path = PACKAGE) -> list[str]:
    """``file: module`` for every import of ``cxrsynth.training`` (or a module in it) among ``paths``."""
    return [f"{path.relative_to(root)}: {name}" for path in paths for name in imported_modules(path, root)
            if name == "cxrsynth.training" or name.startswith("cxrsynth.training.")]


def test_no_upward_import_into_training():
    files = []
    for name in BELOW_TRAINING:
        path = PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    assert {PACKAGE / "models" / "gan.py", PACKAGE / "models" / "d_classifier.py", PACKAGE / "sampling.py"} <= set(files)
    assert upward_imports(files) == []


@pytest.mark.parametrize("line", ["from cxrsynth.training.gan_schedule import ProgressiveSchedule",
                                  "import cxrsynth.training.ema",
                                  "from cxrsynth import training",
                                  "from ..training import gan_module",
                                  "def f():\n    from cxrsynth.training.gan_fit import gan_config"])
def test_the_layer_check_sees_every_form_of_import(tmp_path, line):
    probe = tmp_path / "models" / "probe.py"
    probe.parent.mkdir()
    probe.write_text(line + "\n")
    found = upward_imports([probe], tmp_path)
    assert found and all(f.startswith(f"{Path('models', 'probe.py')}: cxrsynth.training") for f in found)


def test_the_layer_check_passes_sideways_and_downward_imports(tmp_path):
    probe = tmp_path / "models" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("from cxrsynth.models.layers import fade_real\nfrom . import pggan\nfrom .. import errors\n"
                     "import torch\nfrom cxrsynth.config.gan import GANParams\nimport cxrsynth.trainingwheels\n")
    assert imported_modules(probe, tmp_path)[2:4] == ["cxrsynth.models", "cxrsynth.models.pggan"]
    assert upward_imports([probe], tmp_path) == []


#: The library's layers, bottom up (docs/architecture.md). A unit (a subpackage or a top-level module)
#: imports only from lower layers; within a layer, only the foundations import one another,
#: ``sampling`` imports ``models`` and ``python -m cxrsynth`` runs the console script.
LAYERS = [
    ("errors", "io", "labels", "runtime", "distributed", "resize", "paper", "plots", "code_closure",
     "metadata_source", "config", "skipped"),
    ("data",),
    ("models", "sampling"),
    ("metrics",),
    ("training",),
    ("synthesis",),
    ("privacy", "generate", "reader_study", "baselines", "inputs"),
    ("report", "cli", "commands", "__main__", "__init__"),
]
SIDEWAYS = {("sampling", "models"), ("__main__", "commands")}


def unit_of(name: str) -> str | None:
    """``cxrsynth.data.store`` → ``data``; ``cxrsynth`` alone → None."""
    parts = name.split(".")
    return parts[1] if parts[0] == "cxrsynth" and len(parts) > 1 else None


def layer_violations(root: Path = PACKAGE) -> list[str]:
    """``file: unit`` for each unit a file imports from a higher layer, or sideways where not allowed."""
    layer = {unit: i for i, units in enumerate(LAYERS) for unit in units}
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        unit = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        others = {unit_of(name) for name in imported_modules(path, root)} - {None, unit}
        for other in sorted(o for o in others if o in layer):  # ``from cxrsynth import x`` names x itself
            upward = layer[other] > layer[unit]
            sideways = layer[other] == layer[unit] and layer[unit] != 0 and (unit, other) not in SIDEWAYS
            if upward or sideways:
                found.append(f"{rel}: {other}")
    return found


def test_every_unit_of_the_library_has_a_layer():
    units = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    units |= {p.stem for p in PACKAGE.glob("*.py")}
    assert units == {unit for layer in LAYERS for unit in layer}


def test_imports_point_down_the_layers():
    assert layer_violations() == []


def test_the_layer_check_sees_an_upward_and_a_sideways_import(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "probe.py").write_text("from cxrsynth.synthesis.card import write_card\n")
    (tmp_path / "privacy").mkdir()
    (tmp_path / "privacy" / "probe.py").write_text("import cxrsynth.reader_study.design\nfrom cxrsynth.data import store\n")
    assert layer_violations(tmp_path) == [f"{Path('data', 'probe.py')}: synthesis",
                                          f"{Path('privacy', 'probe.py')}: reader_study"]
