"""Powertools loggers, one per entry point (created once, configured by Settings).

Each function logs through its own logger (service ``<service_name>-<function>``), so where several run in one
process (the local stack runs the API and every worker together) a line carries its own function's name and
Lambda context, never another's. Shared modules log through the service's own logger, which carries no function's
context.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger

from shared.config import get_settings


@cache
def get_logger(function: str | None = None) -> Logger:
    """The structured JSON logger of ``function`` (``api``, ``upload-complete``, ...), or the service's own."""
    settings = get_settings()
    service = settings.service_name if function is None else f"{settings.service_name}-{function}"
    return Logger(service=service, level=settings.log_level)
