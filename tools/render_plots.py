"""Render the repository's DVC plots to PNG files offline.

The HTML written by ``dvc plots show`` loads Vega from a CDN; where that cannot be reached,
this renders the same Vega-Lite specs locally with ``vl-convert-python`` (the ``dev`` extra):

    python tools/render_plots.py --out /tmp/plots                 # dvc plots show (workspace)
    python tools/render_plots.py --out /tmp/plots --revs HEAD~1   # dvc plots diff HEAD~1 (vs workspace)
    python tools/render_plots.py --out /tmp/plots --revs HEAD~3 HEAD

Each Vega plot becomes ``<out>/<plot id with / and spaces replaced by _>.png``; image plots
(PNG files tracked as plots) are only listed, since they are already pictures. Run it from
the repository root (or pass ``--repo``); ``dvc`` must be on PATH or next to this Python.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def dvc_plots_json(repo: Path, revs: list[str] | None = None, targets: list[str] | None = None) -> dict:
    """The parsed output of ``dvc plots show --json`` (or ``dvc plots diff --json REVS``).

    ``--json`` also copies every image plot into its output folder; that folder is a temporary
    one here, so the repository's ``dvc_plots/`` is left alone."""
    cmd = ["dvc", "plots", "diff", *revs] if revs else ["dvc", "plots", "show"]
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("DVC_NO_ANALYTICS", "1")
    with tempfile.TemporaryDirectory(prefix="dvc_plots_") as images:
        cmd += ["--json", "-o", images]
        if targets:  # `plots diff` takes its revisions as positional arguments
            cmd += ["--targets", *targets] if revs else targets
        result = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout)


def vega_specs(plots: dict) -> dict[str, dict]:
    """Plot id -> filled Vega-Lite spec, for every Vega plot in a ``--json`` answer."""
    specs = {}
    for plot_id, entries in plots.get("data", {}).items():
        for entry in entries:
            if entry.get("type") == "vega" and entry.get("content"):
                specs[plot_id] = entry["content"]
    return specs


def safe_name(plot_id: str) -> str:
    """A file name for a plot id (``metrics/x.csv`` -> ``metrics_x.csv``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", plot_id).strip("_")


def render_png(spec: dict, scale: float = 1.0) -> bytes:
    """PNG bytes of one Vega-Lite spec."""
    import vl_convert

    return vl_convert.vegalite_to_png(spec, scale=scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument(
        "--revs", nargs="+", metavar="REV",
        help="revisions passed to `dvc plots diff --json` (default: `dvc plots show --json`)",
    )
    parser.add_argument("--targets", nargs="+", metavar="PLOT", help="only these plots (ids or files)")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="repository root (default: cwd)")
    parser.add_argument("--scale", type=float, default=1.0, help="PNG scale factor")
    parser.add_argument("--specs", action="store_true", help="also write each filled spec as JSON")
    args = parser.parse_args(argv)

    try:
        import vl_convert  # noqa: F401
    except ImportError:
        parser.error("vl-convert-python is missing: pip install vl-convert-python (or the dev extra)")

    plots = dvc_plots_json(args.repo, args.revs, args.targets)
    for error in plots.get("errors") or []:  # e.g. a plot file a stage has not written yet
        print(f"dvc could not load {error.get('name')} [{error.get('rev')}]: {error.get('msg')}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for plot_id, spec in vega_specs(plots).items():
        path = args.out / (safe_name(plot_id) + ".png")
        try:
            path.write_bytes(render_png(spec, args.scale))
        except Exception as error:  # noqa: BLE001 - report every broken plot, then fail
            failed += 1
            print(f"FAILED {plot_id}: {error}", file=sys.stderr)
            continue
        if args.specs:
            path.with_suffix(".json").write_text(json.dumps(spec, indent=1))
        print(path)
    for plot_id, entries in plots.get("data", {}).items():
        for entry in entries:
            if entry.get("type") == "image":
                print(f"image plot (not rendered): {plot_id} [{', '.join(entry.get('revisions', []))}]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
