"""Downloading from mirrors: verified, fallback, resume-safe. Served from a loopback HTTP server."""

import functools
import http.server
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.data import IDX_NAMES, KNOWN_CHECKSUMS, DataError
from mnistexp.experiment.download import ensure_dataset, gz_content_sha256


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support, counting requests per path."""

    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def mirror(shared_mnist):
    RangeHandler.requests = []
    handler = functools.partial(RangeHandler, directory=str(shared_mnist))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture
def dead_mirror():
    """A loopback port with nothing listening: connection refused at once."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/"


def test_download_falls_back_to_the_next_mirror_and_verifies(tmp_path, monkeypatch, mirror, dead_mirror):
    monkeypatch.setenv("MNISTEXP_MIRRORS", f"{dead_mirror},{mirror}")
    folder = ensure_dataset("mnist", tmp_path)
    for part, name in IDX_NAMES.items():
        assert gz_content_sha256(folder / (name + ".gz")) == KNOWN_CHECKSUMS["mnist"][part]
    assert not list(folder.glob("*.part"))
    # a second call finds the verified cache and fetches nothing
    count = len(RangeHandler.requests)
    ensure_dataset("mnist", tmp_path)
    assert len(RangeHandler.requests) == count


def test_partial_download_resumes_and_never_becomes_a_cached_file(tmp_path, monkeypatch, mirror, shared_mnist):
    monkeypatch.setenv("MNISTEXP_MIRRORS", mirror)
    folder = tmp_path / "mnist"
    folder.mkdir()
    name = "t10k-images-idx3-ubyte.gz"
    full = (shared_mnist / name).read_bytes()
    part = folder / (name + ".part")
    part.write_bytes(full[:1000])
    (folder / (name + ".part.url")).write_text(mirror + name)
    ensure_dataset("mnist", tmp_path)
    assert (folder / name).read_bytes() == full
    assert ("/" + name, "bytes=1000-") in RangeHandler.requests
    assert not part.exists()


def test_wrong_content_on_every_mirror_is_refused_and_not_cached(tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in IDX_NAMES.values():
        (bad / (name + ".gz")).write_bytes(b"\x1f\x8bnot really gzip")
    handler = functools.partial(RangeHandler, directory=str(bad))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MNISTEXP_MIRRORS", f"http://127.0.0.1:{server.server_address[1]}/")
        with pytest.raises(DataError) as info:
            ensure_dataset("mnist", tmp_path / "cache")
    finally:
        server.shutdown()
    assert "wrong checksum" in str(info.value) and "expected sha256" in str(info.value)
    assert not [p for p in (tmp_path / "cache" / "mnist").iterdir() if p.suffix == ".gz"]


def test_data_download_command(tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("MNISTEXP_MIRRORS", mirror)
    result = CliRunner().invoke(cli, ["data", "download", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "4 files verified" in result.output


def test_data_download_with_no_network_is_one_clear_line(tmp_path, monkeypatch, dead_mirror):
    monkeypatch.setenv("MNISTEXP_MIRRORS", dead_mirror)
    result = CliRunner().invoke(cli, ["data", "download", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: could not download train-images-idx3-ubyte.gz")
    assert "--data-dir" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("position", [20, -6])
def test_damaged_cached_gzip_counts_as_missing(tmp_path, position):
    """Flipped bytes (zlib.error or a CRC error) mean: fetch the file again, not a traceback."""
    import gzip

    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.compress(bytes(range(256)) * 40, mtime=0))
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))
    assert gz_content_sha256(path) is None
