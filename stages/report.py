"""Stage ``report``: one page with every result of the run beside paper 001's, and where each came from.

Writes ``report.html`` (self-contained: figures embedded, nothing loaded from the network),
``report.md`` (figures linked; the report's own figures in ``--figures``) and the run's headline
metrics (``--headline``: what ``dvc metrics show`` and ``dvc exp show`` list). Reads every metrics
output of the main pipeline, the validated params and each stage's provenance record; the
baselines' table when ``baselines/dvc.yaml`` has been run (a separate pipeline: not a dependency), and
the other generators' summaries committed in ``--generators`` (``report.generators``).
"""

import argparse
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.io import atomic_dir, write_json, write_text
from cxrsynth.report.blocks import Figure
from cxrsynth.report.generators import generator_summary, read_summaries, which_generator_section
from cxrsynth.report.headline import count_leaves, headline
from cxrsynth.report.provenance import git_revision, provenance, validated_sections
from cxrsynth.report.render import to_html, to_markdown
from cxrsynth.report.sections import Context, build
from cxrsynth.report.sources import Metrics


def run(args: argparse.Namespace) -> None:
    metrics = Metrics(args.metrics_dir)
    params = validated_sections(args.params)
    stages = sorted(p.stem for p in (args.metrics_dir / "provenance").glob("*.json") if p.stem != "report")
    fid = metrics.json("fid.json")
    ctx = Context(demo=params["data"]["source"] == "demo", gan_resolution=params["gan"]["resolution"],
                  classifier_size=params["classifier"]["input_size"], extractors=tuple(fid["extractors"]),
                  arch=params["gan"]["arch"])
    revision = git_revision()
    prov = provenance(metrics, params, stages, args.params_file, revision)
    arch = params["gan"]["arch"]
    summary = generator_summary(metrics, arch, params["data"]["source"], revision)
    write_json(args.generators / f"{arch}.json", summary)  # this run's column of "which generator?"
    sections = build(metrics, ctx)
    sections.insert(-1, which_generator_section(metrics, read_summaries(args.generators) | {arch: summary}, ctx.demo))
    with atomic_dir(args.figures) as folder:
        for block in (b for s in sections for b in s.blocks):
            if isinstance(block, Figure) and block.data is not None:
                (folder / block.name).write_bytes(block.data)
    write_text(args.markdown, to_markdown(prov, sections, args.figures.name))
    write_text(args.html, to_html(prov, sections, metrics))
    numbers = headline(metrics)
    write_json(args.headline, numbers)
    print(f"report: {len(sections)} sections from {len(metrics.used)} files; {args.html}; "
          f"{count_leaves(numbers)} headline metrics in {args.headline}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--params-file", default="params.yaml", help="the params file the run used (named in the report)")
    parser.add_argument("--metrics-dir", type=Path, required=True)
    parser.add_argument("--html", type=Path, required=True)
    parser.add_argument("--markdown", type=Path, required=True)
    parser.add_argument("--figures", type=Path, required=True, help="folder for the figures the report draws")
    parser.add_argument("--generators", type=Path, required=True,
                        help="folder of each generator's summary: this run writes <gan.arch>.json, reads the others")
    parser.add_argument("--headline", type=Path, required=True,
                        help="the headline metrics JSON (the one file dvc.yaml declares as metrics)")
    stage_main(run, parser)
