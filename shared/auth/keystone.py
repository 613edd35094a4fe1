"""Keystone authentication: ``X-Auth-Token`` validated against Keystone v3, as keystonemiddleware's auth_token does.

A token is checked with ``GET /v3/auth/tokens`` (``X-Subject-Token``) by a service user, whose keystoneauth1 session
is built on the first request and reused. The request context gets the same fields keystonemiddleware hands a
service in ``X-*`` headers: user and project with their domains, domain or system scope, role names (lower-case) and,
when a valid ``X-Service-Token`` comes along, its roles as service roles.

Outcomes::

    no token, malformed or huge token           -> NotAuthenticatedError (401), without a call to Keystone
    Keystone says 404/4xx (unknown, expired,
      revoked), or the token expires here       -> NotAuthenticatedError (401)
    Keystone unreachable, times out, answers
      5xx or refuses the service user           -> IdentityUnavailableError (503); never treated as valid

Validations are cached in the process (one Lambda container) under a keyed hash of the token, never the token:
a valid one until ``min(keystone_cache_ttl_seconds, expires_at - now)``, a rejected one for the cache TTL. So a
token revoked in Keystone keeps working in a warm container for up to the TTL (keystonemiddleware's
``token_cache_time`` trade-off, 300 s by default); ``keystone_cache_ttl_seconds=0`` asks Keystone every time.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.domain.context import RequestContext
from shared.domain.errors import IdentityUnavailableError, NotAuthenticatedError

if TYPE_CHECKING:
    import requests
    from keystoneauth1.adapter import Adapter

_LOG = logging.getLogger(__name__)

TOKEN_HEADER = "x-auth-token"
SERVICE_TOKEN_HEADER = "x-service-token"
# Fernet tokens are about 200 characters and JWS tokens under 1 kB; Keystone refuses anything longer than its
# max_token_size (255 by default). Longer values are refused here, before any call.
MAX_TOKEN_LENGTH = 8192
# Every Keystone token format (Fernet, JWS, UUID) is URL-safe base64, base64 or hex; anything else is not a token.
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-.=+/]+")
_VALID_ENTRIES = 10_000
# Rejected tokens have their own, smaller cache: a flood of random tokens must not evict the valid ones.
_REJECTED_ENTRIES = 1_000


@dataclass(frozen=True)
class TokenInfo:
    """What Keystone says about a valid token: the fields keystonemiddleware passes on as ``X-*`` headers."""

    user_id: str
    expires_at: float
    user_domain_id: str | None = None
    project_id: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    system_scope: str | None = None
    roles: frozenset[str] = frozenset()


def token_info(body: Mapping[str, Any]) -> TokenInfo:
    """Read Keystone v3's token validation body (``{"token": {...}}``); ValueError if it is not one."""
    try:
        token = body["token"]
        user = token["user"]
        expires = datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
        expires_at = (expires if expires.tzinfo else expires.replace(tzinfo=UTC)).timestamp()
        project = token.get("project") or {}
        system = token.get("system") or {}
        return TokenInfo(
            user_id=str(user["id"]),
            expires_at=expires_at,
            user_domain_id=(user.get("domain") or {}).get("id"),
            project_id=project.get("id"),
            project_domain_id=(project.get("domain") or {}).get("id"),
            domain_id=(token.get("domain") or {}).get("id"),
            system_scope="all" if system.get("all") else None,
            roles=frozenset(str(role["name"]).lower() for role in token.get("roles") or ()),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"not a Keystone v3 token body: {exc!r}") from None


class _TokenCache:
    """A bounded, thread-safe LRU of validation results with a deadline per entry."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[str, tuple[TokenInfo | None, float]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> tuple[TokenInfo | None] | None:
        """The cached result (a 1-tuple, as the result itself may be None), or None when absent or stale."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return (entry[0],)

    def put(self, key: str, value: TokenInfo | None, until: float) -> None:
        """Remember ``value`` until the ``until`` timestamp, evicting the least recently used entry when full."""
        with self._lock:
            self._entries[key] = (value, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    value = value.strip() if value is not None else None
    return value or None


def _v3_endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v3") else f"{url}/v3"


def _no_secrets(arn: str) -> str:
    """The secret reader of an authenticator given none: every secret is unavailable."""
    from shared.secrets import SecretUnavailableError

    raise SecretUnavailableError(f"cannot read secret {arn}: no secret reader was given")


class KeystoneAuthenticator:
    """Validates Keystone tokens with a service user and builds the caller's ``RequestContext``.

    ``http`` is the requests session under keystoneauth1 (tests count calls through its hooks); ``clock`` returns
    the current Unix time; ``read_secret`` reads a Secrets Manager secret's string (the composition root's
    ``AwsClients.secret``), needed only when the service password lives in a secret.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        read_secret: Callable[[str], str] = _no_secrets,
    ) -> None:
        self._settings = settings
        self._uri = settings.keystone_url
        self._http = http
        self._clock = clock
        self._read_secret = read_secret
        self._ttl = settings.keystone_cache_ttl_seconds
        self._valid = _TokenCache(_VALID_ENTRIES)
        self._rejected = _TokenCache(_REJECTED_ENTRIES)
        # a per-process key: the cache holds digests that cannot be checked against a guessed token elsewhere
        self._hash_key = secrets.token_bytes(32)
        self._adapter: Adapter | None = None
        self._adapter_lock = threading.Lock()

    def authenticate(self, headers: Mapping[str, str], request_id: str) -> RequestContext:
        """The context of the caller whose token is in ``X-Auth-Token``.

        Raises:
            NotAuthenticatedError: no token, or one Keystone does not accept (the API answers 401).
            IdentityUnavailableError: Keystone could not be asked (503).
        """
        token = _header(headers, TOKEN_HEADER)
        if token is None:
            raise self._reject("no token", request_id)
        user = self._validate(token, request_id)
        service_roles: frozenset[str] = frozenset()
        service_token = _header(headers, SERVICE_TOKEN_HEADER)
        if service_token is not None:
            # keystonemiddleware refuses the request when a service token is sent but invalid
            service_roles = self._validate(service_token, request_id).roles
        return RequestContext(
            request_id=request_id,
            project_id=user.project_id,
            user_id=user.user_id,
            roles=user.roles,
            domain_id=user.domain_id,
            user_domain_id=user.user_domain_id,
            project_domain_id=user.project_domain_id,
            system_scope=user.system_scope,
            service_roles=service_roles,
            auth_token=token,
        )

    def cache_key(self, token: str) -> str:
        """The cache key of ``token``: a keyed BLAKE2b digest (also what logs show), never the token itself."""
        return hashlib.blake2b(token.encode(), key=self._hash_key, digest_size=32).hexdigest()

    def close(self) -> None:
        """Close the connections to Keystone (the session is rebuilt if used again)."""
        with self._adapter_lock:
            if self._adapter is not None:
                self._adapter.session.close()
            self._adapter = None

    # -- validation ------------------------------------------------------------------------------

    def _validate(self, token: str, request_id: str) -> TokenInfo:
        if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(token):
            raise self._reject("malformed token", request_id)
        key = self.cache_key(token)
        now = self._clock()
        cached = self._valid.get(key, now) or self._rejected.get(key, now)
        if cached is not None:
            if cached[0] is None:
                raise self._reject("rejected by Keystone (cached)", request_id, key)
            return cached[0]
        info = self._ask_keystone(token, request_id)
        now = self._clock()
        if info is None:
            if self._ttl:
                self._rejected.put(key, None, now + self._ttl)
            raise self._reject("rejected by Keystone", request_id, key)
        # keystonemiddleware too refuses a token that Keystone still accepts but that has expired by local time
        if info.expires_at <= now:
            raise self._reject("expired", request_id, key)
        lifetime = min(float(self._ttl), info.expires_at - now)
        if lifetime > 0:
            self._valid.put(key, info, now + lifetime)
        return info

    def _ask_keystone(self, token: str, request_id: str) -> TokenInfo | None:
        """Keystone's answer for ``token``: its info, or None when Keystone does not accept it."""
        from keystoneauth1 import exceptions as ksa_exceptions

        adapter = self._service_adapter()
        try:
            response = adapter.get(
                "/auth/tokens?nocatalog",
                headers={"X-Subject-Token": token},
                raise_exc=False,
                timeout=self._settings.keystone_timeout_seconds,
            )
        except ksa_exceptions.HttpServerError as exc:
            raise self._unavailable(f"Keystone answered {exc.http_status}", request_id) from None
        except ksa_exceptions.HttpError as exc:
            # raised while the service user authenticates: the next request builds a new session (and re-reads a
            # rotated password)
            self.close()
            raise self._unavailable(f"Keystone refused the service user ({exc.http_status})", request_id) from None
        except ksa_exceptions.ClientException as exc:
            raise self._unavailable(f"Keystone could not be reached ({type(exc).__name__})", request_id) from None
        status = response.status_code
        if status == 200:
            try:
                return token_info(response.json())
            except ValueError:
                raise self._unavailable("Keystone's answer was not a token", request_id) from None
        if status in (401, 403):
            # the subject token's problems are 404s: a 401/403 here is about the service user itself
            self.close()
            raise self._unavailable(f"Keystone refused the service user ({status})", request_id)
        if status >= 500:
            raise self._unavailable(f"Keystone answered {status}", request_id)
        return None

    def _service_adapter(self) -> Adapter:
        """The service user's keystoneauth1 adapter, built on first use and reused by every request."""
        with self._adapter_lock:
            if self._adapter is None:
                self._adapter = self._build_adapter()
            return self._adapter

    def _build_adapter(self) -> Adapter:
        from keystoneauth1 import adapter, session
        from keystoneauth1.identity import v3

        s = self._settings
        if not s.keystone_url:
            raise IdentityUnavailableError(detail="keystone_url is not configured")
        endpoint = _v3_endpoint(s.keystone_url)
        plugin = v3.Password(
            auth_url=endpoint,
            username=s.keystone_service_username,
            password=self._service_password(),
            project_name=s.keystone_service_project_name,
            user_domain_name=s.keystone_service_user_domain_name,
            project_domain_name=s.keystone_service_project_domain_name,
        )
        sess = session.Session(
            auth=plugin, session=self._http, timeout=s.keystone_timeout_seconds, user_agent="serverless-glance"
        )
        return adapter.Adapter(sess, service_type="identity", region_name=s.keystone_region, endpoint_override=endpoint)

    def _service_password(self) -> str:
        s = self._settings
        if s.keystone_service_password_secret_arn:
            return self._password_from_secret(s.keystone_service_password_secret_arn)
        if s.keystone_service_password is not None:
            return s.keystone_service_password.get_secret_value()
        raise IdentityUnavailableError(detail="no Keystone service password is configured")

    def _password_from_secret(self, arn: str) -> str:
        """The service password stored in Secrets Manager: the secret string, or its JSON ``password`` field."""
        from shared.secrets import SecretUnavailableError, secret_fields

        try:
            value = self._read_secret(arn)
        except SecretUnavailableError as exc:
            _LOG.error("%s", exc)
            raise IdentityUnavailableError(detail="the service password could not be read") from None
        fields = secret_fields(value)
        return fields.get("password", value)

    # -- outcomes -------------------------------------------------------------------------------

    def _reject(self, reason: str, request_id: str, key: str | None = None) -> NotAuthenticatedError:
        _LOG.info(
            "token refused: %s", reason, extra={"request_id": request_id, "token_hash": key[:16] if key else None}
        )
        return NotAuthenticatedError(uri=self._uri, reason=reason)

    def _unavailable(self, detail: str, request_id: str) -> IdentityUnavailableError:
        _LOG.warning("token not validated: %s", detail, extra={"request_id": request_id})
        return IdentityUnavailableError(detail=detail)
