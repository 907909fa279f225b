"""Params profiles: params/base.yaml plus override files, composed by Hydra as `dvc exp run` does.

The three full copies (params.yaml, params/nih.yaml, params/rehearsal.yaml) that stood before the
profiles are kept in tests/fixtures/params_942a2ad/ as the record of what the conversion had to keep:
every value they held is what each profile resolves to now. A profile value changed on purpose
changes its record in the same commit (the rehearsal's archive budget was raised since: its record
says so).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from cxrsynth.config.baselines import BaselinesParams
from cxrsynth.config.base import parse_section, read_params
from cxrsynth.config.profiles import compose, profile_names, write_params
from cxrsynth.config.sections import SECTIONS, validate_all

ROOT = Path(__file__).parents[1]
RECORD = Path(__file__).parent / "fixtures" / "params_942a2ad"


def leaves(tree: dict, prefix: tuple = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def lookup(tree: dict, path: tuple):
    for key in path:
        tree = tree[key]
    return tree


def test_the_profiles_are_the_ones_recorded():
    assert profile_names(ROOT) == ["demo", "nih", "rehearsal"]


#: keys added to a section after the full copies were recorded: (section, key)
NEWER_KEYS = {"gan": ("diffusion",)}  # issue 29: the diffusion generator's settings
#: values changed on purpose since the full copies were recorded: (profile, section, key) -> the value now
CHANGED = {("rehearsal", "archive", "compare_per_class"): 0}  # CI time: the demo runs the scorer probe


@pytest.mark.parametrize("profile", ["demo", "nih", "rehearsal"])
def test_each_profile_resolves_to_every_value_its_full_copy_held(profile):
    composed = compose([f"profile={profile}"], ROOT)
    before = YAML(typ="safe", pure=True).load((RECORD / f"{profile}.yaml").read_text())
    for (name, section, key), value in CHANGED.items():
        if name == profile:
            before[section][key] = value
    wrong = []
    for path, value in leaves(before):
        try:
            now = lookup(composed, path)
        except KeyError:
            wrong.append(f"{'.'.join(path)} missing")
            continue
        if now != value or type(now) is not type(value):
            wrong.append(f"{'.'.join(path)}: {now!r} (was {value!r})")
    assert not wrong, f"profile {profile}: " + "; ".join(wrong)
    assert composed["profile"] == profile
    # and the other way: a key the full copy left to its model's default still validates to it (keys added
    # since the copy was made, NEWER_KEYS, hold each profile's own values)
    for name, model in {**SECTIONS, "baselines": BaselinesParams}.items():
        now, then = (parse_section(p, model).model_dump() for p in (composed, before))
        for key in NEWER_KEYS.get(name, ()):
            now.pop(key), then.pop(key)
        assert now == then, name
    # every section validates, the baselines pipeline's too (DVC reads its vars for every command)
    validate_all(composed, f"profile={profile}")
    assert parse_section(composed, BaselinesParams).systems


def test_overrides_apply_on_top_of_the_profile():
    composed = compose(["profile=nih", "gan.lr=0.002"], ROOT)
    assert composed["gan"]["lr"] == 0.002 and composed["gan"]["resolution"] == 1024


def test_params_yaml_is_what_dvc_exp_run_writes(tmp_path):
    """A plain `dvc exp run` on main composes params/ again: it must not change params.yaml."""
    written = write_params([], ROOT, tmp_path / "params.yaml")
    assert written.read_text() == (ROOT / "params.yaml").read_text(), (
        "params.yaml is stale: run python -m cxrsynth.config.profiles")
    assert read_params(ROOT / "params.yaml")["profile"] == "demo"


def test_dvc_composes_from_params_base():
    from dvc.repo import Repo

    hydra = Repo(str(ROOT)).config["hydra"]
    assert hydra["enabled"] and hydra["config_dir"] == "params" and hydra["config_name"] == "base"


def test_a_profile_value_must_name_a_profile():
    from cxrsynth.errors import ParamsError

    params = compose([], ROOT) | {"profile": 3}
    with pytest.raises(ParamsError, match="profile"):
        validate_all(params)
