"""``python -m cxrsynth.inputs`` against an HTTP server on 127.0.0.1 and a temporary git + DVC repository:
fetch verifies before it places a file and ``dvc add``s it; track checks known files and folds SQLite's WAL."""

from __future__ import annotations

import bz2
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import ROOT

from cxrsynth.inputs.__main__ import main
from cxrsynth.inputs.fetch import mirrored
from cxrsynth.inputs.manifest import MANIFEST, Checksum, Input, Packed, hub_checksum
from cxrsynth.inputs.pointers import read_pointer

TINY = bytes(range(256)) * 64
TINY_NAME = f"tiny-{hashlib.sha256(TINY).hexdigest()[:8]}.pth"  # torch hub's naming: the SHA-256's first 8 hex
LABELS = b'{"train": [["images/00000001_000.png", ["car"], 58, "M"]], "validation": [], "test": []}'


def _wheel(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(member, bz2.compress(data))
    return buffer.getvalue()


WHEEL = _wheel("pkg/data/default.json.bz2", LABELS)
HUB = (hub_checksum(TINY_NAME, "the test's file name"),)
ENTRIES = (
    Input("tiny", f"weights/tiny/{TINY_NAME}", f"https://models.example.org/models/{TINY_NAME}", HUB),
    Input("corrupt", f"weights/tiny/{TINY_NAME}", f"https://models.example.org/corrupt/{TINY_NAME}", HUB),
    Input("truncated", f"weights/cut/{TINY_NAME}", f"https://models.example.org/cut/{TINY_NAME}", HUB),
    Input("labels", "labels/chexnext/default.json", "https://files.example.org/pkg/pkg-1.0-py3-none-any.whl",
          (Checksum("sha256", hashlib.sha256(LABELS).hexdigest(), "the test"),),
          Packed("pkg/data/default.json.bz2", (Checksum("sha256", hashlib.sha256(WHEEL).hexdigest(), "the test"),),
                 decompress="bz2")),
    Input("answers", "reader_answers/answers.sqlite", None),
)


class Server:
    """Serves ``routes`` (path -> (body, Content-Length sent)); a length above the body's is a
    connection closed early. Counts requests per path."""

    def __init__(self, routes: dict[str, tuple[bytes, int]]):
        self.routes, self.hits = routes, {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body, length = outer.routes.get(self.path, (b"", 0))
                self.send_response(200 if self.path in outer.routes else 404)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)
                if length > len(body):
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    corrupt = bytes([TINY[0] ^ 0xFF]) + TINY[1:]
    served = Server({f"/models/{TINY_NAME}": (TINY, len(TINY)), f"/corrupt/{TINY_NAME}": (corrupt, len(corrupt)),
                     f"/cut/{TINY_NAME}": (TINY[:1000], len(TINY)),
                     "/pkg/pkg-1.0-py3-none-any.whl": (WHEEL, len(WHEEL))})
    yield served
    served.close()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git + DVC repository with this project's .gitignore and cache links."""
    from dvc.repo import Repo

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    Repo.init(str(tmp_path)).close()
    with open(tmp_path / ".dvc" / "config", "a") as config:
        config.write('[cache]\n    type = "reflink,hardlink,copy"\n')
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` on the test's entries: exit code, stdout, and stderr's ``error:`` lines (not the
    download's progress bar)."""
    try:
        main(list(argv), ENTRIES)
        code = 0
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error:")]
    return code, out, "\n".join(errors) + ("\n" if errors else "")


def dvc_status(repo: Path) -> dict:
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        return dvc.status()


def git_ignored(repo: Path, path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=repo).returncode == 0


def test_fetch_verifies_places_and_tracks_then_skips(repo, server, capsys):
    code, out, err = run(capsys, "fetch", "tiny", "--root", str(repo), "--base-url", server.url)
    assert code == 0, err
    dest = repo / ENTRIES[0].path
    assert dest.read_bytes() == TINY and not dest.with_name(dest.name + ".part").exists()
    pointer = f"{ENTRIES[0].path}.dvc"
    assert read_pointer(dest)["md5"] == hashlib.md5(TINY).hexdigest()
    assert read_pointer(dest)["desc"].startswith(f"verified: sha256-prefix {TINY_NAME[5:13]}")
    assert f"git add {os.path.relpath(repo / pointer)}" in out
    assert git_ignored(repo, ENTRIES[0].path) and not git_ignored(repo, pointer)
    assert dvc_status(repo) == {}
    code, out, _ = run(capsys, "fetch", "tiny", "--root", str(repo), "--base-url", server.url)
    assert code == 0 and "already present" in out
    assert server.hits == {f"/models/{TINY_NAME}": 1}


def test_checksum_mismatch_places_nothing_and_keeps_the_file_there(repo, server, capsys):
    dest = repo / ENTRIES[1].path
    code, out, err = run(capsys, "fetch", "corrupt", "--root", str(repo), "--base-url", server.url)
    assert code == 1 and len(err.splitlines()) == 1
    assert ENTRIES[1].path in err and f"expected {TINY_NAME[5:13]}" in err and "got " in err
    assert list(dest.parent.iterdir()) == []  # no file, no .part
    assert server.hits[f"/corrupt/{TINY_NAME}"] == 1  # a wrong file is not retried
    dest.write_bytes(b"a stand-in")
    code, _, err = run(capsys, "fetch", "corrupt", "--root", str(repo), "--base-url", server.url)
    assert code == 1 and dest.read_bytes() == b"a stand-in" and list(dest.parent.iterdir()) == [dest]
    assert run(capsys, "fetch", "tiny", "--root", str(repo), "--base-url", server.url)[0] == 0
    assert dest.read_bytes() == TINY  # the published file replaces the stand-in
    code, out, _ = run(capsys, "fetch", "corrupt", "--root", str(repo), "--base-url", server.url)
    assert code == 0 and "already present" in out and dest.read_bytes() == TINY
    assert server.hits[f"/corrupt/{TINY_NAME}"] == 2  # a verified file is not downloaded again


def test_truncated_body_is_refused(repo, server, capsys):
    code, _, err = run(capsys, "fetch", "truncated", "--retries", "0", "--root", str(repo), "--base-url", server.url)
    assert code == 1 and len(err.splitlines()) == 1 and TINY_NAME in err
    assert not (repo / ENTRIES[2].path).exists()


def test_fetch_extracts_a_verified_member_of_a_package(repo, server, capsys):
    code, out, err = run(capsys, "fetch", "labels", "--root", str(repo), "--base-url", server.url)
    assert code == 0, err
    assert (repo / "labels/chexnext/default.json").read_bytes() == LABELS
    assert not any((repo / ".dvc" / "tmp" / "inputs").iterdir())  # the package is not kept
    assert not git_ignored(repo, "labels/chexnext/default.json.dvc") and dvc_status(repo) == {}


def test_unknown_name_and_nothing_to_fetch_are_one_line_errors(repo, capsys):
    code, _, err = run(capsys, "fetch", "nope", "--root", str(repo))
    assert code == 1 and err.startswith("error: unknown input 'nope'")
    code, _, err = run(capsys, "fetch", "answers", "--root", str(repo))
    assert code == 1 and "track reader_answers/answers.sqlite" in err


def test_track_refuses_a_mismatch_unless_unverified(repo, capsys):
    dest = repo / ENTRIES[0].path
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"a stand-in")
    code, _, err = run(capsys, "track", str(dest), "--root", str(repo))
    assert code == 1 and "--unverified" in err and not dest.with_name(dest.name + ".dvc").exists()
    link = repo / "weights" / "tiny" / "link.pth"
    link.symlink_to(dest)
    code, _, err = run(capsys, "track", str(link), "--root", str(repo))
    assert code == 1 and "a link" in err
    link.unlink()
    code, out, err = run(capsys, "track", str(dest), "--unverified", "--root", str(repo))
    assert code == 0, err
    assert "UNVERIFIED" in out and read_pointer(dest)["desc"].startswith("UNVERIFIED")
    code, out, _ = run(capsys, "status", "--root", str(repo))
    assert code == 0
    row = next(line.split() for line in out.splitlines() if line.startswith("tiny "))
    assert row[1:4] == ["yes", "no", "yes"]  # present, not verified, tracked


def _answers_with_wal(path: Path) -> sqlite3.Connection:
    """A WAL database whose rows are still in its -wal file; the connection is left open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE answers (reader TEXT, film INTEGER)")
    db.executemany("INSERT INTO answers VALUES (?, ?)", [("r1", i) for i in range(50)])
    return db


def test_track_folds_the_wal_of_an_answers_database(repo, tmp_path, capsys):
    served = tmp_path / "server" / "answers.sqlite"
    db = _answers_with_wal(served)
    answers = repo / "reader_answers" / "answers.sqlite"
    answers.parent.mkdir()
    for suffix in ("", "-wal"):  # what a crashed server leaves: the rows are in the -wal file
        shutil.copy(f"{served}{suffix}", f"{answers}{suffix}")
    db.close()
    assert (repo / "reader_answers" / "answers.sqlite-wal").stat().st_size > 0
    code, out, err = run(capsys, "track", str(answers), "--root", str(repo))
    assert code == 0, err
    assert sorted(p.name for p in answers.parent.iterdir()) == ["answers.sqlite", "answers.sqlite.dvc"]
    alone = tmp_path / "alone.sqlite"
    shutil.copy(answers, alone)  # the database file by itself holds every row
    assert sqlite3.connect(alone).execute("SELECT count(*) FROM answers").fetchone() == (50,)
    assert git_ignored(repo, "reader_answers/answers.sqlite")
    assert not git_ignored(repo, "reader_answers/answers.sqlite.dvc")
    assert dvc_status(repo) == {}
    assert answers.stat().st_nlink == 1  # a copy, not a link into the cache: the server may write it again
    sqlite3.connect(answers, isolation_level=None).execute("INSERT INTO answers VALUES ('r2', 0)").connection.close()
    md5 = read_pointer(answers)["md5"]
    cached = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert hashlib.md5(cached.read_bytes()).hexdigest() == md5  # the tracked version is untouched


def test_track_refuses_a_database_held_open(repo, capsys):
    answers = repo / "reader_answers" / "answers.sqlite"
    db = _answers_with_wal(answers)
    try:
        code, _, err = run(capsys, "track", str(answers), "--root", str(repo))
    finally:
        db.close()
    assert code == 1 and "in use" in err and not (repo / "reader_answers" / "answers.sqlite.dvc").exists()


def test_manifest_checksums_are_sourced_and_hub_prefixes_follow_torch_hub():
    from torch.hub import HASH_REGEX

    from cxrsynth.inputs.manifest import HUB_HASH_REGEX

    assert HUB_HASH_REGEX.pattern == HASH_REGEX.pattern
    assert {e.name for e in MANIFEST} >= {"densenet121", "resnet18", "inception", "chexnext"}
    for entry in MANIFEST:
        for checksum in entry.checksums + (entry.packed.checksums if entry.packed else ()):
            assert checksum.source
            if checksum.kind == "sha256-prefix":
                assert checksum.value == HASH_REGEX.search(Path(entry.url).name).group(1) == HASH_REGEX.search(
                    Path(entry.path).name).group(1)
    assert all(e.checksums for e in MANIFEST if e.url)


def test_base_url_replaces_scheme_and_host():
    url = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert mirrored(url, "http://127.0.0.1:8000/") == "http://127.0.0.1:8000/models/resnet18-f37072fd.pth"
    assert mirrored(url, "http://mirror.lan/cache") == "http://mirror.lan/cache/models/resnet18-f37072fd.pth"
    assert mirrored(url, None) == url
