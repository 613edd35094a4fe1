"""A real Glance 33 for the tests (pytest plugin, registered in tests/conftest.py).

- ``real_glance`` (session): Glance from ``tests/backends/glance`` (its own virtualenv, installed on first use;
  gunicorn, one file store, SQLite) on a free 127.0.0.1 port, validating tokens against the ``keystone`` fixture's
  Keystone as its service user ``glance``, and listed in that Keystone's catalog as the ``image`` service of
  RegionOne; a ``GlanceEnv`` (URL, run folder, image store folder, install and start seconds). About 10 s to start
  (plus about 90 s the first time, for the virtualenv). ``SGLANCE_SKIP_GLANCE=1`` skips its tests (and
  ``SGLANCE_SKIP_KEYSTONE=1`` too: it needs Keystone); any other failure fails them loudly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.backends.glance.harness import GlanceEnv
    from tests.backends.keystone.accounts import KeystoneEnv


@pytest.fixture(scope="session")
def real_glance(tmp_path_factory: pytest.TempPathFactory, keystone: KeystoneEnv) -> Iterator[GlanceEnv]:
    """A running Glance 33 for the session, authenticating against the test Keystone."""
    if os.environ.get("SGLANCE_SKIP_GLANCE") == "1":
        pytest.skip("SGLANCE_SKIP_GLANCE=1: tests against a real Glance skipped")
    from tests.backends.glance.harness import running_glance

    with running_glance(tmp_path_factory.mktemp("glance") / "run", keystone) as env:
        yield env
