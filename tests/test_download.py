"""The NIH download path against a fault-injecting HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cxrsynth.config.data import NIHParams
from cxrsynth.data.sources import nih
from cxrsynth.data.sources.manifest import (
    UnsafeArchiveError,
    archive_members,
    read_manifest,
)
from cxrsynth.data.sources.nih import Archive, DownloadError, download


def make_tar(members: dict[str, bytes], *, extra: list[tarfile.TarInfo] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buffer.getvalue()


class FaultyServer:
    """Serves ``files`` (path → bytes) with Range support; ``faults`` (path → list) are consumed per request:
    'drop' sends half the body then closes, '503' answers 503, 'corrupt' flips a byte."""

    def __init__(self, files: dict[str, bytes], faults: dict[str, list[str]] | None = None):
        self.files, self.faults = files, faults or {}
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                fault = outer.faults.get(self.path, []).pop(0) if outer.faults.get(self.path) else None
                if fault == "503":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "corrupt":
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                part = body[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if fault == "drop":
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


BODY = bytes(range(256)) * 400  # 100 KiB
MD5 = hashlib.md5(BODY).hexdigest()
FAST = dict(retries=3, backoff_s=0.0, timeout_s=5.0, chunk_bytes=4096)


def test_resumes_with_range_after_connection_drop(tmp_path):
    with FaultyServer({"/a.gz": BODY}, {"/a.gz": ["drop"]}) as server:
        out = download(f"{server.url}/a.gz", tmp_path / "a.tar.gz", MD5, **FAST)
    assert out.read_bytes() == BODY
    ranges = [r for _, r in server.requests]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1].split("=")[1].rstrip("-")) > 0  # resumed, not restarted
    assert not (tmp_path / "a.tar.gz.part").exists()


def test_retries_after_503(tmp_path):
    with FaultyServer({"/a.gz": BODY}, {"/a.gz": ["503", "503"]}) as server:
        out = download(f"{server.url}/a.gz", tmp_path / "a.tar.gz", MD5, **FAST)
    assert out.read_bytes() == BODY and len(server.requests) == 3


def test_corrupt_body_rejected_by_md5(tmp_path):
    with FaultyServer({"/a.gz": BODY}, {"/a.gz": ["corrupt"] * 10}) as server:
        with pytest.raises(DownloadError, match="MD5 mismatch"):
            download(f"{server.url}/a.gz", tmp_path / "a.tar.gz", MD5, **FAST)
    assert not (tmp_path / "a.tar.gz").exists() and not (tmp_path / "a.tar.gz.part").exists()


def test_corrupt_once_then_good_is_accepted(tmp_path):
    with FaultyServer({"/a.gz": BODY}, {"/a.gz": ["corrupt"]}) as server:
        out = download(f"{server.url}/a.gz", tmp_path / "a.tar.gz", MD5, **FAST)
    assert out.read_bytes() == BODY


def test_404_is_fatal_without_retries(tmp_path):
    with FaultyServer({}) as server:
        with pytest.raises(DownloadError, match="HTTP 404"):
            download(f"{server.url}/missing.gz", tmp_path / "m.tar.gz", MD5, **FAST)
    assert len(server.requests) == 1


def test_verified_archive_is_skipped(tmp_path):
    with FaultyServer({"/a.gz": BODY}) as server:
        download(f"{server.url}/a.gz", tmp_path / "a.tar.gz", MD5, **FAST)
        download(f"{server.url}/a.gz", tmp_path / "a.tar.gz", MD5, **FAST)
    assert len(server.requests) == 1


def test_dotdot_member_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(make_tar({"images/00000001_000.png": b"x", "../escape.txt": b"boom"}))
    with pytest.raises(UnsafeArchiveError, match=r"evil.tar.gz: .*'\.\.'"):
        archive_members(archive)
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize(
    "kind, pattern",
    [(tarfile.SYMTYPE, "link"), (tarfile.LNKTYPE, "link"), (tarfile.CHRTYPE, "special"), (tarfile.FIFOTYPE, "special")],
)
def test_links_and_devices_refused(tmp_path, kind, pattern):
    info = tarfile.TarInfo("images/odd")
    info.type = kind
    info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    archive = tmp_path / "odd.tar.gz"
    archive.write_bytes(make_tar({"images/00000001_000.png": b"x"}, extra=[info]))
    with pytest.raises(UnsafeArchiveError, match=pattern):
        archive_members(archive)


def test_absolute_member_refused(tmp_path):
    archive = tmp_path / "abs.tar.gz"
    archive.write_bytes(make_tar({"/tmp/evil.png": b"x"}))
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        archive_members(archive)


def test_download_nih_end_to_end(tmp_path, monkeypatch):
    """Two small archives + metadata from a local mirror, with a drop and a 503 on the way."""
    tars = {
        1: make_tar({"images/00000001_000.png": b"one", "images/00000001_001.png": b"two"}),
        2: make_tar({"images/00000002_000.png": b"three"}),
    }
    fake = tuple(Archive(n, f"id{n}", hashlib.md5(data).hexdigest(), 2) for n, data in tars.items())
    monkeypatch.setattr(nih, "ARCHIVES", fake)
    files = {f"/id{n}.gz": data for n, data in tars.items()}
    files["/meta/Data_Entry_2017_v2020.csv"] = b"header\n"
    files["/meta/test_list.txt"] = b"00000002_000.png"
    faults = {"/id1.gz": ["drop"], "/id2.gz": ["503"]}
    with FaultyServer(files, faults) as server:
        params = NIHParams(base_url=server.url, archives=[1, 2], metadata_url=f"{server.url}/meta",
                           retries=2, backoff_s=0.0, timeout_s=5.0, chunk_kib=1)
        summary = nih.download_nih(params, tmp_path / "raw", tmp_path / "downloads")
    assert summary["films"] == 3
    assert not (tmp_path / "raw" / "images").exists()  # never extracted: the manifest points at the archives
    sources = read_manifest(tmp_path / "raw")
    assert [s.resolve(tmp_path / "raw") for s in sources] == [
        (tmp_path / "downloads" / f"images_00{n}.tar.gz").resolve() for n in (1, 2)]
    assert [s.images for s in sources] == [("00000001_000.png", "00000001_001.png"), ("00000002_000.png",)]
    assert [s.md5 for s in sources] == [a.md5 for a in fake]
    assert set(summary["metadata"]) == {"Data_Entry_2017_v2020.csv", "test_list.txt"}
    assert (tmp_path / "downloads" / "images_001.tar.gz.md5").exists()


def test_archive_table_matches_reference():
    assert len(nih.ARCHIVES) == 12
    assert sum(a.images for a in nih.ARCHIVES) == 112_120
    assert nih.ARCHIVES[0].md5 == "fe8ed0a6961412fddcbb3603c11b3698"
    assert nih.ARCHIVES[0].url("https://x/y") == "https://x/y/vfk49d74nhbxq3nqjg0900w5nvkorp5c.gz"
    assert [a.name for a in nih.selected_archives(NIHParams(archives=[3, 1]))] == ["images_001.tar.gz", "images_003.tar.gz"]
