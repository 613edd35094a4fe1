"""The RBD store against a real Ceph 16 cluster on loopback (librbd through python3-rbd): the store contract, then
what RBD adds: the protected snapshot, copy-on-write clones, in-use deletes, thin provisioning and the fsid."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.stores.config import MiB, RbdStoreConfig
from shared.stores.errors import StoreConfigError, StoreInUseError, StoreNotFoundError, StoreUnavailableError
from shared.stores.rbd import SNAPSHOT, RbdStore, parse_rbd_url
from shared.stores.rbd_bindings import load_bindings
from shared.stores.registry import build_store
from tests.stores.contract import Inventory, StoreContract, chunked, new_image_id, read_all
from tests.support.rbd import RbdCluster

pytestmark = [pytest.mark.integration, pytest.mark.rgw, pytest.mark.timeout(600)]

# A cephx key in the right form; the test cluster runs with auth none and ignores it, the driver must not show it.
FAKE_KEY = "AQBxlXRk7fV4HhAAy5PAl4RXgUvA/Hg2Sju7kg=="
# What librbd keeps of one image in the pool: its id (by name), header, data and object-map objects (by its id).
_IMAGE_OBJECTS = ("rbd_id.", "rbd_header.", "rbd_data.", "rbd_object_map.")


def rbd_inventory(cluster: RbdCluster) -> set[str]:
    """The pool's images and trash entries by name, and every per-image object no listed image owns (what a
    half-removed image leaves). A replaced image gets a new internal id, so its objects are not listed by name."""
    rbd = cluster.rbd
    with cluster.ioctx() as ioctx:
        names = set(rbd.RBD().list(ioctx))
        owners = set(names)
        for name in names:
            with rbd.Image(ioctx, name, read_only=True) as image:
                owners.add(image.id())
        trash = {f"trash:{entry['name']}" for entry in rbd.RBD().trash_list(ioctx)}
        orphans = set()
        for obj in ioctx.list_objects():
            prefix, _, rest = obj.key.partition(".")
            if f"{prefix}." in _IMAGE_OBJECTS and rest.split(".")[0] not in owners:
                orphans.add(f"object:{obj.key}")
    return {f"image:{name}" for name in names} | trash | orphans


@pytest.fixture
def make_store(rbd_cluster: RbdCluster) -> Iterator[Callable[..., RbdStore]]:
    """Builds RBD stores on the test pool as the registry does; closes them after the test."""
    made: list[RbdStore] = []

    def make(**overrides: Any) -> RbdStore:
        settings: dict[str, Any] = {"type": "rbd", "conffile": rbd_cluster.conffile, "pool": rbd_cluster.pool}
        store = build_store("rbd1", RbdStoreConfig(**{**settings, **overrides}))
        assert isinstance(store, RbdStore)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def clones(rbd_cluster: RbdCluster) -> Iterator[Callable[[str], str]]:
    """``clone(image_id)``: a COW clone of ``<image id>@snap`` as Nova or Cinder makes one; removed after the test."""
    made: list[str] = []
    rbd = rbd_cluster.rbd

    def clone(image_id: str) -> str:
        name = f"clone-{uuid.uuid4().hex[:12]}"
        with rbd_cluster.ioctx() as ioctx:
            rbd.RBD().clone(ioctx, image_id, SNAPSHOT, ioctx, name, features=rbd.RBD_FEATURE_LAYERING)
        made.append(name)
        return name

    yield clone
    with rbd_cluster.ioctx() as ioctx:
        for name in made:
            with contextlib.suppress(rbd.ImageNotFound):
                rbd.RBD().remove(ioctx, name)


class TestRbdStore(StoreContract):
    """The contract on RBD; the large path is the same writer with 1 MiB objects, so images span many objects."""

    @pytest.fixture
    def driver(self, make_store: Callable[..., RbdStore]) -> RbdStore:
        return make_store(key=FAKE_KEY)

    @pytest.fixture
    def large_driver(self, make_store: Callable[..., RbdStore]) -> RbdStore:
        return make_store(chunk_size=1 * MiB)

    @pytest.fixture
    def inventory(self, rbd_cluster: RbdCluster) -> Inventory:
        return lambda: rbd_inventory(rbd_cluster)

    @pytest.fixture
    def foreign_urls(self, rbd_cluster: RbdCluster) -> list[str]:
        fsid, pool, image = rbd_cluster.fsid, rbd_cluster.pool, new_image_id()
        return [
            f"rbd://{uuid.uuid4()}/{pool}/{image}/snap",  # another cluster
            f"rbd://{fsid}/{pool}-other/{image}/snap",  # another pool
            f"rbd://{fsid}/{pool}/{image}",  # no snapshot
            f"rbd://{image}",  # Glance's oldest form, no cluster
            f"rbd://{fsid}/{pool}/{image}/snap/more",
            f"rbd://{fsid}/{pool}//snap",
            f"rbd://{fsid}/{pool}/{image}/snap?x=1",
        ]

    @pytest.fixture
    def secrets(self) -> list[str]:
        return [FAKE_KEY]


def image_of(rbd_cluster: RbdCluster, url: str) -> str:
    """The RBD image name a location URL names."""
    parts = parse_rbd_url(url)
    assert parts is not None
    return parts[2]


# -- what glance_store's rbd driver does --------------------------------------------------------


def test_add__makes_a_layering_image_with_a_protected_snap(
    make_store: Callable[..., RbdStore], rbd_cluster: RbdCluster
) -> None:
    rbd = rbd_cluster.rbd
    store = make_store(chunk_size=1 * MiB)
    image_id = new_image_id()

    result = store.add(image_id, chunked(os.urandom(3 * MiB + 1), 65_536), 3 * MiB + 1, "sha512")

    assert result.url == f"rbd://{rbd_cluster.fsid}/{rbd_cluster.pool}/{image_id}/snap"
    with rbd_cluster.ioctx() as ioctx, rbd.Image(ioctx, image_id, read_only=True) as image:
        assert [snap["name"] for snap in image.list_snaps()] == ["snap"]
        assert image.is_protected_snap("snap")
        assert image.features() & rbd.RBD_FEATURE_LAYERING
        assert image.stat()["order"] == 20  # objects of chunk_size
        assert image.size() == 3 * MiB + 1


def test_clone_of_snap__reads_the_same_bytes(
    make_store: Callable[..., RbdStore], rbd_cluster: RbdCluster, clones: Callable[[str], str]
) -> None:
    store = make_store()
    image_id = new_image_id()
    data = os.urandom(2 * MiB + 77)
    store.add(image_id, chunked(data, MiB), len(data), "sha512")

    name = clones(image_id)

    with rbd_cluster.ioctx() as ioctx, rbd_cluster.rbd.Image(ioctx, name, read_only=True) as clone:
        assert clone.parent_info()[1:] == (image_id, SNAPSHOT)
        assert clone.read(0, len(data)) == data


def test_delete__of_an_image_with_a_clone__raises_in_use_and_leaves_it(
    make_store: Callable[..., RbdStore], rbd_cluster: RbdCluster, clones: Callable[[str], str]
) -> None:
    store = make_store()
    data = os.urandom(100_000)
    result = store.add(new_image_id(), chunked(data, 10_000), len(data), "sha512")
    clones(image_of(rbd_cluster, result.url))

    with pytest.raises(StoreInUseError):
        store.delete(result.url)

    assert read_all(store.get(result.url)) == data
    with rbd_cluster.ioctx() as ioctx, rbd_cluster.rbd.Image(ioctx, image_of(rbd_cluster, result.url)) as image:
        assert image.is_protected_snap(SNAPSHOT)


@pytest.mark.parametrize("release", ["flatten", "remove"])
def test_delete__once_the_clone_is_flattened_or_removed__removes_the_image(
    make_store: Callable[..., RbdStore],
    rbd_cluster: RbdCluster,
    clones: Callable[[str], str],
    release: str,
) -> None:
    rbd = rbd_cluster.rbd
    store = make_store()
    before = rbd_inventory(rbd_cluster)
    data = os.urandom(300_000)
    result = store.add(new_image_id(), chunked(data, 65_536), len(data), "sha512")
    name = clones(image_of(rbd_cluster, result.url))
    with pytest.raises(StoreInUseError):
        store.delete(result.url)

    with rbd_cluster.ioctx() as ioctx:
        if release == "flatten":
            with rbd.Image(ioctx, name) as clone:
                clone.flatten()
        else:
            rbd.RBD().remove(ioctx, name)
    store.delete(result.url)

    with pytest.raises(StoreNotFoundError):
        store.get_size(result.url)
    if release == "flatten":  # the flattened clone is an image of its own, with the bytes
        with rbd_cluster.ioctx() as ioctx, rbd.Image(ioctx, name, read_only=True) as clone:
            assert clone.read(0, len(data)) == data
        with rbd_cluster.ioctx() as ioctx:
            rbd.RBD().remove(ioctx, name)
    assert rbd_inventory(rbd_cluster) == before


def test_add__again_while_the_first_copy_has_a_clone__raises_in_use_and_keeps_it(
    make_store: Callable[..., RbdStore], rbd_cluster: RbdCluster, clones: Callable[[str], str]
) -> None:
    store = make_store()
    image_id = new_image_id()
    first = os.urandom(50_000)
    result = store.add(image_id, chunked(first, 10_000), len(first), "sha512")
    clones(image_id)
    held = rbd_inventory(rbd_cluster)

    with pytest.raises(StoreInUseError):
        store.add(image_id, chunked(b"second copy", 4), 11, "sha512")

    assert read_all(store.get(result.url)) == first
    assert rbd_inventory(rbd_cluster) == held


def allocated(rbd_cluster: RbdCluster, image_id: str) -> int:
    """Bytes of the image that were ever written (librbd's diff since creation)."""
    extents: list[tuple[int, int, bool]] = []
    with rbd_cluster.ioctx() as ioctx, rbd_cluster.rbd.Image(ioctx, image_id, read_only=True) as image:
        image.diff_iterate(
            0, image.size(), None, lambda offset, length, exists: extents.append((offset, length, exists))
        )
    return sum(length for _, length, exists in extents if exists)


@pytest.mark.parametrize(("thin", "written"), [(True, 2 * MiB + 123), (False, 5 * MiB + 123)], ids=["thin", "thick"])
def test_thin_provisioning__leaves_all_zero_chunks_unwritten(
    make_store: Callable[..., RbdStore], rbd_cluster: RbdCluster, thin: bool, written: int
) -> None:
    store = make_store(chunk_size=1 * MiB, thin_provisioning=thin)
    image_id = new_image_id()
    # chunk 0 data, chunks 1-3 zeros, chunk 4 data with a zero tail, chunk 5 short: 1 MiB + 0 + 1 MiB + 123 bytes
    data = os.urandom(MiB) + bytes(3 * MiB) + os.urandom(MiB // 2) + bytes(MiB // 2) + os.urandom(123)

    result = store.add(image_id, chunked(data, 300_001), len(data), "sha256")

    assert read_all(store.get(result.url)) == data
    assert allocated(rbd_cluster, image_id) == written


def test_properties__are_glances_with_the_clusters_fsid(
    make_store: Callable[..., RbdStore], rbd_cluster: RbdCluster
) -> None:
    store = make_store(chunk_size=4 * MiB, thin_provisioning=True)

    assert store.properties() == {
        "pool": rbd_cluster.pool,
        "chunk_size": 4 * MiB,
        "thin_provisioning": True,
        "fsid": rbd_cluster.fsid,
    }
    url = store.add(new_image_id(), iter([b"x"]), 1, "sha512").url
    assert url.startswith(f"rbd://{rbd_cluster.fsid}/")


# -- configuration and failures -----------------------------------------------------------------


def test_configured_fsid__of_another_cluster__is_refused(
    make_store: Callable[..., RbdStore], rbd_cluster: RbdCluster
) -> None:
    store = make_store(fsid=str(uuid.uuid4()))

    with pytest.raises(StoreConfigError, match="fsid"):
        store.add(new_image_id(), iter([b"x"]), 1, "sha512")


def test_configured_fsid__answers_owns_without_a_connection(tmp_path: Path) -> None:
    fsid = str(uuid.uuid4())
    store = RbdStore("r", RbdStoreConfig(conffile=str(tmp_path / "missing.conf"), fsid=fsid))

    assert store.owns(f"rbd://{fsid}/images/{new_image_id()}/snap")
    assert not store.owns(f"rbd://{fsid}/volumes/{new_image_id()}/snap")
    assert store.properties()["fsid"] == fsid
    assert store._cluster is None


def test_missing_pool__is_a_config_error(make_store: Callable[..., RbdStore]) -> None:
    store = make_store(pool=f"missing-{uuid.uuid4().hex[:8]}")

    with pytest.raises(StoreConfigError, match="does not exist"):
        store.add(new_image_id(), iter([b"x"]), 1, "sha512")


def unreachable_conf(tmp_path: Path) -> str:
    """A ceph.conf naming a monitor nobody listens on (a port just freed)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "ceph.conf"
    path.write_text(f"[global]\nmon host = 127.0.0.1:{port}\nauth client required = none\n")
    return str(path)


def test_unreachable_cluster__is_unavailable_within_the_connect_timeout(
    tmp_path: Path, rbd_cluster: RbdCluster
) -> None:
    store = RbdStore("r", RbdStoreConfig(conffile=unreachable_conf(tmp_path), connect_timeout=1))
    url = f"rbd://{rbd_cluster.fsid}/images/{new_image_id()}/snap"

    with pytest.raises(StoreUnavailableError):
        store.get_size(url)
    with pytest.raises(StoreUnavailableError):
        store.delete(url)
    assert not store.owns(url)  # an unreachable cluster owns nothing (and raises nothing)
    store.close()


# -- the bindings ---------------------------------------------------------------------------------


def test_module_import__does_not_import_the_bindings() -> None:
    code = "import sys, shared.stores.rbd, shared.stores.registry; sys.exit('rados' in sys.modules)"

    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], check=False, timeout=60)

    assert done.returncode == 0


def test_load_bindings__loads_only_the_two_modules_by_path(rbd_cluster: RbdCluster) -> None:
    rados, rbd = load_bindings()

    assert (rados, rbd) == (rbd_cluster.rados, rbd_cluster.rbd)

    assert Path(rbd.__file__).parent == Path(rados.__file__).parent
    assert str(Path(rados.__file__).parent) not in sys.path
    assert rbd.RBD().version()[0] == 1


def test_load_bindings__without_them__names_python3_rbd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # None in sys.modules makes ``import rados`` fail, as in a Python without the bindings
    monkeypatch.setitem(sys.modules, "rados", None)
    monkeypatch.setitem(sys.modules, "rbd", None)

    with pytest.raises(StoreConfigError, match="python3-rbd"):
        load_bindings(str(tmp_path))


def test_config__chunk_size_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        RbdStoreConfig(chunk_size=3 * MiB)


def test_secret__is_read_at_the_first_connection(rbd_cluster: RbdCluster) -> None:
    reads: list[str] = []

    def secrets(arn: str) -> dict[str, str]:
        reads.append(arn)
        return {"key": FAKE_KEY, "user": "admin"}

    config = RbdStoreConfig(conffile=rbd_cluster.conffile, pool=rbd_cluster.pool, secret_arn="arn:rbd1")
    store = build_store("rbd1", config, secrets)
    assert reads == []

    result = store.add(new_image_id(), iter([b"abc"]), 3, "sha512")
    assert read_all(store.get(result.url)) == b"abc"
    store.close()

    assert reads == ["arn:rbd1"]
