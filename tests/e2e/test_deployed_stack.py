"""The deployed stack end to end: HTTP API -> API Lambda -> DynamoDB/S3; S3 event -> SQS -> upload_complete Lambda.

Every request goes through the emulator's API Gateway to the real handler, authenticated by a real Keystone token;
the image bytes go straight to the emulator's S3 through the presigned URL the API hands out, and only the
deployed upload_complete function (through the S3 notification, its queue and its event source mapping) can make
the image active. The import_worker and store_sync functions run from their queues the same way. The emulator
enforces each function's IAM role, so a missing grant fails these tests.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import pytest
import requests

from infra.emulator import deploy_assembly
from tests.e2e.conftest import FILE_STORE, IMAGE_BUCKET, REGION, DeployedStack

pytestmark = pytest.mark.e2e

ACTIVE_TIMEOUT_S = 90.0


def _wait_for_status(
    stack: DeployedStack, session: requests.Session, image_id: str, wanted: str, store: str | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + ACTIVE_TIMEOUT_S
    image: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = session.get(stack.url(f"/v2/images/{image_id}"))
        assert response.status_code == 200, response.text
        image = response.json()
        if image["status"] == wanted and (store is None or store in image.get("stores", "").split(",")):
            return image
        if image["status"] in {"killed", "deleted"}:
            break
        time.sleep(0.5)
    pytest.fail(f"image {image_id} is {image.get('status')!r}, not {wanted!r}\n{stack.emulator.log_tail()}")


def test_versions__are_served_by_the_api_function_behind_api_gateway(deployed: DeployedStack) -> None:
    response = deployed.api().get(deployed.url("/versions"))

    assert response.status_code == 200, response.text
    assert "v2.7" in [version["id"] for version in response.json()["versions"]]


def test_images__without_a_token__get_a_keystone_challenge(deployed: DeployedStack) -> None:
    response = deployed.api().get(deployed.url("/v2/images"))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{deployed.keystone.url}"'


def test_images__with_a_keystone_token__are_listed_for_its_project(deployed: DeployedStack) -> None:
    session = deployed.api(deployed.keystone.token("member-a"))

    response = session.get(deployed.url("/v2/images"))

    assert response.status_code == 200, response.text
    assert isinstance(response.json()["images"], list)


def test_image__created_uploaded_to_s3_finalised_by_the_worker_and_downloaded(deployed: DeployedStack) -> None:
    session = deployed.api(deployed.keystone.token("member-a"))
    data = os.urandom(300_000)
    created = session.post(
        deployed.url("/v2/images"),
        json={"name": "e2e-image", "disk_format": "raw", "container_format": "bare", "tags": ["e2e"]},
    )
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    assert created.json()["status"] == "queued"

    opened = session.post(
        deployed.url(f"/v2/images/{image_id}/upload"),
        json={"size": len(data), "checksum": hashlib.md5(data).hexdigest(), "method": "single"},
    )
    assert opened.status_code == 201, opened.text
    upload = opened.json()["request"]
    # Straight to the emulator's S3, as a client does: the presigned URL and its headers, no API token.
    put = requests.request(upload["method"], upload["url"], data=data, headers=upload["headers"], timeout=30)
    assert put.status_code == 200, put.text

    image = _wait_for_status(deployed, session, image_id, "active")
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()

    download = session.get(deployed.url(f"/v2/images/{image_id}/file"), allow_redirects=False)
    assert download.status_code in (302, 303, 307), download.text
    body = requests.get(download.headers["Location"], timeout=30)
    assert body.status_code == 200
    assert body.content == data

    deleted = session.delete(deployed.url(f"/v2/images/{image_id}"))
    assert deleted.status_code == 204, deleted.text
    assert session.get(deployed.url(f"/v2/images/{image_id}")).status_code == 404


def test_image__of_another_project__is_not_visible(deployed: DeployedStack) -> None:
    owner = deployed.api(deployed.keystone.token("member-a"))
    other = deployed.api(deployed.keystone.token("member-b"))
    created = owner.post(deployed.url("/v2/images"), json={"name": "private", "visibility": "private"})
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]

    try:
        assert other.get(deployed.url(f"/v2/images/{image_id}")).status_code == 404
    finally:
        owner.delete(deployed.url(f"/v2/images/{image_id}"))


def test_upload__of_other_bytes_than_declared__is_refused_by_the_worker_and_the_image_queued(
    deployed: DeployedStack,
) -> None:
    session = deployed.api(deployed.keystone.token("member-a"))
    declared, sent = os.urandom(100_000), os.urandom(100_000)
    image_id = session.post(deployed.url("/v2/images"), json={"disk_format": "raw", "container_format": "bare"}).json()[
        "id"
    ]
    opened = session.post(
        deployed.url(f"/v2/images/{image_id}/upload"),
        json={"size": len(declared), "checksum": hashlib.md5(declared).hexdigest(), "method": "single"},
    )
    assert opened.status_code == 201, opened.text
    upload = opened.json()["request"]

    put = requests.request(upload["method"], upload["url"], data=sent, headers=upload["headers"], timeout=30)

    assert put.status_code == 200, put.text
    try:
        image = _wait_for_status(deployed, session, image_id, "queued")
        assert "checksum" in image["os_glance_upload_error"]
        assert image.get("checksum") is None
    finally:
        session.delete(deployed.url(f"/v2/images/{image_id}"))


def test_glance_direct_import__is_finished_by_the_import_worker_and_replicated_by_store_sync(
    deployed: DeployedStack,
) -> None:
    session = deployed.api(deployed.keystone.token("member-a"))
    data = os.urandom(200_000)
    image_id = session.post(deployed.url("/v2/images"), json={"disk_format": "raw", "container_format": "bare"}).json()[
        "id"
    ]

    # Through API Gateway and the API function (a binary body under the payload limit).
    staged = session.put(
        deployed.url(f"/v2/images/{image_id}/stage"), data=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert staged.status_code == 204, staged.text
    imported = session.post(deployed.url(f"/v2/images/{image_id}/import"), json={"method": {"name": "glance-direct"}})
    assert imported.status_code == 202, imported.text

    try:
        image = _wait_for_status(deployed, session, image_id, "active", store=FILE_STORE)
        assert image["checksum"] == hashlib.md5(data).hexdigest()
        assert image["size"] == len(data)
        # store_sync wrote the bytes to the file store (data_dir on this host, where the emulator runs it).
        copies = [p for p in deployed.file_store.rglob("*") if p.is_file() and p.stat().st_size == len(data)]
        assert [p.read_bytes() == data for p in copies] == [True]
    finally:
        session.delete(deployed.url(f"/v2/images/{image_id}"))


ACCOUNT = "000000000000"
OBJECTS = f"arn:aws:s3:::{IMAGE_BUCKET}"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/sglance-images"
# (function, action, resource, allowed): what the deployed roles decide, asked of the emulator's IAM evaluator.
DECISIONS = [
    ("api", "s3:GetObject", f"{OBJECTS}/images/some-image/some-upload", True),
    ("api", "s3:GetObject", f"{OBJECTS}/elsewhere/object", False),
    ("api", "s3:PutBucketPolicy", OBJECTS, False),
    ("api", "dynamodb:Query", f"{TABLE}/index/list-name", True),
    ("api", "dynamodb:Scan", TABLE, False),
    ("api", "dynamodb:DeleteTable", TABLE, False),
    ("upload-complete", "s3:DeleteObject", f"{OBJECTS}/images/some-image/some-upload", True),
    ("upload-complete", "s3:PutObject", f"{OBJECTS}/images/some-image/some-upload", False),
    ("upload-complete", "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:sglance-import", False),
    ("upload-complete", "secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:x", False),
    ("store-sync", "s3:PutObject", f"{OBJECTS}/images/some-image/some-upload", False),
    ("import-worker", "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:sglance-store-sync", True),
]


@pytest.mark.parametrize(("function", "action", "resource", "allowed"), DECISIONS)
def test_deployed_role__allows_only_what_its_function_needs(
    deployed: DeployedStack, function: str, action: str, resource: str, allowed: bool
) -> None:
    lambda_client: Any = deployed.emulator.client("lambda")
    iam: Any = deployed.emulator.client("iam")
    try:
        role_arn = lambda_client.get_function(FunctionName=f"sglance-e2e-{function}")["Configuration"]["Role"]
        (result,) = iam.simulate_principal_policy(
            PolicySourceArn=role_arn, ActionNames=[action], ResourceArns=[resource]
        )["EvaluationResults"]
    finally:
        lambda_client.close()
        iam.close()

    assert (result["EvalDecision"] == "allowed") is allowed, result


def test_api__is_served_by_the_alias_of_a_published_snapstart_version_on_python313(deployed: DeployedStack) -> None:
    # a request first, so the version behind the alias has served one after its hooks ran
    assert deployed.api().get(deployed.url("/versions")).status_code == 200
    lambda_client: Any = deployed.emulator.client("lambda")
    logs: Any = deployed.emulator.client("logs")
    try:
        alias = lambda_client.get_alias(FunctionName="sglance-e2e-api", Name="live")
        version = lambda_client.get_function_configuration(
            FunctionName="sglance-e2e-api", Qualifier=alias["FunctionVersion"]
        )
        # the environment ran the after-restore hook (shared/snapstart.py) before serving
        restored = logs.filter_log_events(
            logGroupName="/aws/lambda/sglance-e2e-api", filterPattern='"restored from a SnapStart snapshot"'
        )["events"]
    finally:
        lambda_client.close()
        logs.close()

    assert deployed.outputs.output("ApiFunctionAlias") == alias["AliasArn"]
    assert alias["FunctionVersion"] != "$LATEST"
    assert version["Runtime"] == "python3.13"
    assert version["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    assert version["State"] == "Active"
    assert restored, "no after-restore hook ran in the API function"


def test_second_deploy__of_the_same_assembly__updates_in_place_and_the_api_keeps_serving(
    deployed: DeployedStack,
) -> None:
    again = deploy_assembly(deployed.assembly, deployed.emulator.endpoint, REGION)

    assert again.outputs == deployed.outputs.outputs
    cloudformation = deployed.emulator.client("cloudformation")
    try:
        statuses = {
            name: cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]  # type: ignore[attr-defined]
            for name in again.outputs
        }
    finally:
        cloudformation.close()  # type: ignore[attr-defined]
    assert set(statuses.values()) <= {"CREATE_COMPLETE", "UPDATE_COMPLETE"}, statuses
    response = deployed.api().get(deployed.url("/versions"))
    assert response.status_code == 200, response.text
