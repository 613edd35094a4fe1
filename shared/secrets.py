"""Secrets Manager reads: credentials never live in code, settings files or location URLs on AWS.

``read_secret(arn, client)`` returns the secret string and ``secret_fields`` its JSON object (a plain string is
returned as ``{"value": string}``). The client comes from the composition root (``AwsClients.secret``), made in
the secret's own region on first use.
"""

from __future__ import annotations

import json
from typing import Any


class SecretUnavailableError(Exception):
    """The secret could not be read (the message names the ARN, never the value)."""


def secret_region(arn: str, default: str) -> str:
    """The region a secret lives in: the ARN's, else ``default``."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else default


def read_secret(arn: str, client: Any) -> str:
    """The ``SecretString`` of ``arn``, read with a Secrets Manager ``client`` of the secret's region.

    Raises:
        SecretUnavailableError: Secrets Manager refused or could not be reached.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value: str = client.get_secret_value(SecretId=arn)["SecretString"]
    except (BotoCoreError, ClientError, KeyError) as exc:
        raise SecretUnavailableError(f"cannot read secret {arn}: {type(exc).__name__}") from None
    return value


def secret_fields(value: str) -> dict[str, str]:
    """A secret's JSON object as strings, or ``{"value": value}`` when it is not a JSON object."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return {"value": value}
    if not isinstance(parsed, dict):
        return {"value": value}
    return {str(k): str(v) for k, v in parsed.items()}
