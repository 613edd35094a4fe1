"""Presigned uploads and their finalisation against moto server (S3 + DynamoDB over HTTP, as on AWS)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devstack.provision import provision
from functions.api.controllers.uploads import UploadsController
from shared.bootstrap import Container
from shared.config import Settings
from shared.data.base import ImageRepository
from shared.domain.context import RequestContext
from shared.domain.errors import ConflictError
from shared.domain.image import Image
from shared.domain.location import LocationStatus
from shared.domain.status import ImageStatus
from shared.domain.upload import UPLOAD_ERROR_PROPERTY
from shared.resources import resources_for
from shared.services.finalize import Outcome, UploadFinalizer
from shared.upload_bucket import ObjectMissingError
from shared.upload_bucket.s3 import STATE_TAG, S3UploadBucket
from tests.support.image_corpus import CORPUS, Case, raw_image
from tests.support.lambda_events import LambdaContext, sqs_record

pytestmark = pytest.mark.integration

REGION = "us-east-1"
OWNER = RequestContext("req-1", "project-a", "user-a", frozenset({"member", "reader"}))
MiB = 1024 * 1024


@dataclass
class Parts:
    settings: Settings
    repo: ImageRepository
    bucket: S3UploadBucket
    finalizer: UploadFinalizer
    data: UploadsController

    def new_image(self, disk_format: str = "raw", container_format: str = "bare") -> Image:
        return self.repo.add(Image.new(owner="project-a", disk_format=disk_format, container_format=container_format))

    def upload(self, image: Image, payload: bytes, **body: Any) -> str:
        opened = self.data.open(OWNER, image.id, {"size": len(payload), **body})
        assert opened.single is not None
        response = requests.put(opened.single.url, data=payload, headers=opened.single.headers, timeout=30)
        assert response.status_code == 200, response.text
        return opened.session.key

    def tag(self, key: str) -> str:
        tags = self.bucket.client.get_object_tagging(Bucket=self.bucket.bucket, Key=key)["TagSet"]
        return str({t["Key"]: t["Value"] for t in tags}[STATE_TAG])

    def exists(self, key: str) -> bool:
        try:
            read = self.bucket.read(key)
        except ObjectMissingError:
            return False
        for _ in read.chunks:
            pass
        return True


@pytest.fixture
def parts(moto_reset: str) -> Iterator[Parts]:
    settings = Settings(aws_endpoint_url=moto_reset, aws_region=REGION, multipart_part_size=5 * MiB)
    resources = resources_for(settings)
    provision(resources, moto_reset, REGION)
    c = Container(settings)
    bucket = c.image_bucket
    assert isinstance(bucket, S3UploadBucket)
    controller = UploadsController(c.images, c.policies, c.upload_sessions, c.uploads)
    yield Parts(settings, c.image_repository, bucket, c.finalizer, controller)
    c.aws.close()


def test_single_presigned_upload__finalises_to_active_with_hashes_of_the_bytes(parts: Parts) -> None:
    payload = raw_image(3 * MiB, random_bytes=True)
    image = parts.new_image()
    key = parts.upload(image, payload, checksum=hashlib.md5(payload).hexdigest())
    assert parts.repo.get(image.id).status is ImageStatus.UPLOADING

    assert parts.finalizer.handle_object(key) is Outcome.ACTIVE

    final = parts.repo.get(image.id)
    assert final.status is ImageStatus.ACTIVE
    assert final.size == len(payload) == final.virtual_size
    assert final.checksum == hashlib.md5(payload).hexdigest()
    assert (final.os_hash_algo, final.os_hash_value) == ("sha512", hashlib.sha512(payload).hexdigest())
    assert [(loc.store, loc.url, loc.status) for loc in final.locations] == [
        ("s3", f"s3://{parts.bucket.bucket}/{key}", LocationStatus.ACTIVE)
    ]
    assert final.upload is None
    assert parts.tag(key) == "active"


def test_duplicate_event__changes_nothing(parts: Parts) -> None:
    image = parts.new_image()
    key = parts.upload(image, raw_image(1 * MiB))
    parts.finalizer.handle_object(key)
    before = parts.repo.get(image.id)

    assert parts.finalizer.handle_object(key) is Outcome.DUPLICATE
    assert parts.repo.get(image.id).version == before.version


def test_presigned_put__cannot_overwrite_bytes_already_written(parts: Parts) -> None:
    image = parts.new_image()
    opened = parts.data.open(OWNER, image.id, {"size": 4})
    assert opened.single is not None
    first = requests.put(opened.single.url, data=b"good", headers=opened.single.headers, timeout=30)
    replay = requests.put(opened.single.url, data=b"evil", headers=opened.single.headers, timeout=30)

    assert first.status_code == 200
    assert replay.status_code == 412
    assert b"".join(parts.bucket.read(opened.session.key).chunks) == b"good"


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_corpus__each_image_ends_active_or_queued_with_its_reason_and_no_bytes(parts: Parts, case: Case) -> None:
    payload = case.data_builder()
    image = parts.new_image(case.disk_format, case.container_format)
    key = parts.upload(image, payload)

    outcome = parts.finalizer.handle_object(key)

    final = parts.repo.get(image.id)
    if case.accepted:
        assert outcome is Outcome.ACTIVE
        assert final.status is ImageStatus.ACTIVE
        assert final.virtual_size == case.virtual_size
    else:
        assert outcome is Outcome.REFUSED
        assert final.status is ImageStatus.QUEUED
        assert final.size is None and not final.locations
        assert case.reason_contains is not None
        assert case.reason_contains in final.extra_properties[UPLOAD_ERROR_PROPERTY]
        assert not parts.exists(key)


def test_declared_size_or_checksum_mismatch__refuses_the_bytes(parts: Parts) -> None:
    image = parts.new_image()
    key = parts.upload(image, b"\0" * 1024, checksum="0" * 32)

    assert parts.finalizer.handle_object(key) is Outcome.REFUSED
    final = parts.repo.get(image.id)
    assert final.status is ImageStatus.QUEUED
    assert "checksum mismatch" in final.extra_properties[UPLOAD_ERROR_PROPERTY]


def test_refused_image__can_be_uploaded_again_and_the_reason_clears(parts: Parts) -> None:
    image = parts.new_image()
    parts.finalizer.handle_object(parts.upload(image, b"\0" * 1024, checksum="0" * 32))

    key = parts.upload(image, b"\0" * 1024)
    assert parts.finalizer.handle_object(key) is Outcome.ACTIVE
    assert UPLOAD_ERROR_PROPERTY not in parts.repo.get(image.id).extra_properties


def test_image_deleted_while_finalising__is_not_resurrected_and_its_bytes_go(parts: Parts) -> None:
    image = parts.new_image()
    key = parts.upload(image, raw_image(1 * MiB))
    session = parts.repo.get(image.id).upload
    assert session is not None
    digest = parts.finalizer.digest(parts.repo.get(image.id), parts.bucket.read(key).chunks)
    doomed = parts.repo.get(image.id)
    doomed.delete()
    parts.repo.save(doomed)

    assert parts.finalizer.record(image.id, session, digest) is Outcome.ORPHAN
    assert parts.repo.get(image.id).status is ImageStatus.DELETED
    assert not parts.exists(key)


def test_finaliser_killed_halfway__the_retry_finishes_the_job(parts: Parts) -> None:
    image = parts.new_image()
    key = parts.upload(image, raw_image(1 * MiB))
    halfway = parts.repo.get(image.id)
    halfway.begin_finalize()
    parts.repo.save(halfway)  # the first attempt got this far, then died

    assert parts.finalizer.handle_object(key) is Outcome.ACTIVE
    assert parts.repo.get(image.id).status is ImageStatus.ACTIVE


def test_metadata_change_during_finalisation__is_kept_and_the_image_still_activates(parts: Parts) -> None:
    image = parts.new_image()
    key = parts.upload(image, raw_image(1 * MiB))
    session = parts.repo.get(image.id).upload
    assert session is not None
    digest = parts.finalizer.digest(parts.repo.get(image.id), parts.bucket.read(key).chunks)
    meanwhile = parts.repo.get(image.id)
    meanwhile.name = "renamed meanwhile"
    parts.repo.save(meanwhile)

    assert parts.finalizer.record(image.id, session, digest) is Outcome.ACTIVE
    final = parts.repo.get(image.id)
    assert (final.status, final.name) == (ImageStatus.ACTIVE, "renamed meanwhile")


def test_objects_nobody_wants__are_deleted(parts: Parts) -> None:
    stale_image = parts.new_image()
    stale_key = parts.upload(stale_image, b"old")
    parts.data.abort(OWNER, stale_image.id)
    unknown_key = "images/8a1e0c8e-0000-4000-8000-000000000000/abc"
    parts.bucket.client.put_object(Bucket=parts.bucket.bucket, Key=unknown_key, Body=b"x")

    assert parts.finalizer.handle_object(unknown_key) is Outcome.ORPHAN
    assert parts.finalizer.handle_object("somewhere/else") is Outcome.IGNORED
    assert not parts.exists(unknown_key)
    assert not parts.exists(stale_key)
    assert parts.repo.get(stale_image.id).status is ImageStatus.QUEUED


def test_multipart_upload__resumes_after_an_interrupted_client_and_completes(parts: Parts) -> None:
    payload = raw_image(12 * MiB, random_bytes=True)
    image = parts.new_image()
    opened = parts.data.open(OWNER, image.id, {"size": len(payload), "method": "multipart"})
    assert (opened.session.part_size, opened.session.parts_count) == (5 * MiB, 3)
    first = opened.parts[0]
    requests.put(first.request.url, data=payload[: first.size], headers=first.request.headers, timeout=30)
    # The client crashes; later it asks what is missing and for fresh URLs of those parts only.
    status = parts.data.status(OWNER, image.id)
    assert [p.number for p in status.uploaded] == [1]
    with pytest.raises(ConflictError):
        parts.data.complete(OWNER, image.id)
    for part in parts.data.part_urls(OWNER, image.id, {"part_numbers": [2, 3]}):
        start = (part.number - 1) * 5 * MiB
        body = payload[start : start + part.size]
        assert requests.put(part.request.url, data=body, headers=part.request.headers, timeout=30).status_code == 200

    parts.data.complete(OWNER, image.id)
    assert parts.finalizer.handle_object(opened.session.key) is Outcome.ACTIVE

    final = parts.repo.get(image.id)
    assert final.size == len(payload)
    assert final.os_hash_value == hashlib.sha512(payload).hexdigest()


def test_upload_complete_handler__processes_an_sqs_batch_and_ignores_the_s3_test_event(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = parts.new_image()
    key = parts.upload(image, raw_image(1 * MiB))
    monkeypatch.setenv("SGLANCE_AWS_ENDPOINT_URL", parts.settings.aws_endpoint_url or "")
    from shared.config import get_settings

    get_settings.cache_clear()
    import importlib

    import functions.upload_complete.handler as module

    handler = importlib.reload(module)
    notification = {"Records": [{"s3": {"bucket": {"name": parts.bucket.bucket}, "object": {"key": key}}}]}
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": parts.bucket.bucket}
    event = {"Records": [sqs_record("m1", test_event), sqs_record("m2", notification)]}

    response = handler.handler(event, LambdaContext("upload_complete"))

    assert response == {"batchItemFailures": []}
    assert parts.repo.get(image.id).status is ImageStatus.ACTIVE
    get_settings.cache_clear()


def test_upload_left_open__after_its_session_expires__is_replaced_and_its_parts_dropped(parts: Parts) -> None:
    image = parts.new_image()
    first = parts.data.open(OWNER, image.id, {"size": 12 * MiB, "method": "multipart"})
    part = first.parts[0]
    requests.put(part.request.url, data=b"\0" * part.size, headers=part.request.headers, timeout=30)
    with pytest.raises(ConflictError):
        parts.data.open(OWNER, image.id, {"size": 1})  # still open: the client may resume it
    stale = parts.repo.get(image.id)
    assert stale.upload is not None
    stale.upload.expires_at = stale.upload.created_at  # the client never came back
    parts.repo.save(stale)

    second = parts.data.open(OWNER, image.id, {"size": 4})

    assert second.session.id != first.session.id
    open_uploads = parts.bucket.client.list_multipart_uploads(Bucket=parts.bucket.bucket).get("Uploads", [])
    assert [u["Key"] for u in open_uploads] == []
    assert parts.repo.get(image.id).upload == second.session
