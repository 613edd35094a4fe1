"""Powertools logger and tracer shared by every function (created once, lazily configured by Settings)."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Logger

from shared.config import get_settings


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    """The structured JSON logger; every line carries the service name and, in a request, its request id."""
    settings = get_settings()
    return Logger(service=settings.service_name, level=settings.log_level)
