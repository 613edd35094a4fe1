"""ReportBatchItemFailures rules of devstack's SQS event loop (pure; no network)."""

from __future__ import annotations

import pytest

from devstack.event_loop import failed_message_ids, resolve_handler

BATCH = {"m1", "m2", "m3"}


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        pytest.param(None, set(), id="none-is-success"),
        pytest.param({}, set(), id="empty-object-is-success"),
        pytest.param({"batchItemFailures": None}, set(), id="null-list-is-success"),
        pytest.param({"batchItemFailures": []}, set(), id="empty-list-is-success"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}, id="listed-ids-fail"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": ""}]}, None, id="empty-id-fails-all"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": None}]}, None, id="null-id-fails-all"),
        pytest.param({"batchItemFailures": [{"id": "m1"}]}, None, id="wrong-key-fails-all"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "m9"}]}, None, id="unknown-id-fails-all"),
        pytest.param({"batchItemFailures": "m1"}, None, id="not-a-list-fails-all"),
        pytest.param("ok", None, id="not-an-object-fails-all"),
    ],
)
def test_failed_message_ids__follows_report_batch_item_failures(response: object, failed: set[str] | None) -> None:
    assert failed_message_ids(response, BATCH) == failed


def test_resolve_handler__module_colon_function__returns_the_callable() -> None:
    handler: object = resolve_handler("devstack.event_loop:failed_message_ids")
    assert handler is failed_message_ids


@pytest.mark.parametrize("path", ["devstack.event_loop", "devstack.event_loop:", ":handler"])
def test_resolve_handler__malformed_path__raises_value_error(path: str) -> None:
    with pytest.raises(ValueError, match="package.module:function"):
        resolve_handler(path)
