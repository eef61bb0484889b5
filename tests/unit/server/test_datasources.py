"""Data sources: url (streamed, capped), file, bypass; cloud buckets refused at set time."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bytenite_nb import wire
from bytenite_nb.server.execution.datasources import (
    BYPASS_FILENAME,
    DataSourceError,
    check_destination,
    check_source,
    describe_source,
    download,
    fetch_source,
    is_public_address,
)

BODY = b"hello world\n" * 1000


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _headers(self) -> bytes | None:
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if self.path.startswith("/missing"):
            self.send_error(404, "Not Found")
            return None
        body = BODY
        self.send_response(200)
        if self.path.startswith("/cd"):
            self.send_header("Content-Disposition", 'attachment; filename="../report 1.csv"')
        if self.path.startswith("/chunked"):
            self.send_header("Connection", "close")  # no Content-Length: the cap must stream
        else:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        return body

    def do_HEAD(self) -> None:
        self._headers()

    def do_GET(self) -> None:
        body = self._headers()
        if body is not None:
            self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_download(tmp_path: Path, server: str) -> None:
    files = fetch_source(wire.url_source(f"{server}/data/hello%20world.txt?sig=1"), tmp_path)
    assert [f.name for f in files] == ["hello world.txt"]
    assert files[0].read_bytes() == BODY


def test_url_filename_from_content_disposition(tmp_path: Path, server: str) -> None:
    files = fetch_source(wire.url_source(f"{server}/cd/x"), tmp_path)
    assert [f.name for f in files] == ["report 1.csv"]  # no directory parts survive


def test_url_size_cap(tmp_path: Path, server: str) -> None:
    for path in ("/data/big.txt", "/chunked/big.txt"):
        with pytest.raises(DataSourceError, match=r"larger than .* limit of 100 bytes"):
            fetch_source(wire.url_source(server + path), tmp_path, max_bytes=100)
    assert list(tmp_path.iterdir()) == []  # nothing partial left behind


def test_url_errors(tmp_path: Path, server: str) -> None:
    with pytest.raises(DataSourceError, match="HTTP 404"):
        fetch_source(wire.url_source(f"{server}/missing"), tmp_path)
    with pytest.raises(DataSourceError, match="failed"):
        fetch_source(wire.url_source("http://127.0.0.1:9/nothing"), tmp_path)


def test_bypass_and_none_give_a_dummy_file(tmp_path: Path) -> None:
    for source in (wire.bypass(), None):
        files = fetch_source(source, tmp_path / "s")
        assert [f.name for f in files] == [BYPASS_FILENAME]


def test_file_source_links_the_upload(tmp_path: Path) -> None:
    upload = tmp_path / "up" / "data.csv"
    upload.parent.mkdir()
    upload.write_text("a,b\n1,2\n")
    files = fetch_source(wire.file_source(), tmp_path / "s", uploaded_file=upload)
    assert [f.name for f in files] == ["data.csv"] and files[0].read_text() == "a,b\n1,2\n"
    with pytest.raises(DataSourceError, match="no completed upload"):
        fetch_source(wire.file_source(), tmp_path / "s2")


@pytest.mark.parametrize("desc", ["s3", "aws", "gcp", "storj"])
def test_cloud_buckets_refused_at_set_time(desc: str) -> None:
    source = {"dataSourceDescriptor": desc,
              "params": {"@type": wire.S3_DATA_SOURCE_TYPE, "bucketName": "b", "name": "x"}}
    with pytest.raises(DataSourceError, match=f"does not serve the '{desc}' data source"):
        check_source(source)
    with pytest.raises(DataSourceError, match=f"does not serve the '{desc}' data destination"):
        check_destination(source)


def test_check_source_messages() -> None:
    assert check_source(wire.url_source("https://example.com/x")) is wire.Descriptor.URL
    assert check_source(wire.bypass()) is wire.Descriptor.BYPASS
    assert check_destination(wire.bucket_destination()) is wire.Descriptor.BUCKET
    with pytest.raises(DataSourceError, match="only be a data destination"):
        check_source(wire.bucket_destination())
    with pytest.raises(DataSourceError, match="only be a data source"):
        check_destination(wire.file_source())
    with pytest.raises(DataSourceError, match=r"needs params\.url"):
        check_source({"dataSourceDescriptor": "url", "params": {}})
    with pytest.raises(DataSourceError, match="http:// or https://"):
        check_source(wire.url_source("file:///etc/passwd"))
    with pytest.raises(DataSourceError, match="not one of"):
        check_source({"dataSourceDescriptor": "ftp"})
    with pytest.raises(DataSourceError, match="missing"):
        check_source({"params": {}})


def test_describe_source(tmp_path: Path, server: str) -> None:
    info = describe_source(wire.url_source(f"{server}/data/in.txt"), True)
    assert (info["filename"], info["size"]) == ("in.txt", len(BODY))
    assert info["files"]["files"][0]["name"] == "in.txt"
    assert describe_source(wire.bypass(), False)["files"] is None
    upload = tmp_path / "u.bin"
    upload.write_bytes(b"12345")
    info = describe_source(wire.file_source(), True, uploaded_file=upload)
    assert (info["filename"], info["size"]) == ("u.bin", 5)
    with pytest.raises(DataSourceError, match="HTTP 404"):
        describe_source(wire.url_source(f"{server}/missing"), False)


def test_cancel_stops_a_download(tmp_path: Path) -> None:
    # A server that accepts and never answers: cancel must still return promptly.
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    try:
        with pytest.raises(DataSourceError, match="cancelled"):
            fetch_source(wire.url_source(f"http://127.0.0.1:{listener.getsockname()[1]}/x"),
                         tmp_path, cancel=cancel)
    finally:
        listener.close()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.10", "169.254.169.254",
    "fe80::1", "fc00::1", "100.64.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:10.1.1.1",
    "224.0.0.1", "255.255.255.255"])
def test_loopback_link_local_and_private_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_internet_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_private_addresses_are_refused_after_resolving_and_on_every_redirect(
        tmp_path: Path, server: str) -> None:
    port = server.rsplit(":", 1)[1]
    # every address of this machine is refused, given as a number or as a name to resolve
    for url in (f"{server}/data.txt", f"http://localhost:{port}/data.txt"):
        with pytest.raises(DataSourceError, match="deny-private-sources"):
            download(url, tmp_path, address_allowed=is_public_address)
    # allowed where it starts, refused where it is sent: each redirect is checked again
    def first_only(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return str(address) == "127.0.0.1"

    assert download(f"{server}/data.txt", tmp_path, address_allowed=first_only)
    with pytest.raises(DataSourceError, match=r"127\.0\.0\.2"):
        download(f"{server}/redirect?to=http://127.0.0.2:{port}/data.txt", tmp_path / "x",
                 address_allowed=first_only)
    with pytest.raises(DataSourceError, match="deny-private-sources"):
        fetch_source({"dataSourceDescriptor": "url", "params": {"url": f"{server}/data.txt"}},
                     tmp_path / "source", deny_private=True)
    with pytest.raises(DataSourceError, match="deny-private-sources"):
        describe_source({"dataSourceDescriptor": "url", "params": {"url": f"{server}/d.txt"}},
                        deny_private=True)


def test_a_redirect_to_another_scheme_is_refused(tmp_path: Path, server: str) -> None:
    with pytest.raises(DataSourceError, match="ftp"):
        download(f"{server}/redirect?to=ftp://127.0.0.1/data.txt", tmp_path)
