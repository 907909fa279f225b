"""The ``cxrsynth`` console script (also ``python -m cxrsynth``): one entry point, one subcommand per use.

    cxrsynth generate --model data/generator --labels Effusion,Cardiomegaly --n 64 --out generated/
    cxrsynth sample --gan data/gan/model --n 100 --out samples/
    cxrsynth reader-study serve --port 8000
    cxrsynth inputs status

``sample``, ``reader-study`` and ``inputs`` hand the rest of the command line to the modules behind
``python -m cxrsynth.sampling``, ``python -m cxrsynth.reader_study`` and ``python -m cxrsynth.inputs``
(which keep working), so ``cxrsynth reader-study serve --help`` is that module's help. Heavy imports
wait until a subcommand runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cxrsynth.errors import CxrsynthError
from cxrsynth.labels import LABELS

GENERATE_HELP = f"""\
Make labelled synthetic chest films with a trained generator bundle (the generator stage's
data/generator): per synthetic patient, a latent is class-optimised until the bundle's scorer sees
the requested label (Algorithm 1, with the archive's settings and retries), --follow-ups films are
sampled around it, and every film is labelled by the bundle's labeller at the archive's cut-offs.

--n films are split as evenly as possible over --labels (the first labels get one more when they
do not divide). A film whose optimisation did not converge is not written: one line per label says
how many converged and how often the labeller gave the films their requested label. The films are
written in NIH's layout (images_001.tar, Data_Entry_synthetic.csv) with a README.md card; they are
not privacy-filtered (the archive stage's filter needs the source films).

Labels: {", ".join(LABELS)}.
"""


def _sample(argv: list[str]) -> None:
    from cxrsynth import sampling

    saved = sys.argv
    sys.argv = ["cxrsynth sample", *argv]  # sampling.main parses sys.argv; argv[0] names it in its help
    try:
        sampling.main()
    finally:
        sys.argv = saved


def _reader_study(argv: list[str]) -> None:
    from cxrsynth.reader_study.__main__ import main

    main(argv, prog="cxrsynth reader-study")


def _inputs(argv: list[str]) -> None:
    from cxrsynth.inputs.__main__ import main

    main(argv, prog="cxrsynth inputs")


#: Subcommands handed whole to another module's command line: (function, one-line help).
DELEGATED = {
    "sample": (_sample, "unlabelled PNG samples from a trained generator (python -m cxrsynth.sampling)"),
    "reader-study": (_reader_study, "serve the reader study, issue reader links, follow progress "
                                    "(python -m cxrsynth.reader_study)"),
    "inputs": (_inputs, "fetch, track and list the inputs that come from outside (python -m cxrsynth.inputs)"),
}


def generate(args: argparse.Namespace) -> None:
    """``cxrsynth generate``: load the bundle, generate, print one line per label, save."""
    from cxrsynth.generate import Generator
    from cxrsynth.generate.generator import parse_labels, plan_films

    start = time.perf_counter()
    plan_films(parse_labels(args.labels), args.n, args.follow_ups)  # the request's errors before the load
    films = Generator.load(args.model, args.device).generate(args.labels, n=args.n, seed=args.seed,
                                                             follow_ups=args.follow_ups)
    films.save(args.out, args.shard_images)
    for line in films.summary_lines():
        print(line)
    print(f"wrote {films.converged} films to {args.out} in {time.perf_counter() - start:.1f} s")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``generate`` with its options, the delegated subcommands by name only."""
    parser = argparse.ArgumentParser(prog="cxrsynth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    gen = commands.add_parser("generate", help="labelled synthetic films on demand from a generator bundle",
                              description=GENERATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("--model", type=Path, required=True, help="generator bundle folder (e.g. data/generator)")
    gen.add_argument("--labels", required=True,
                     help="comma-separated label names, e.g. Effusion,Cardiomegaly ('No Finding' allowed)")
    gen.add_argument("--n", type=int, required=True, help="films requested in all, split evenly over the labels")
    gen.add_argument("--out", type=Path, required=True, help="folder for the films (replaced whole)")
    gen.add_argument("--seed", type=int, default=None, help="random seed (default: the bundle's archive.seed); "
                     "the same seed gives the same films")
    gen.add_argument("--device", default="auto", help="torch device: auto (CUDA when available), cpu, cuda, cuda:1")
    gen.add_argument("--follow-ups", type=int, default=1,
                     help="films per synthetic patient, sampled around one optimised latent (default 1)")
    gen.add_argument("--shard-images", type=int, default=10_000, help="PNGs per images_NNN.tar (default 10000)")
    for name, (_, text) in DELEGATED.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run ``cxrsynth`` on ``argv`` (default: ``sys.argv[1:]``). The user's errors (``CxrsynthError``,
    a missing file) print one line and exit 1."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        DELEGATED[argv[0]][0](argv[1:])
        return
    args = build_parser().parse_args(argv)
    try:
        generate(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except (CxrsynthError, FileNotFoundError, PermissionError, NotADirectoryError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
