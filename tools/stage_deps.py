"""Keep each stage's code dependencies in dvc.yaml and baselines/dvc.yaml exact, by writing them.

A stage's code dependencies are its script and the project modules the script imports,
transitively (``cxrsynth.code_closure.import_closure``). A missing one leaves stale results after
an edit; a surplus one reruns the stage (and maybe the GAN) for nothing. So nobody edits these
lists: this tool writes them, after the stage's data dependencies, under a marker comment.

    python tools/stage_deps.py --write          # rewrite both files' lists after an import change
    python tools/stage_deps.py --check          # exit 1 naming each stage whose list has drifted
    python tools/stage_deps.py archive          # print one stage's modules

Only lines that are ``src/cxrsynth/**.py`` entries of a ``deps:`` list are rewritten; everything
else in the file (comments, commands, data dependencies, order) is kept as written.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from cxrsynth.code_closure import import_closure

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = (ROOT / "dvc.yaml", ROOT / "baselines" / "dvc.yaml")
MARKER = "# code: written by tools/stage_deps.py --write"

_STAGE = re.compile(r"^  ([A-Za-z0-9_-]+):\s*$")
_SCRIPT = re.compile(r"python (stages/[A-Za-z0-9_]+\.py)")
_ITEM = re.compile(r"^(\s+)- (\S+)\s*$")


def stage_modules(script: str) -> list[str]:
    """The module files ``script`` (a path like ``stages/archive.py``) imports, relative to the repository root."""
    return [str(p.relative_to(ROOT)) for p in import_closure([ROOT / script])]


def _blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """(stage name, first line, end line) of each stage under the top-level ``stages:``."""
    first = lines.index("stages:") + 1
    last = next((i for i in range(first, len(lines)) if lines[i][:1] not in ("", " ", "#")), len(lines))
    starts = [(m.group(1), i) for i in range(first, last) if (m := _STAGE.match(lines[i]))]
    return [(name, i, starts[k + 1][1] if k + 1 < len(starts) else last) for k, (name, i) in enumerate(starts)]


def _rewrite_block(block: list[str], name: str, where: Path) -> list[str]:
    """One stage's lines with its code dependencies replaced by the script's import closure."""
    script = next((m.group(1) for line in block if (m := _SCRIPT.search(line))), None)
    deps_at = next((i for i, line in enumerate(block) if line.strip() == "deps:"), None)
    if script is None or deps_at is None:
        raise SystemExit(f"{where.name}: stage {name}: no `python stages/<x>.py` command or no deps: list")
    indent = len(block[deps_at]) - len(block[deps_at].lstrip())
    end = deps_at + 1
    while end < len(block) and (not block[end].strip() or len(block[end]) - len(block[end].lstrip()) > indent):
        end += 1
    items = block[deps_at + 1:end]
    while items and not items[-1].strip():  # blank lines after the list belong to the next key
        items.pop()
        end -= 1
    item_indent = next((m.group(1) for line in items if (m := _ITEM.match(line))), " " * (indent + 2))
    kept = [line for line in items if line.strip() != MARKER and not _is_code(line)]
    code = [f"{item_indent}- {path}" for path in [script, *stage_modules(script)]]
    return [*block[:deps_at + 1], *kept, f"{item_indent}{MARKER}", *code, *block[end:]]


def _is_code(line: str) -> bool:
    m = _ITEM.match(line)
    return bool(m) and (m.group(2).startswith("stages/") or
                        (m.group(2).startswith("src/cxrsynth/") and m.group(2).endswith(".py")))


def rewritten(path: Path) -> str:
    """``path``'s text with every stage's code dependencies as they should be."""
    lines = path.read_text().splitlines()
    blocks = _blocks(lines)
    out = list(lines[:blocks[0][1]])
    for name, start, end in blocks:
        out += _rewrite_block(lines[start:end], name, path)
    return "\n".join(out + lines[blocks[-1][2]:]) + "\n"


def drift(path: Path) -> list[str]:
    """The stages of ``path`` whose written lists differ from what ``rewritten`` would write."""
    now, wanted = path.read_text().splitlines(), rewritten(path).splitlines()
    return [name for (name, s, e), (_, s2, e2) in zip(_blocks(now), _blocks(wanted)) if now[s:e] != wanted[s2:e2]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", help="print these stages' modules (script names in stages/)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the lists in dvc.yaml and baselines/dvc.yaml")
    mode.add_argument("--check", action="store_true", help="exit 1 if any list differs from what --write writes")
    args = parser.parse_args()
    if args.write or args.check:
        stale = [(path, drift(path)) for path in PIPELINES]
        stale = [(path, names) for path, names in stale if names]
        for path, names in stale:
            if args.write:
                path.write_text(rewritten(path))
            verb = "rewrote" if args.write else "stale"
            print(f"{path.relative_to(ROOT)}: {verb}: {', '.join(names)}")
        if args.check and stale:
            print("run `python tools/stage_deps.py --write`", file=sys.stderr)
            sys.exit(1)
        return
    for stage in args.stages or sorted(p.stem for p in (ROOT / "stages").glob("*.py")):
        print(f"{stage}:")
        for module in stage_modules(f"stages/{stage}.py"):
            print(f"      - {module}")


if __name__ == "__main__":
    main()
