"""Publishes notifications to an EventBridge bus: ``source``, ``detail-type`` = event type, ``detail`` = envelope.

The events client comes from the composition root (``client``, called on the first publish; never at import). A
publish that fails (an exception, or an entry EventBridge refused) is logged and counted with the Powertools metric
``NotificationPublishFailed``; it never reaches the caller.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.notifications import Notification, Notifier

METRICS_NAMESPACE = "ServerlessGlance"
FAILURE_METRIC = "NotificationPublishFailed"


@dataclass
class EventBridgeNotifier(Notifier):
    """Puts one event per notification on ``bus_name``."""

    bus_name: str = "sglance-events"
    source: str = "openstack.glance"
    # Makes the EventBridge client (the composition root's, with short timeouts: a slow bus must not hold the
    # user's request for long).
    client: Callable[[], Any] | None = None
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _client(self) -> Any:
        if self.client is None:
            raise RuntimeError("EventBridgeNotifier needs a client")
        return self.client()

    def _publish(self, notification: Notification) -> None:
        entry = {
            "EventBusName": self.bus_name,
            "Source": self.source,
            "DetailType": notification.event_type,
            "Detail": json.dumps(notification.detail(), default=str),
        }
        try:
            response = self._client().put_events(Entries=[entry])
            if response.get("FailedEntryCount"):
                errors = [e.get("ErrorCode") for e in response.get("Entries", []) if e.get("ErrorCode")]
                raise RuntimeError(f"EventBridge refused the event: {errors}")
        except Exception as exc:  # a notification must never fail the request that caused it
            self._record_failure(notification, exc)

    def _record_failure(self, notification: Notification, exc: Exception) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        from shared.observability import get_logger

        with self._lock:
            self.failures += 1
        get_logger().error(
            "notification not published",
            extra={
                "event_type": notification.event_type,
                "request_id": notification.request_id,
                "error": f"{type(exc).__name__}: {exc}",
            },
        )
        try:
            with single_metric(
                name=FAILURE_METRIC, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
            ) as metric:
                metric.add_dimension(name="event_type", value=notification.event_type)
        except Exception:  # metrics are best effort too
            get_logger().exception("could not emit the notification failure metric")
