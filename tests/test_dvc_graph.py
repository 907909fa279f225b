"""Static checks of dvc.yaml that keep experiments cheap to run."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import dvc_stages

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
    return dvc_stages(ROOT / "dvc.yaml")


def script_of(stage: dict) -> str:
    cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
    words = cmd.split()
    assert words[0] == "python" and words[1].startswith("stages/"), cmd
    return words[1]


def _stage_deps_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("stage_deps", ROOT / "tools" / "stage_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_stage_lists_exactly_the_modules_it_imports():
    """`tools/stage_deps.py --check`: a stage's code deps are its script and the project modules it
    imports, transitively. A missing one leaves stale results after an edit, a surplus one reruns the
    stage (and maybe the GAN) for nothing. `--write` fixes a failure."""
    tool = _stage_deps_tool()
    stale = {path.name: tool.drift(path) for path in tool.PIPELINES}
    assert not any(stale.values()), f"{stale}: run `python tools/stage_deps.py --write`"
    for name, stage in all_stages().items():
        assert script_of(stage) in [d for d in stage.get("deps", []) if isinstance(d, str)], name


def test_stage_deps_write_restores_a_broken_list_and_keeps_the_rest(tmp_path):
    """A module dropped from one stage and a stray one added to another are both drift; --write puts
    back exactly the closure and leaves every other line (data deps, comments, commands) alone."""
    tool = _stage_deps_tool()
    text = (ROOT / "dvc.yaml").read_text()
    broken = text.replace("      - src/cxrsynth/io.py\n", "", 1)
    broken = broken.replace("      - stages/report.py\n", "      - stages/report.py\n      - src/cxrsynth/plots.py\n", 1)
    path = tmp_path / "dvc.yaml"
    path.write_text(broken)
    assert tool.drift(path) == ["params", "report"]
    path.write_text(tool.rewritten(path))
    assert path.read_text() == text and not tool.drift(path)


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
        assert all("." in p for p in stage.get("params", [])), f"{name}: a whole section under params: (depend on its file)"
        seen, todo = set(), [name]
        while todo:
            for parent in parents(todo.pop()) - seen:
                seen.add(parent)
                todo.append(parent)
        assert "params" in seen, f"{name}: the params stage is not among its ancestors"


def test_every_section_a_stage_reads_is_declared_once():
    """A stage reads its sections from the params stage's files (``args.params / "<section>.json"``), and
    declares each one once: the file as a dependency, or (to rerun on some keys only) those keys under
    ``params:``, never both, never neither. Nothing but the params stages reads params.yaml."""
    import re

    problems = []
    for name, stage in stage_specs().items():
        source = (ROOT / script_of(stage)).read_text()
        if name in ("params", "report"):
            continue
        assert "params.yaml" not in source and "load_section" not in source, f"{name} reads params.yaml itself"
        read = set(re.findall(r'args\.params / "(\w+)\.json"', source))
        files = {d.removeprefix("data/params/").removesuffix(".json") for d in stage["deps"]
                 if d.startswith("data/params/")}
        keys = {p.split(".")[0] for p in stage.get("params", [])}
        if read != files | keys or files & keys:
            problems.append(f"{name}: reads {sorted(read)}, depends on files {sorted(files)}, on keys of {sorted(keys)}")
    assert not problems, "\n".join(problems)


def test_baseline_stages_validate_their_params_first_and_read_only_their_own_files():
    """Each baselines stage depends on the files its params section was validated into, so a bad value
    fails in the baselines ``params`` stage (whose outputs persist) before any system loses its outputs;
    a system's stage reads its own file only, so changing one system reruns only it."""
    stages = baseline_stages()
    check = stages["params"]
    assert check["params"] == ["baselines"] and check["outs"][0] == {"data/params/baselines": {"persist": True}}
    systems = yaml.safe_load((ROOT / "params.yaml").read_text())["baselines"]["systems"]
    for system in systems:
        train = stages[f"train@{system}"]
        own = [d for d in train["deps"] if d.startswith("data/params/baselines/")]
        assert sorted(own) == sorted(["data/params/baselines/common.json", f"data/params/baselines/{system}.json"])
        assert "params" not in train  # the two files are its params: declared once
    for name in ("pggan", "memory"):
        assert "data/params/baselines/common.json" in stages[name]["deps"]


def test_the_generator_and_the_archive_are_dvc_artifacts_of_stage_outputs():
    """`artifacts:` in dvc.yaml names the bundle `cxrsynth generate` loads (a model) and the archive (a
    dataset), each a stage's output, so `dvc pull`/`dvc get` of that path brings it from a remote."""
    from dvc.repo import Repo

    artifacts = Repo(str(ROOT)).artifacts.read()["dvc.yaml"]
    stages = stage_specs()
    outs = {next(iter(o)) if isinstance(o, dict) else o: name for name, s in stages.items() for o in s.get("outs", [])}
    assert {(a.path, a.type, outs.get(a.path)) for a in artifacts.values()} == {
        ("data/generator", "model", "generator"), ("data/archive", "dataset", "archive")}
    assert all(len(a.desc) > 80 and a.labels for a in artifacts.values())
