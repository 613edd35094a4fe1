"""The update paths of openstacksdk and python-glanceclient, against a one-store and a multi-store deployment.

Glance shows an image's ``stores`` only with ``enabled_backends`` (multi-store). openstacksdk's
``update_image(image, key=value)`` rewrites every extra property it saw, so an image body with ``stores`` makes it
send ``remove /stores``, which Glance refuses (409). With one store we show no ``stores`` and the SDK's update
works; with several, our answer is Glance's (measured against Glance 33 with three backends: the same 409), and
glanceclient's update, which sends only what changed, works in both.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import glanceclient
import openstack.connection
import pytest
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
from openstack import exceptions

from devstack.stack import DevStack
from functions.api.app import create_app
from tests.api.support import A_MEMBER, SdkFactory
from tests.support.serving import serve

pytestmark = [pytest.mark.api, pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")]


@pytest.fixture(scope="module")
def one_store_endpoint(stack: DevStack) -> Iterator[str]:
    """A second API server on the same data, deployed with the primary store only (no SGLANCE_STORES)."""
    with serve(create_app(stack.settings.model_copy(update={"stores": ()}))) as url:
        yield url


@pytest.fixture(scope="module")
def one_store_sdk(one_store_endpoint: str) -> Iterator[openstack.connection.Connection]:
    session = ks_session.Session(auth=noauth.NoAuth(), additional_headers=A_MEMBER.headers)
    conn = openstack.connection.Connection(
        session=session, image_endpoint_override=one_store_endpoint, image_api_version="2"
    )
    yield conn
    conn.close()
    session.close()


@pytest.fixture(scope="module")
def one_store_glance(one_store_endpoint: str) -> Iterator[Any]:
    session = ks_session.Session(auth=noauth.NoAuth(), additional_headers=A_MEMBER.headers)
    yield glanceclient.Client("2", session=session, endpoint=one_store_endpoint)
    session.close()


def _active(conn: openstack.connection.Connection, tag: str) -> Any:
    image = conn.image.create_image(
        f"upd-{uuid.uuid4().hex[:8]}",
        disk_format="raw",
        container_format="bare",
        data=b"x" * 4096,
        tags=[tag],
        allow_duplicates=True,
    )
    return conn.image.get_image(image.id)


def test_one_store__no_stores_shown__and_the_sdks_update_image_works(
    one_store_sdk: openstack.connection.Connection, tag: str
) -> None:
    image = _active(one_store_sdk, tag)
    assert image.status == "active"
    assert "stores" not in image.properties

    one_store_sdk.image.update_image(image, foo="bar")

    assert one_store_sdk.image.get_image(image.id).properties["foo"] == "bar"


def test_one_store__glanceclient_update_and_remove_props_work(one_store_glance: Any, tag: str) -> None:
    image = one_store_glance.images.create(name="upd-gc", disk_format="raw", container_format="bare", tags=[tag])
    one_store_glance.images.upload(image["id"], io.BytesIO(b"y" * 2048))

    one_store_glance.images.update(image["id"], foo="bar")
    assert one_store_glance.images.get(image["id"])["foo"] == "bar"
    one_store_glance.images.update(image["id"], remove_props=["foo"])
    shown = one_store_glance.images.get(image["id"])
    assert "foo" not in shown and "stores" not in shown


def test_multi_store__stores_shown__and_the_sdks_update_image_is_glances_409(sdk: SdkFactory, tag: str) -> None:
    conn = sdk(A_MEMBER)
    image = _active(conn, tag)
    assert image.properties["stores"] == "s3"

    with pytest.raises(exceptions.ConflictException):
        conn.image.update_image(image, foo="bar")
    # an update that names only what changes works, also through the SDK's raw patch
    conn.image.update_image(image.id, foo="bar")
    assert conn.image.get_image(image.id).properties["foo"] == "bar"


def test_multi_store__glanceclient_update_works(glance: Any, tag: str) -> None:
    client = glance(A_MEMBER)
    image = client.images.create(name="upd-multi", disk_format="raw", container_format="bare", tags=[tag])
    client.images.upload(image["id"], io.BytesIO(b"z" * 2048))

    client.images.update(image["id"], foo="bar")

    shown = client.images.get(image["id"])
    assert shown["foo"] == "bar" and shown["stores"] == "s3"
