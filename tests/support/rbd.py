"""Ceph RBD on the test cluster (pytest plugin, registered in tests/conftest.py).

- ``rbd_cluster`` (session): the ``rgw`` fixture's one-node cluster (tests/backends/ceph) with the pool ``images``
  made for RBD (application ``rbd``, ``rbd pool init``), as an ``RbdCluster``: the ceph.conf path, the pool, the
  cluster's fsid, the ``rados``/``rbd`` modules and an ``ioctx()`` on the pool for looking behind the driver. The
  modules come from ``shared.stores.rbd_bindings.load_bindings``: Debian's python3-rbd extension modules, loaded by path
  (never all of dist-packages on ``sys.path``). ``SGLANCE_SKIP_RGW=1`` skips its tests as it does ``rgw``'s.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared.stores.rbd_bindings import load_bindings

POOL = "images"


@dataclass(frozen=True)
class RbdCluster:
    """The test cluster as an RBD store sees it."""

    conffile: str
    pool: str
    fsid: str
    rados: Any
    rbd: Any
    handle: Any

    @contextlib.contextmanager
    def ioctx(self) -> Iterator[Any]:
        """An I/O context on the pool."""
        ioctx = self.handle.open_ioctx(self.pool)
        try:
            yield ioctx
        finally:
            ioctx.close()


def _make_rbd_pool(rbd: Any, handle: Any, pool: str) -> None:
    for command in (
        {"prefix": "osd pool create", "pool": pool, "pg_num": 8, "pgp_num": 8},
        {"prefix": "osd pool application enable", "pool": pool, "app": "rbd"},
    ):
        rc, _, err = handle.mon_command(json.dumps(command), b"")
        if rc not in (0, -17):  # -17: exists
            pytest.fail(f"ceph {command['prefix']} {pool}: {rc} {err}", pytrace=False)
    with handle.open_ioctx(pool) as ioctx:
        # a written probe proves the pool's placement groups are active (no mgr reports their states)
        ioctx.write_full("sglance-probe", b"x")
        ioctx.remove_object("sglance-probe")
        rbd.RBD().pool_init(ioctx, False)


@pytest.fixture(scope="session")
def rbd_cluster(rgw: dict[str, str]) -> Iterator[RbdCluster]:
    """The ``rgw`` cluster with the RBD pool ``images``, and a librados handle on it."""
    rados, rbd = load_bindings()
    handle = rados.Rados(conffile=rgw["CEPH_CONF"], conf={"rados_osd_op_timeout": "30", "rados_mon_op_timeout": "30"})
    handle.connect(timeout=10)
    try:
        _make_rbd_pool(rbd, handle, POOL)
        yield RbdCluster(rgw["CEPH_CONF"], POOL, str(handle.get_fsid()), rados, rbd, handle)
    finally:
        handle.shutdown()
