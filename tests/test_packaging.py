"""Packaging: pyproject.toml's ranges and constraints.txt's exact versions cannot drift apart.

pyproject says what the code needs; constraints.txt says what this repository's runs used, and
the README's set-up and ``.ci/run`` install from it.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
INSTALL = 'pip install -c constraints.txt -e ".[dev]"'


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements() -> dict[str, list[Requirement]]:
    """The core dependencies (under ``""``) and each extra's, the extras' references to the project itself left out."""
    project = pyproject()["project"]
    groups = {"": project["dependencies"], **project.get("optional-dependencies", {})}
    return {group: [r for r in map(Requirement, reqs) if canonicalize_name(r.name) != "cxrsynth"]
            for group, reqs in groups.items()}


def pins() -> dict[str, str]:
    """constraints.txt as {canonical name: version}; every line must be ``name==version``, each name once."""
    found: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==" and not req.marker and not req.extras, f"constraints.txt: {line!r} is not name==version"
        name = canonicalize_name(req.name)
        assert name not in found, f"constraints.txt: {req.name} pinned twice"
        found[name] = spec.version
    return found


def test_every_dependency_is_pinned_within_its_range():
    pinned = pins()
    unpinned, outside = [], []
    for group, reqs in requirements().items():
        for req in reqs:
            version = pinned.get(canonicalize_name(req.name))
            if version is None:
                unpinned.append(f"{req.name} ({group or 'core'})")
            elif not req.specifier.contains(version, prereleases=True):
                outside.append(f"{req.name}=={version} not in {req.specifier}")
    assert not unpinned, f"not in constraints.txt: {', '.join(unpinned)}"
    assert not outside, f"constraints.txt outside pyproject's ranges: {'; '.join(outside)}"


def test_dev_extra_installs_every_other_extra():
    """``.[dev]`` (what the README and CI install) brings every extra, so the tests see all of them."""
    extras = pyproject()["project"]["optional-dependencies"]
    others = sorted(set(extras) - {"dev"})
    (own,) = [Requirement(r) for r in extras["dev"] if canonicalize_name(Requirement(r).name) == "cxrsynth"]
    assert sorted(own.extras) == others


def test_constraints_pin_everything_the_dev_install_pulls_in():
    """The installed closure of pyproject's requirements (all extras), as the installed packages declare
    it, is pinned: a new transitive dependency shows up here until constraints.txt is regenerated."""
    pinned = pins()
    todo = [(req, frozenset()) for reqs in requirements().values() for req in reqs]
    seen: set[tuple[str, ...]] = set()
    missing = []
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            continue
        if (name, *sorted(req.extras)) in seen:
            continue
        seen.add((name, *sorted(req.extras)))
        if name not in pinned:
            missing.append(req.name)
        try:
            declared = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{req.name} (not installed: run the README's set-up)")
            continue
        todo += [(Requirement(r), frozenset(req.extras)) for r in declared]
    assert not missing, f"not in constraints.txt: {', '.join(sorted(set(missing)))}"


def test_readme_and_ci_install_from_the_constraints():
    assert INSTALL in (ROOT / "README.md").read_text()
    assert INSTALL in (ROOT / ".ci" / "run").read_text()
