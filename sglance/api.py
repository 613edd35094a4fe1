"""The image API calls the client makes: Glance v2 (images, members, data) and our presigned upload extension.

Everything but the ``/upload`` calls works against any Glance v2 endpoint, which is how ``sglance migrate`` reads
its source.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import requests

from sglance.connection import ApiConnection, raise_for_status
from sglance.errors import ApiError
from sglance.wire import Method, PartRequest, UploadSession, part_request

# Part URLs the API hands out per call.
MAX_PART_URLS = 100
# The largest page Glance (and we) serve.
PAGE_SIZE = 1000
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
# Bytes to wait for while a download is streaming: a slow store may pause, a dead one must not hang a run.
DATA_TIMEOUT_S = 300.0


def image_path(image_id: str, suffix: str = "") -> str:
    """``/v2/images/{id}`` plus ``suffix``, the id quoted."""
    return f"/v2/images/{quote(image_id, safe='')}{suffix}"


class ImageApi:
    """Calls of the image API over one ``ApiConnection``."""

    def __init__(self, connection: ApiConnection) -> None:
        self.connection = connection

    @property
    def endpoint(self) -> str:
        """The API's base URL."""
        return self.connection.endpoint

    def call(
        self, method: str, path: str, body: Any = None, *, idempotent: bool = True, missing_ok: bool = False
    ) -> Any:
        """One JSON call (see ``ApiConnection.call``)."""
        return self.connection.call(method, path, body, idempotent=idempotent, missing_ok=missing_ok)

    # -- images -----------------------------------------------------------------------------------------------

    def show(self, image_id: str) -> dict[str, Any]:
        """``GET /v2/images/{id}``."""
        image: dict[str, Any] = self.call("GET", image_path(image_id))
        return image

    def find(self, image_id: str) -> dict[str, Any] | None:
        """``GET /v2/images/{id}``, or None when the caller cannot see it (404)."""
        image: dict[str, Any] | None = self.call("GET", image_path(image_id), missing_ok=True)
        return image

    def images(self, **filters: str) -> Iterator[dict[str, Any]]:
        """Every image ``GET /v2/images`` lists with ``filters``, following ``next`` links page by page."""
        path: str | None = "/v2/images?" + urlencode({"limit": str(PAGE_SIZE), **filters})
        while path:
            page = self.call("GET", path)
            yield from page.get("images", [])
            link = page.get("next")
            # Glance's next link is absolute from the API root ("/v2/images?marker=..."): keep our base URL.
            path = str(link) if link else None

    def create(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v2/images`` (not retried: a second create of the same id is a 409)."""
        image: dict[str, Any] = self.call("POST", "/v2/images", dict(fields), idempotent=False)
        return image

    def update(self, image_id: str, changes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``PATCH /v2/images/{id}`` with JSON-patch ``changes``."""
        path = image_path(image_id)
        response = self.connection.request(
            "PATCH", path, body=list(changes), headers={"Content-Type": PATCH_TYPE}, idempotent=False
        )
        raise_for_status("PATCH", path, response)
        image: dict[str, Any] = response.json()
        return image

    def action(self, image_id: str, action: str) -> None:
        """``POST /v2/images/{id}/actions/{deactivate|reactivate}``."""
        self.call("POST", image_path(image_id, f"/actions/{action}"))

    def delete(self, image_id: str) -> None:
        """``DELETE /v2/images/{id}``."""
        self.call("DELETE", image_path(image_id))

    # -- members ----------------------------------------------------------------------------------------------

    def members(self, image_id: str) -> list[dict[str, Any]]:
        """``GET /v2/images/{id}/members``."""
        data = self.call("GET", image_path(image_id, "/members"))
        return list(data.get("members", []))

    def add_member(self, image_id: str, member_id: str) -> dict[str, Any]:
        """``POST /v2/images/{id}/members``."""
        member: dict[str, Any] = self.call("POST", image_path(image_id, "/members"), {"member": member_id})
        return member

    def set_member_status(self, image_id: str, member_id: str, status: str) -> dict[str, Any]:
        """``PUT /v2/images/{id}/members/{member}``: only the member project, or an admin, may."""
        path = image_path(image_id, f"/members/{quote(member_id, safe='')}")
        member: dict[str, Any] = self.call("PUT", path, {"status": status})
        return member

    def remove_member(self, image_id: str, member_id: str) -> None:
        """``DELETE /v2/images/{id}/members/{member}``."""
        self.call("DELETE", image_path(image_id, f"/members/{quote(member_id, safe='')}"))

    # -- data -------------------------------------------------------------------------------------------------

    def open_data(self, image_id: str, offset: int = 0, length: int | None = None) -> requests.Response:
        """``GET /v2/images/{id}/file``, streamed; a range when ``offset``/``length`` ask for part of it.

        A redirect (the deployed service hands out a presigned S3 GET) is answered 3xx here: the caller fetches
        ``Location`` without the API's credentials. Raises ``ApiError`` for 4xx/5xx and a 204 (no data).
        """
        headers = {"Accept": "application/octet-stream"}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        path = image_path(image_id, "/file")
        response = self.connection.request("GET", path, headers=headers, stream=True, timeout=DATA_TIMEOUT_S)
        if response.status_code >= 400 or response.status_code == 204:
            try:
                raise_for_status("GET", path, response)
                raise ApiError("GET", path, 204, "the image has no data")
            finally:
                response.close()
        return response

    # -- the presigned upload extension -----------------------------------------------------------------------

    def open_upload(self, image_id: str, size: int, checksum: str | None, method: Method | None) -> UploadSession:
        """``POST /v2/images/{id}/upload``."""
        body: dict[str, Any] = {"size": size}
        if checksum is not None:
            body["checksum"] = checksum
        if method is not None:
            body["method"] = method
        # Not retried: a second open would find the image uploading (409).
        return UploadSession.from_json(self.call("POST", image_path(image_id, "/upload"), body, idempotent=False))

    def upload_status(self, image_id: str) -> UploadSession | None:
        """``GET /v2/images/{id}/upload``; None when the image has no open upload."""
        data = self.call("GET", image_path(image_id, "/upload"), missing_ok=True)
        return None if data is None else UploadSession.from_json(data)

    def part_urls(self, image_id: str, numbers: Sequence[int]) -> list[PartRequest]:
        """``POST /v2/images/{id}/upload/parts`` for at most ``MAX_PART_URLS`` parts."""
        data = self.call("POST", image_path(image_id, "/upload/parts"), {"part_numbers": list(numbers)})
        return [part_request(p) for p in data["parts"]]

    def complete(self, image_id: str) -> None:
        """``POST /v2/images/{id}/upload/complete``; a repeat after a lost answer (409, image moving on) is fine."""
        for attempt in range(2):
            try:
                self.call("POST", image_path(image_id, "/upload/complete"), {}, idempotent=False)
                return
            except ApiError as exc:
                if exc.status == 409 and self.show(image_id)["status"] in ("importing", "active"):
                    return
                # A broken connection leaves it unknown whether the parts were assembled; asking again tells.
                if exc.status != 0 or attempt:
                    raise

    def abort(self, image_id: str) -> None:
        """``DELETE /v2/images/{id}/upload``."""
        self.call("DELETE", image_path(image_id, "/upload"))
