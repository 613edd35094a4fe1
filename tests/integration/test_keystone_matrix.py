"""Authorization matrix against a real Keystone: persona x operation x visibility -> HTTP code, as Glance 33 answers.

The API (``create_app`` with ``auth_mode=keystone``) runs on uvicorn in a thread, on moto with resource names of its
own (so other modules' tables and buckets are untouched), and is driven by openstacksdk with the accounts' real
Keystone tokens (keystoneauth1's ``token_endpoint.Token``: the exact token, sent as ``X-Auth-Token``).

Project A owns one image of each visibility, each with a few bytes of data; the shared one has project B as a
pending member. Operations that change what other cases see (delete, accept) work on throwaway images; share removes
the membership it added.

The expectations are written out from Glance's defaults (glance/policies, glance/api/v2/policy.py), not computed
from our policy code:

* a caller that cannot see an image (the data layer hides it, or ``get_image`` fails) gets 404 for every operation
  on it, never 403 (``ImageAPIPolicy._enforce`` turns Forbidden into NotFound when ``get_image`` fails too);
* a caller that can see it but lacks the operation's rule gets 403;
* ``add_member`` on a non-shared image is 403 ("Only shared images have members");
* the unscoped token of ``no-role`` (no project, no roles) is a valid token for keystonemiddleware, so it is not 401;
  Glance's image rules then fail (no role, no project): every image is 404 (``get_image`` fails, or the data layer
  hides it), and listing is 403 (``get_images`` = admin or project reader).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import openstack.connection
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from openstack import exceptions
from openstack.image.v2._proxy import Proxy as ImageProxy

from devstack.provision import provision
from functions.api.app import create_app
from shared.auth.keystone import KeystoneAuthenticator
from shared.config import Settings
from shared.resources import resources_for
from tests.backends.keystone.accounts import KeystoneEnv
from tests.conftest import AWS_REGION
from tests.support.serving import serve

pytestmark = [
    pytest.mark.integration,
    pytest.mark.keystone,
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]

VISIBILITIES = ("private", "shared", "community", "public")
DATA = b"matrix image bytes\n" * 8

# For "list": IN = in the default list, OUT = answered 200 but absent, an int = the list itself fails with that code.
IN = "listed"
OUT = "absent"

# persona -> operation -> (private, shared, community, public)
EXPECTED: dict[str, dict[str, tuple[int | str, ...]]] = {
    "admin": {
        "show": (200, 200, 200, 200),
        "list": (IN, IN, IN, IN),
        "download": (200, 200, 200, 200),
        "update": (200, 200, 200, 200),
        "delete": (204, 204, 204, 204),
        "share": (403, 200, 403, 403),  # only shared images have members
    },
    "member-a": {  # the owner's member
        "show": (200, 200, 200, 200),
        "list": (IN, IN, IN, IN),
        "download": (200, 200, 200, 200),
        "update": (200, 200, 200, 200),
        "delete": (204, 204, 204, 204),
        "share": (403, 200, 403, 403),
    },
    "reader-a": {  # the owner's reader: sees all, downloads none (download_image needs role:member), changes none
        "show": (200, 200, 200, 200),
        "list": (IN, IN, IN, IN),
        "download": (403, 403, 403, 403),
        "update": (403, 403, 403, 403),
        "delete": (403, 403, 403, 403),
        "share": (403, 403, 403, 403),
    },
    "member-b": {  # another project; a (pending) member of the shared image
        "show": (404, 200, 200, 200),
        "list": (OUT, OUT, OUT, IN),  # pending: not in the default list; community is never listed for others
        "download": (404, 200, 200, 200),
        "update": (404, 403, 403, 403),
        "delete": (404, 403, 403, 403),
        "share": (404, 403, 403, 403),
    },
    "no-role": {  # unscoped: a valid token with no project and no roles
        "show": (404, 404, 404, 404),
        "list": (403, 403, 403, 403),
        "download": (404, 404, 404, 404),
        "update": (404, 404, 404, 404),
        "delete": (404, 404, 404, 404),
        "share": (404, 404, 404, 404),
    },
}
# PUT /v2/images/{shared}/members/{project B} {"status": "accepted"}: only the member project (or admin) decides.
EXPECTED_ACCEPT = {"admin": 200, "member-a": 403, "reader-a": 403, "member-b": 200, "no-role": 404}

CASES = [
    pytest.param(persona, operation, visibility, codes[i], id=f"{persona}-{operation}-{visibility}")
    for persona, operations in EXPECTED.items()
    for operation, codes in operations.items()
    for i, visibility in enumerate(VISIBILITIES)
]

Connect = Callable[[str], ImageProxy]


# -- the served app and the connections -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint(keystone: KeystoneEnv, moto_endpoint: str) -> Iterator[str]:
    """The API on uvicorn on 127.0.0.1, on moto resources named for this module only."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        **keystone.settings(),
        aws_endpoint_url=moto_endpoint,
        aws_region=AWS_REGION,
        table_name=f"kmatrix-images-{suffix}",
        image_bucket=f"kmatrix-images-{suffix}",
        upload_queue_name=f"kmatrix-upload-{suffix}",
        store_sync_queue_name=f"kmatrix-sync-{suffix}",
        import_queue_name=f"kmatrix-import-{suffix}",
        event_bus_name=f"kmatrix-events-{suffix}",
    )
    provision(resources_for(settings), moto_endpoint, AWS_REGION)
    app = create_app(settings)
    try:
        with serve(app) as url:
            yield url
    finally:
        authenticator = app.state.container.authenticator
        if isinstance(authenticator, KeystoneAuthenticator):
            authenticator.close()


@pytest.fixture(scope="module")
def connect(keystone: KeystoneEnv, endpoint: str) -> Iterator[Connect]:
    """``connect(account)``: the image API of an openstacksdk connection with that account's real Keystone token."""
    made: dict[str, tuple[openstack.connection.Connection, ks_session.Session]] = {}

    def make(account: str) -> ImageProxy:
        if account not in made:
            session = ks_session.Session(auth=token_endpoint.Token(endpoint, keystone.token(account)), timeout=30)
            conn = openstack.connection.Connection(
                session=session, image_endpoint_override=endpoint, image_api_version="2"
            )
            made[account] = (conn, session)
        return cast(ImageProxy, made[account][0].image)

    yield make
    for conn, session in made.values():
        conn.close()
        session.session.close()


def _status(call: Callable[[], Any]) -> int:
    """The HTTP code of an SDK call: 200 when it returns, the exception's code when it raises."""
    try:
        call()
    except exceptions.HttpException as exc:
        assert exc.status_code is not None, exc
        return int(exc.status_code)
    return 200


def _make_image(connect: Connect, keystone: KeystoneEnv, visibility: str, name: str) -> str:
    """An active image of project A (public ones are made by admin), with data; shared ones have B as member."""
    conn = connect("admin" if visibility == "public" else "member-a")
    image = conn.create_image(name=name, disk_format="raw", container_format="bare", visibility=visibility)
    response = conn.put(f"/images/{image.id}/file", data=DATA, headers={"Content-Type": "application/octet-stream"})
    exceptions.raise_from_response(response)
    assert conn.get_image(image.id).status == "active"
    if visibility == "shared":
        member = conn.add_member(image.id, member_id=keystone.accounts["member-b"].project_id)
        assert member.status == "pending"
    return str(image.id)


@pytest.fixture(scope="module")
def images(connect: Connect, keystone: KeystoneEnv) -> dict[str, str]:
    """visibility -> id of project A's image of that visibility."""
    return {v: _make_image(connect, keystone, v, f"matrix-{v}") for v in VISIBILITIES}


# -- the matrix ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "operation", "visibility", "expected"), CASES)
def test_matrix(
    connect: Connect,
    keystone: KeystoneEnv,
    images: dict[str, str],
    persona: str,
    operation: str,
    visibility: str,
    expected: int | str,
) -> None:
    conn = connect(persona)
    image_id = images[visibility]

    if operation == "show":
        assert _status(lambda: conn.get_image(image_id)) == expected
    elif operation == "list":
        listed: list[str] = []
        code = _status(lambda: listed.extend(image.id for image in conn.images()))
        assert (code if code != 200 else IN if image_id in listed else OUT) == expected
    elif operation == "download":
        # download_image does not check the code of GET /file (it hashes an error body as if it were data), so raw
        response = conn.get(f"/images/{image_id}/file")
        assert _status(lambda: exceptions.raise_from_response(response)) == expected
        if expected == 200:
            assert response.content == DATA
            assert connect("member-a").download_image(image_id).content == DATA  # and via the SDK's helper
    elif operation == "update":
        name = f"matrix-{visibility}-{persona}"
        code = _status(lambda: conn.update_image(image_id, name=name))
        assert code == expected
        if code == 200:
            assert connect("admin").get_image(image_id).name == name
    elif operation == "delete":
        throwaway = _make_image(connect, keystone, visibility, f"matrix-delete-{visibility}-{persona}")
        code = _status(lambda: conn.delete_image(throwaway, ignore_missing=False))
        assert code == (200 if expected == 204 else expected)  # the SDK returns None on 204
        if expected == 204:
            assert _status(lambda: connect("admin").get_image(throwaway)) == 404
        else:
            assert connect("admin").get_image(throwaway).status == "active"
            connect("admin").delete_image(throwaway, ignore_missing=False)
    elif operation == "share":
        project_c = keystone.projects["project-c"]
        code = _status(lambda: conn.add_member(image_id, member_id=project_c))
        assert code == expected
        if code == 200:  # leave the image as it was, for the other cases
            connect("member-a").remove_member(project_c, image_id, ignore_missing=False)
    else:  # pragma: no cover
        raise AssertionError(operation)


@pytest.mark.parametrize(("persona", "expected"), sorted(EXPECTED_ACCEPT.items()))
def test_accept_shared_membership(connect: Connect, keystone: KeystoneEnv, persona: str, expected: int) -> None:
    image_id = _make_image(connect, keystone, "shared", f"matrix-accept-{persona}")
    project_b = keystone.accounts["member-b"].project_id
    assert project_b is not None
    try:
        code = _status(lambda: connect(persona).update_member(project_b, image_id, status="accepted"))

        assert code == expected
        shown = connect("member-a").get_member(project_b, image_id)
        assert shown.status == ("accepted" if expected == 200 else "pending")
    finally:
        connect("admin").delete_image(image_id, ignore_missing=False)


def test_private_image_of_another_project__is_404_for_every_operation(
    connect: Connect, keystone: KeystoneEnv, images: dict[str, str]
) -> None:
    conn = connect("member-b")
    private = images["private"]
    calls: dict[str, Callable[[], Any]] = {
        "show": lambda: conn.get_image(private),
        "download": lambda: exceptions.raise_from_response(conn.get(f"/images/{private}/file")),
        "update": lambda: conn.update_image(private, name="stolen"),
        "delete": lambda: conn.delete_image(private, ignore_missing=False),
        "share": lambda: conn.add_member(private, member_id=keystone.projects["project-c"]),
        "members": lambda: list(conn.members(private)),
        "deactivate": lambda: exceptions.raise_from_response(conn.post(f"/images/{private}/actions/deactivate")),
        "reactivate": lambda: exceptions.raise_from_response(conn.post(f"/images/{private}/actions/reactivate")),
    }

    assert {name: _status(call) for name, call in calls.items()} == dict.fromkeys(calls, 404)
    assert connect("member-a").get_image(private).status == "active"
