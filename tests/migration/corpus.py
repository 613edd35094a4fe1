"""The images the migration tests put into a real Glance: mixed owners, visibilities, members and their status,
sizes (one over 64 MiB: a multipart upload), formats, tags, properties, and the less common states (queued without
data, deactivated, protected, hidden).

Images are made through Glance's API with the test Keystone's accounts, as their users would: each project's member
creates its own, the admin the public ones; a member's status is set by the member project itself, except for
project-c, which has no account with a role, where the admin sets it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.backends.keystone.accounts import KeystoneEnv
from tests.support.image_corpus import iso_image, qcow2_image

MiB = 1024 * 1024
# The one image large enough to be sent in parts (over sglance migrate's default --multipart-over of 64 MiB).
BIG_SIZE = 72 * MiB + 12345


@dataclass(frozen=True)
class Spec:
    """One image to create in Glance: who creates it, its fields, its data (a seed and a size, or fixed bytes)."""

    creator: str
    fields: Mapping[str, Any]
    size: int | None = None
    data: bytes | None = None
    members: Mapping[str, str] = field(default_factory=dict)  # project name -> status
    deactivate: bool = False


def specs() -> list[Spec]:
    """30 images."""
    made: list[Spec] = []
    sizes = [1, 4096, 65537, MiB, 3 * MiB + 7, 100]
    for i in range(12):
        owner = "member-a" if i % 2 == 0 else "member-b"
        visibility = ("private", "shared", "community")[i % 3]
        props = {"os_distro": "cirros", "build": str(i)} if i % 4 else {}
        fields = {"name": f"mig-{i:02d}", "disk_format": "raw", "container_format": "bare", "visibility": visibility}
        made.append(Spec(owner, {**fields, **props, "tags": [f"t{i % 3}", "mig"]}, sizes[i % len(sizes)]))
    for i, (status_b, status_c) in enumerate(
        [("accepted", None), ("pending", None), ("rejected", "accepted"), ("accepted", "rejected")]
    ):
        members = {"project-b": status_b} | ({"project-c": status_c} if status_c else {})
        fields = {"name": f"mig-shared-{i}", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
        made.append(Spec("member-a", {**fields, "hw_disk_bus": "virtio"}, (i + 1) * MiB, members=members))
    made.append(
        Spec("member-b", _named("mig-shared-back", visibility="shared"), 2 * MiB, members={"project-a": "accepted"})
    )
    for i in range(4):
        made.append(Spec("admin", _named(f"mig-public-{i}", visibility="public", os_version="24.04"), 512 * 1024 + i))
    made.append(Spec("member-a", _named("mig-big", visibility="private"), BIG_SIZE))
    made.append(Spec("member-a", _named("mig-queued", visibility="private", min_disk=3), None))
    made.append(Spec("member-a", _named("mig-deactivated"), MiB, deactivate=True))
    made.append(Spec("member-a", _named("mig-protected", protected=True, min_ram=512, min_disk=1), MiB))
    made.append(Spec("member-b", _named("mig-hidden", os_hidden=True), MiB))
    made.append(Spec("member-a", _named("mig-qcow2", disk_format="qcow2"), data=qcow2_image()))
    made.append(Spec("member-b", _named("mig-iso", disk_format="iso"), data=iso_image()))
    made.append(Spec("member-a", _named("mig-tagged", tags=["a", "b", "c"], description="x" * 200), 20 * MiB))
    made.append(Spec("member-b", _named("mig-empty"), 0))
    return made


def _named(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "disk_format": "raw", "container_format": "bare", **fields}


def image_bytes(spec: Spec, seed: int) -> bytes | None:
    """The data of ``spec``: its fixed bytes, or ``size`` pseudo-random bytes (None: the image stays queued)."""
    if spec.data is not None:
        return spec.data
    return None if spec.size is None else random.Random(seed).randbytes(spec.size)


@dataclass
class GlanceImages:
    """The created images: id by name, and the MD5 of each one's data."""

    ids: dict[str, str] = field(default_factory=dict)
    md5: dict[str, str] = field(default_factory=dict)


class GlanceUsers:
    """Keystone sessions of the test accounts, and Glance's API through them."""

    def __init__(self, keystone: KeystoneEnv, glance_url: str) -> None:
        self.keystone = keystone
        self.url = glance_url
        self._sessions: dict[str, ks_session.Session] = {}

    def session(self, account: str) -> ks_session.Session:
        """A session of ``account``, scoped to its project."""
        if account not in self._sessions:
            auth = v3.Password(**self.keystone.accounts[account].auth(self.keystone.url))
            self._sessions[account] = ks_session.Session(auth=auth, timeout=120)
        return self._sessions[account]

    def call(self, account: str, method: str, path: str, **kwargs: Any) -> Any:
        """One Glance call as ``account``; the JSON answer (None when empty)."""
        response = self.session(account).request(self.url + path, method, **kwargs)
        return response.json() if response.content else None

    def create(self, spec: Spec, seed: int) -> tuple[str, str | None]:
        """Create ``spec`` in Glance: the image's id and its data's MD5."""
        image = self.call(spec.creator, "POST", "/v2/images", json=dict(spec.fields))
        image_id = str(image["id"])
        data = image_bytes(spec, seed)
        if data is not None:
            headers = {"Content-Type": "application/octet-stream"}
            self.session(spec.creator).put(f"{self.url}/v2/images/{image_id}/file", data=data, headers=headers)
        projects = self.keystone.projects
        for project, status in spec.members.items():
            self.call(spec.creator, "POST", f"/v2/images/{image_id}/members", json={"member": projects[project]})
            if status != "pending":
                self.set_member_status(image_id, project, status)
        if spec.deactivate:
            self.call("admin", "POST", f"/v2/images/{image_id}/actions/deactivate")
        return image_id, None if data is None else hashlib.md5(data, usedforsecurity=False).hexdigest()

    def set_member_status(self, image_id: str, project: str, status: str) -> None:
        """The member project's own account sets its status (the admin for project-c, which has none)."""
        account = {"project-a": "member-a", "project-b": "member-b"}.get(project, "admin")
        member = self.keystone.projects[project]
        self.call(account, "PUT", f"/v2/images/{image_id}/members/{member}", json={"status": status})

    def close(self) -> None:
        """Close every session."""
        for session in self._sessions.values():
            session.session.close()


@contextmanager
def glance_users(keystone: KeystoneEnv, glance_url: str) -> Iterator[GlanceUsers]:
    """``GlanceUsers``, closed on exit."""
    users = GlanceUsers(keystone, glance_url)
    try:
        yield users
    finally:
        users.close()


def create_corpus(users: GlanceUsers) -> GlanceImages:
    """Every image of ``specs()`` in Glance."""
    made = GlanceImages()
    for seed, spec in enumerate(specs()):
        image_id, md5 = users.create(spec, seed)
        made.ids[str(spec.fields["name"])] = image_id
        if md5 is not None:
            made.md5[str(spec.fields["name"])] = md5
    return made
