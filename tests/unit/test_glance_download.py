"""glance-download's pieces without a network: the body checks, the catalog lookup, the remote record, the job."""

from __future__ import annotations

import json

import pytest

from shared.domain.errors import InvalidInputError
from shared.jobs import ImportJob, MalformedJobError, import_job
from shared.services.glance_download import GlanceDownloadError, find_image_endpoint, remote_image
from shared.services.imports import read_import_request

REMOTE = "36d4b546-64a2-4bb9-bdd0-ba676aa48f2c"
CATALOG = [
    {"type": "identity", "endpoints": [{"region_id": "RegionOne", "interface": "public", "url": "http://ks/v3"}]},
    {
        "type": "image",
        "endpoints": [
            {"region_id": "RegionOne", "interface": "public", "url": "http://glance-one/"},
            {"region_id": "RegionOne", "interface": "internal", "url": "http://glance-one-internal"},
            {"region_id": "RegionTwo", "interface": "public", "url": "http://glance-two"},
        ],
    },
]


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ({}, "'glance_region' needs to be set"),
        ({"glance_region": "R"}, "'glance_image_id' needs to be set"),
        ({"glance_region": "R", "glance_image_id": "foo"}, "Remote image id does not look like a UUID: foo"),
    ],
)
def test_glance_download_body__without_region_or_uuid__is_glances_400(method: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        read_import_request({"method": {"name": "glance-download", **method}})
    assert message in raised.value.message


def test_glance_download_body__defaults_the_interface_to_public_as_the_task_records_it() -> None:
    request = read_import_request(
        {"method": {"name": "glance-download", "glance_region": "R", "glance_image_id": REMOTE}}
    )
    assert request.remote("glance_service_interface") == "public"
    assert request.body["method"]["glance_service_interface"] == "public"


def test_catalog__region_is_matched_case_insensitively_and_the_interface_exactly() -> None:
    assert find_image_endpoint(CATALOG, "regionone", "public") == "http://glance-one"
    assert find_image_endpoint(CATALOG, "RegionOne", "internal") == "http://glance-one-internal"
    assert find_image_endpoint(CATALOG, "RegionTwo", "internal") is None
    assert find_image_endpoint(CATALOG, "not a region", "public") is None


def test_remote_record__copies_only_the_listed_prefixes_and_needs_an_active_image() -> None:
    body = {
        "status": "active",
        "size": 10,
        "disk_format": "qcow2",
        "container_format": "bare",
        "checksum": "abc",
        "os_hash_algo": "sha512",
        "os_hash_value": "def",
        "hw_cpu_cores": "5",
        "trait:STORAGE_DISK_SSD": "required",
        "os_distro": "rhel",
        "speed": "88mph",
    }
    remote = remote_image(body, ("hw_", "trait:", "os_distro"))
    assert remote.properties == {"hw_cpu_cores": "5", "trait:STORAGE_DISK_SSD": "required", "os_distro": "rhel"}
    assert (remote.size, remote.disk_format, remote.os_hash_value) == (10, "qcow2", "def")
    with pytest.raises(GlanceDownloadError, match="should be active instead of queued"):
        remote_image({**body, "status": "queued"}, ())
    with pytest.raises(GlanceDownloadError, match="no size"):
        remote_image({**body, "size": None}, ())


def test_job__carries_the_token_on_the_queue_but_never_prints_it() -> None:
    job = ImportJob("glance-download", "img", "sess", glance_region="R", glance_image_id=REMOTE, auth_token="s3cr3t")
    message = json.loads(json.dumps(job.message()))
    assert import_job(message) == job
    assert "s3cr3t" not in repr(job)
    with pytest.raises(MalformedJobError) as raised:
        import_job({**message, "uri": 5})
    assert "s3cr3t" not in str(raised.value)
