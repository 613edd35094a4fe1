"""Fetching a user-supplied URL that ``validate_url`` (``shared/net/ssrf.py``) accepted.

``open_url`` fetches with each connection pinned to a validated address: urllib3 connects to the IP itself while
the ``Host`` header, TLS SNI and the certificate check use the URL's host name. The name is resolved once, by the
check, so a second DNS answer pointing inside (DNS rebinding) is never used. Redirects are followed by hand and
every hop is validated again. Proxies from the environment are never used: a proxy would resolve the name itself.
A failed fetch is a ``WebDownloadError`` (400), whose message never carries the remote server's own text.
"""

from __future__ import annotations

import http
import http.client
from collections.abc import Iterator, Mapping
from types import TracebackType
from urllib.parse import urljoin

# urllib3 (typed, already loaded by botocore) rather than requests: pinning a connection to an address while
# keeping the name for Host/SNI/certificate is two pool arguments here, and it never reads proxy settings.
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from shared.net.ssrf import UrlNotAllowedError, UrlPolicy, ValidatedUrl, WebDownloadError, validate_url

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "serverless-glance/web-download"
_TRANSPORT_ERRORS = (HTTPError, http.client.HTTPException, OSError)


class WebResponse:
    """An open 2xx response: read it with ``iter_content``, and ``close()`` it (or use it as a context manager)."""

    def __init__(self, url: str, response: BaseHTTPResponse, pool: HTTPConnectionPool) -> None:
        self.url = url
        self.status = response.status
        self._response = response
        self._pool = pool

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (case-insensitive)."""
        return self._response.headers

    @property
    def content_length(self) -> int | None:
        """The announced body length, if the server sent a usable one."""
        try:
            length = int(self._response.headers.get("Content-Length", ""))
        except ValueError:
            return None
        return length if length >= 0 else None

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """The body as it arrives, undecoded; raises ``WebDownloadError`` on a timeout or a short body."""
        expected = self.content_length
        received = 0
        try:
            for chunk in self._response.stream(chunk_size, decode_content=False):
                received += len(chunk)
                yield chunk
        except _TRANSPORT_ERRORS as exc:
            raise _transport_error(exc) from exc
        # Checked before the stream ends, so a consumer never takes a short body for a complete one.
        if expected is not None and received != expected:
            raise WebDownloadError(reason=f"the body ended after {received} of {expected} bytes")

    def close(self) -> None:
        """Drop the connection."""
        self._response.close()
        self._pool.close()

    def __enter__(self) -> WebResponse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def open_url(url: str, policy: UrlPolicy, headers: Mapping[str, str] | None = None) -> WebResponse:
    """GET ``url``, following at most ``policy.max_redirects`` redirects, each validated before it is followed.

    ``headers`` (a glance-download's ``X-Auth-Token``) go only to the URL's own origin: a redirect elsewhere is
    followed without them, so a token is never handed to another host.

    Raises:
        UrlNotAllowedError: the URL or a redirect target is refused by the policy.
        WebDownloadError: a non-2xx answer, too many redirects, or a connection failure or timeout.
    """
    current = validate_url(url, policy)
    origin = (current.scheme, current.host, current.port)
    redirects = 0
    while True:
        same_origin = (current.scheme, current.host, current.port) == origin
        response, pool = _request(current, policy, headers if same_origin else None)
        status = response.status
        if 200 <= status < 300 and status != http.HTTPStatus.PARTIAL_CONTENT:
            return WebResponse(current.url, response, pool)
        location = response.headers.get("Location")
        response.close()
        pool.close()
        if status not in REDIRECT_STATUSES:
            raise WebDownloadError(reason=f"the server answered HTTP {_status_text(status)}")
        if not location:
            raise WebDownloadError(reason=f"the server answered HTTP {status} without a Location")
        redirects += 1
        if redirects > policy.max_redirects:
            raise WebDownloadError(reason=f"more than {policy.max_redirects} redirects")
        try:
            current = validate_url(urljoin(current.url, location), policy)
        except UrlNotAllowedError as exc:
            reason = exc.fields.get("reason", exc.message)
            raise UrlNotAllowedError(reason=f"it redirects to a URL that is not allowed ({reason})") from exc


def _request(
    target: ValidatedUrl, policy: UrlPolicy, extra: Mapping[str, str] | None = None
) -> tuple[BaseHTTPResponse, HTTPConnectionPool]:
    """One GET, connecting only to the validated addresses (the next one if a connection cannot be made)."""
    timeout = Timeout(connect=policy.connect_timeout, read=policy.read_timeout)
    headers = {
        **(extra or {}),
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        # The bytes are stored as sent; a decoded body would not match the size or hashes of the file.
        "Accept-Encoding": "identity",
    }
    failure: Exception | None = None
    for address in target.addresses:
        pool: HTTPConnectionPool
        if target.scheme == "https":
            pool = HTTPSConnectionPool(
                address,
                target.port,
                timeout=timeout,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                assert_hostname=target.host,
                server_hostname=target.host,
            )
        else:
            pool = HTTPConnectionPool(address, target.port, timeout=timeout, maxsize=1, retries=False)
        try:
            response = pool.urlopen(
                "GET",
                target.target,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
            )
        except ConnectTimeoutError as exc:  # includes NewConnectionError: try the next address
            pool.close()
            failure = exc
            continue
        except _TRANSPORT_ERRORS as exc:
            pool.close()
            raise _transport_error(exc) from exc
        return response, pool
    assert failure is not None
    raise _transport_error(failure) from failure


def _transport_error(exc: Exception) -> WebDownloadError:
    if isinstance(exc, NewConnectionError):
        reason = "could not connect to the server"
    elif isinstance(exc, ConnectTimeoutError):
        reason = "the server did not accept the connection in time"
    elif isinstance(exc, ReadTimeoutError | TimeoutError):
        reason = "the server stopped sending data"
    elif isinstance(exc, SSLError):
        reason = "the TLS connection failed (certificate or protocol)"
    elif isinstance(exc, ProtocolError | http.client.HTTPException):
        reason = "the connection broke off before the body was complete"
    else:
        reason = "the connection failed"
    return WebDownloadError(reason=reason)


def _status_text(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
