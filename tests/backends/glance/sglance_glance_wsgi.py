"""gunicorn's entry point for the test Glance, loaded inside the Glance virtualenv.

Glance 33 runs only under a WSGI server (``glance.wsgi.api:application``); its config directory comes from
``OS_GLANCE_CONFIG_DIR``, which start.sh sets. The two gunicorn workers share one SQLite file, and oslo.db opens
every transaction with a deferred ``BEGIN``: two workers upgrading to a write lock at once get "database is locked"
at once instead of waiting for the busy timeout. A write lock taken at ``BEGIN`` makes them queue instead.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "before_cursor_execute", retval=True)
def _immediate(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> Any:
    is_begin = conn.dialect.name == "sqlite" and statement.strip().upper() == "BEGIN"
    return ("BEGIN IMMEDIATE" if is_begin else statement), parameters


from glance.wsgi.api import application  # noqa: E402

__all__ = ["application"]
