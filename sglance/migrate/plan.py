"""What copying one image needs: the source's wanted state against what the target holds (pure, no HTTP).

Copied: the id, ``name``, both formats, ``visibility``, ``protected``, ``os_hidden``, ``owner``, ``min_disk``,
``min_ram``, the tags, every extra property, the members with their status, the data (size, MD5 and secure hash
verified), and ``deactivated``. Not copied, because the target computes or owns them: ``status`` otherwise,
``created_at``/``updated_at``, ``virtual_size`` (the target inspects the data itself), ``stores``, ``locations``,
``direct_url`` and Glance's reserved ``os_glance_*`` properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# Base properties written at create and kept equal afterwards.
COPIED_BASE = ("name", "disk_format", "container_format", "visibility", "protected", "os_hidden", "owner")
COPIED_NUMBERS = ("min_disk", "min_ram")
# Changeable only while the image has no data (Glance and we refuse new formats once active).
FORMATS = ("disk_format", "container_format")
NOT_COPIED = frozenset(
    {
        "id",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "stores",
    }
)
RESERVED_PREFIX = "os_glance"
# Source statuses whose image is copied; the others are skipped (with the reason).
COPYABLE = frozenset({"queued", "active", "deactivated"})
HAS_DATA = frozenset({"active", "deactivated"})

DataStep = Literal["none", "copy", "resume", "restart", "wait", "done", "conflict"]


def extra_properties(image: Mapping[str, Any]) -> dict[str, Any]:
    """The image's extra properties (neither base nor reserved)."""
    return {
        key: value
        for key, value in image.items()
        if key not in NOT_COPIED
        and key not in COPIED_BASE
        and key not in COPIED_NUMBERS
        and not key.startswith(RESERVED_PREFIX)
    }


def create_body(source: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /v2/images`` body that recreates ``source`` (without data) under the same id."""
    body: dict[str, Any] = {"id": source["id"], "tags": sorted(source.get("tags") or [])}
    for key in COPIED_BASE + COPIED_NUMBERS:
        if source.get(key) is not None:
            body[key] = source[key]
    body.update(extra_properties(source))
    return body


def metadata_patch(source: Mapping[str, Any], target: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch that gives ``target`` the metadata of ``source`` (empty when they agree)."""
    changes: list[dict[str, Any]] = []
    queued = target.get("status") == "queued"
    for key in COPIED_BASE + COPIED_NUMBERS:
        wanted = source.get(key)
        if wanted is None and key in ("owner", *FORMATS):
            continue  # the target fills these in; nothing to ask for
        if key in FORMATS and not queued:
            continue  # fixed once there is data; a difference is reported as a conflict by data_step
        if target.get(key) != wanted:
            changes.append({"op": "replace", "path": f"/{key}", "value": wanted})
    if sorted(source.get("tags") or []) != sorted(target.get("tags") or []):
        changes.append({"op": "replace", "path": "/tags", "value": sorted(source.get("tags") or [])})
    wanted_props, held = extra_properties(source), extra_properties(target)
    for key in sorted(wanted_props):
        if key not in held:
            changes.append({"op": "add", "path": f"/{_pointer(key)}", "value": wanted_props[key]})
        elif held[key] != wanted_props[key]:
            changes.append({"op": "replace", "path": f"/{_pointer(key)}", "value": wanted_props[key]})
    changes.extend({"op": "remove", "path": f"/{_pointer(key)}"} for key in sorted(set(held) - set(wanted_props)))
    return changes


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class MemberChanges:
    """How the target's members must change to match the source's: ``{project: status}`` maps."""

    add: Mapping[str, str] = field(default_factory=dict)
    set_status: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.set_status or self.remove)


def member_changes(source: Mapping[str, str], target: Mapping[str, str]) -> MemberChanges:
    """Members to add (with the status they must get), statuses to set, members to remove."""
    add = {member: status for member, status in source.items() if member not in target}
    differ = {m: s for m, s in source.items() if m in target and target[m] != s}
    # A new member starts pending: it needs its status set unless the source's is pending too.
    status = {**differ, **{m: s for m, s in add.items() if s != "pending"}}
    return MemberChanges(add, status, tuple(sorted(set(target) - set(source))))


def data_mismatches(source: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, tuple[object, object]]:
    """Where the target's data differs from the source's: ``{field: (target, source)}``."""
    checks = ["size", "checksum"]
    if source.get("os_hash_algo") and source.get("os_hash_algo") == target.get("os_hash_algo"):
        checks.append("os_hash_value")
    found = {key: (target.get(key), source.get(key)) for key in checks if source.get(key) is not None}
    found.update({key: (target.get(key), source.get(key)) for key in FORMATS if target.get(key) != source.get(key)})
    return {key: pair for key, pair in found.items() if pair[0] != pair[1]}


def data_step(
    source: Mapping[str, Any], target: Mapping[str, Any] | None, session: Mapping[str, Any] | None = None
) -> DataStep:
    """What the data needs. ``session`` is the target's open upload (``GET /upload``), if any.

    ``copy``: send everything; ``resume``: an open multipart upload of this size, send only the missing parts;
    ``restart``: an open upload that cannot be continued, abort and copy; ``wait``: every byte is there and being
    verified; ``done``: the target holds the same data; ``conflict``: the target holds other data, or is in a
    state data cannot be given to (never overwritten).
    """
    if source.get("status") not in HAS_DATA:
        return "none"
    status = None if target is None else target.get("status")
    if target is None or status == "queued":
        return "copy"
    if status in ("active", "deactivated"):
        return "conflict" if data_mismatches(source, target) else "done"
    if status == "importing":
        return "wait"
    if status == "uploading" and session is not None:
        if session.get("image_status") != "uploading":
            return "wait"
        resumable = session.get("method") == "multipart" and session.get("size") == source.get("size")
        return "resume" if resumable else "restart"
    return "conflict"


@dataclass(frozen=True)
class ImagePlan:
    """Everything one image needs, as the dry run prints it and the copier does it."""

    image_id: str
    name: str | None
    source: Mapping[str, Any]
    target: Mapping[str, Any] | None
    data: DataStep
    patch: tuple[dict[str, Any], ...] = ()
    members: MemberChanges = field(default_factory=MemberChanges)
    status_action: Literal["deactivate", "reactivate"] | None = None
    skip_reason: str | None = None
    source_members: Mapping[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes of the source image (0 without data)."""
        return int(self.source.get("size") or 0)

    @property
    def steps(self) -> list[str]:
        """The plan in words: ``create``, ``data``, ``resume``, ``metadata``, ``members``, ``deactivate``, ..."""
        found = ["create"] if self.target is None and not self.skip_reason else []
        found += [self.data] if self.data in ("copy", "resume", "restart", "wait", "conflict") else []
        found += ["metadata"] if self.patch else []
        found += ["members"] if self.members else []
        found += [self.status_action] if self.status_action else []
        return found

    @property
    def unchanged(self) -> bool:
        """Nothing to do: the target already is the source."""
        return not self.skip_reason and not self.steps


def plan_image(
    source: Mapping[str, Any],
    source_members: Mapping[str, str],
    target: Mapping[str, Any] | None,
    target_members: Mapping[str, str],
    session: Mapping[str, Any] | None = None,
) -> ImagePlan:
    """Compare one source image with the target's copy (None: not there yet)."""
    image_id, name = str(source["id"]), source.get("name")
    status = source.get("status")
    if status not in COPYABLE:
        return ImagePlan(image_id, name, source, target, "none", skip_reason=f"the source image is {status}")
    shared = source.get("visibility") == "shared"
    data = data_step(source, target, session)
    patch = () if target is None else tuple(metadata_patch(source, target))
    # Only shared images have members (a Glance keeps those of an image made private, but ignores them).
    members = member_changes(source_members, target_members) if shared else MemberChanges()
    held = None if target is None else target.get("status")
    action: Literal["deactivate", "reactivate"] | None = None
    if status == "deactivated" and held != "deactivated":
        action = "deactivate"
    elif status == "active" and held == "deactivated":
        action = "reactivate"
    return ImagePlan(image_id, name, source, target, data, patch, members, action, None, dict(source_members))
