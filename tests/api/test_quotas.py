"""Hard unified limits under concurrency, /v2/info/usage and the admin limits API, against the local stack.

Each test uses a fresh project with one limit set; 50 threads race against it; exactly the limit succeeds, the rest
get 413 naming it, and the counters equal a recount of the images.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devstack.stack import DevStack
from shared.bootstrap import Container
from shared.data.dynamodb.images import DynamoImageRepository
from shared.data.dynamodb.quota import DynamoQuotaLedger
from shared.quota.recount import drifts
from tests.api.conftest import WebServer
from tests.api.support import ADMIN, GlanceHttp, Persona

pytestmark = pytest.mark.api

RACERS = 50
LIMIT = 10
KiB = 1024
RACE_TIMEOUT_S = 180


def _project() -> Persona:
    return Persona(f"q-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex, ("member", "reader"))


def _set_limits(http: GlanceHttp, persona: Persona, **limits: int) -> dict[str, Any]:
    response = http.request("PUT", f"/v2/quotas/{persona.project_id}", persona=ADMIN, json={"limits": limits})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _slow(http: GlanceHttp, method: str, path: str, persona: Persona, **kwargs: Any) -> requests.Response:
    """A request with a long timeout: 50 racers queue on the emulator, which serialises DynamoDB (correctness, not
    latency, is under test)."""
    headers = {"Accept": "application/json", **persona.headers, **kwargs.pop("headers", {})}
    return http.session.request(method, http.url(path), headers=headers, timeout=RACE_TIMEOUT_S, **kwargs)


def _race(call: Callable[[int], requests.Response]) -> Counter[int]:
    with ThreadPoolExecutor(RACERS) as pool:
        return Counter(r.status_code for r in pool.map(call, range(RACERS)))


def _usage(http: GlanceHttp, persona: Persona) -> dict[str, Any]:
    response = http.request("GET", "/v2/info/usage", persona=persona)
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()["usage"]
    return usage


def _assert_counters_equal_a_recount(stack: DevStack, persona: Persona) -> None:
    container = Container(stack.settings.model_copy(update={"aws_endpoint_url": stack.aws_endpoint}))
    repo, ledger = container.image_repository, container.quota
    assert isinstance(repo, DynamoImageRepository) and isinstance(ledger, DynamoQuotaLedger)
    try:
        mine = [d for d in drifts(repo.scan_images(), ledger) if d.project == persona.project_id]
        assert mine == []
    finally:
        container.aws.close()


def _create(http: GlanceHttp, persona: Persona, tag: str) -> requests.Response:
    body = {"name": f"q-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    return _slow(http, "POST", "/v2/images", persona, json=body)


def _images(http: GlanceHttp, persona: Persona, tag: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = _create(http, persona, tag)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_image_count_total__50_concurrent_creates_against_10_leave_exactly_10(
    http: GlanceHttp, tag: str, stack: DevStack
) -> None:
    persona = _project()
    _set_limits(http, persona, image_count_total=LIMIT)

    statuses = _race(lambda _: _create(http, persona, tag))

    assert statuses == Counter({201: LIMIT, 413: RACERS - LIMIT})
    assert _usage(http, persona)["image_count_total"] == {"limit": LIMIT, "usage": LIMIT}
    refused = _create(http, persona, tag)
    assert refused.status_code == 413 and "image_count_total" in refused.json()["message"]
    _assert_counters_equal_a_recount(stack, persona)
    # Deleting frees the count at once.
    image_id = http.list_ids(persona, tag=tag, limit=1)[0]
    assert http.request("DELETE", f"/v2/images/{image_id}", persona=persona).status_code == 204
    assert _create(http, persona, tag).status_code == 201
    _assert_counters_equal_a_recount(stack, persona)


def test_image_count_uploading__50_concurrent_stages_against_10_leave_exactly_10(
    http: GlanceHttp, tag: str, stack: DevStack
) -> None:
    persona = _project()
    ids = _images(http, persona, tag, RACERS)
    _set_limits(http, persona, image_count_uploading=LIMIT)

    def stage(n: int) -> requests.Response:
        return _slow(
            http,
            "PUT",
            f"/v2/images/{ids[n]}/stage",
            persona,
            headers={"Content-Type": "application/octet-stream"},
            data=b"x" * 1000,
        )

    statuses = _race(stage)

    assert statuses == Counter({204: LIMIT, 413: RACERS - LIMIT})
    assert _usage(http, persona)["image_count_uploading"] == {"limit": LIMIT, "usage": LIMIT}
    _assert_counters_equal_a_recount(stack, persona)


def test_image_size_total__50_concurrent_uploads_against_1_mib_leave_exactly_10_of_100_kib(
    http: GlanceHttp, tag: str, stack: DevStack
) -> None:
    persona = _project()
    ids = _images(http, persona, tag, RACERS)
    _set_limits(http, persona, image_size_total=1)  # MiB: ten 100 KiB images fit, an eleventh does not

    def upload(n: int) -> requests.Response:
        return _slow(
            http,
            "PUT",
            f"/v2/images/{ids[n]}/file",
            persona,
            headers={"Content-Type": "application/octet-stream"},
            data=os.urandom(100 * KiB),
        )

    statuses = _race(upload)

    assert statuses == Counter({204: LIMIT, 413: RACERS - LIMIT})
    active = [i for i in ids if http.show(i, persona).json()["status"] == "active"]
    assert len(active) == LIMIT
    refused = next(i for i in ids if i not in active)
    assert "image_size_total" in http.show(refused, persona).json()["os_glance_upload_error"]
    assert _usage(http, persona)["image_size_total"] == {"limit": 1, "usage": 0}  # 1000 KiB, in whole MiB
    _assert_counters_equal_a_recount(stack, persona)


def test_image_stage_total__50_concurrent_stages_against_1_mib_leave_exactly_10_of_100_kib(
    http: GlanceHttp, tag: str, stack: DevStack
) -> None:
    persona = _project()
    ids = _images(http, persona, tag, RACERS)
    _set_limits(http, persona, image_stage_total=1)

    def stage(n: int) -> requests.Response:
        return _slow(
            http,
            "PUT",
            f"/v2/images/{ids[n]}/stage",
            persona,
            headers={"Content-Type": "application/octet-stream"},
            data=os.urandom(100 * KiB),
        )

    statuses = _race(stage)

    assert statuses == Counter({204: LIMIT, 413: RACERS - LIMIT})
    uploading = [i for i in ids if http.show(i, persona).json()["status"] == "uploading"]
    assert len(uploading) == LIMIT
    _assert_counters_equal_a_recount(stack, persona)


def test_usage__has_glance_shape_and_limits_api_is_admin_only(http: GlanceHttp, tag: str) -> None:
    persona = _project()
    usage = _usage(http, persona)
    assert set(usage) == {"image_size_total", "image_stage_total", "image_count_total", "image_count_uploading"}
    assert all(set(v) == {"limit", "usage"} for v in usage.values())
    assert http.request("GET", f"/v2/quotas/{persona.project_id}", persona=persona).status_code == 403
    body = _set_limits(http, persona, image_count_total=3)
    assert body["overrides"] == {"image_count_total": 3} and body["limits"]["image_count_total"] == 3
    cleared = http.request(
        "PUT", f"/v2/quotas/{persona.project_id}", persona=ADMIN, json={"limits": {"image_count_total": None}}
    ).json()
    assert cleared["overrides"] == {}
    bad = http.request("PUT", f"/v2/quotas/{persona.project_id}", persona=ADMIN, json={"limits": {"nope": 1}})
    assert bad.status_code == 400
    negative = http.request(
        "PUT", f"/v2/quotas/{persona.project_id}", persona=ADMIN, json={"limits": {"image_count_total": -5}}
    )
    assert negative.status_code == 400


def test_declared_size_over_image_size_total__is_refused_before_any_byte_moves(http: GlanceHttp, tag: str) -> None:
    persona = _project()
    (image_id,) = _images(http, persona, tag, 1)
    _set_limits(http, persona, image_size_total=1)

    opened = http.request("POST", f"/v2/images/{image_id}/upload", persona=persona, json={"size": 2 * 1024 * KiB})
    put = http.request(
        "PUT",
        f"/v2/images/{image_id}/file",
        persona=persona,
        headers={"Content-Type": "application/octet-stream", "x-openstack-image-size": str(2 * 1024 * KiB)},
        data=b"",
    )

    assert opened.status_code == 413 and "image_size_total" in opened.json()["message"]
    assert put.status_code == 413
    assert http.show(image_id, persona).json()["status"] == "queued"


def test_image_stage_total__a_web_download_counts_as_it_arrives_and_stops_at_the_limit(
    http: GlanceHttp, tag: str, stack: DevStack, web_server: WebServer
) -> None:
    persona = _project()
    _set_limits(http, persona, image_stage_total=2)  # MiB; the stack records staged bytes every MiB
    payload = os.urandom(5 * 1024 * KiB)
    (web_server.root / f"{tag}.raw").write_bytes(payload)
    small = os.urandom(1024 * KiB + 7)
    (web_server.root / f"{tag}-small.raw").write_bytes(small)

    def web_download(name: str) -> str:
        image_id = str(_create(http, persona, tag).json()["id"])
        body = {"method": {"name": "web-download", "uri": f"{web_server.url}/{name}"}}
        response = http.request("POST", f"/v2/images/{image_id}/import", persona=persona, json=body)
        assert response.status_code == 202, response.text
        return image_id

    def settled(image_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            image: dict[str, Any] = http.show(image_id, persona).json()
            if image["status"] in ("active", "queued") or time.monotonic() > deadline:
                return image
            time.sleep(0.1)

    stopped = settled(web_download(f"{tag}.raw"))
    fits = settled(web_download(f"{tag}-small.raw"))

    assert stopped["status"] == "queued"
    assert "image_stage_total" in stopped["os_glance_upload_error"]
    assert fits["status"] == "active" and fits["size"] == len(small)
    usage = _usage(http, persona)
    assert usage["image_stage_total"]["usage"] == 0
    assert usage["image_size_total"]["usage"] == 1  # MiB, rounded down
    _assert_counters_equal_a_recount(stack, persona)
