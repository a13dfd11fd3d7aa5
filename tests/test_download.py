"""The bad paths of `download`, against a real HTTP server on the loopback interface (never the internet)."""
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from matdl_nb.core import DownloadError, download, url_to_relpath

GOOD = b"formula,target\nNaCl,-2.1\nMgO,-3.1\n" * 200_000  # about 6 MB: the progress bar and chunking are exercised
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    requests: list = []

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path.endswith("/good.csv"):
            self.send_response(200); self.send_header("Content-Length", str(len(GOOD))); self.end_headers()
            self.wfile.write(GOOD)
        elif self.path.endswith("/truncated.csv"):  # promises the whole file, sends a tenth, hangs up
            self.send_response(200); self.send_header("Content-Length", str(len(GOOD))); self.end_headers()
            self.wfile.write(GOOD[: len(GOOD) // 10]); self.wfile.flush()
            self.close_connection = True
        else:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()

    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True); thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _leftovers(folder: Path) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_good_download_lands_in_the_cache(server, tmp_path):
    path = download(f"{server}/data/good.csv", GOOD_SHA, dest=tmp_path / "good.csv", offline=False, mirror="")
    assert path.read_bytes() == GOOD
    assert _leftovers(tmp_path) == [path]


def test_wrong_hash_keeps_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="SHA-256 mismatch") as err:
        download(f"{server}/data/good.csv", "0" * 64, dest=tmp_path / "x" / "good.csv", offline=False, mirror="")
    assert f"{server}/data/good.csv" in str(err.value)
    assert _leftovers(tmp_path) == []


def test_truncated_download_keeps_nothing(server, tmp_path):
    with pytest.raises(DownloadError) as err:
        download(f"{server}/data/truncated.csv", GOOD_SHA, dest=tmp_path / "t.csv", offline=False, mirror="")
    assert "truncated.csv" in str(err.value)
    assert "closed early" in str(err.value) or "partial download" in str(err.value)
    assert _leftovers(tmp_path) == []


def test_missing_file_names_the_http_status(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/data/missing.csv", GOOD_SHA, dest=tmp_path / "m.csv", offline=False, mirror="")
    assert _leftovers(tmp_path) == []


def test_unreachable_server_says_offline_not_socket_errors(tmp_path):
    with pytest.raises(DownloadError) as err:
        download("http://127.0.0.1:9/data.csv", GOOD_SHA, dest=tmp_path / "d.csv", offline=False, mirror="", timeout=3)
    message = str(err.value)
    assert "no connection could be made" in message and "MATDL_MIRROR" in message and "Traceback" not in message


def test_offline_without_mirror_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="network is off"):
        download("https://example.org/data/x.csv", GOOD_SHA, dest=tmp_path / "x.csv", mirror="")


def test_mirror_is_tried_first(server, tmp_path):
    url = f"{server}/data/good.csv"
    mirror_file = tmp_path / "mirror" / url_to_relpath(url)
    mirror_file.parent.mkdir(parents=True); mirror_file.write_bytes(GOOD)
    before = len(_Handler.requests)
    download(url, GOOD_SHA, dest=tmp_path / "cache" / "good.csv", mirror=tmp_path / "mirror", offline=False)
    assert len(_Handler.requests) == before  # the server was not asked


def test_http_mirror(server, tmp_path):
    # a workshop server that mirrors https://example.org/data/good.csv under <server>/example.org/data/good.csv
    url = "https://example.org/data/good.csv"
    _Handler.requests.clear()
    download(url, GOOD_SHA, dest=tmp_path / "good.csv", mirror=server, offline=True)
    assert _Handler.requests == ["/example.org/data/good.csv"]


def test_corrupt_cached_copy_is_replaced(server, tmp_path):
    dest = tmp_path / "good.csv"
    dest.write_bytes(b"half a file")
    download(f"{server}/data/good.csv", GOOD_SHA, dest=dest, offline=False, mirror="")
    assert dest.read_bytes() == GOOD


def test_corrupt_mirror_falls_back_and_reports(server, tmp_path):
    url = f"{server}/data/missing.csv"
    mirror_file = tmp_path / "mirror" / url_to_relpath(url)
    mirror_file.parent.mkdir(parents=True); mirror_file.write_bytes(b"not the pinned file")
    with pytest.raises(DownloadError) as err:
        download(url, GOOD_SHA, dest=tmp_path / "c" / "m.csv", mirror=tmp_path / "mirror", offline=False)
    assert "SHA-256 mismatch" in str(err.value) and "HTTP 404" in str(err.value)  # both sources are reported
    assert _leftovers(tmp_path / "c") == []
