"""What the stacks that hold functions (API, workers) are given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.config import OperatorConfig
from infra.stacks.function import FunctionCode
from infra.stacks.notifications import NotificationsStack
from infra.stacks.secrets import SecretsStack
from infra.stacks.stateful import StatefulStack


@dataclass(frozen=True)
class ServiceProps:
    """The configuration, the built code, the functions' environment and the stacks they use."""

    config: OperatorConfig
    code: FunctionCode
    environment: Mapping[str, str]
    stateful: StatefulStack
    secrets: SecretsStack
    notifications: NotificationsStack
