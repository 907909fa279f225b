"""The reader-study web application (FastAPI): one personal link per reader, grids then pairs, one screen at a time.

Routes (``{token}`` is the reader's secret; an unknown one gets 403 on every route):

- pages: ``/r/{token}`` (grade on first visit, then the first unanswered screen: a closed tab resumes
  there), ``/r/{token}/screen/{n}``, ``/r/{token}/finish`` (go back or submit), ``/r/{token}/thanks``;
- films: ``/r/{token}/image/{id}``, only IDs of the study (no path is built from the request);
- JSON API, used by the pages and by the simulated reader alike: ``GET /api/r/{token}`` (progress),
  ``POST .../grade``, ``GET .../screen/{n}``, ``PUT .../screen/{n}/answer`` (stored at once),
  ``POST .../screen/{n}/done``, ``POST .../submit``.

Nothing a reader receives depends on the truth: the app never reads it (``design.Design``).
"""

# no ``from __future__ import annotations`` here: FastAPI must see the route's ``Annotated`` types
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict

from cxrsynth.reader_study.answers import AnswersDB, Reader
from cxrsynth.reader_study.design import Design, Screen

_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
_IMAGE_HEADERS = {"Cache-Control": "private, max-age=86400", "Referrer-Policy": "no-referrer",
                  "X-Content-Type-Options": "nosniff"}


class GradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grade: Literal["consultant", "registrar", "other"]


class AnswerIn(BaseModel):
    """A call on one film: ``real`` true (this film is real) or false (generated). On a pair screen
    calling one film real calls the other generated."""

    model_config = ConfigDict(extra="forbid")
    position: int
    real: bool


def create_app(study: str | Path, answers: str | Path) -> FastAPI:
    """The app serving the study folder ``study`` and writing answers to the SQLite file ``answers``."""
    design = Design(study)
    db = AnswersDB(answers, design.study_id)
    templates = Environment(loader=PackageLoader("cxrsynth.reader_study", "templates"),
                            autoescape=select_autoescape(["html"]))
    app = FastAPI(title="cxrsynth reader study", docs_url=None, redoc_url=None, openapi_url=None)
    n_screens = len(design.screens)

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

    def writable(reader: Reader) -> None:
        if reader.submitted:
            raise HTTPException(409, "answers already submitted")
        if reader.grade is None:
            raise HTTPException(409, "enter your grade first")

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
        path = design.image_path(image_id)
        if path is None:
            raise HTTPException(404, "no such image")
        return Response(path.read_bytes(), media_type="image/png", headers=_IMAGE_HEADERS)

    @app.get("/api/r/{token}")
    def progress(token: str, reader: Owner):
        done = db.done_screens(reader)
        return {"grade": reader.grade, "submitted": reader.submitted, "screens": n_screens,
                "done": sorted(done), "next": next_screen(reader)}

    @app.post("/api/r/{token}/grade")
    def grade(body: GradeIn, reader: Owner):
        if reader.grade is not None and reader.grade != body.grade:
            raise HTTPException(409, "grade already entered")
        db.set_grade(reader, body.grade)
        return {"grade": body.grade}

    @app.get("/api/r/{token}/screen/{n}")
    def screen_api(token: str, n: int, reader: Owner):
        return screen_json(token, reader, screen_of(n))

    @app.put("/api/r/{token}/screen/{n}/answer")
    def answer(n: int, body: AnswerIn, reader: Owner):
        screen = screen_of(n)
        writable(reader)
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
        writable(reader)
        calls = db.calls(reader, n)
        if screen.kind == "pair" and len(calls) < 2:
            raise HTTPException(409, "choose the real film of the pair first")
        unmarked = {p: False for p in range(len(screen.image_ids)) if p not in calls}
        if unmarked:  # a grid film left unticked is called generated
            db.answer(reader, n, unmarked)
        db.mark_done(reader, n)
        following = next_screen(reader)
        target = n + 1 if n + 1 < n_screens else None
        return {"next_url": f"/r/{token}/screen/{target}" if target is not None else f"/r/{token}/finish",
                "remaining": following is not None}

    @app.post("/api/r/{token}/submit")
    def submit(token: str, reader: Owner):
        if reader.submitted:
            return {"next_url": f"/r/{token}/thanks"}
        writable(reader)
        if next_screen(reader) is not None:
            raise HTTPException(409, "some screens are not answered yet")
        db.submit(reader)
        return {"next_url": f"/r/{token}/thanks"}

    return app


def serve(study: str | Path, answers: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the study with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(study, answers), host=host, port=port, log_level="info")
