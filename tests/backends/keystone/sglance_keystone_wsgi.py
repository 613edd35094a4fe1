"""WSGI entry point of the test Keystone, loaded by gunicorn inside Keystone's own virtualenv.

Two things differ from ``keystone.wsgi.api``:

* Keystone parses ``sys.argv`` with oslo.config when it initialises; under gunicorn that holds gunicorn's options,
  which Keystone rejects. The module hides them.
* Several gunicorn workers share one SQLite file. oslo.db starts every transaction with a deferred ``BEGIN``, which
  upgrades to a write lock at the first write; two such upgrades deadlock, and SQLite reports "database is locked"
  at once instead of waiting for the busy timeout. ``BEGIN IMMEDIATE`` takes the write lock up front, so concurrent
  writers wait their turn (the ``?timeout=`` of the connection URL). Nothing else changes.
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "before_cursor_execute", retval=True)
def _write_lock_at_begin(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    if conn.dialect.name == "sqlite" and statement.strip().upper() == "BEGIN":
        return "BEGIN IMMEDIATE", parameters
    return statement, parameters


sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402

__all__ = ["application"]
