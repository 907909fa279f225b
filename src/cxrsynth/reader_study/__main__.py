"""``python -m cxrsynth.reader_study``: serve a study, issue reader links, follow progress.

    python -m cxrsynth.reader_study add-reader --grade registrar --base-url https://study.example.org
    python -m cxrsynth.reader_study serve --host 0.0.0.0 --port 8000
    python -m cxrsynth.reader_study status

``add-reader`` and ``serve`` pin the study: the first copies ``--study`` (without its truth) to
``<answers stem>.study/`` beside the answers database, and both then use that copy, so rebuilding
``data/reader_study`` never changes the study a database's readers are answering.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cxrsynth.config.reader_study import GRADES
from cxrsynth.errors import CxrsynthError

DEFAULT_STUDY = Path("data/reader_study")
DEFAULT_ANSWERS = Path("reader_answers/answers.sqlite")


def main(argv: list[str] | None = None, prog: str = "python -m cxrsynth.reader_study") -> None:
    """Run the command line on ``argv`` (default: ``sys.argv``); ``prog`` is the name its help shows
    (``cxrsynth reader-study`` from the console script)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "serve the study to readers (uvicorn)"),
                       ("add-reader", "issue a personal link for one reader"),
                       ("status", "list readers, their progress and whether they submitted")):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--study", type=Path, default=DEFAULT_STUDY, help="study folder (the reader_design stage's)")
        sub.add_argument("--answers", type=Path, default=DEFAULT_ANSWERS,
                         help="SQLite file the answers go to (the reader_study stage reads reader_answers/)")
        if name == "serve":
            sub.add_argument("--host", default="127.0.0.1")
            sub.add_argument("--port", type=int, default=8000)
        elif name == "add-reader":
            sub.add_argument("--grade", choices=GRADES, default=None,
                             help="the reader's grade (else they enter it on their first visit)")
            sub.add_argument("--base-url", default="http://127.0.0.1:8000", help="where readers reach the app")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            from cxrsynth.reader_study.app import serve

            serve(args.study, args.answers, args.host, args.port)
        elif args.command == "add-reader":
            from cxrsynth.reader_study.answers import AnswersDB
            from cxrsynth.reader_study.app import pinned_study
            from cxrsynth.reader_study.design import Design

            design = Design(pinned_study(args.study, args.answers))
            token = AnswersDB(args.answers, design.study_id).add_reader(args.grade)
            print(f"{args.base_url.rstrip('/')}/r/{token}")
        else:
            print_status(args.study, args.answers)
    except (CxrsynthError, FileNotFoundError, PermissionError) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


def print_status(study: Path, answers: Path) -> None:
    """One line per reader: grade, screens done of the study's, answers given, submitted when."""
    from cxrsynth.errors import MissingInputError
    from cxrsynth.reader_study.answers import progress_table
    from cxrsynth.reader_study.app import pinned_folder
    from cxrsynth.reader_study.design import Design

    pinned = pinned_folder(answers)  # the study the readers answer, once add-reader or serve has copied it
    screens = len(Design(pinned if pinned.exists() else study).screens)
    if not answers.is_file():
        raise MissingInputError(f"{answers}: no answers database yet (add-reader creates it)")
    rows = progress_table(answers)
    print(f"{'reader':>6}  {'kind':9}  {'grade':10}  {'screens':>8}  {'answers':>7}  submitted")
    for reader, kind, grade, done, given, _, submitted in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(submitted)) if submitted else "no"
        print(f"{reader:>6}  {kind:9}  {grade or '-':10}  {f'{done}/{screens}':>8}  {given:>7}  {when}")
    print(f"{sum(r[6] is not None for r in rows)} of {len(rows)} readers submitted")


if __name__ == "__main__":
    main()
