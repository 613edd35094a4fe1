"""Presigned URLs are scoped, proven against a real Ceph RADOS Gateway (moto checks no signature at all).

Each URL ``S3UploadBucket`` signs is bound to one key under ``images/<image id>/<session id>``, to the exact byte count
of the object or part, to its upload and part number, to the ``pending`` tag and to a life of minutes. Every test
sends what a client could send with such a URL and asserts RGW's own HTTP status and error code.

The cluster (one mon, one memstore OSD, radosgw on 127.0.0.1) is the session's ``rgw`` fixture (tests/support/rgw.py,
from ``tests/backends/ceph/start.sh``). Where RGW 16 differs from AWS S3, the test says so and asserts what RGW does.
``SGLANCE_SKIP_RGW=1`` skips the module on purpose; any other failure to start RGW fails it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from shared.resources import ACTIVE_STATE, PENDING_STATE, STATE_TAG_KEY
from shared.resources import image_object_key as image_key
from shared.upload_bucket import PresignedRequest
from shared.upload_bucket.s3 import S3UploadBucket

pytestmark = [pytest.mark.integration, pytest.mark.rgw, pytest.mark.timeout(600)]

BUCKET = "sglance-images"
TTL = 300
MiB = 1024 * 1024
PART = 5 * MiB


# -- the gateway (the ``rgw`` fixture: tests/support/rgw.py) --------------------------------------


@pytest.fixture(scope="session")
def bucket(rgw: dict[str, str]) -> Iterator[S3UploadBucket]:
    """The image bucket on RGW, signing as the production ``S3UploadBucket`` does."""
    # The client is passed in rather than built from AWS_* variables: boto3's default session keeps the
    # first credentials it resolved in this process (moto's, if a moto test ran first).
    session = boto3.session.Session(
        aws_access_key_id=rgw["CEPH_S3_ACCESS_KEY"],
        aws_secret_access_key=rgw["CEPH_S3_SECRET_KEY"],
        region_name=rgw["CEPH_S3_REGION"],
    )
    # the same configuration as S3UploadBucket.client off AWS
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"mode": "standard"})
    client = session.client("s3", endpoint_url=rgw["CEPH_S3_ENDPOINT"], config=config)
    client.create_bucket(Bucket=BUCKET)
    try:
        yield S3UploadBucket(BUCKET, rgw["CEPH_S3_REGION"], endpoint_url=rgw["CEPH_S3_ENDPOINT"], client=client)
    finally:
        client.close()


@pytest.fixture(scope="session")
def http() -> Iterator[requests.Session]:
    """The client's side: plain HTTP, no AWS credentials."""
    with requests.Session() as session:
        yield session


# -- helpers -------------------------------------------------------------------------------------


def new_key() -> str:
    """A fresh upload session's key for a fresh image."""
    return image_key(uuid.uuid4().hex, uuid.uuid4().hex)


def with_key(url: str, old: str, new: str) -> str:
    """The URL with its object key swapped (bucket, query and signature kept)."""
    parts = urlsplit(url)
    assert parts.path.endswith(f"/{old}")
    return urlunsplit(parts._replace(path=parts.path[: -len(old)] + new))


def with_query(url: str, **changes: str | None) -> str:
    """The URL with query parameters replaced, added, or (None) removed."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def send(
    http: requests.Session,
    request: PresignedRequest,
    body: bytes = b"",
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """Send a presigned request as a client would; requests sets Content-Length from the body."""
    sent = request.headers if headers is None else headers
    return http.request(request.method, url or request.url, data=body, headers=sent, timeout=60)


def refusal(response: requests.Response) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a response."""
    code = ElementTree.fromstring(response.content).findtext("Code", "") if response.content else ""
    return response.status_code, code


def stored(bucket: S3UploadBucket, key: str) -> bytes | None:
    """The object's bytes, or None when there is no object."""
    try:
        return bytes(bucket.client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise


def tags(bucket: S3UploadBucket, key: str) -> dict[str, str]:
    """The object's tags."""
    tag_set = bucket.client.get_object_tagging(Bucket=BUCKET, Key=key).get("TagSet", [])
    return {tag["Key"]: tag["Value"] for tag in tag_set}


def active_image(bucket: S3UploadBucket, body: bytes = b"active image bytes") -> str:
    """An existing object in the state finalisation leaves it: bytes written, tagged active."""
    key = new_key()
    bucket.client.put_object(Bucket=BUCKET, Key=key, Body=body)
    bucket.mark(key, ACTIVE_STATE)
    return key


def upload_parts(http: requests.Session, bucket: S3UploadBucket, key: str, upload_id: str, bodies: list[bytes]) -> None:
    """Upload each body as the next part through its own presigned URL."""
    for number, body in enumerate(bodies, start=1):
        response = send(http, bucket.presign_part(key, upload_id, number, len(body), TTL), body)
        assert response.status_code == 200, response.text


SIGNATURE_MISMATCH = (403, "SignatureDoesNotMatch")


# -- the tampering helpers themselves ---------------------------------------------------------------


def test_helpers__rebuilding_a_url_unchanged__keep_it_valid(bucket: S3UploadBucket, http: requests.Session) -> None:
    # Without this, a refusal below could come from the rebuilt URL's encoding rather than from the change.
    key = new_key()
    upload_id = bucket.create_multipart(key)
    part = bucket.presign_part(key, upload_id, 1, 100, TTL)
    single = bucket.presign_put(new_key(), 100, TTL)

    for request in (part, single):
        key_now = urlsplit(request.url).path.split("/", 2)[2]
        rebuilt = with_key(with_query(request.url), key_now, key_now)
        assert send(http, request, b"h" * 100, url=rebuilt).status_code == 200


# -- single PUT ----------------------------------------------------------------------------------


def test_presigned_put__as_given__stores_exactly_that_object_tagged_pending(
    bucket: S3UploadBucket, http: requests.Session
) -> None:
    key, body = new_key(), os.urandom(1000)
    request = bucket.presign_put(key, len(body), TTL)

    response = send(http, request, body)

    assert response.status_code == 200, response.text
    signed = dict(parse_qsl(urlsplit(request.url).query))["X-Amz-SignedHeaders"]
    assert signed == "content-length;host;if-none-match;x-amz-tagging"
    assert stored(bucket, key) == body
    assert tags(bucket, key) == {STATE_TAG_KEY: PENDING_STATE}


@pytest.mark.parametrize(
    "target",
    [
        "another image's key",
        "another session of the same image",
        "an active image's key",
        "the key plus a suffix",
        "a key outside images/",
    ],
)
def test_presigned_put__sent_to_another_key__is_refused_and_writes_nothing(
    bucket: S3UploadBucket, http: requests.Session, target: str
) -> None:
    key, body = new_key(), b"x" * 100
    image_id = key.split("/")[1]
    other = {
        "another image's key": new_key(),
        "another session of the same image": image_key(image_id, uuid.uuid4().hex),
        "an active image's key": active_image(bucket),
        "the key plus a suffix": f"{key}-x",
        "a key outside images/": f"public/{uuid.uuid4().hex}",
    }[target]
    before = stored(bucket, other)
    request = bucket.presign_put(key, len(body), TTL)

    response = send(http, request, body, url=with_key(request.url, key, other))

    assert refusal(response) == SIGNATURE_MISMATCH
    assert stored(bucket, other) == before
    assert stored(bucket, key) is None


@pytest.mark.parametrize("extra", [1, -1, 10 * MiB], ids=["one-byte-more", "one-byte-fewer", "10-MiB-more"])
def test_presigned_put__with_another_size__is_refused(
    bucket: S3UploadBucket, http: requests.Session, extra: int
) -> None:
    key, size = new_key(), 1000
    request = bucket.presign_put(key, size, TTL)
    headers = {**request.headers, "Content-Length": str(size + extra)}

    response = send(http, request, b"y" * (size + extra), headers=headers)

    assert refusal(response) == SIGNATURE_MISMATCH
    assert stored(bucket, key) is None


@pytest.mark.parametrize("header", ["If-None-Match", "x-amz-tagging"])
def test_presigned_put__without_a_signed_header__is_refused(
    bucket: S3UploadBucket, http: requests.Session, header: str
) -> None:
    key, body = new_key(), b"z" * 100
    request = bucket.presign_put(key, len(body), TTL)
    headers = {name: value for name, value in request.headers.items() if name != header}

    response = send(http, request, body, headers=headers)

    assert refusal(response) == SIGNATURE_MISMATCH
    assert stored(bucket, key) is None


@pytest.mark.parametrize(
    "tagging", [f"{STATE_TAG_KEY}={ACTIVE_STATE}", f"{STATE_TAG_KEY}={PENDING_STATE}&keep=forever", ""]
)
def test_presigned_put__with_another_tag_header__is_refused(
    bucket: S3UploadBucket, http: requests.Session, tagging: str
) -> None:
    # An "active" tag would let abandoned bytes escape the lifecycle rule that expires pending objects.
    key, body = new_key(), b"t" * 100
    request = bucket.presign_put(key, len(body), TTL)

    response = send(http, request, body, headers={**request.headers, "x-amz-tagging": tagging})

    assert refusal(response) == SIGNATURE_MISMATCH
    assert stored(bucket, key) is None


def test_presigned_put__with_a_longer_life_written_into_the_query__is_refused(
    bucket: S3UploadBucket, http: requests.Session
) -> None:
    key, body = new_key(), b"e" * 100
    request = bucket.presign_put(key, len(body), TTL)

    response = send(http, request, body, url=with_query(request.url, **{"X-Amz-Expires": "604800"}))

    assert refusal(response) == SIGNATURE_MISMATCH
    assert stored(bucket, key) is None


def test_presigned_put__after_its_expiry__is_refused(bucket: S3UploadBucket, http: requests.Session) -> None:
    body = b"late" * 25
    fresh_key, stale_key = new_key(), new_key()
    fresh = bucket.presign_put(fresh_key, len(body), 2)
    stale = bucket.presign_put(stale_key, len(body), 2)
    assert send(http, fresh, body).status_code == 200

    time.sleep(3.5)
    response = send(http, stale, body)

    # AWS words it "Request has expired"; RGW 16 sends the same code with an empty message.
    assert refusal(response) == (403, "AccessDenied")
    assert stored(bucket, stale_key) is None


def test_presigned_put__replayed_after_the_image_went_active__fails_its_precondition_and_keeps_the_bytes(
    bucket: S3UploadBucket, http: requests.Session
) -> None:
    key, body = new_key(), os.urandom(1000)
    request = bucket.presign_put(key, len(body), TTL)
    assert send(http, request, body).status_code == 200
    bucket.mark(key, ACTIVE_STATE)

    response = send(http, request, os.urandom(len(body)))

    assert refusal(response) == (412, "PreconditionFailed")
    assert stored(bucket, key) == body
    assert tags(bucket, key) == {STATE_TAG_KEY: ACTIVE_STATE}


# -- multipart -----------------------------------------------------------------------------------


def test_presigned_parts__as_given__upload_their_parts_and_complete(
    bucket: S3UploadBucket, http: requests.Session
) -> None:
    key = new_key()
    bodies = [os.urandom(PART), os.urandom(1000)]
    upload_id = bucket.create_multipart(key)
    signed = dict(parse_qsl(urlsplit(bucket.presign_part(key, upload_id, 1, PART, TTL).url).query))

    upload_parts(http, bucket, key, upload_id, bodies)
    parts = bucket.list_parts(key, upload_id)
    bucket.complete_multipart(key, upload_id, parts)

    assert (signed["uploadId"], signed["partNumber"], signed["X-Amz-SignedHeaders"]) == (
        upload_id,
        "1",
        "content-length;host",
    )
    assert [(part.number, part.size) for part in parts] == [(1, PART), (2, 1000)]
    assert stored(bucket, key) == b"".join(bodies)


def test_presigned_part__with_another_part_number__is_refused(bucket: S3UploadBucket, http: requests.Session) -> None:
    key = new_key()
    upload_id = bucket.create_multipart(key)
    request = bucket.presign_part(key, upload_id, 1, PART, TTL)

    response = send(http, request, b"p" * PART, url=with_query(request.url, partNumber="2"))

    assert refusal(response) == SIGNATURE_MISMATCH
    assert bucket.list_parts(key, upload_id) == []


@pytest.mark.parametrize("swap", ["upload id", "upload id and key"])
def test_presigned_part__sent_to_another_images_upload__is_refused(
    bucket: S3UploadBucket, http: requests.Session, swap: str
) -> None:
    key, other_key = new_key(), new_key()
    upload_id, other_upload_id = bucket.create_multipart(key), bucket.create_multipart(other_key)
    request = bucket.presign_part(key, upload_id, 1, PART, TTL)
    url = with_query(request.url, uploadId=other_upload_id)
    if swap == "upload id and key":
        url = with_key(url, key, other_key)

    response = send(http, request, b"p" * PART, url=url)

    assert refusal(response) == SIGNATURE_MISMATCH
    assert bucket.list_parts(other_key, other_upload_id) == []


@pytest.mark.parametrize("extra", [1, -1], ids=["one-byte-more", "one-byte-fewer"])
def test_presigned_part__with_another_size__is_refused(
    bucket: S3UploadBucket, http: requests.Session, extra: int
) -> None:
    key = new_key()
    upload_id = bucket.create_multipart(key)
    request = bucket.presign_part(key, upload_id, 1, PART, TTL)

    response = send(http, request, b"s" * (PART + extra), headers={"Content-Length": str(PART + extra)})

    assert refusal(response) == SIGNATURE_MISMATCH
    assert bucket.list_parts(key, upload_id) == []


def test_presigned_part__stripped_of_its_upload_query__is_not_a_plain_put(
    bucket: S3UploadBucket, http: requests.Session
) -> None:
    key = new_key()
    upload_id = bucket.create_multipart(key)
    request = bucket.presign_part(key, upload_id, 1, PART, TTL)

    response = send(http, request, b"w" * PART, url=with_query(request.url, uploadId=None, partNumber=None))

    assert refusal(response) == SIGNATURE_MISMATCH
    assert stored(bucket, key) is None


def test_complete_multipart__over_an_existing_object__overwrites_it_on_rgw16_despite_if_none_match(
    bucket: S3UploadBucket, http: requests.Session
) -> None:
    """AWS-only property: AWS S3 answers 412 PreconditionFailed; RGW 16.2 ignores If-None-Match on complete.

    Only the service completes uploads (clients get part URLs, never a complete URL), and every session has a
    fresh key, so on RGW the guard is the key's uniqueness, not the precondition.
    """
    key = active_image(bucket, b"the active image")
    upload_id = bucket.create_multipart(key)
    upload_parts(http, bucket, key, upload_id, [b"new bytes"])

    bucket.complete_multipart(key, upload_id, bucket.list_parts(key, upload_id))

    assert stored(bucket, key) == b"new bytes"


def test_multipart_object__on_rgw16__does_not_carry_the_tag_given_at_create(
    bucket: S3UploadBucket, http: requests.Session
) -> None:
    """AWS-only property: AWS applies CreateMultipartUpload's x-amz-tagging to the object; RGW 16.2 drops it.

    So on RGW a completed but never finalised multipart object has no ``pending`` tag and the lifecycle rule
    that expires pending objects never matches it.
    """
    key = new_key()
    upload_id = bucket.create_multipart(key)
    upload_parts(http, bucket, key, upload_id, [b"bytes"])
    bucket.complete_multipart(key, upload_id, bucket.list_parts(key, upload_id))

    assert tags(bucket, key) == {}


# -- GET -----------------------------------------------------------------------------------------


def test_presigned_get__as_given__reads_its_key(bucket: S3UploadBucket, http: requests.Session) -> None:
    key = active_image(bucket, b"mine")

    response = http.get(bucket.presign_get(key, TTL), timeout=60)

    assert (response.status_code, response.content) == (200, b"mine")


@pytest.mark.parametrize("target", ["another image's key", "another session of the same image"])
def test_presigned_get__for_another_key__is_refused(
    bucket: S3UploadBucket, http: requests.Session, target: str
) -> None:
    key = active_image(bucket, b"mine")
    image_id = key.split("/")[1]
    other_key = new_key() if target == "another image's key" else image_key(image_id, uuid.uuid4().hex)
    bucket.client.put_object(Bucket=BUCKET, Key=other_key, Body=b"secret")
    url = bucket.presign_get(key, TTL)

    response = http.get(with_key(url, key, other_key), timeout=60)

    assert refusal(response) == SIGNATURE_MISMATCH
    assert b"secret" not in response.content
