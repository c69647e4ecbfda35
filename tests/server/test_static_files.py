"""Static files gzipped once per version: the same bytes as the file once decompressed, the
file compressed once however many ask, again when it changes; 304, ranges, small files and
clients that take no gzip as StaticFiles does them."""

from __future__ import annotations

import gzip
import os

from starlette.applications import Starlette
from starlette.routing import Mount

from server.static_files import CompressedStaticFiles
from tests.server.conftest import TestClient


def serve(directory):
    files = CompressedStaticFiles(directory=directory, level=6, min_bytes=1024)
    calls = []
    compress = files._compress
    files._compress = lambda path: calls.append(path) or compress(path)
    client = TestClient(Starlette(routes=[Mount("/static", files)]))
    return client, files, calls


def raw(client, path, **headers):
    with client.stream("GET", path, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def test_a_script_is_gzipped_once_and_again_when_it_changes(tmp_path):
    script = tmp_path / "app.js"
    script.write_text("export const answer = 42;\n" * 200)
    client, files, calls = serve(tmp_path)
    for _ in range(3):
        response, body = raw(client, "/static/app.js", **{"Accept-Encoding": "gzip, br"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["content-type"].startswith(("text/javascript",
                                                             "application/javascript"))
        assert int(response.headers["content-length"]) == len(body) < 200
        assert gzip.decompress(body) == script.read_bytes()
    assert len(calls) == 1 and len(files.gzipped) == 1
    etag = response.headers["etag"]
    assert client.get("/static/app.js", headers={"If-None-Match": etag}).status_code == 304

    script.write_text("export const answer = 43;\n" * 300)
    os.utime(script, (1, 1))
    response, body = raw(client, "/static/app.js", **{"Accept-Encoding": "gzip"})
    assert gzip.decompress(body) == script.read_bytes() and len(calls) == 2
    assert len(files.gzipped) == 1


def test_what_gzip_would_not_help_goes_as_it_is(tmp_path):
    (tmp_path / "small.css").write_text("body { margin: 0 }\n")
    (tmp_path / "big.css").write_text("p { color: red }\n" * 500)
    (tmp_path / "image.png").write_bytes(b"\x89PNG" + bytes(5000))
    client, files, calls = serve(tmp_path)
    for path, headers in (("/static/small.css", {"Accept-Encoding": "gzip"}),
                          ("/static/image.png", {"Accept-Encoding": "gzip"}),
                          ("/static/big.css", {"Accept-Encoding": "identity"}),
                          ("/static/big.css", {"Accept-Encoding": "gzip",
                                               "Range": "bytes=0-99"})):
        response, body = raw(client, path, **headers)
        assert "content-encoding" not in response.headers, path
        assert len(body) == int(response.headers["content-length"]), path
    assert not calls and not files.gzipped
    assert client.get("/static/missing.js").status_code == 404
