"""glance-download from a real Glance 33 (the ``real_glance`` fixture, listed as RegionOne's ``image`` service in the
test Keystone) into moto server's S3 and DynamoDB, through the import service, the work queue and the import worker.

The catalog URL is on loopback, so the URL policy allowlists 127.0.0.1 on any port, exactly as an operator would
allowlist an internal regional endpoint (docs/uploads.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import requests

from devstack.provision import provision
from shared.bootstrap import Container
from shared.config import Settings
from shared.domain.context import RequestContext
from shared.domain.image import Image
from shared.domain.status import ImageStatus
from shared.domain.upload import UPLOAD_ERROR_PROPERTY
from shared.jobs import import_job
from shared.resources import resources_for
from shared.services.finalize import Outcome
from shared.services.imports import read_import_request

if TYPE_CHECKING:
    from tests.backends.glance.harness import GlanceEnv
    from tests.backends.keystone.accounts import KeystoneEnv

pytestmark = [pytest.mark.integration, pytest.mark.keystone, pytest.mark.glance]

REGION = "us-east-1"
PAYLOAD = os.urandom(3 * 1024 * 1024 + 17)


@dataclass
class Parts:
    container: Container
    keystone: KeystoneEnv
    glance: GlanceEnv
    token: str = field(repr=False)

    def ctx(self, token: str | None = None) -> RequestContext:
        return RequestContext("req-gd", "project-a", "member-a", frozenset({"member", "reader"}), auth_token=token)

    def our_image(self, **extra: str) -> Image:
        image = Image.new(owner="project-a", disk_format="iso", container_format="ovf", extra_properties=extra)
        return self.container.image_repository.add(image)

    def remote_image(self, payload: bytes, **properties: str) -> str:
        headers = {"X-Auth-Token": self.token}
        body = {"disk_format": "raw", "container_format": "bare", "name": "gd-source", **properties}
        created = requests.post(f"{self.glance.url}/v2/images", json=body, headers=headers, timeout=30)
        assert created.status_code == 201, created.text
        image_id = str(created.json()["id"])
        upload = {**headers, "Content-Type": "application/octet-stream"}
        put = requests.put(f"{self.glance.url}/v2/images/{image_id}/file", data=payload, headers=upload, timeout=60)
        assert put.status_code == 204, put.text
        return image_id

    def delete_remote(self, image_id: str) -> None:
        requests.delete(f"{self.glance.url}/v2/images/{image_id}", headers={"X-Auth-Token": self.token}, timeout=30)

    def import_(self, image: Image, method: dict[str, Any], token: str | None) -> Outcome:
        """POST /import's service call, then the import worker on the job the queue holds."""
        c = self.container
        request = read_import_request({"method": {"name": "glance-download", **method}})
        loaded = c.image_uow.get(image.id)  # the import changes an image loaded by its unit of work, as the API does
        c.imports.start(self.ctx(token), loaded, request, c.imports.stores(request))
        queue = c.import_queue
        received = queue.client.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1, WaitTimeSeconds=5)
        (message,) = received["Messages"]
        queue.client.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
        job = import_job(json.loads(message["Body"]))
        assert "auth_token" not in repr(job)
        return c.import_worker.run(job)

    def task_of(self, image_id: str) -> Any:
        (task,) = self.container.tasks.for_image(image_id)
        return task


@pytest.fixture
def parts(moto_reset: str, keystone: KeystoneEnv, real_glance: GlanceEnv) -> Iterator[Parts]:
    settings = Settings(
        aws_endpoint_url=moto_reset,
        aws_region=REGION,
        web_download_allowed_hosts=("127.0.0.1",),
        web_download_allowed_ports=(),
        **keystone.settings(),
    )
    provision(resources_for(settings), moto_reset, REGION)
    c = Container(settings)
    yield Parts(c, keystone, real_glance, keystone.token("member-a"))
    c.aws.close()


def test_glance_download__copies_bytes_formats_and_the_listed_properties_and_records_a_successful_task(
    parts: Parts,
) -> None:
    remote = parts.remote_image(PAYLOAD, hw_cpu_cores="5", os_distro="rhel", speed="88mph")
    try:
        ours = parts.our_image(hw_cpu_cores="1", os_distro="windows")
        method = {"glance_region": "regionone", "glance_image_id": remote}
        assert parts.import_(ours, method, parts.token) is Outcome.ACTIVE
    finally:
        parts.delete_remote(remote)
    image = parts.container.image_repository.get(ours.id)
    assert image.status is ImageStatus.ACTIVE
    assert (image.disk_format, image.container_format) == ("raw", "bare")
    assert image.size == len(PAYLOAD)
    assert image.checksum == hashlib.md5(PAYLOAD).hexdigest()
    assert image.os_hash_value == hashlib.sha512(PAYLOAD).hexdigest()
    assert image.extra_properties["hw_cpu_cores"] == "5"
    assert image.extra_properties["os_distro"] == "rhel"
    assert "speed" not in image.extra_properties
    store = parts.container.stores.driver(image.locations[0].store)
    assert b"".join(store.get(image.locations[0].url).chunks) == PAYLOAD
    task = parts.task_of(ours.id)
    assert task.status.value == "success"
    assert task.input["import_req"]["method"]["glance_service_interface"] == "public"


def test_glance_download__of_an_unknown_region__fails_the_task_and_leaves_the_image_queued_as_it_was(
    parts: Parts,
) -> None:
    ours = parts.our_image(hw_cpu_cores="1", os_distro="windows")
    method = {"glance_region": "not a region", "glance_image_id": str(uuid.uuid4()), "glance_service_interface": "x"}
    assert parts.import_(ours, method, parts.token) is Outcome.REFUSED
    image = parts.container.image_repository.get(ours.id)
    assert image.status is ImageStatus.QUEUED
    assert (image.disk_format, image.extra_properties["hw_cpu_cores"]) == ("iso", "1")
    assert "no image endpoint for region not a region" in image.extra_properties[UPLOAD_ERROR_PROPERTY]
    assert parts.task_of(ours.id).status.value == "failure"


def test_glance_download__of_a_missing_remote_image__fails_the_task(parts: Parts) -> None:
    ours = parts.our_image()
    method = {"glance_region": "RegionOne", "glance_image_id": str(uuid.uuid4())}
    assert parts.import_(ours, method, parts.token) is Outcome.REFUSED
    image = parts.container.image_repository.get(ours.id)
    assert image.status is ImageStatus.QUEUED
    assert "HTTP 404" in image.extra_properties[UPLOAD_ERROR_PROPERTY]
    assert parts.task_of(ours.id).status.value == "failure"


def test_glance_download__of_an_image_the_caller_cannot_see_there__fails(parts: Parts) -> None:
    remote = parts.remote_image(b"private bytes")
    try:
        ours = parts.our_image()
        other = parts.keystone.token("member-b")
        method = {"glance_region": "RegionOne", "glance_image_id": remote}
        assert parts.import_(ours, method, other) is Outcome.REFUSED
    finally:
        parts.delete_remote(remote)
    assert parts.container.image_repository.get(ours.id).status is ImageStatus.QUEUED


def test_glance_download__refused_by_the_url_policy__fails_without_sending_the_token(
    moto_reset: str, keystone: KeystoneEnv, real_glance: GlanceEnv
) -> None:
    settings = Settings(aws_endpoint_url=moto_reset, aws_region=REGION, **keystone.settings())
    provision(resources_for(settings), moto_reset, REGION)
    c = Container(settings)
    try:
        p = Parts(c, keystone, real_glance, keystone.token("member-a"))
        ours = p.our_image()
        method = {"glance_region": "RegionOne", "glance_image_id": str(uuid.uuid4())}
        assert p.import_(ours, method, p.token) is Outcome.REFUSED
        reason = c.image_repository.get(ours.id).extra_properties[UPLOAD_ERROR_PROPERTY]
        assert "web_download_allowed" in reason or "not allowed" in reason, reason
    finally:
        c.aws.close()
