"""The configured stores: a registry from store type to driver class, and the set of stores by id.

``StoreSet`` builds each driver on first use (importing its backend client only then), resolves each store's
credentials from Secrets Manager or its inline settings, and orders stores for downloads (``prefer`` first, then
weight, then configuration order). The primary store (the image bucket uploads land in) is always present.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.stores.config import S3StoreConfig, StoreConfig

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.stores.base import StoreDriver
    from shared.stores.credentials import SecretReader

# store type -> "module:Class"; the class is imported when a store of that type is first used, so a function
# that never touches Swift never imports swiftclient.
DRIVERS: dict[str, str] = {
    "s3": "shared.stores.s3_store:S3Store",
    "ceph": "shared.stores.ceph:CephStore",
    "swift": "shared.stores.swift:SwiftStore",
    "file": "shared.stores.file:FileStore",
    "rbd": "shared.stores.rbd:RbdStore",
}


def driver_class(store_type: str) -> type[StoreDriver[Any]]:
    """The driver class registered for ``store_type``."""
    module, _, name = DRIVERS[store_type].partition(":")
    cls: type[StoreDriver[Any]] = vars(importlib.import_module(module))[name]
    return cls


def build_store(store_id: str, config: StoreConfig, secrets: SecretReader | None = None) -> StoreDriver[Any]:
    """A driver for one configured store."""
    cls = driver_class(config.type)
    return cls.from_config(store_id, config, secrets)


class UnknownStoreError(KeyError):
    """No store is configured with this id."""


@dataclass
class StoreSet:
    """Every store of this deployment, by id; drivers are built lazily and cached."""

    primary_id: str
    primary: StoreConfig
    others: Mapping[str, StoreConfig] = field(default_factory=dict)
    secrets: SecretReader | None = None
    _drivers: dict[str, StoreDriver[Any]] = field(default_factory=dict)

    @classmethod
    def for_settings(cls, settings: Settings, secrets: SecretReader | None = None) -> StoreSet:
        """The stores ``settings`` configure."""
        primary = S3StoreConfig(
            bucket=settings.image_bucket,
            endpoint_url=settings.aws_endpoint_url,
            region=settings.aws_region,
            prefix="images/",
            weight=settings.primary_store_weight,
            description="Primary image bucket (uploads land here)",
            path_style=settings.aws_endpoint_url is not None,
        )
        return cls(settings.primary_store_id, primary, settings.store_configs, secrets)

    @cached_property
    def configs(self) -> dict[str, StoreConfig]:
        """Every store's configuration, the primary first."""
        return {self.primary_id: self.primary, **self.others}

    @property
    def ids(self) -> list[str]:
        """Store ids, the primary first."""
        return list(self.configs)

    def __contains__(self, store_id: object) -> bool:
        return store_id in self.configs

    def config(self, store_id: str) -> StoreConfig:
        """The configuration of ``store_id`` (UnknownStoreError if none)."""
        try:
            return self.configs[store_id]
        except KeyError:
            raise UnknownStoreError(store_id) from None

    def driver(self, store_id: str) -> StoreDriver[Any]:
        """The driver of ``store_id``, built on first use."""
        driver = self._drivers.get(store_id)
        if driver is None:
            driver = self._drivers[store_id] = build_store(store_id, self.config(store_id), self.secrets)
        return driver

    def by_preference(self, candidates: Iterable[str], prefer: Iterable[str] = ()) -> list[str]:
        """``candidates`` in download order: those named in ``prefer`` (in that order), then by weight."""
        pool = [c for c in candidates if c in self.configs]
        preferred = [p for p in dict.fromkeys(prefer) if p in pool]
        order = {sid: n for n, sid in enumerate(self.configs)}
        rest = sorted((c for c in pool if c not in preferred), key=lambda c: (-self.configs[c].weight, order[c]))
        return preferred + rest

    def close(self) -> None:
        """Close every driver built."""
        for driver in self._drivers.values():
            driver.close()
        self._drivers.clear()
