"""Make a SQLite database one self-contained file before DVC hashes it.

In WAL mode recent commits live in ``<db>-wal`` until a checkpoint copies them into the database
file; a copy of the database file alone would miss them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cxrsynth.errors import InputError

SQLITE_MAGIC = b"SQLite format 3\x00"


def is_sqlite(path: Path) -> bool:
    """Whether ``path`` starts with SQLite's file header."""
    with open(path, "rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def fold_wal(path: Path) -> None:
    """Checkpoint ``path``'s write-ahead log into it (``PRAGMA wal_checkpoint(TRUNCATE)``) and leave it
    in rollback-journal mode; the last connection closing then deletes ``-wal`` and ``-shm``. Refuses, in one line, a database that
    another connection holds open: best effort, since an app that opens a connection per request
    (the reader-study server) holds none while idle, so stop the server first."""
    path = Path(path)
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        # In exclusive locking mode the lock is kept after the transaction; any other open
        # connection to a WAL database holds a shared lock that makes this fail at once.
        probe.execute("PRAGMA locking_mode=EXCLUSIVE")
        probe.execute("BEGIN EXCLUSIVE")
        probe.execute("COMMIT")
    except sqlite3.OperationalError as err:
        raise InputError(f"{path}: in use by another process ({err}); stop the reader-study server first") from err
    finally:
        probe.close()
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            # a rollback-journal database reads from a read-only copy (a --temp run's); the app
            # switches it back to WAL when it opens it again
            db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()
    wal = path.with_name(path.name + "-wal")
    if busy or (wal.exists() and wal.stat().st_size):
        raise InputError(f"{path}: its write-ahead log could not be folded in; stop the reader-study server first")
