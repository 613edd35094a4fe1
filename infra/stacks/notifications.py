"""The notifications stack: the EventBridge bus every function publishes image events to.

Consumers (billing, auditing, a Glance-notification bridge) add their own rules on this bus; the functions only
need ``events:PutEvents`` on it, which the API and workers stacks grant.
"""

from __future__ import annotations

from aws_cdk import Environment, Stack
from aws_cdk import aws_events as events
from constructs import Construct


class NotificationsStack(Stack):
    """The image events bus."""

    bus: events.EventBus

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus_name: str,
        env: Environment | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=description)
        self.bus = events.EventBus(
            self, "EventBus", event_bus_name=event_bus_name, description="Serverless Glance image events"
        )
