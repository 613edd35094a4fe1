"""Keystone authentication against a real Keystone 30 (the session's ``keystone`` fixture, tests/backends/keystone).

``KeystoneAuthenticator`` validates tokens as the service user ``glance`` and builds the context keystonemiddleware
would: user, project, domains, lower-case roles, system and domain scope, service roles. Every request to Keystone
goes through a ``requests.Session`` whose response hook records it, so the tests can say how many calls a
validation cost. Cache behaviour shown here:

* a valid token is cached for ``min(keystone_cache_ttl_seconds, expires_at - now)``; while cached, a token revoked in
  Keystone still passes (the price of the cache, as with keystonemiddleware); once the entry is stale, or in another
  container, it gets 401 at once;
* a rejected token is cached too, for the TTL, in a smaller cache of its own;
* malformed, oversized or missing tokens never reach Keystone.

A few tests need no Keystone at all (a closed port, a fake Keystone answering 5xx, Secrets Manager on moto).
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from fastapi.testclient import TestClient
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from devstack.provision import provision
from functions.api.app import create_app
from shared.auth.keystone import KeystoneAuthenticator
from shared.bootstrap import AwsClients
from shared.config import Settings
from shared.domain.context import RequestContext
from shared.domain.errors import IdentityUnavailableError, NotAuthenticatedError
from shared.resources import resources_for
from tests.backends.keystone.accounts import Account, KeystoneEnv
from tests.conftest import AWS_REGION

pytestmark = [pytest.mark.integration, pytest.mark.keystone]

REQUEST_ID = "req-test"
ROLES = {
    "admin": {"admin", "manager", "member", "reader"},  # Keystone 30 implies: admin -> manager -> member -> reader
    "member-a": {"member", "reader"},
    "reader-a": {"reader"},
    "member-b": {"member", "reader"},
}


# -- fixtures and helpers --------------------------------------------------------------------------------------


class RecordedHttp(requests.Session):
    """The transport under keystoneauth1, recording ``(method, path)`` of every response from Keystone."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.calls.append((str(response.request.method), urlsplit(response.url).path))

    def validations(self) -> int:
        """How many ``GET /v3/auth/tokens`` were sent."""
        return sum(1 for method, path in self.calls if method == "GET" and path.endswith("/auth/tokens"))


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(scope="module")
def tokens(keystone: KeystoneEnv) -> dict[str, str]:
    """One token per account for the module (tests that revoke or expire a token make their own)."""
    return {name: keystone.token(name) for name in keystone.accounts}


@pytest.fixture
def http() -> Iterator[RecordedHttp]:
    with RecordedHttp() as session:
        yield session


@pytest.fixture
def make_authenticator(keystone: KeystoneEnv, http: RecordedHttp) -> Iterator[Callable[..., KeystoneAuthenticator]]:
    """Builds authenticators for the test Keystone over ``http``; extra keyword arguments are Settings."""
    made: list[KeystoneAuthenticator] = []

    def make(clock: Callable[[], float] = time.time, **settings: Any) -> KeystoneAuthenticator:
        authenticator = KeystoneAuthenticator(Settings(**{**keystone.settings(), **settings}), http=http, clock=clock)
        made.append(authenticator)
        return authenticator

    yield make
    for authenticator in made:
        authenticator.close()


@pytest.fixture
def authenticator(make_authenticator: Callable[..., KeystoneAuthenticator]) -> KeystoneAuthenticator:
    return make_authenticator()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def token_headers(token: str) -> dict[str, str]:
    return {"x-auth-token": token}


def admin_session(keystone: KeystoneEnv) -> ks_session.Session:
    """A keystoneauth session of the bootstrap admin (the caller closes ``.session``)."""
    return ks_session.Session(auth=v3.Password(**keystone.accounts["admin"].auth(keystone.url)), timeout=30)


def fresh_user(keystone: KeystoneEnv) -> Account:
    """A new user of project-c, with no role yet (for tests that change its assignments)."""
    password = secrets.token_urlsafe(18)
    name = f"user-{uuid.uuid4().hex[:8]}"
    admin = admin_session(keystone)
    try:
        body = {"user": {"name": name, "password": password, "domain_id": "default"}}
        user_id = admin.post(f"{keystone.url}/users", json=body).json()["user"]["id"]
    finally:
        admin.session.close()
    return Account(name, password, user_id, None, None)


def contains(value: object, needle: str, seen: set[int] | None = None) -> bool:
    """Whether ``needle`` occurs in a string anywhere inside ``value`` (attributes, mappings, sequences)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return False
    seen.add(id(value))
    if isinstance(value, str | bytes):
        return needle in (value if isinstance(value, str) else value.decode("latin-1"))
    if isinstance(value, dict):
        return any(contains(k, needle, seen) or contains(v, needle, seen) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains(item, needle, seen) for item in value)
    if hasattr(value, "__dict__") and not callable(value):
        return contains(vars(value), needle, seen)
    return False


# -- the context of a valid token ------------------------------------------------------------------------------


@pytest.mark.parametrize("account", sorted(ROLES))
def test_valid_token__gives_the_holders_user_project_domains_and_roles(
    authenticator: KeystoneAuthenticator, keystone: KeystoneEnv, tokens: dict[str, str], account: str
) -> None:
    ctx = authenticator.authenticate(token_headers(tokens[account]), REQUEST_ID)

    expected = keystone.accounts[account]
    assert ctx == RequestContext(
        request_id=REQUEST_ID,
        project_id=expected.project_id,
        user_id=expected.user_id,
        roles=frozenset(ROLES[account]),
        user_domain_id="default",
        project_domain_id="default",
    )


def test_reader_token__carries_the_reader_role_only(
    authenticator: KeystoneAuthenticator, tokens: dict[str, str]
) -> None:
    ctx = authenticator.authenticate(token_headers(tokens["reader-a"]), REQUEST_ID)

    assert ctx.roles == {"reader"}
    assert "admin" not in ctx.roles


def test_unscoped_token_of_a_user_without_roles__has_no_project_and_no_roles(
    authenticator: KeystoneAuthenticator, keystone: KeystoneEnv, tokens: dict[str, str]
) -> None:
    ctx = authenticator.authenticate(token_headers(tokens["no-role"]), REQUEST_ID)

    assert (ctx.user_id, ctx.project_id, ctx.roles) == (keystone.accounts["no-role"].user_id, None, frozenset())


def test_system_scoped_token__sets_system_scope_all_and_no_project(
    authenticator: KeystoneAuthenticator, keystone: KeystoneEnv
) -> None:
    admin = keystone.accounts["admin"]
    auth = v3.Password(
        auth_url=keystone.url,
        username=admin.name,
        password=admin.password,
        user_domain_name="Default",
        system_scope="all",
    )
    with requests.Session() as transport:
        token = ks_session.Session(auth=auth, session=transport).get_token()
    assert token is not None

    ctx = authenticator.authenticate(token_headers(token), REQUEST_ID)

    assert (ctx.system_scope, ctx.project_id, ctx.domain_id) == ("all", None, None)
    assert "admin" in ctx.roles


def test_domain_scoped_token__sets_the_domain(authenticator: KeystoneAuthenticator, keystone: KeystoneEnv) -> None:
    user = fresh_user(keystone)
    admin = admin_session(keystone)
    try:
        reader = admin.get(f"{keystone.url}/roles", params={"name": "reader"}).json()["roles"][0]["id"]
        admin.put(f"{keystone.url}/domains/default/users/{user.user_id}/roles/{reader}")
    finally:
        admin.session.close()
    auth = v3.Password(
        auth_url=keystone.url, username=user.name, password=user.password, user_domain_name="Default",
        domain_name="Default",
    )  # fmt: skip
    with requests.Session() as transport:
        token = ks_session.Session(auth=auth, session=transport).get_token()
    assert token is not None

    ctx = authenticator.authenticate(token_headers(token), REQUEST_ID)

    assert (ctx.domain_id, ctx.project_id, ctx.roles) == ("default", None, frozenset({"reader"}))


def test_service_token__adds_its_roles_as_service_roles(
    authenticator: KeystoneAuthenticator, tokens: dict[str, str]
) -> None:
    headers = {"x-auth-token": tokens["member-a"], "x-service-token": tokens["glance"]}

    ctx = authenticator.authenticate(headers, REQUEST_ID)

    assert ctx.roles == {"member", "reader"}
    assert {"service", "admin"} <= ctx.service_roles


def test_invalid_service_token__is_401_even_with_a_valid_user_token(
    authenticator: KeystoneAuthenticator, tokens: dict[str, str]
) -> None:
    headers = {"x-auth-token": tokens["member-a"], "x-service-token": "gAAAAA" + "x" * 100}

    with pytest.raises(NotAuthenticatedError):
        authenticator.authenticate(headers, REQUEST_ID)


def test_header_names__are_case_insensitive(authenticator: KeystoneAuthenticator, tokens: dict[str, str]) -> None:
    ctx = authenticator.authenticate({"X-Auth-Token": tokens["member-b"]}, REQUEST_ID)

    assert ctx.roles == {"member", "reader"}


# -- tokens that are not (or no longer) valid -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("garbage", "not a token!"),
        ("control characters", "gAAAAA\x00\x01"),
        ("non-ASCII", "gAAAAAé"),
        ("10 kB", "gAAAAA" + "A" * 10_240),
        ("1 MB", "A" * 1_000_000),
    ],
)
def test_malformed_or_huge_token__is_401_fast_without_asking_keystone(
    authenticator: KeystoneAuthenticator, http: RecordedHttp, name: str, token: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(NotAuthenticatedError) as caught:
        authenticator.authenticate(token_headers(token), REQUEST_ID)

    assert time.perf_counter() - started < 0.05
    assert http.calls == []
    assert caught.value.reason == "malformed token"


@pytest.mark.parametrize("headers", [{}, {"x-auth-token": ""}, {"x-auth-token": "   "}])
def test_missing_token__is_401_naming_keystone(
    authenticator: KeystoneAuthenticator, keystone: KeystoneEnv, http: RecordedHttp, headers: dict[str, str]
) -> None:
    with pytest.raises(NotAuthenticatedError) as caught:
        authenticator.authenticate(headers, REQUEST_ID)

    assert caught.value.uri == keystone.url
    assert http.calls == []


def test_well_formed_unknown_token__is_401_after_one_validation(
    authenticator: KeystoneAuthenticator, http: RecordedHttp
) -> None:
    forged = "gAAAAAB" + secrets.token_urlsafe(160)

    with pytest.raises(NotAuthenticatedError) as caught:
        authenticator.authenticate(token_headers(forged), REQUEST_ID)

    assert caught.value.reason == "rejected by Keystone"
    assert http.validations() == 1


def test_revoked_token__is_401_for_a_fresh_validation_and_cached_until_the_ttl(
    make_authenticator: Callable[..., KeystoneAuthenticator], keystone: KeystoneEnv, http: RecordedHttp
) -> None:
    token = keystone.token("member-a")
    clock = Clock()
    warm = make_authenticator(clock=clock, keystone_cache_ttl_seconds=300)
    warm.authenticate(token_headers(token), REQUEST_ID)

    revoked = requests.delete(
        f"{keystone.url}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=10
    )
    assert revoked.status_code == 204

    # a container that has not seen the token asks Keystone: 401 at once
    with pytest.raises(NotAuthenticatedError):
        make_authenticator().authenticate(token_headers(token), REQUEST_ID)
    # the warm container trusts its cache until the TTL ...
    assert warm.authenticate(token_headers(token), REQUEST_ID).project_id == keystone.accounts["member-a"].project_id
    # ... and asks again once it has passed
    clock.advance(301)
    with pytest.raises(NotAuthenticatedError):
        warm.authenticate(token_headers(token), REQUEST_ID)


def test_expired_token__is_401_and_its_cache_entry_ends_with_it(
    authenticator: KeystoneAuthenticator, keystone: KeystoneEnv, http: RecordedHttp
) -> None:
    # Keystone caps a token's expiry at its application credential's: a token that expires in 3 s
    member = keystone.accounts["member-a"]
    expires = datetime.now(UTC) + timedelta(seconds=3)
    with requests.Session() as transport:
        session = ks_session.Session(auth=v3.Password(**member.auth(keystone.url)), session=transport, timeout=30)
        body = {
            "application_credential": {
                "name": f"short-{uuid.uuid4().hex[:8]}",
                "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        }
        credential = session.post(f"{keystone.url}/users/{member.user_id}/application_credentials", json=body).json()
        credential = credential["application_credential"]
        auth = v3.ApplicationCredential(
            auth_url=keystone.url,
            application_credential_id=credential["id"],
            application_credential_secret=credential["secret"],
        )
        token = ks_session.Session(auth=auth, session=transport, timeout=30).get_token()
    assert token is not None

    assert authenticator.authenticate(token_headers(token), REQUEST_ID).user_id == member.user_id
    assert authenticator.authenticate(token_headers(token), REQUEST_ID).user_id == member.user_id
    assert http.validations() == 1  # cached (the TTL is 300 s, the token's life 3 s)

    time.sleep(max(0.0, expires.timestamp() - time.time()) + 1.1)
    with pytest.raises(NotAuthenticatedError) as caught:
        authenticator.authenticate(token_headers(token), REQUEST_ID)
    assert caught.value.reason == "rejected by Keystone"
    assert http.validations() == 2  # the entry ended with the token, so Keystone was asked again and said no


# -- caching ---------------------------------------------------------------------------------------------------


def test_second_validation_within_the_ttl__makes_no_keystone_call(
    authenticator: KeystoneAuthenticator, http: RecordedHttp, tokens: dict[str, str]
) -> None:
    authenticator.authenticate(token_headers(tokens["member-a"]), REQUEST_ID)
    # the service user's own token (once per authenticator), then the validation
    assert http.calls == [("POST", "/v3/auth/tokens"), ("GET", "/v3/auth/tokens")]

    authenticator.authenticate(token_headers(tokens["member-a"]), REQUEST_ID)
    assert len(http.calls) == 2

    authenticator.authenticate(token_headers(tokens["member-b"]), REQUEST_ID)
    assert http.validations() == 2  # another token: one more validation, the service session is reused
    assert [method for method, _ in http.calls].count("POST") == 1


def test_rejected_token__is_remembered_within_the_ttl(authenticator: KeystoneAuthenticator, http: RecordedHttp) -> None:
    forged = "gAAAAAB" + secrets.token_urlsafe(160)
    for _ in range(3):
        with pytest.raises(NotAuthenticatedError):
            authenticator.authenticate(token_headers(forged), REQUEST_ID)

    assert http.validations() == 1


def test_cache_entries__end_after_the_ttl(
    make_authenticator: Callable[..., KeystoneAuthenticator], http: RecordedHttp, tokens: dict[str, str]
) -> None:
    clock = Clock()
    authenticator = make_authenticator(clock=clock, keystone_cache_ttl_seconds=60)
    authenticator.authenticate(token_headers(tokens["reader-a"]), REQUEST_ID)
    clock.advance(59)
    authenticator.authenticate(token_headers(tokens["reader-a"]), REQUEST_ID)
    assert http.validations() == 1
    clock.advance(2)
    authenticator.authenticate(token_headers(tokens["reader-a"]), REQUEST_ID)
    assert http.validations() == 2


def test_ttl_zero__asks_keystone_every_time(
    make_authenticator: Callable[..., KeystoneAuthenticator], http: RecordedHttp, tokens: dict[str, str]
) -> None:
    authenticator = make_authenticator(keystone_cache_ttl_seconds=0)
    for _ in range(3):
        authenticator.authenticate(token_headers(tokens["reader-a"]), REQUEST_ID)

    assert http.validations() == 3


def test_cache_and_logs__never_hold_the_token(
    authenticator: KeystoneAuthenticator,
    make_authenticator: Callable[..., KeystoneAuthenticator],
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = tokens["member-a"]
    forged = "gAAAAAB" + secrets.token_urlsafe(160)
    authenticator.authenticate(token_headers(token), REQUEST_ID)
    with pytest.raises(NotAuthenticatedError):
        authenticator.authenticate(token_headers(forged), REQUEST_ID)

    key = authenticator.cache_key(token)
    assert len(key) == 64 and token not in key
    assert key != make_authenticator().cache_key(token)  # keyed per process: a digest cannot be checked elsewhere
    assert contains(authenticator, key)  # the walk does reach the cache
    assert not contains(authenticator, token)
    assert not contains(authenticator, forged)
    assert all(token not in record.getMessage() and forged not in record.getMessage() for record in caplog.records)


# -- Keystone unavailable: 503, never a pass --------------------------------------------------------------------


def test_keystone_on_a_closed_port__is_503(
    make_authenticator: Callable[..., KeystoneAuthenticator], tokens: dict[str, str]
) -> None:
    authenticator = make_authenticator(keystone_url=f"http://127.0.0.1:{closed_port()}/v3", keystone_timeout_seconds=2)

    with pytest.raises(IdentityUnavailableError, match="could not be reached"):
        authenticator.authenticate(token_headers(tokens["member-a"]), REQUEST_ID)


def test_wrong_service_password__is_503_not_401(
    make_authenticator: Callable[..., KeystoneAuthenticator], tokens: dict[str, str]
) -> None:
    authenticator = make_authenticator(keystone_service_password="wrong")

    with pytest.raises(IdentityUnavailableError, match="refused the service user"):
        authenticator.authenticate(token_headers(tokens["member-a"]), REQUEST_ID)


def test_service_user_without_a_validating_role__is_503(
    make_authenticator: Callable[..., KeystoneAuthenticator], keystone: KeystoneEnv, tokens: dict[str, str]
) -> None:
    # member-b may authenticate, but Keystone's policy does not let it validate another user's token
    member_b = keystone.accounts["member-b"]
    authenticator = make_authenticator(
        keystone_service_username=member_b.name,
        keystone_service_password=member_b.password,
        keystone_service_project_name=member_b.project,
    )

    with pytest.raises(IdentityUnavailableError, match=r"refused the service user \(403\)"):
        authenticator.authenticate(token_headers(tokens["member-a"]), REQUEST_ID)


class _FakeKeystone(BaseHTTPRequestHandler):
    """Issues the service user a token, then answers every validation with ``server.validation_status``."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status: int = self.server.auth_status  # type: ignore[attr-defined]
        body = json.dumps({"token": {"expires_at": "2999-01-01T00:00:00.000000Z", "methods": ["password"]}}).encode()
        self.send_response(status)
        self.send_header("X-Subject-Token", "service-token")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        status: int = self.server.validation_status  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("auth_status", "validation_status"), [(201, 500), (201, 503), (500, 200), (503, 200)])
def test_keystone_answering_5xx__is_503(http: RecordedHttp, auth_status: int, validation_status: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeKeystone)
    server.auth_status = auth_status  # type: ignore[attr-defined]
    server.validation_status = validation_status  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v3"
    authenticator = KeystoneAuthenticator(Settings(keystone_url=url, keystone_service_password="x"), http=http)
    failing = validation_status if auth_status < 300 else auth_status
    try:
        with pytest.raises(IdentityUnavailableError, match=f"answered {failing}"):
            authenticator.authenticate(token_headers("gAAAAAB" + "x" * 100), REQUEST_ID)
    finally:
        authenticator.close()
        server.shutdown()
        server.server_close()
        thread.join()


# -- the service password from Secrets Manager ---------------------------------------------------------------------


def test_service_password__is_read_from_secrets_manager_once(
    moto_reset: str,
    aws_client: Callable[[str], Any],
    keystone: KeystoneEnv,
    http: RecordedHttp,
    tokens: dict[str, str],
) -> None:
    secret = json.dumps({"username": "glance", "password": keystone.accounts["glance"].password})
    arn = aws_client("secretsmanager").create_secret(Name="sglance/keystone", SecretString=secret)["ARN"]
    settings = Settings(
        **{**keystone.settings(), "keystone_service_password": None},
        keystone_service_password_secret_arn=arn,
        aws_endpoint_url=moto_reset,
    )
    secrets = AwsClients(settings.aws_region, moto_reset)
    authenticator = KeystoneAuthenticator(settings, http=http, read_secret=secrets.secret)
    try:
        assert authenticator.authenticate(token_headers(tokens["member-a"]), REQUEST_ID).roles == {"member", "reader"}
        assert authenticator.authenticate(token_headers(tokens["member-b"]), REQUEST_ID).roles == {"member", "reader"}
    finally:
        authenticator.close()


def test_unreadable_password_secret__is_503(
    moto_reset: str, keystone: KeystoneEnv, http: RecordedHttp, tokens: dict[str, str]
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sglance/missing-AbCdEf"
    settings = Settings(**keystone.settings(), keystone_service_password_secret_arn=arn, aws_endpoint_url=moto_reset)
    secrets = AwsClients(settings.aws_region, moto_reset)
    authenticator = KeystoneAuthenticator(settings, http=http, read_secret=secrets.secret)

    with pytest.raises(IdentityUnavailableError, match="service password could not be read"):
        authenticator.authenticate(token_headers(tokens["member-a"]), REQUEST_ID)
    assert http.calls == []


# -- end to end: the API with real tokens ------------------------------------------------------------------------


@pytest.fixture
def api(keystone: KeystoneEnv, moto_reset: str) -> Iterator[TestClient]:
    settings = Settings(**keystone.settings(), aws_endpoint_url=moto_reset, aws_region=AWS_REGION)
    provision(resources_for(settings), moto_reset, AWS_REGION)
    app = create_app(settings)
    with TestClient(app, headers={"Accept": "application/json"}) as client:
        yield client
    authenticator = app.state.container.authenticator
    assert isinstance(authenticator, KeystoneAuthenticator)
    authenticator.close()


def _as(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def test_api__each_user_creates_and_lists_images_as_its_project(
    api: TestClient, keystone: KeystoneEnv, tokens: dict[str, str]
) -> None:
    created: dict[str, dict[str, Any]] = {}
    for account in ("admin", "member-a", "member-b"):
        body = {"name": f"{account}-image", "disk_format": "raw", "container_format": "bare", "visibility": "private"}
        response = api.post("/v2/images", json=body, headers=_as(tokens[account]))
        assert response.status_code == 201, response.text
        created[account] = response.json()
        assert created[account]["owner"] == keystone.accounts[account].project_id
    by_reader = api.post("/v2/images", json={"name": "reader-image"}, headers=_as(tokens["reader-a"]))
    assert by_reader.status_code == 403, by_reader.text

    def names(account: str) -> set[str]:
        response = api.get("/v2/images", headers=_as(tokens[account]))
        assert response.status_code == 200, response.text
        return {image["name"] for image in response.json()["images"]}

    assert names("member-a") == {"admin-image", "member-a-image"}  # both are project-a's
    assert names("reader-a") == {"admin-image", "member-a-image"}
    assert names("member-b") == {"member-b-image"}
    assert names("admin") >= {"admin-image", "member-a-image"}


def test_api__a_project_b_user_cannot_see_project_as_private_image(api: TestClient, tokens: dict[str, str]) -> None:
    body = {"name": "secret", "disk_format": "raw", "container_format": "bare", "visibility": "private"}
    image_id = api.post("/v2/images", json=body, headers=_as(tokens["member-a"])).json()["id"]

    assert api.get(f"/v2/images/{image_id}", headers=_as(tokens["member-a"])).status_code == 200
    assert api.get(f"/v2/images/{image_id}", headers=_as(tokens["member-b"])).status_code == 404
    assert api.delete(f"/v2/images/{image_id}", headers=_as(tokens["member-b"])).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Auth-Token": "garbage!"}, {"X-Auth-Token": "A" * 10_240}, {"X-Auth-Token": "gAAAAAB" + "x" * 180}],
    ids=["none", "garbage", "10 kB", "unknown"],
)
def test_api__without_a_valid_token__is_401_with_the_keystone_challenge(
    api: TestClient, keystone: KeystoneEnv, headers: dict[str, str]
) -> None:
    response = api.get("/v2/images", headers={**headers, "Accept": "*/*"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{keystone.url}"'
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
    }


def test_api__with_keystone_down__is_503_never_a_pass(
    keystone: KeystoneEnv, moto_reset: str, tokens: dict[str, str]
) -> None:
    down = f"http://127.0.0.1:{closed_port()}/v3"
    settings = Settings(**{**keystone.settings(), "keystone_url": down}, aws_endpoint_url=moto_reset)
    app = create_app(settings)
    with TestClient(app, headers={"Accept": "application/json"}) as client:
        response = client.get("/v2/images", headers=_as(tokens["member-a"]))
        versions = client.get("/versions")
    app.state.container.authenticator.close()

    assert response.status_code == 503
    assert response.json()["title"] == "Service Unavailable"
    assert "WWW-Authenticate" not in response.headers
    assert versions.status_code == 200  # the unauthenticated version document still answers
