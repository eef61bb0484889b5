"""Fetching a job's data source into ``SOURCE_DIR``, and checking descriptors at set time.

ByteNite Local serves the ``url``, ``file`` and ``bypass`` input descriptors. Cloud buckets
(``s3``/``aws``/``gcp``/``storj``) need ByteNite's stored credentials, so they are refused with
a clear message by :func:`check_source` when the job's data source is set, not at run time.

A ``url`` source is fetched by the server, so whoever may create jobs may make it fetch any
URL it can reach, this machine and its network included. For a server on loopback (its
default) that is its own user. ``deny_private`` (``serve --deny-private-sources``, for a
server reachable from elsewhere) refuses loopback, link-local and private addresses: each
host is resolved and only public addresses are connected to (so a name that resolves to
both, or differently the second time, cannot reach inside), on every redirect too, with no
proxy in between. Redirects only go to http(s) URLs.
"""

from __future__ import annotations

import email.message
import http.client
import ipaddress
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.execution.chunks import link_or_copy
from bytenite_nb.server.private import open_private

__all__ = [
    "BYPASS_FILENAME",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DataSourceError",
    "check_destination",
    "check_source",
    "describe_source",
    "download",
    "fetch_source",
    "is_public_address",
]

#: The single dummy file a ``bypass`` source gives the partitioner, so fan-out still works.
BYPASS_FILENAME = "dummy_file"
DEFAULT_MAX_DOWNLOAD_BYTES = 5 * 1024**3
_CHUNK = 1024 * 1024
_USER_AGENT = "bytenite-local/0.1"
_CONNECT_TIMEOUT = 30.0


class DataSourceError(ValueError):
    """A data source that is malformed, unsupported, unreachable or too large."""


def _descriptor(data_source: Mapping[str, Any] | None, what: str = "dataSource") -> str:
    if not isinstance(data_source, Mapping):
        raise DataSourceError(f"{what} must be an object with a dataSourceDescriptor")
    raw = data_source.get("dataSourceDescriptor", data_source.get("data_source_descriptor"))
    if not isinstance(raw, str) or not raw.strip():
        raise DataSourceError(f"{what}.dataSourceDescriptor is missing")
    return raw.strip().lower()


def _params(data_source: Mapping[str, Any]) -> Mapping[str, Any]:
    params = data_source.get("params") or {}
    if not isinstance(params, Mapping):
        raise DataSourceError("dataSource.params must be an object")
    return params


def _known(desc: str, what: str) -> wire.Descriptor:
    try:
        return wire.Descriptor(desc)
    except ValueError:
        valid = ", ".join(d.value for d in wire.Descriptor)
        raise DataSourceError(
            f"{what}.dataSourceDescriptor {desc!r} is not one of: {valid}"
        ) from None


def check_source(data_source: Mapping[str, Any] | None) -> wire.Descriptor:
    """Validate a job's input ``dataSource`` for ByteNite Local; returns its descriptor.

    Raises :class:`DataSourceError` with a message fit for a 400 answer: unknown descriptor,
    output-only descriptor, a cloud bucket ByteNite Local does not serve, or a ``url`` source
    without an ``http(s)`` URL.
    """
    desc = _known(_descriptor(data_source), "dataSource")
    if desc not in wire.INPUT_DESCRIPTORS:
        raise DataSourceError(f"{desc.value!r} can only be a data destination, not a source")
    if desc not in wire.LOCAL_INPUT_DESCRIPTORS:
        raise DataSourceError(
            f"ByteNite Local does not serve the {desc.value!r} data source: cloud buckets need "
            "ByteNite's stored credentials. Use a 'url' source (e.g. a signed link to the "
            "object), upload the file with a 'file' source, or 'bypass'."
        )
    assert data_source is not None
    if desc is wire.Descriptor.URL:
        _check_url(_params(data_source).get("url"))
    return desc


def check_destination(data_destination: Mapping[str, Any] | None) -> wire.Descriptor:
    """Validate a job's ``dataDestination``; ByteNite Local serves ``bucket`` and ``bypass``."""
    desc = _known(_descriptor(data_destination, "dataDestination"), "dataDestination")
    if desc not in wire.OUTPUT_DESCRIPTORS:
        raise DataSourceError(f"{desc.value!r} can only be a data source, not a destination")
    if desc not in wire.LOCAL_OUTPUT_DESCRIPTORS:
        raise DataSourceError(
            f"ByteNite Local does not serve the {desc.value!r} data destination: cloud buckets "
            "need ByteNite's stored credentials. Use 'bucket' (results served as links) or "
            "'bypass'."
        )
    return desc


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise DataSourceError("a 'url' data source needs params.url")
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DataSourceError(f"params.url must be an http:// or https:// URL, got {url!r}")
    return url.strip()


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ +=,@()\[\]-]+")


def _safe_filename(name: str, fallback: str = "source") -> str:
    """A plain file name (no directories, no leading dots) from untrusted input."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _SAFE_NAME.sub("_", base).lstrip(".").strip()
    return base[:200] or fallback


def _filename_for(url: str, headers: email.message.Message | None) -> str:
    if headers is not None:
        disposition = headers.get("Content-Disposition")
        if disposition:
            msg = email.message.Message()
            msg["Content-Disposition"] = disposition
            name = msg.get_filename()
            if name:
                return _safe_filename(name)
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    return _safe_filename(path.rsplit("/", 1)[-1])


def _too_big(limit: int) -> DataSourceError:
    return DataSourceError(
        f"the data source is larger than ByteNite Local's download limit of {limit} bytes "
        "(max_download_bytes)"
    )


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Says whether a URL source may be fetched from an address (None: from any).
AddressPolicy = Callable[[IPAddress], bool]


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is on the public internet: not loopback, link-local (such as a
    cloud's metadata service, 169.254.169.254), private, shared, multicast or reserved (an
    IPv4 address written as IPv6 counts as itself)."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast


class AddressRefused(OSError):
    """A URL source's host resolves to no address the server may fetch from."""


class SourceRefused(DataSourceError):
    """The URL source is on an address the server does not fetch from."""


def _connector(allowed: AddressPolicy) -> Callable[..., socket.socket]:
    """``socket.create_connection`` that resolves the host itself and connects only to
    addresses ``allowed`` accepts, so the address checked is the address used."""

    def create_connection(address: tuple[str, int], timeout: Any = None,
                          source_address: Any = None) -> socket.socket:
        host, port = address
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        usable = [info for info in infos
                  if allowed(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))]
        if not usable:
            shown = ", ".join(dict.fromkeys(str(info[4][0]) for info in infos))
            raise AddressRefused(
                f"{host} resolves to {shown}, which this server does not fetch from: "
                "--deny-private-sources refuses loopback, link-local and private addresses")
        error: OSError | None = None
        for family, kind, proto, _name, sockaddr in usable:
            sock = socket.socket(family, kind, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        assert error is not None
        raise error

    return create_connection


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) URLs only (urllib would also follow one to ftp)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.URLError(
                f"{req.full_url} redirects to {newurl[:200]}: only http and https redirects "
                "are followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(allowed: AddressPolicy | None) -> urllib.request.OpenerDirector:
    """An opener for URL sources; with ``allowed``, every connection (each redirect's too)
    goes only to addresses it accepts, and no proxy is used (it would connect for us)."""
    if allowed is None:
        return urllib.request.build_opener(_RedirectHandler)
    connect = _connector(allowed)

    class HTTPConnection(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class HTTPSConnection(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(HTTPConnection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(HTTPSConnection, req, context=self._context)

    return urllib.request.build_opener(urllib.request.ProxyHandler({}), HTTPHandler,
                                       HTTPSHandler, _RedirectHandler)


def _open(url: str, method: str = "GET", allowed: AddressPolicy | None = None) -> Any:
    request = urllib.request.Request(url, method=method, headers={"User-Agent": _USER_AGENT})
    try:
        return _opener(allowed).open(request, timeout=_CONNECT_TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise DataSourceError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kind = SourceRefused if isinstance(reason, AddressRefused) else DataSourceError
        raise kind(f"downloading {url} failed: {reason}") from None


def download(
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    should_stop: Callable[[], bool] = lambda: False,
    address_allowed: AddressPolicy | None = None,
) -> Path:
    """Stream ``url`` into ``dest_dir``; returns the file. Raises :class:`DataSourceError`.

    ``address_allowed``: connect (on every redirect too) only to addresses it accepts."""
    url = _check_url(url)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with _open(url, allowed=address_allowed) as response:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise _too_big(max_bytes)
        target = dest_dir / _filename_for(url, response.headers)
        written = 0
        try:
            with open_private(target, "wb") as out:
                while True:
                    if should_stop():
                        raise DataSourceError("download stopped")
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    written += len(block)
                    if written > max_bytes:
                        raise _too_big(max_bytes)
                    out.write(block)
        except DataSourceError:
            target.unlink(missing_ok=True)
            raise
        except OSError as exc:
            target.unlink(missing_ok=True)
            raise DataSourceError(f"downloading {url} failed: {exc}") from None
    return target


def fetch_source(
    data_source: Mapping[str, Any] | None,
    source_dir: Path,
    *,
    uploaded_file: Path | None = None,
    max_bytes: int | None = None,
    cancel: threading.Event | None = None,
    deadline: float | None = None,
    deny_private: bool = False,
) -> list[Path]:
    """Populate ``source_dir`` from the job's data source; returns the files written.

    ``url``: streamed download (file name from Content-Disposition or the URL path), capped at
    ``max_bytes``; ``file``: the stored upload (hard-linked, else copied); ``bypass`` (or no
    data source): one empty dummy file. ``deny_private``: a ``url`` is fetched from public
    addresses only (see the module docstring). The download runs on a helper thread so that
    ``cancel`` and the monotonic ``deadline`` are noticed within a fraction of a second even
    while a server stalls; when either fires this raises :class:`DataSourceError` and the
    caller decides what it means.
    """
    source_dir.mkdir(parents=True, exist_ok=True)
    desc = wire.Descriptor.BYPASS if data_source is None else check_source(data_source)
    if desc is wire.Descriptor.BYPASS:
        target = source_dir / BYPASS_FILENAME
        open_private(target, "wb").close()
        return [target]
    if desc is wire.Descriptor.FILE:
        if uploaded_file is None or not Path(uploaded_file).is_file():
            raise DataSourceError(
                "the 'file' data source has no completed upload: PUT the file to the job's "
                "tempUrl and call uploadcompleted before running the job"
            )
        target = source_dir / _safe_filename(Path(uploaded_file).name)
        link_or_copy(Path(uploaded_file), target)
        return [target]
    assert data_source is not None
    url = _params(data_source).get("url")
    limit = DEFAULT_MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            outcome["path"] = download(
                url, source_dir, max_bytes=limit, should_stop=stop.is_set,
                address_allowed=is_public_address if deny_private else None)
        except BaseException as exc:  # handed to the waiting thread below
            outcome["error"] = exc

    thread = threading.Thread(target=worker, name="bytenite-download", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
        if cancel is not None and cancel.is_set():
            stop.set()
            raise DataSourceError("download cancelled")
        if deadline is not None and time.monotonic() > deadline:
            stop.set()
            raise DataSourceError("download ran past the job timeout")
    if "error" in outcome:
        raise outcome["error"]
    return [outcome["path"]]


def _file_entry(path: Path, rel: str) -> dict[str, Any]:
    return {"id": rel, "name": path.name, "path": rel, "size": wire.int64_out(path.stat().st_size)}


def describe_source(
    data_source: Mapping[str, Any] | None,
    list_files: bool = False,
    *,
    uploaded_file: Path | None = None,
    temp_url: str | None = None,
    deny_private: bool = False,
) -> dict[str, Any]:
    """``DataSourceInfoResponse`` for ``POST /datasource/test`` (without fetching any body).

    ``{"filename", "path", "size" (int), "properties", "tempUrl", "files"}``; ``files`` is a
    ``Directory`` tree when ``list_files`` is true, else ``None``. ``url`` sources are probed
    with a HEAD request (falling back to a GET whose body is not read). The API layer turns
    ``size`` into an int64 string. Raises :class:`DataSourceError`.
    """
    desc = check_source(data_source)
    assert data_source is not None
    info: dict[str, Any] = {
        "filename": "",
        "path": "",
        "size": 0,
        "properties": {"descriptor": desc.value},
        "tempUrl": temp_url or "",
        "files": None,
    }
    if desc is wire.Descriptor.BYPASS:
        info.update(filename=BYPASS_FILENAME, path=BYPASS_FILENAME)
        entry = {"id": BYPASS_FILENAME, "name": BYPASS_FILENAME, "path": BYPASS_FILENAME,
                 "size": "0"}
    elif desc is wire.Descriptor.FILE:
        if uploaded_file is not None and Path(uploaded_file).is_file():
            up = Path(uploaded_file)
            info.update(filename=up.name, path=up.name, size=up.stat().st_size)
            info["properties"]["uploaded"] = "true"
            entry = _file_entry(up, up.name)
        else:
            info["properties"]["uploaded"] = "false"
            entry = None
    else:
        url = _check_url(_params(data_source).get("url"))
        allowed = is_public_address if deny_private else None
        try:
            response = _open(url, "HEAD", allowed)
        except SourceRefused:
            raise
        except DataSourceError:
            response = _open(url, "GET", allowed)  # some servers refuse HEAD
        with response:
            headers = response.headers
            name = _filename_for(url, headers)
            length = headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else 0
            info.update(filename=name, path=url, size=size)
            if headers.get("Content-Type"):
                info["properties"]["contentType"] = headers.get("Content-Type")
        entry = {"id": name, "name": name, "path": name, "size": str(size)}
    if list_files:
        info["files"] = {"name": "", "path": "/", "directories": [],
                         "files": [entry] if entry else []}
    return info

