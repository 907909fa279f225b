"""The reader-study web application (FastAPI): one personal link per reader, grids then pairs, one screen at a time.

Routes (``{token}`` is the reader's secret; an unknown one gets 403 on every route):

- pages: ``/r/{token}`` (grade on first visit, then the first unanswered screen: a closed tab resumes
  there), ``/r/{token}/screen/{n}``, ``/r/{token}/finish`` (go back or submit), ``/r/{token}/thanks``;
- films: ``/r/{token}/image/{id}``, only IDs of the study (no path is built from the request);
- JSON API, used by the pages and by the simulated reader alike: ``GET /api/r/{token}`` (progress),
  ``POST .../grade``, ``GET .../screen/{n}``, ``PUT .../screen/{n}/answer`` (stored at once),
  ``POST .../screen/{n}/done``, ``POST .../submit``.

Nothing a reader receives depends on the truth: the app never reads it (``design.Design``).

The study is loaded whole at start (screens and films in memory), so the folder may change under a
running app without changing what it serves; ``serve`` goes further and serves a copy of its own.
Request bodies over ``MAX_BODY_BYTES`` get 413 before anything reads or parses them (and before the
token is looked up); answers are strict JSON types (``"yes"`` is not ``true``). Tokens never reach
a log: ``serve`` runs uvicorn without its access log, whose request lines would hold them.
"""

# no ``from __future__ import annotations`` here: FastAPI must see the route's ``Annotated`` types
import logging
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict

from cxrsynth.errors import CxrsynthError
from cxrsynth.reader_study.answers import AnswersDB, Reader, Refused
from cxrsynth.reader_study.design import Design, Screen

#: the largest request body read (the largest the app takes, an answer, is about 30 bytes)
MAX_BODY_BYTES = 1024
log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
_IMAGE_HEADERS = {"Cache-Control": "private, max-age=86400", "Referrer-Policy": "no-referrer",
                  "X-Content-Type-Options": "nosniff"}


class GradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    grade: Literal["consultant", "registrar", "other"]


class AnswerIn(BaseModel):
    """A call on one film: ``real`` true (this film is real) or false (generated). On a pair screen
    calling one film real calls the other generated. Strict: a JSON integer and a JSON boolean only."""

    model_config = ConfigDict(extra="forbid", strict=True)
    position: int
    real: bool


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 and is read no further: at once when
    its Content-Length says so (before routing, so before the token is looked up), else as soon as the
    bytes received pass the limit (an ``HTTPException`` from ``receive``, which FastAPI passes on)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            response = JSONResponse({"detail": self._detail()}, status_code=413,
                                    headers={**_NO_STORE, "Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._detail(), headers={"Connection": "close"})
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return f"request body over {self.max_bytes} bytes"


def create_app(study: str | Path, answers: str | Path, busy_timeout: float = 30.0) -> FastAPI:
    """The app serving the study folder ``study`` (read once, here) and writing answers to the SQLite
    file ``answers``, whose writes wait ``busy_timeout`` seconds for another writer before failing."""
    design = Design(study)
    db = AnswersDB(answers, design.study_id, busy_timeout=busy_timeout)
    templates = Environment(loader=PackageLoader("cxrsynth.reader_study", "templates"),
                            autoescape=select_autoescape(["html"]))
    app = FastAPI(title="cxrsynth reader study", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit)
    n_screens = len(design.screens)

    @app.exception_handler(Refused)
    def refused(request: Request, err: Refused):
        return JSONResponse({"detail": str(err)}, status_code=409, headers=_NO_STORE)

    @app.exception_handler(sqlite3.OperationalError)
    def not_stored(request: Request, err: sqlite3.OperationalError):
        # locked past busy_timeout, disk full, read-only: the reader is told and may try again
        log.error("answers database %s: %s", db.path, err)
        return JSONResponse({"detail": "the answers database is busy or unavailable; try again in a moment"},
                            status_code=503, headers=_NO_STORE)

    def reader_of(token: str) -> Reader:
        reader = db.reader(token)
        if reader is None:
            raise HTTPException(403, "unknown reader link")
        return reader

    Owner = Annotated[Reader, Depends(reader_of)]  # the reader whose token is in the path, or 403

    def screen_of(n: int) -> Screen:
        if not 0 <= n < n_screens:
            raise HTTPException(404, "no such screen")
        return design.screens[n]

    def next_screen(reader: Reader) -> int | None:
        done = db.done_screens(reader)
        return next((s.index for s in design.screens if s.index not in done), None)

    def page(name: str, **context) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), headers=_NO_STORE)

    grids = sum(s.kind == "grid" for s in design.screens)

    def number(screen: Screen) -> int:
        """1-based place among the screens of its kind (grid 3, pair 12)."""
        return screen.index + 1 - (0 if screen.kind == "grid" else grids)

    def screen_name(screen: Screen) -> str:
        return f"{screen.kind} {number(screen)}"

    def screen_json(token: str, reader: Reader, screen: Screen) -> dict:
        calls = db.calls(reader, screen.index)
        return {"screen": screen.index, "screens": n_screens, "kind": screen.kind, "number": number(screen),
                "of": sum(s.kind == screen.kind for s in design.screens),
                "images": [{"position": p, "url": f"/r/{token}/image/{image_id}", "real": calls.get(p)}
                           for p, image_id in enumerate(screen.image_ids)],
                "done": screen.index in db.done_screens(reader)}

    @app.get("/r/{token}", response_class=HTMLResponse)
    def landing(token: str, reader: Owner):
        if reader.submitted:
            return RedirectResponse(f"/r/{token}/thanks", status_code=303)
        if reader.grade is None:
            return page("grade.html", token=token)
        n = next_screen(reader)
        target = f"/r/{token}/finish" if n is None else f"/r/{token}/screen/{n}"
        return RedirectResponse(target, status_code=303)

    @app.get("/r/{token}/screen/{n}", response_class=HTMLResponse)
    def screen_page(token: str, n: int, reader: Owner):
        if reader.submitted:
            return RedirectResponse(f"/r/{token}/thanks", status_code=303)
        if reader.grade is None:
            return RedirectResponse(f"/r/{token}", status_code=303)
        data = screen_json(token, reader, screen_of(n))
        return page("screen.html", token=token, s=data, last=n == n_screens - 1, size=design.display_size)

    @app.get("/r/{token}/finish", response_class=HTMLResponse)
    def finish_page(token: str, reader: Owner):
        if reader.submitted:
            return RedirectResponse(f"/r/{token}/thanks", status_code=303)
        done = db.done_screens(reader)
        missing = [(s.index, screen_name(s)) for s in design.screens if s.index not in done]
        return page("finish.html", token=token, missing=missing, screens=n_screens)

    @app.get("/r/{token}/thanks", response_class=HTMLResponse)
    def thanks_page(token: str, reader: Owner):
        return page("thanks.html", submitted=reader.submitted, token=token)

    @app.get("/r/{token}/image/{image_id}")
    def image(image_id: str, reader: Owner):
        png = design.image(image_id)
        if png is None:
            raise HTTPException(404, "no such image")
        return Response(png, media_type="image/png", headers=_IMAGE_HEADERS)

    @app.get("/api/r/{token}")
    def progress(token: str, reader: Owner):
        done = db.done_screens(reader)
        return {"grade": reader.grade, "submitted": reader.submitted, "screens": n_screens,
                "done": sorted(done), "next": next_screen(reader)}

    @app.post("/api/r/{token}/grade")
    def grade(body: GradeIn, reader: Owner):
        db.set_grade(reader, body.grade)
        return {"grade": body.grade}

    @app.get("/api/r/{token}/screen/{n}")
    def screen_api(token: str, n: int, reader: Owner):
        return screen_json(token, reader, screen_of(n))

    @app.put("/api/r/{token}/screen/{n}/answer")
    def answer(n: int, body: AnswerIn, reader: Owner):
        screen = screen_of(n)
        if not 0 <= body.position < len(screen.image_ids):
            raise HTTPException(422, "no such position on this screen")
        choices = {body.position: body.real}
        if screen.kind == "pair":
            choices[1 - body.position] = not body.real
        db.answer(reader, n, choices)
        return {"saved": True}

    @app.post("/api/r/{token}/screen/{n}/done")
    def done(token: str, n: int, reader: Owner):
        screen = screen_of(n)
        db.close_screen(reader, n, len(screen.image_ids), pair=screen.kind == "pair")
        following = next_screen(reader)
        target = n + 1 if n + 1 < n_screens else None
        return {"next_url": f"/r/{token}/screen/{target}" if target is not None else f"/r/{token}/finish",
                "remaining": following is not None}

    @app.post("/api/r/{token}/submit")
    def submit(token: str, reader: Owner):
        db.submit(reader, n_screens)
        return {"next_url": f"/r/{token}/thanks"}

    return app


def pinned_folder(answers: str | Path) -> Path:
    """Where the answers database ``answers`` keeps its copy of its study: ``<stem>.study`` beside it."""
    return Path(answers).with_name(f"{Path(answers).stem}.study")


def pinned_study(study: str | Path, answers: str | Path) -> Path:
    """The folder the answers database ``answers`` is served from: its own truth-less copy of its study
    (``pinned_folder``). A new database (or one without a copy yet, if it belongs to ``study``) copies
    ``study``; later calls use the copy, whatever ``dvc repro`` has since done to ``study``, with a note
    on stderr when ``study`` is now another study."""
    study, answers = Path(study), Path(answers)
    copy = pinned_folder(answers)
    if answers.exists() and copy.exists():
        pinned = Design(copy)
        AnswersDB(answers, pinned.study_id)  # the copy is this database's study, or a one-line refusal
        try:
            current = Design(study).study_id
        except (CxrsynthError, OSError):  # gone or half-rebuilt: worth the note only, the copy is served
            current = None
        if current != pinned.study_id:
            print(f"note: {study} is {'now study ' + current if current else 'not a complete design'}; "
                  f"{answers} belongs to study {pinned.study_id}, served from {copy}", file=sys.stderr)
        return copy
    design = Design(study)
    AnswersDB(answers, design.study_id)  # refuses a database of another study, in one line
    design.copy_to(copy)  # replaces the copy a moved-away database left behind
    return copy


def serve(study: str | Path, answers: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the study that ``answers`` belongs to (``pinned_study``) with uvicorn until interrupted.
    No access log: its request lines carry the readers' tokens."""
    import uvicorn

    app = create_app(pinned_study(study, answers), answers)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
