"""The Swift store's clients: one python-swiftclient connection per thread, one Keystone session, one error table.

swiftclient's ``Connection`` is not thread-safe, so every thread gets its own (made on first use there);
with Keystone v3 they all share one keystoneauth1 session, hence one token, renewed by the session, and
swiftclient needs no python-keystoneclient. Nothing is imported or read (the key may be a Secrets Manager
read) until the first connection is made. A connection factory and a Keystone session can be given instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.stores.errors import StoreConfigError, StoreError, StoreUnavailableError, error_for_status

if TYPE_CHECKING:
    from keystoneauth1.session import Session
    from swiftclient.client import Connection

    from shared.stores.config import SwiftStoreConfig


class _PerThread(threading.local):
    connection: Connection | None = None


class SwiftConnections:
    """The connections of one Swift store."""

    def __init__(
        self,
        config: SwiftStoreConfig,
        key: str | Callable[[], tuple[str, str]],
        *,
        retries: int = 2,
        factory: Callable[[], Connection] | None = None,
        keystone_session: Session | None = None,
    ) -> None:
        """Args:
        config: the store's configuration.
        key: the key, or a reader of (user, key) called on the first connection (a Secrets Manager read).
        retries: swiftclient's retries of one request.
        factory: makes each thread's connection instead of ``Connection(**self.options())``.
        keystone_session: the Keystone session to use (Keystone v3; the caller's: ``close`` leaves it open).
        """
        self.config = config
        self._key_source = key
        self._credentials: tuple[str, str] | None = (config.user, key) if isinstance(key, str) else None
        self._retries = retries
        self._factory = factory
        self._keystone: Session | None = keystone_session
        self._owns_keystone = keystone_session is None
        self._local = _PerThread()
        self._lock = threading.Lock()
        self._made: list[Connection] = []

    def _user_and_key(self) -> tuple[str, str]:
        with self._lock:
            if self._credentials is None:
                assert callable(self._key_source)
                self._credentials = self._key_source()
            return self._credentials

    def options(self) -> dict[str, Any]:
        """The ``swiftclient.Connection`` arguments (they hold the key: never log them)."""
        config = self.config
        options: dict[str, Any] = {
            "retries": self._retries,
            "starting_backoff": 0.5,
            "max_backoff": 4,
            "timeout": config.timeout_seconds,
            "retry_on_ratelimit": True,
        }
        if config.auth_version == "1":
            user, key = self._user_and_key()
            options.update(authurl=config.auth_url, user=user, key=key, auth_version="1")
        else:
            options.update(
                auth_version="3",
                session=self.keystone_session(),
                os_options={
                    "service_type": "object-store",
                    "endpoint_type": config.endpoint_type,
                    "region_name": config.region_name,
                },
            )
        return options

    def keystone_auth_options(self) -> dict[str, Any]:
        """The Keystone v3 password plugin's arguments (they hold the key: never log them)."""
        config = self.config
        user, key = self._user_and_key()
        return {
            "auth_url": config.auth_url,
            "username": user,
            "password": key,
            "project_name": config.project_name,
            "user_domain_name": config.user_domain_name,
            "project_domain_name": config.project_domain_name,
        }

    def keystone_session(self) -> Session:
        """The Keystone session every connection shares, made on first use."""
        with self._lock:
            keystone = self._keystone
        if keystone is None:
            from keystoneauth1 import session
            from keystoneauth1.identity import v3

            auth = v3.Password(**self.keystone_auth_options())
            keystone = session.Session(auth=auth, timeout=self.config.timeout_seconds)
            with self._lock:
                if self._keystone is None:
                    self._keystone = keystone
                else:
                    keystone.session.close()
                    keystone = self._keystone
        return keystone

    def get(self) -> Connection:
        """This thread's connection, made on first use."""
        connection = self._local.connection
        if connection is None:
            if self._factory is not None:
                connection = self._factory()
            else:
                from swiftclient.client import Connection

                connection = Connection(**self.options())
            self._local.connection = connection
            with self._lock:
                self._made.append(connection)
        return connection

    def close(self) -> None:
        """Close every connection made, and the Keystone session if it was made here."""
        with self._lock:
            made, self._made = self._made, []
            keystone = self._keystone if self._owns_keystone else None
            if self._owns_keystone:
                self._keystone = None
        for connection in made:
            connection.close()
        if keystone is not None:
            keystone.session.close()
        self._local = _PerThread()

    def error(self, exc: Exception, what: str) -> StoreError | None:
        """The store error for a swiftclient, requests or keystoneauth1 failure; None for anything else."""
        from swiftclient.exceptions import ClientException

        if isinstance(exc, ClientException):
            if exc.http_status is None:
                return StoreUnavailableError(f"{what}: {exc.msg}")
            answer = f"{what}: Swift answered {exc.http_status} {exc.http_reason or ''}".rstrip()
            return error_for_status(exc.http_status, answer)
        if isinstance(exc, OSError):  # sockets, and every requests exception
            return StoreUnavailableError(f"{what}: {type(exc).__name__}: {exc}")
        if self.config.auth_version == "3":
            from keystoneauth1 import exceptions as ks

            if isinstance(exc, ks.ConnectionError | ks.ServiceUnavailable | ks.GatewayTimeout | ks.BadGateway):
                return StoreUnavailableError(f"{what}: Keystone: {type(exc).__name__}")
            if isinstance(exc, ks.ClientException):
                return StoreConfigError(f"{what}: Keystone: {type(exc).__name__}: {exc}")
        return None
