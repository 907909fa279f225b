"""Readers, their tokens and their answers, in one SQLite database beside (never inside) the study design.

Every answer is committed as it is given (WAL journal, so readers answering at once wait on each
other for milliseconds instead of failing). Tokens are stored only as SHA-256 hashes: the database
alone opens no reader's page. The database remembers the study it belongs to and refuses another.

Every write checks the reader's state (grade entered, not submitted) inside its own write
transaction (``BEGIN IMMEDIATE``), never from an earlier read: once ``submit`` has committed, no
answer changes, whatever request was already under way; and closing a screen fills only the
positions still without a call, so it never overwrites a tick that got there first.
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


class Refused(Exception):
    """A write the reader's state does not allow (already submitted, no grade yet, screens left);
    the message says why, for the reader (the app answers 409)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AnswersDB:
    """The answers database of one study; a connection per call, so it is safe from any thread.

    ``busy_timeout``: seconds a write waits for another writer before failing with
    ``sqlite3.OperationalError`` ("database is locked")."""

    def __init__(self, path: str | Path, study_id: str, busy_timeout: float = 30.0):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        if self.path.exists() and self.path.stat().st_nlink > 1:
            # DVC links tracked files into its cache (cache.type hardlink): a write would change the cache
            raise InputError(f"{self.path}: is a hard link (a DVC-tracked file checked out from the cache); "
                             f"run `dvc unprotect {self.path}` before the app writes to it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('study_id', ?)", (study_id,))
            stored = db.execute("SELECT value FROM meta WHERE key = 'study_id'").fetchone()[0]
        finally:
            db.close()
        if stored != study_id:
            raise InputError(f"{self.path}: holds answers to study {stored}, not to this design ({study_id}); "
                             "give the app another --answers file")
        self.study_id = study_id

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a committed answer survives an app crash
        return db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken before its first read: no other writer runs until it ends."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @staticmethod
    def _open_for_answers(db: sqlite3.Connection, reader: Reader) -> None:
        """Refused unless ``reader`` has entered a grade and not submitted, as the database says now."""
        grade, submitted_at = db.execute("SELECT grade, submitted_at FROM readers WHERE id = ?",
                                         (reader.id,)).fetchone()
        if submitted_at is not None:
            raise Refused("answers already submitted")
        if grade is None:
            raise Refused("enter your grade first")

    def add_reader(self, grade: str | None = None, kind: str = "human") -> str:
        """A new reader; returns their secret token (shown once, stored only as a hash)."""
        if grade is not None and grade not in GRADES:
            raise InputError(f"grade {grade!r}: expected one of {', '.join(GRADES)}")
        token = secrets.token_urlsafe(24)
        with self._transaction() as db:
            db.execute("INSERT INTO readers (token_sha256, kind, grade, created_at) VALUES (?, ?, ?, ?)",
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
        """Enter the reader's grade; Refused once submitted or once another grade was entered."""
        if grade not in GRADES:
            raise InputError(f"grade {grade!r}: expected one of {', '.join(GRADES)}")
        with self._transaction() as db:
            stored, submitted_at = db.execute("SELECT grade, submitted_at FROM readers WHERE id = ?",
                                              (reader.id,)).fetchone()
            if submitted_at is not None:
                raise Refused("answers already submitted")
            if stored is not None and stored != grade:
                raise Refused("grade already entered")
            db.execute("UPDATE readers SET grade = ? WHERE id = ?", (grade, reader.id))

    def answer(self, reader: Reader, screen: int, choices: dict[int, bool]) -> None:
        """Store (or change) the reader's calls on ``screen`` (position -> called real) in one
        transaction; Refused when the reader has submitted or has no grade."""
        with self._transaction() as db:
            self._open_for_answers(db, reader)
            now = time.time()
            db.executemany("INSERT INTO answers VALUES (?, ?, ?, ?, ?) ON CONFLICT (reader_id, screen, position) "
                           "DO UPDATE SET called_real = excluded.called_real, answered_at = excluded.answered_at",
                           [(reader.id, screen, p, int(v), now) for p, v in choices.items()])

    def close_screen(self, reader: Reader, screen: int, positions: int, pair: bool) -> None:
        """The reader is done with ``screen``: every position still without a call is called generated
        (a grid film left unticked) and the screen is marked done, in one transaction. Refused for a
        pair without a choice, or when the reader may not answer."""
        with self._transaction() as db:
            self._open_for_answers(db, reader)
            now = time.time()
            (answered,) = db.execute("SELECT COUNT(*) FROM answers WHERE reader_id = ? AND screen = ?",
                                     (reader.id, screen)).fetchone()
            if pair and answered < positions:
                raise Refused("choose the real film of the pair first")
            db.executemany("INSERT INTO answers VALUES (?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
                           [(reader.id, screen, p, now) for p in range(positions)])
            db.execute("INSERT OR IGNORE INTO screens_done VALUES (?, ?, ?)", (reader.id, screen, now))

    def submit(self, reader: Reader, screens: int) -> None:
        """Make the reader's answers final, once all ``screens`` are done; submitting twice is a
        no-op. Refused without a grade or with screens left."""
        with self._transaction() as db:
            grade, submitted_at = db.execute("SELECT grade, submitted_at FROM readers WHERE id = ?",
                                             (reader.id,)).fetchone()
            if submitted_at is not None:
                return
            if grade is None:
                raise Refused("enter your grade first")
            (done,) = db.execute("SELECT COUNT(*) FROM screens_done WHERE reader_id = ? AND screen < ?",
                                 (reader.id, screens)).fetchone()
            if done < screens:
                raise Refused("some screens are not answered yet")
            db.execute("UPDATE readers SET submitted_at = ? WHERE id = ?", (time.time(), reader.id))

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
        """Screens the reader has closed (pressed Next on)."""
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


def human_answers(path: str | Path, study_id: str) -> list[tuple]:
    """Rows of ``read_answers`` given by the human readers who submitted, in the database at ``path``
    (none when it does not exist); InputError when it holds answers to another study than ``study_id``."""
    path = Path(path)
    if not path.exists():
        return []
    answered, rows = read_answers(path)
    if answered != study_id:
        raise InputError(f"{path}: answers to study {answered}, but the design is now study {study_id} "
                         "(the films changed upstream); move the file away or set reader_study.answers")
    return [row for row in rows if row[1] == "human"]
