"""``python -m cxrsynth.reader_study``: serve a study, and issue reader links.

    python -m cxrsynth.reader_study add-reader --grade registrar --base-url https://study.example.org
    python -m cxrsynth.reader_study serve --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cxrsynth.config.reader_study import GRADES
from cxrsynth.errors import CxrsynthError

DEFAULT_STUDY = Path("data/reader_study")
DEFAULT_ANSWERS = Path("reader_answers/answers.sqlite")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cxrsynth.reader_study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "serve the study to readers (uvicorn)"),
                       ("add-reader", "issue a personal link for one reader")):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--study", type=Path, default=DEFAULT_STUDY, help="study folder (the reader_design stage's)")
        sub.add_argument("--answers", type=Path, default=DEFAULT_ANSWERS,
                         help="SQLite file the answers go to (the reader_study stage reads reader_answers/)")
        if name == "serve":
            sub.add_argument("--host", default="127.0.0.1")
            sub.add_argument("--port", type=int, default=8000)
        else:
            sub.add_argument("--grade", choices=GRADES, default=None,
                             help="the reader's grade (else they enter it on their first visit)")
            sub.add_argument("--base-url", default="http://127.0.0.1:8000", help="where readers reach the app")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            from cxrsynth.reader_study.app import serve

            serve(args.study, args.answers, args.host, args.port)
        else:
            from cxrsynth.reader_study.answers import AnswersDB
            from cxrsynth.reader_study.design import Design

            token = AnswersDB(args.answers, Design(args.study).study_id).add_reader(args.grade)
            print(f"{args.base_url.rstrip('/')}/r/{token}")
    except (CxrsynthError, FileNotFoundError, PermissionError) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
