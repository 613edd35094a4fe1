"""Secrets Manager reads: credentials never live in code, settings files or location URLs on AWS.

``read_secret(arn)`` returns the secret string; ``read_secret_fields(arn)`` its JSON object (a plain string is
returned as ``{"value": string}``). The client is created on first use, in the secret's own region.
"""

from __future__ import annotations

import json
from typing import Any


class SecretUnavailableError(Exception):
    """The secret could not be read (the message names the ARN, never the value)."""


def read_secret(arn: str, *, default_region: str, endpoint_url: str | None = None, client: Any = None) -> str:
    """The ``SecretString`` of ``arn``.

    Raises:
        SecretUnavailableError: Secrets Manager refused or could not be reached.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    owned = client is None
    if client is None:
        import boto3

        parts = arn.split(":")
        region = parts[3] if len(parts) > 3 and parts[3] else default_region
        client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
    try:
        value: str = client.get_secret_value(SecretId=arn)["SecretString"]
    except (BotoCoreError, ClientError, KeyError) as exc:
        raise SecretUnavailableError(f"cannot read secret {arn}: {type(exc).__name__}") from None
    finally:
        if owned:
            client.close()
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
