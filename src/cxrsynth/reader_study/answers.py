"""Readers, their tokens and their answers, in one SQLite database beside (never inside) the study design.

Every answer is committed as it is given (WAL journal, so readers answering at once wait on each
other for milliseconds instead of failing). Tokens are stored only as SHA-256 hashes: the database
alone opens no reader's page. The database remembers the study it belongs to and refuses another.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cxrsynth.config.reader_study import GRADES
from cxrsynth.errors import InputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_sha256 TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('human', 'simulated')),
    grade TEXT CHECK (grade IN ('consultant', 'registrar', 'other')),
    created_at REAL NOT NULL,
    submitted_at REAL
);
CREATE TABLE IF NOT EXISTS answers (
    reader_id INTEGER NOT NULL REFERENCES readers (id),
    screen INTEGER NOT NULL,
    position INTEGER NOT NULL,
    called_real INTEGER NOT NULL CHECK (called_real IN (0, 1)),
    answered_at REAL NOT NULL,
    PRIMARY KEY (reader_id, screen, position)
);
CREATE TABLE IF NOT EXISTS screens_done (
    reader_id INTEGER NOT NULL REFERENCES readers (id),
    screen INTEGER NOT NULL,
    done_at REAL NOT NULL,
    PRIMARY KEY (reader_id, screen)
);
"""


@dataclass(frozen=True)
class Reader:
    """A reader as the app sees one: never their token, only its owner."""

    id: int
    kind: str
    grade: str | None
    submitted: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AnswersDB:
    """The answers database of one study; a connection per call, so it is safe from any thread."""

    def __init__(self, path: str | Path, study_id: str):
        self.path = Path(path)
        if self.path.exists() and self.path.stat().st_nlink > 1:
            # DVC links tracked files into its cache (cache.type hardlink): a write would change the cache
            raise InputError(f"{self.path}: is a hard link (a DVC-tracked file checked out from the cache); "
                             f"run `dvc unprotect {self.path}` before the app writes to it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('study_id', ?)", (study_id,))
            stored = db.execute("SELECT value FROM meta WHERE key = 'study_id'").fetchone()[0]
        if stored != study_id:
            raise InputError(f"{self.path}: holds answers to study {stored}, not to this design ({study_id}); "
                             "give the app another --answers file")
        self.study_id = study_id

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a committed answer survives an app crash
        return db

    def _write(self, sql: str, args: tuple) -> None:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(sql, args)
            db.execute("COMMIT")
        finally:
            db.close()

    def add_reader(self, grade: str | None = None, kind: str = "human") -> str:
        """A new reader; returns their secret token (shown once, stored only as a hash)."""
        if grade is not None and grade not in GRADES:
            raise InputError(f"grade {grade!r}: expected one of {', '.join(GRADES)}")
        token = secrets.token_urlsafe(24)
        self._write("INSERT INTO readers (token_sha256, kind, grade, created_at) VALUES (?, ?, ?, ?)",
                    (_hash(token), kind, grade, time.time()))
        return token

    def reader(self, token: str) -> Reader | None:
        """The reader holding ``token``, or None."""
        db = self._connect()
        try:
            row = db.execute("SELECT id, kind, grade, submitted_at FROM readers WHERE token_sha256 = ?",
                             (_hash(token),)).fetchone()
        finally:
            db.close()
        return None if row is None else Reader(row[0], row[1], row[2], row[3] is not None)

    def set_grade(self, reader: Reader, grade: str) -> None:
        if grade not in GRADES:
            raise InputError(f"grade {grade!r}: expected one of {', '.join(GRADES)}")
        self._write("UPDATE readers SET grade = ? WHERE id = ? AND grade IS NULL", (grade, reader.id))

    def answer(self, reader: Reader, screen: int, choices: dict[int, bool]) -> None:
        """Store (or change) the reader's calls on ``screen``: position -> called real, in one transaction."""
        db = self._connect()
        now = time.time()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO answers VALUES (?, ?, ?, ?, ?) ON CONFLICT (reader_id, screen, position) "
                           "DO UPDATE SET called_real = excluded.called_real, answered_at = excluded.answered_at",
                           [(reader.id, screen, p, int(v), now) for p, v in choices.items()])
            db.execute("COMMIT")
        finally:
            db.close()

    def mark_done(self, reader: Reader, screen: int) -> None:
        self._write("INSERT OR IGNORE INTO screens_done VALUES (?, ?, ?)", (reader.id, screen, time.time()))

    def submit(self, reader: Reader) -> None:
        self._write("UPDATE readers SET submitted_at = ? WHERE id = ? AND submitted_at IS NULL",
                    (time.time(), reader.id))

    def calls(self, reader: Reader, screen: int) -> dict[int, bool]:
        """The reader's current calls on one screen (position -> called real)."""
        db = self._connect()
        try:
            rows = db.execute("SELECT position, called_real FROM answers WHERE reader_id = ? AND screen = ?",
                              (reader.id, screen)).fetchall()
        finally:
            db.close()
        return {p: bool(v) for p, v in rows}

    def done_screens(self, reader: Reader) -> set[int]:
        db = self._connect()
        try:
            return {s for (s,) in db.execute("SELECT screen FROM screens_done WHERE reader_id = ?", (reader.id,))}
        finally:
            db.close()


@contextlib.contextmanager
def _read_only(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection; a file that is not an answers database is the user's error, in one line."""
    db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        yield db
    except sqlite3.DatabaseError as err:
        raise InputError(f"{path}: not a reader-study answers database ({err})") from None
    finally:
        db.close()


def progress_table(path: str | Path) -> list[tuple]:
    """One row per reader, for the study's coordinator: (id, kind, grade, screens done, answers,
    created, submitted), times as Unix seconds or None; never a token."""
    with _read_only(path) as db:
        return db.execute(
            "SELECT r.id, r.kind, r.grade, (SELECT COUNT(*) FROM screens_done d WHERE d.reader_id = r.id), "
            "(SELECT COUNT(*) FROM answers a WHERE a.reader_id = r.id), r.created_at, r.submitted_at "
            "FROM readers r ORDER BY r.id").fetchall()


def read_answers(path: str | Path) -> tuple[str, list[tuple]]:
    """(study ID, rows) of a finished database read-only, one row per answer of a reader who submitted:
    (reader id, kind, grade, screen, position, called_real)."""
    with _read_only(path) as db:
        study = db.execute("SELECT value FROM meta WHERE key = 'study_id'").fetchone()
        rows = db.execute("SELECT r.id, r.kind, r.grade, a.screen, a.position, a.called_real FROM answers a "
                          "JOIN readers r ON r.id = a.reader_id WHERE r.submitted_at IS NOT NULL "
                          "ORDER BY r.id, a.screen, a.position").fetchall()
    if study is None:
        raise InputError(f"{path}: not a reader-study answers database (no study ID)")
    return study[0], rows
