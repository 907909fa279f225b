"""The study design: which films go on which screen, written so that only the pixels tell real from generated.

A study folder holds ``design.sqlite`` and ``images/<id>.png``. Every film, real or generated, is
taken at one stored side, resized to the display side with one filter and written as an 8-bit grey
PNG with one encoder setting and no metadata chunks; its name is 32 random hex digits. The truth
lives only in the ``images`` table, which the web app never reads (``Design`` does not load it).

The study ID is a hash of everything a reader's answer means: the settings, the screens, each
film's truth and source and the SHA-256 of its PNG. Source names and the seeded IDs repeat when a
GAN is retrained; the pixels do not, so a study rebuilt with other films gets another ID and the
answers given to the old one are refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.io import atomic_dir

DESIGN_FILE = "design.sqlite"
SUMMARY_FILE = "design.json"
IMAGES_DIR = "images"
ID_HEX = 32

_SCHEMA = """
CREATE TABLE study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (id TEXT PRIMARY KEY, truth TEXT NOT NULL CHECK (truth IN ('real', 'generated')),
                     source TEXT NOT NULL);
CREATE TABLE screens (screen INTEGER NOT NULL, position INTEGER NOT NULL,
                      kind TEXT NOT NULL CHECK (kind IN ('grid', 'pair')),
                      image_id TEXT NOT NULL REFERENCES images (id), PRIMARY KEY (screen, position));
"""


def plan_truth(grids: int, grid_size: int, pairs: int, real_probability: float,
               rng: np.random.Generator) -> list[tuple[str, list[bool]]]:
    """(kind, is_real per position) for every screen: grid films real with ``real_probability`` each
    (the paper: 0.5, so a grid's count of reals varies), then pairs of one real and one generated
    film in random order."""
    screens = [("grid", [bool(x) for x in rng.random(grid_size) < real_probability]) for _ in range(grids)]
    for _ in range(pairs):
        real_first = bool(rng.random() < 0.5)
        screens.append(("pair", [real_first, not real_first]))
    return screens


def display_png(image: np.ndarray, display_size: int) -> bytes:
    """One film as the reader sees it: (r, r) uint8 resized to ``display_size`` with Lanczos and
    written as an 8-bit grey PNG, no metadata, the same encoder setting for every film."""
    picture = Image.fromarray(np.ascontiguousarray(image), mode="L")
    if picture.size != (display_size, display_size):
        picture = picture.resize((display_size, display_size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=9)
    return out.getvalue()


@dataclass(frozen=True)
class Films:
    """Candidate films of one kind: (N, r, r) uint8 images and a source name for each (kept in the design)."""

    images: np.ndarray
    names: list[str]


def write_study(out: Path, screens: list[tuple[str, list[bool]]], real: Films, generated: Films,
                display_size: int, rng: np.random.Generator, settings: dict) -> dict:
    """Draw films without replacement for ``screens``, write ``out/images/*.png``, ``out/design.sqlite``
    and ``out/design.json`` (counts, study ID and ``settings``), and return that summary. ``out`` must
    be empty."""
    wanted = {True: int(sum(sum(truth) for _, truth in screens)),
              False: int(sum(len(t) - sum(t) for _, t in screens))}
    for is_real, films in ((True, real), (False, generated)):
        if wanted[is_real] > len(films.names):
            kind = "real" if is_real else "generated"
            raise InputError(f"the study needs {wanted[is_real]} {kind} films but only {len(films.names)} are available")
    pools = {True: iter(rng.permutation(len(real.names))[: wanted[True]]),
             False: iter(rng.permutation(len(generated.names))[: wanted[False]])}
    n_films = wanted[True] + wanted[False]
    ids = _random_ids(n_films, rng)
    rows, images = [], {}
    for screen, (kind, truth) in enumerate(screens):
        for position, is_real in enumerate(truth):
            films = real if is_real else generated
            index = int(next(pools[is_real]))
            image_id = ids[len(images)]
            images[image_id] = ("real" if is_real else "generated", films.names[index],
                                display_png(films.images[index], display_size))
            rows.append((screen, position, kind, image_id))
    (out / IMAGES_DIR).mkdir(parents=True)
    for image_id in sorted(images):  # written in ID order: file order and times say nothing of the truth
        (out / IMAGES_DIR / f"{image_id}.png").write_bytes(images[image_id][2])
    films = sorted((k, truth, source, _sha256(png)) for k, (truth, source, png) in images.items())
    digest = _sha256(json.dumps([settings, rows, films], sort_keys=True).encode())
    meta = {"study_id": digest[:16], "display_size": display_size, "screens": len(screens),
            "films_sha256": films_digest({k: v[2] for k, v in images.items()}), "settings": settings}
    _write_design(out / DESIGN_FILE, meta, rows, [(k, v[0], v[1]) for k, v in sorted(images.items())])
    summary = {"study_id": meta["study_id"], "screens": len(screens), "films": n_films,
               "real_films": wanted[True], "generated_films": wanted[False],
               "grid_real_share": _grid_real_share(screens), **settings}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def films_digest(films: dict[str, bytes]) -> str:
    """SHA-256 over every film's ID and PNG bytes: what ``Design`` checks the files it loads against."""
    return _sha256(json.dumps(sorted((k, _sha256(png)) for k, png in films.items())).encode())


def _write_design(path: Path, meta: dict, rows: list[tuple], truth: list[tuple] | None) -> None:
    """``design.sqlite``: the study row, the screens and (None: left empty) the truth."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.executescript(_SCHEMA)
            db.executemany("INSERT INTO study VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            db.executemany("INSERT INTO images VALUES (?, ?, ?)", truth or [])
            db.executemany("INSERT INTO screens VALUES (?, ?, ?, ?)", rows)
    finally:
        db.close()


def _random_ids(n: int, rng: np.random.Generator) -> list[str]:
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        candidate = rng.bytes(ID_HEX // 2).hex()
        if candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    return ids


def _grid_real_share(screens: list[tuple[str, list[bool]]]) -> float | None:
    grid = [t for kind, truth in screens if kind == "grid" for t in truth]
    return round(float(np.mean(grid)), 4) if grid else None


@dataclass(frozen=True)
class Screen:
    """One screen as the app shows it: its kind and its films' IDs by position (never their truth)."""

    index: int
    kind: str
    image_ids: tuple[str, ...]


class Design:
    """A study folder loaded whole for serving: its screens and every film's PNG bytes, never the truth.

    Nothing is read from the folder after this returns, so the folder may be deleted or rebuilt (by
    ``dvc repro``) under a server without changing what it serves. The films are checked against the
    digest the design was written with: a folder caught half-rebuilt, or edited, is refused."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / DESIGN_FILE
        if not path.is_file():
            raise MissingInputError(f"{path}: no study design (run the reader_design stage)")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM study")}
            rows = db.execute("SELECT screen, position, kind, image_id FROM screens ORDER BY screen, position").fetchall()
        except sqlite3.DatabaseError as err:
            raise InputError(f"{path}: not a study design ({err})") from None
        finally:
            db.close()
        if "films_sha256" not in meta:
            raise InputError(f"{path}: a study design written before study IDs covered the films' pixels; "
                             "rebuild it (dvc repro reader_design)")
        self.study_id: str = meta["study_id"]
        self.display_size: int = meta["display_size"]
        self._meta, self._rows = meta, rows
        screens: dict[int, list] = {}
        for screen, _, kind, image_id in rows:
            screens.setdefault(screen, [kind, []])[1].append(image_id)
        self.screens = [Screen(i, kind, tuple(ids)) for i, (kind, ids) in sorted(screens.items())]
        self.image_ids = frozenset(i for s in self.screens for i in s.image_ids)
        self._films: dict[str, bytes] = {}
        for image_id in sorted(self.image_ids):
            film = self.folder / IMAGES_DIR / f"{image_id}.png"
            if not film.is_file():
                raise MissingInputError(f"{film}: a film of study {self.study_id} is missing "
                                        "(rebuild it: dvc repro reader_design)")
            self._films[image_id] = film.read_bytes()
        if films_digest(self._films) != meta["films_sha256"]:
            raise InputError(f"{self.folder / IMAGES_DIR}: the films are not those study {self.study_id} was "
                             "written with (changed or half-rebuilt); rebuild it (dvc repro reader_design)")

    def image(self, image_id: str) -> bytes | None:
        """The PNG bytes of a film of this study, or None for any other string (no path is built
        from the request: only known IDs are looked up, in memory)."""
        return self._films.get(image_id)

    def copy_to(self, folder: str | Path) -> None:
        """Write this study, without its truth, to ``folder`` (replacing it whole, atomically): the films
        and a ``design.sqlite`` whose truth table is empty, which ``Design`` opens as it opened this one."""
        with atomic_dir(folder) as out:
            (out / IMAGES_DIR).mkdir()
            for image_id, png in sorted(self._films.items()):
                (out / IMAGES_DIR / f"{image_id}.png").write_bytes(png)
            _write_design(out / DESIGN_FILE, self._meta, self._rows, None)

