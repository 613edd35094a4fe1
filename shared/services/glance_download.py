"""glance-download: import an image from another region's Glance, as Glance's ``_ImportMetadata`` and
``glance_download`` plugin do.

The remote image endpoint is the caller's catalog entry of type ``image`` in ``glance_region`` for
``glance_service_interface`` (Keystone's ``GET /v3/auth/catalog`` with the caller's token: the catalog
keystonemiddleware would hand Glance). The remote image's metadata and bytes are read with the caller's token, so
the caller gets only what they may see there. Both URLs go through the web-download URL policy (Glance too filters
the processed URL with ``[import_filtering_opts]``): a catalog URL is the operator's, but it is still a URL this
service fetches with a token, so an operator whose regional endpoints are internal allowlists them
(``web_download_allowed_hosts`` / ``_ports``), and a redirect to another host never receives the token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.domain.errors import GlanceError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from shared.net.ssrf import UrlPolicy
    from shared.net.web_fetch import WebResponse

# A remote image's JSON body is small; more than this is not an image record.
MAX_METADATA_BYTES = 1024 * 1024


class GlanceDownloadError(GlanceError):
    """The remote image could not be found, read or used."""

    template = "glance-download failed: {reason}"


@dataclass(frozen=True)
class RemoteImage:
    """What glance-download takes from the remote image: its formats, size, hashes and copied properties."""

    disk_format: str
    container_format: str
    size: int
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    properties: dict[str, str]


def find_image_endpoint(catalog: Iterable[Mapping[str, Any]], region: str, interface: str) -> str | None:
    """The URL of the ``image`` service in ``region`` (case-insensitive, as Glance compares) for ``interface``."""
    for service in catalog:
        if service.get("type") != "image":
            continue
        for endpoint in service.get("endpoints") or ():
            region_id = str(endpoint.get("region_id") or endpoint.get("region") or "")
            if region_id.lower() == region.lower() and endpoint.get("interface") == interface:
                url = endpoint.get("url")
                return str(url).rstrip("/") if url else None
    return None


def remote_image(body: Mapping[str, Any], prefixes: Iterable[str]) -> RemoteImage:
    """The remote image record, checked as Glance checks it (active, with formats and a size)."""
    status = body.get("status")
    if status != "active":
        raise GlanceDownloadError(reason=f"source image status should be active instead of {status}")
    try:
        size = int(body["size"])
        disk_format, container_format = str(body["disk_format"]), str(body["container_format"])
    except (KeyError, TypeError, ValueError):
        raise GlanceDownloadError(reason="the remote image has no size or formats") from None
    wanted = tuple(prefixes)
    properties = {k: str(v) for k, v in body.items() if isinstance(k, str) and k.startswith(wanted)}

    def text(name: str) -> str | None:
        value = body.get(name)
        return str(value) if value else None

    return RemoteImage(
        disk_format,
        container_format,
        size,
        text("checksum"),
        text("os_hash_algo"),
        text("os_hash_value"),
        properties,
    )


@dataclass
class RemoteGlance:
    """Another region's Glance, reached with the caller's token."""

    keystone_url: str | None
    token: str | None
    policy: UrlPolicy
    keystone_timeout: float = 5.0

    def endpoint(self, region: str, interface: str) -> str:
        """The remote image endpoint from the caller's catalog (``GlanceDownloadError`` when there is none)."""
        if not self.token or not self.keystone_url:
            raise GlanceDownloadError(
                reason="it needs the caller's token and catalog (auth_mode=keystone, and a download that finishes "
                "within the import worker's time: a job runner is never given the token)"
            )
        catalog = self._catalog()
        url = find_image_endpoint(catalog, region, interface)
        if url is None:
            raise GlanceDownloadError(reason=f"no image endpoint for region {region} and interface {interface}")
        return url

    def image(self, endpoint: str, image_id: str, prefixes: Iterable[str]) -> RemoteImage:
        """The remote image's record."""
        with self.open(f"{endpoint}/v2/images/{image_id}") as response:
            raw = b""
            for chunk in response.iter_content(64 * 1024):
                raw += chunk
                if len(raw) > MAX_METADATA_BYTES:
                    raise GlanceDownloadError(reason="the remote image record is too large")
        try:
            body = json.loads(raw)
        except ValueError:
            raise GlanceDownloadError(reason="the remote image record is not JSON") from None
        if not isinstance(body, dict):
            raise GlanceDownloadError(reason="the remote image record is not an object")
        return remote_image(body, prefixes)

    def open(self, url: str) -> WebResponse:
        """GET ``url`` on the remote Glance with the caller's token, through the URL policy."""
        from shared.net.web_fetch import open_url

        return open_url(url, self.policy, {"X-Auth-Token": self.token or ""})

    def _catalog(self) -> list[Mapping[str, Any]]:
        from urllib3 import PoolManager, Timeout
        from urllib3.exceptions import HTTPError

        assert self.keystone_url is not None and self.token is not None
        base = self.keystone_url.rstrip("/")
        url = f"{base}/auth/catalog" if base.endswith("/v3") else f"{base}/v3/auth/catalog"
        # Keystone is the operator's own identity endpoint (keystone_url), not a user-supplied URL.
        pool = PoolManager(timeout=Timeout(total=self.keystone_timeout), retries=False)
        try:
            response = pool.request("GET", url, headers={"X-Auth-Token": self.token, "Accept": "application/json"})
        except HTTPError as exc:
            raise GlanceDownloadError(reason=f"Keystone could not be reached ({type(exc).__name__})") from None
        finally:
            pool.clear()
        if response.status != 200:
            raise GlanceDownloadError(reason=f"Keystone answered {response.status} for the caller's catalog")
        try:
            catalog = response.json()["catalog"]
        except (ValueError, KeyError, TypeError):
            raise GlanceDownloadError(reason="Keystone's catalog answer was not a catalog") from None
        if not isinstance(catalog, list):
            raise GlanceDownloadError(reason="Keystone's catalog answer was not a catalog")
        return catalog
