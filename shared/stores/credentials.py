"""Where a store's credentials come from: inline settings (development) or a Secrets Manager secret, read lazily.

A driver gets a *reader* of its credentials, never the credentials at construction time, so building a driver
costs nothing and a store that is never used never reads its secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from shared.stores.errors import StoreConfigError, StoreUnavailableError

if TYPE_CHECKING:
    from shared.stores.config import CephStoreConfig, S3StoreConfig

# Credentials of a store with ``secret_arn``: the secret's JSON fields.
SecretReader = Callable[[str], Mapping[str, str]]


def key_from_secret(
    store_id: str, default_user: str, arn: str, secrets: SecretReader | None
) -> Callable[[], tuple[str, str]]:
    """A reader of (user, key) from the Secrets Manager secret ``arn``: its ``key`` field, and ``user`` when it
    has one. Nothing is read until the reader is called (the driver's first connection)."""
    if secrets is None:
        raise StoreConfigError(f"store {store_id}: secret_arn is set but no secret reader was given")
    read = secrets

    def from_secret() -> tuple[str, str]:
        fields = read(arn)
        if not fields.get("key"):
            raise StoreConfigError(f"store {store_id}: the secret has no 'key' field")
        return fields.get("user") or default_user, fields["key"]

    return from_secret


def s3_keys(
    store_id: str, config: S3StoreConfig | CephStoreConfig, secrets: SecretReader | None
) -> tuple[str | None, str | None]:
    """(access key id, secret key) of an S3 store: inline, from its secret, or (None, None) for boto3's chain."""
    if config.access_key_id or config.secret_access_key:
        if not (config.access_key_id and config.secret_access_key):
            raise StoreConfigError(f"store {store_id}: access_key_id and secret_access_key go together")
        return config.access_key_id, config.secret_access_key.get_secret_value()
    if not config.secret_arn:
        return None, None
    if secrets is None:
        raise StoreConfigError(f"store {store_id}: secret_arn is set but no secret reader was given")
    from shared.secrets import SecretUnavailableError

    try:
        fields = secrets(config.secret_arn)
    except SecretUnavailableError as exc:
        raise StoreUnavailableError(f"store {store_id}: {exc}") from None
    missing = [name for name in ("access_key_id", "secret_access_key") if not fields.get(name)]
    if missing:
        raise StoreConfigError(f"store {store_id}: the secret has no {', '.join(missing)}")
    return fields["access_key_id"], fields["secret_access_key"]
