"""Static checks of dvc.yaml that keep experiments cheap to run."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]


def baseline_stages() -> dict:
    """baselines/dvc.yaml's stages, the ``foreach`` one expanded for every system in params.yaml."""
    spec = yaml.safe_load((ROOT / "baselines" / "dvc.yaml").read_text())["stages"]
    systems = yaml.safe_load((ROOT / "params.yaml").read_text())["baselines"]["systems"]
    stages = {}
    for name, stage in spec.items():
        if "foreach" not in stage:
            stages[name] = stage
            continue
        assert stage["foreach"] == "${baselines.systems}", name
        for system in systems:
            text = yaml.safe_dump(stage["do"]).replace("${key}", system)
            stages[f"{name}@{system}"] = yaml.safe_load(text)
    return stages


def all_stages() -> dict:
    """Both pipelines' stages (the baselines' run from the repository root: ``wdir: ..``)."""
    baselines = baseline_stages()
    assert all(stage.get("wdir") == ".." for stage in baselines.values())
    return {**stage_specs(), **{f"baselines:{name}": stage for name, stage in baselines.items()}}


def outputs():
    for name, stage in all_stages().items():
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


def stage_specs() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def script_of(stage: dict) -> str:
    cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
    words = cmd.split()
    assert words[0] == "python" and words[1].startswith("stages/"), cmd
    return words[1]


def test_every_stage_lists_exactly_the_modules_it_imports():
    """A stage's `src/` deps are the project modules its script imports, transitively: a missing one
    leaves stale results after an edit, a surplus one reruns the stage (and maybe the GAN) for nothing."""
    from cxrsynth.provenance import import_closure

    problems = []
    for name, stage in all_stages().items():
        script = script_of(stage)
        deps = [d for d in stage.get("deps", []) if isinstance(d, str)]
        assert script in deps, f"{name}: its script {script} is not a dependency"
        listed = {d for d in deps if d.startswith("src/") and d.endswith(".py")}
        folders = [d for d in deps if d.startswith("src/") and (ROOT / d).is_dir()]
        wanted = {str(p.relative_to(ROOT)) for p in import_closure([ROOT / script])}
        if folders:
            problems.append(f"{name}: list modules, not folders: {folders}")
        if wanted - listed:
            problems.append(f"{name}: missing {sorted(wanted - listed)}")
        if listed - wanted:
            problems.append(f"{name}: surplus {sorted(listed - wanted)}")
    assert not problems, "\n".join(problems) + "\n(python tools/stage_deps.py <stage> prints the right list)"


def test_every_data_path_a_command_reads_is_a_dependency():
    """A `data/...` path in a stage's command that is not one of its outputs is an input: DVC must know,
    or the stage is neither rerun when it changes nor ordered after the stage that writes it."""
    from cxrsynth.config.sections import SECTIONS

    params_files = {f"data/params/{s}.json" for s in SECTIONS}
    problems = []
    for name, stage in all_stages().items():
        cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
        outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", [])]
        deps = [d for d in stage.get("deps", []) if isinstance(d, str)]
        for word in cmd.split():
            if not word.startswith("data/") or any(word == o or word.startswith(o + "/") or o.startswith(word + "/")
                                                   for o in outs):
                continue
            if word.startswith("data/downloads"):  # the download stage's working folder (see dvc.yaml)
                continue
            if word == "data/params" and params_files <= set(deps):  # the report reads the main sections' files
                continue
            if not any(word == d or word.startswith(d + "/") for d in deps):
                problems.append(f"{name}: reads {word} but does not depend on it")
    assert not problems, "\n".join(problems)


def test_params_are_validated_before_any_stage_runs():
    """The `params` stage validates every section and is an ancestor of every other stage, so a bad
    value fails before DVC removes the outputs of the stage it belongs to. A stage depends on the
    validated file of each section it reads whole; the params stage's outputs persist through a
    failed check."""
    from cxrsynth.config.sections import NOT_SECTIONS, SECTIONS

    stages = stage_specs()
    check = stages["params"]
    assert check["params"] == [*NOT_SECTIONS, *SECTIONS]
    outs = {next(iter(o)): o[next(iter(o))] for o in check["outs"]}
    assert outs.pop("metrics/provenance/params.json") == {"cache": False, "persist": True}
    assert set(outs) == {f"data/params/{s}.json" for s in SECTIONS}
    assert all(options.get("persist") is True for options in outs.values())

    producer = {}
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            producer[out if isinstance(out, str) else next(iter(out))] = name

    def parents(name: str) -> set[str]:
        return {producer[d] for d in stages[name].get("deps", []) if d in producer}

    for name, stage in stages.items():
        if name == "params":
            continue
        for section in [p for p in stage.get("params", []) if isinstance(p, str) and "." not in p]:
            assert f"data/params/{section}.json" in stage["deps"], f"{name}: does not depend on data/params/{section}.json"
        seen, todo = set(), [name]
        while todo:
            for parent in parents(todo.pop()) - seen:
                seen.add(parent)
                todo.append(parent)
        assert "params" in seen, f"{name}: the params stage is not among its ancestors"


def test_baseline_stages_validate_their_params_first_and_read_only_their_own_files():
    """Each baselines stage depends on the files its params section was validated into, so a bad value
    fails in the baselines ``params`` stage (whose outputs persist) before any system loses its outputs;
    a system's stage reads its own file only, so changing one system reruns only it."""
    stages = baseline_stages()
    check = stages["params"]
    assert check["params"] == ["baselines"] and check["outs"] == [{"data/params/baselines": {"persist": True}}]
    systems = yaml.safe_load((ROOT / "params.yaml").read_text())["baselines"]["systems"]
    for system in systems:
        train = stages[f"train@{system}"]
        own = [d for d in train["deps"] if d.startswith("data/params/baselines/")]
        assert sorted(own) == sorted(["data/params/baselines/common.json", f"data/params/baselines/{system}.json"])
        assert train["params"] == ["baselines.common", f"baselines.systems.{system}"]
    for name in ("pggan", "memory"):
        assert "data/params/baselines/common.json" in stages[name]["deps"]


def test_the_generator_and_the_archive_are_dvc_artifacts_of_stage_outputs():
    """`artifacts:` in dvc.yaml names the bundle `cxrsynth generate` loads (a model) and the archive (a
    dataset), each a stage's output, so `dvc pull`/`dvc get` of that path brings it from a remote."""
    from dvc.repo import Repo

    artifacts = Repo(str(ROOT)).artifacts.read()["dvc.yaml"]
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outs = {next(iter(o)) if isinstance(o, dict) else o: name for name, s in stages.items() for o in s.get("outs", [])}
    assert {(a.path, a.type, outs.get(a.path)) for a in artifacts.values()} == {
        ("data/generator", "model", "generator"), ("data/archive", "dataset", "archive")}
    assert all(len(a.desc) > 80 and a.labels for a in artifacts.values())
