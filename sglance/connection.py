"""How the client reaches an image API: a keystoneauth session and the API's base URL.

Three ways to build one, as every OpenStack tool offers:

* ``from_cloud``: clouds.yaml (``--os-cloud``/``OS_CLOUD``), ``OS_*`` variables and ``--os-*`` options, read by
  openstacksdk's config loader; the session authenticates (password, application credential, token, ...) and
  renews its token; the endpoint is the ``image`` entry of the catalog unless an override is configured
  (``image_endpoint_override`` in clouds.yaml, ``--os-image-endpoint-override``, ``--endpoint``).
* ``from_token``: a token and an endpoint, the token sent as ``X-Auth-Token`` (``openstack token issue``).
* ``from_headers``: only headers, for the local stack's development ``trusted-headers`` mode.

Requests go through ``ApiConnection.request``: idempotent ones are retried on connection errors and 502/503/504,
redirects are never followed with the API's credentials (a download redirected to S3 is fetched without them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import requests
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from sglance.errors import ApiError, ConfigurationError

if TYPE_CHECKING:
    import argparse

DEFAULT_ENDPOINT = "http://127.0.0.1:9292"
# Seconds to connect, and to wait for an answer: the API answers in milliseconds, image bytes are not sent here.
API_TIMEOUT_S = 60.0
# Connections kept per host: enough for parallel images, each with parallel parts (a source Glance serves ranges).
POOL_SIZE = 64
_RETRIED_STATUSES = [502, 503, 504]


class ApiConnection:
    """One image API: a keystoneauth session and the base URL of the API (a trailing ``/v2`` is dropped).

    Args:
        session: authenticates every request (or, without an auth plugin, sends only its additional headers).
        endpoint: the API's URL; None looks ``service_type`` up in the session's catalog.
        interface, region_name: which catalog entry (``public`` in the default region when None).
        attempts: tries of an idempotent request on connection errors and 502/503/504.
    """

    def __init__(
        self,
        session: ks_session.Session,
        endpoint: str | None = None,
        *,
        interface: str | None = None,
        region_name: str | None = None,
        service_type: str = "image",
        attempts: int = 3,
    ) -> None:
        self.session = session
        self._endpoint = _base(endpoint) if endpoint else None
        self.interface = interface
        self.region_name = region_name
        self.service_type = service_type
        self.attempts = attempts
        for scheme in ("http://", "https://"):
            session.session.mount(scheme, requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE))

    @property
    def endpoint(self) -> str:
        """The API's base URL, looked up in the catalog the first time when it was not given."""
        if self._endpoint is None:
            try:
                found = self.session.get_endpoint(
                    service_type=self.service_type, interface=self.interface or "public", region_name=self.region_name
                )
            except ks_exceptions.ClientException as exc:
                raise ConfigurationError(f"cannot find the {self.service_type} endpoint: {exc}") from exc
            if not found:
                raise ConfigurationError(
                    f"the catalog has no {self.service_type} endpoint"
                    + (f" in region {self.region_name}" if self.region_name else "")
                    + "; name one (--endpoint, --os-image-endpoint-override or image_endpoint_override)"
                )
            self._endpoint = _base(found)
        return self._endpoint

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        idempotent: bool = True,
        timeout: float | None = API_TIMEOUT_S,
    ) -> requests.Response:
        """Send one request to ``endpoint + path``; the response whatever its status (redirects not followed)."""
        sent = {"Accept": "application/json", **(headers or {})}
        retries = self.attempts - 1 if idempotent else 0
        try:
            return self.session.request(
                self.endpoint + path,
                method,
                json=body,
                headers=sent,
                raise_exc=False,
                redirect=False,
                stream=stream,
                timeout=timeout,
                connect_retries=retries,
                status_code_retries=retries,
                retriable_status_codes=_RETRIED_STATUSES,
            )
        except ks_exceptions.ConnectionError as exc:
            raise ApiError(method, path, 0, f"cannot reach the image API at {self.endpoint}: {exc}") from exc
        except ks_exceptions.ClientException as exc:  # authentication failed before the request was sent
            raise ApiError(method, path, 0, f"authentication failed: {exc}") from exc

    def call(
        self, method: str, path: str, body: Any = None, *, idempotent: bool = True, missing_ok: bool = False
    ) -> Any:
        """Send one request; the decoded JSON (None for an empty body, or for 404 when ``missing_ok``)."""
        response = self.request(method, path, body=body, idempotent=idempotent)
        if missing_ok and response.status_code == 404:
            return None
        raise_for_status(method, path, response)
        return response.json() if response.content else None

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.session.close()

    @classmethod
    def from_token(
        cls, endpoint: str, token: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> ApiConnection:
        """A fixed token (``X-Auth-Token``) at a fixed endpoint."""
        session = ks_session.Session(auth=token_endpoint.Token(endpoint, token), additional_headers=dict(headers or {}))
        return cls(session, endpoint, **kwargs)

    @classmethod
    def from_headers(cls, endpoint: str, headers: Mapping[str, str] | None = None, **kwargs: Any) -> ApiConnection:
        """No token: only ``headers`` (the dev stack's ``X-Project-Id``, ``X-User-Id``, ``X-Roles``)."""
        return cls(ks_session.Session(additional_headers=dict(headers or {})), endpoint, **kwargs)

    @classmethod
    def from_cloud(
        cls, cloud: str | None = None, options: argparse.Namespace | None = None, endpoint: str | None = None
    ) -> ApiConnection:
        """A cloud of clouds.yaml and/or ``OS_*``/``--os-*`` settings, as openstacksdk and the openstack CLI read them.

        Raises:
            ConfigurationError: the cloud is unknown or its settings cannot authenticate.
        """
        try:
            import openstack.config
            from openstack import exceptions as sdk_exceptions
        except ImportError as exc:
            raise ConfigurationError("clouds.yaml and OS_* need openstacksdk: pip install 'sglance[client]'") from exc
        try:
            region = openstack.config.OpenStackConfig().get_one(cloud=cloud, argparse=options, validate=True)
            session = region.get_session()
            override = endpoint or region.get_endpoint("image")
        except (sdk_exceptions.SDKException, ks_exceptions.ClientException) as exc:
            raise ConfigurationError(f"cloud {cloud or region_name_of(options)!r}: {exc}") from exc
        interface = region.get_interface("image")
        return cls(
            session,
            override,
            interface=interface if isinstance(interface, str) else None,
            region_name=region.region_name or None,
        )


def region_name_of(options: argparse.Namespace | None) -> str:
    """How to name the cloud of ``options`` in a message (its ``--os-cloud``, or the OS_* environment)."""
    return str(getattr(options, "os_cloud", None) or "from the OS_* environment")


def raise_for_status(method: str, path: str, response: requests.Response) -> None:
    """``ApiError`` for a status of 400 and above, with the API's message."""
    if response.status_code >= 400:
        raise ApiError(method, path, response.status_code, error_message(response.content))


def error_message(body: bytes) -> str:
    """The ``message`` of a JSON error (ours, Glance's ``{"error": ...}`` or webob's), else the start of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict):
        message = data.get("message")
        if isinstance(message, str):
            return message
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return json.dumps(data)[:500]


def _base(endpoint: str) -> str:
    # A catalog's versioned endpoint works too: every path this client sends starts with /v2.
    return endpoint.rstrip("/").removesuffix("/v2").rstrip("/")
