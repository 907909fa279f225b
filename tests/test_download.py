"""The NIH download path against a fault-injecting HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import validate_params

from cxrsynth.config.data import NIHParams
from cxrsynth.data.metadata import NIH_HEADER_LINE
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
    """Serves ``files`` (path → bytes) with Range support (416 for a range past the end); ``faults`` (path → list)
    are consumed per request: 'drop' sends half the body then closes, '503' answers 503, 'corrupt' flips a byte,
    'nolength' sends the body without Content-Length (ended by closing), 'nolength-drop' half of it so."""

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
                if start >= len(body) > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                part = body[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                if fault in ("nolength", "nolength-drop"):
                    self.end_headers()
                    self.wfile.write(part if fault == "nolength" else part[: len(part) // 2])
                    self.close_connection = True
                    return
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
    files["/meta/Data_Entry_2017_v2020.csv"] = data_entry(20)
    files["/meta/test_list.txt"] = b"00000001_000.png\n00000002_000.png"
    monkeypatch.setitem(nih.METADATA_ROWS, ENTRY, 20)
    monkeypatch.setitem(nih.METADATA_ROWS, "test_list.txt", 2)
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
    checks = json.loads((tmp_path / "raw" / nih.METADATA_CHECKS_NAME).read_text())
    assert checks[ENTRY]["bytes"] == len(files[f"/meta/{ENTRY}"])
    assert "20 rows" in checks[ENTRY]["checked"] and "no checksum" in checks[ENTRY]["checked"]


def test_archive_table_matches_reference():
    assert len(nih.ARCHIVES) == 12
    assert sum(a.images for a in nih.ARCHIVES) == 112_120
    assert nih.ARCHIVES[0].md5 == "fe8ed0a6961412fddcbb3603c11b3698"
    assert nih.ARCHIVES[0].url("https://x/y") == "https://x/y/vfk49d74nhbxq3nqjg0900w5nvkorp5c.gz"
    assert [a.name for a in nih.selected_archives(NIHParams(archives=[3, 1]))] == ["images_001.tar.gz", "images_003.tar.gz"]


# --- metadata files: NIH publishes no checksum for them, so length and a parse check guard them

ENTRY = "Data_Entry_2017_v2020.csv"
ROOT = Path(__file__).parents[1]


def data_entry(n: int) -> bytes:
    """NIH's header and ``n`` well-formed rows, one patient each."""
    rows = [f"{i + 1:08d}_000.png,No Finding,0,{i + 1},40,M,PA,1024,1024,0.143,0.143" for i in range(n)]
    return ("\n".join([NIH_HEADER_LINE, *rows]) + "\n").encode()


@pytest.fixture
def release_of_20(monkeypatch):
    """NIH's release as this module's tests serve it: a Data_Entry table of 20 rows."""
    monkeypatch.setitem(nih.METADATA_ROWS, ENTRY, 20)


def metadata_params(server: FaultyServer) -> NIHParams:
    return NIHParams(metadata_url=f"{server.url}/meta", retries=2, backoff_s=0.0, timeout_s=5.0)


@pytest.mark.parametrize("cut", ["at a line end", "mid-line"])
def test_truncated_data_entry_is_refused_naming_it(tmp_path, release_of_20, cut):
    whole = data_entry(20)
    end = whole.index(b"\n", len(whole) // 2) + 1 if cut == "at a line end" else len(whole) // 2
    with FaultyServer({f"/meta/{ENTRY}": whole[:end]}) as server:  # sent with its own, matching Content-Length
        with pytest.raises(DownloadError, match=rf"^{ENTRY}: .*truncated"):
            nih.fetch_metadata(metadata_params(server), tmp_path)
    assert not (tmp_path / ENTRY).exists() and not (tmp_path / f"{ENTRY}.part").exists()
    assert len(server.requests) == 1  # the server's length matched: a wrong file, not a cut transfer


def test_data_entry_cut_without_content_length_is_fetched_again(tmp_path, release_of_20):
    path = f"/meta/{ENTRY}"
    with FaultyServer({path: data_entry(20)}, {path: ["nolength-drop"]}) as server:
        written = nih.fetch_metadata(metadata_params(server), tmp_path)
    assert (tmp_path / ENTRY).read_bytes() == data_entry(20) and [p for p, _ in server.requests].count(path) == 2
    assert "20 rows" in written[ENTRY]["checked"]


def test_data_entry_always_cut_without_content_length_fails(tmp_path, release_of_20):
    path = f"/meta/{ENTRY}"
    with FaultyServer({path: data_entry(20)}, {path: ["nolength-drop"] * 3}) as server:
        with pytest.raises(DownloadError, match=rf"^{ENTRY}: download .* failed after 3 attempts: .*without a length"):
            nih.fetch_metadata(metadata_params(server), tmp_path)
    assert not (tmp_path / ENTRY).exists()


def test_body_without_length_or_checksum_is_refused(tmp_path):
    with FaultyServer({"/a.gz": BODY}, {"/a.gz": ["nolength-drop"]}) as server:
        with pytest.raises(DownloadError, match="a.bin: .* no Content-Length and no checksum"):
            download(f"{server.url}/a.gz", tmp_path / "a.bin", None, **FAST)
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()


def test_body_without_length_is_checked_by_md5(tmp_path):
    with FaultyServer({"/a.gz": BODY}, {"/a.gz": ["nolength-drop", "nolength"]}) as server:
        out = download(f"{server.url}/a.gz", tmp_path / "a.bin", MD5, **FAST)
    assert out.read_bytes() == BODY and len(server.requests) == 2


@pytest.mark.parametrize("stale_bytes", [len(BODY) + 1000, len(BODY)])
def test_stale_part_answered_416_is_not_taken_as_whole(tmp_path, stale_bytes):
    """A part left from another version of the file: longer than the file (416 with another size)
    is restarted at once; as long as it (416 with its size) is judged by ``verify`` and fetched again."""
    (tmp_path / "a.bin.part").write_bytes(b"s" * stale_bytes)

    def verify(part):
        if part.read_bytes() != BODY:
            raise DownloadError("a.bin: not the file")

    with FaultyServer({"/a.gz": BODY}) as server:
        out = download(f"{server.url}/a.gz", tmp_path / "a.bin", None, verify=verify, **FAST)
    assert out.read_bytes() == BODY
    assert [r for _, r in server.requests] == [f"bytes={stale_bytes}-", None]


def test_stale_part_answered_416_without_a_check_is_restarted(tmp_path):
    (tmp_path / "a.bin.part").write_bytes(b"s" * (len(BODY) + 1000))
    with FaultyServer({"/a.gz": BODY}) as server:
        out = download(f"{server.url}/a.gz", tmp_path / "a.bin", None, **FAST)
    assert out.read_bytes() == BODY


def test_stale_data_entry_part_is_replaced(tmp_path, release_of_20):
    (tmp_path / f"{ENTRY}.part").write_bytes(data_entry(40))  # an earlier, longer file
    with FaultyServer({f"/meta/{ENTRY}": data_entry(20)}) as server:
        nih.fetch_metadata(metadata_params(server), tmp_path)
    assert (tmp_path / ENTRY).read_bytes() == data_entry(20)


def test_metadata_dir_copy_is_checked(tmp_path, release_of_20):
    (tmp_path / "nih").mkdir()
    (tmp_path / "nih" / ENTRY).write_bytes(data_entry(19))
    (tmp_path / "raw").mkdir()
    with pytest.raises(DownloadError, match=rf"nih/{ENTRY}: 19 rows, NIH's release has 20"):
        nih.fetch_metadata(NIHParams(metadata_dir=str(tmp_path / "nih")), tmp_path / "raw")


def test_real_metadata_pass_the_check(tmp_path):
    """torchxrayvision's copies of NIH's v2020 table and box list are NIH's release."""
    (tmp_path / "raw").mkdir()
    written = nih.fetch_metadata(NIHParams(), tmp_path / "raw")
    assert "112,120 rows" in written[ENTRY]["checked"] and "984 boxes" in written["BBox_List_2017.csv"]["checked"]


def test_without_torchxrayvision_the_metadata_error_names_the_nih_extra(tmp_path, monkeypatch):
    """No metadata_dir, no metadata_url and no torchxrayvision (the ``nih`` extra not installed):
    one line says how to get the table, the extra included."""
    monkeypatch.setattr(nih, "torchxrayvision_data_dir", lambda: None)
    with pytest.raises(DownloadError, match=r'^Data_Entry_2017_v2020\.csv: not found; .*pip install "cxrsynth\[nih\]"') as err:
        nih.fetch_metadata(NIHParams(), tmp_path)
    assert "\n" not in str(err.value) and not list(tmp_path.iterdir())


def test_download_stage_stops_in_one_line_on_a_truncated_data_entry(tmp_path):
    """NIH's real table cut in half, from a local mirror: the stage exits 1 with one line, writes nothing."""
    from cxrsynth.metadata_source import torchxrayvision_table

    whole = gzip.decompress(torchxrayvision_table().read_bytes())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    with FaultyServer({f"/meta/{ENTRY}": whole[: len(whole) // 2]}) as server:
        params["data"].update(source="nih", labels="nih")
        params["data"]["nih"].update(metadata_url=f"{server.url}/meta", retries=0)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        validate_params(tmp_path)
        cmd = [sys.executable, str(ROOT / "stages" / "download.py"), "--out", "raw", "--downloads", "downloads"]
        result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr[-2000:]
    assert errors[0].startswith(f"error: {ENTRY}: ")
    assert "truncated" in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "raw").exists()
