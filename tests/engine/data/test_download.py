import hashlib
import io
import os
import random
import socket
import time

import pytest

from engine.data.download import DownloadError, StderrProgress, download_file

# the same bytes in every process: the md5 names a parametrised test, and pytest-xdist's
# workers must collect the same names
BODY = random.Random(17).randbytes(3 * 1024 * 1024 + 17)
MD5 = hashlib.md5(BODY).hexdigest()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_verifies_and_reports_progress(tmp_path, http_server):
    http_server.files["/a.bin"] = BODY
    calls = []
    target = download_file(http_server.url("/a.bin"), tmp_path / "d" / "a.bin", MD5,
                           progress=lambda done, total: calls.append((done, total)))
    assert target.read_bytes() == BODY
    assert calls[-1] == (len(BODY), len(BODY)) and len(calls) == 4   # 1 MiB reads
    assert os.listdir(tmp_path / "d") == ["a.bin"]


@pytest.mark.parametrize("path, md5, message", [
    ("/a.bin", "0" * 32, "has md5 .*, expected 0{32}; it was not kept"),
    ("/missing.bin", MD5, "answered 404"),
    ("/short.bin", MD5, "connection closed|download failed"),
])
def test_failed_downloads_leave_nothing_behind(tmp_path, http_server, path, md5, message):
    http_server.files["/a.bin"] = http_server.files["/short.bin"] = BODY
    http_server.short.add("/short.bin")
    with pytest.raises(DownloadError, match=message):
        download_file(http_server.url(path), tmp_path / "a.bin", md5)
    assert os.listdir(tmp_path) == []


def test_unreachable_server_fails_fast(tmp_path):
    started = time.monotonic()
    with pytest.raises(DownloadError, match="cannot connect"):
        download_file(f"http://127.0.0.1:{closed_port()}/a.bin", tmp_path / "a.bin", MD5,
                      timeout=2)
    assert time.monotonic() - started < 2
    assert os.listdir(tmp_path) == []


def test_only_http_urls(tmp_path):
    with pytest.raises(DownloadError, match="only http"):
        download_file("file:///etc/passwd", tmp_path / "a", MD5)


def test_stderr_progress_prints_tenths_when_not_a_terminal():
    stream = io.StringIO()
    progress = StderrProgress("downloading x", stream)
    for done in range(0, 101, 5):
        progress(done, 100)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("downloading x: 100% 0.0/0.0 MB")
