"""Carry out one image's plan: create it, stream its data from the source into a presigned upload, then metadata,
members and status, in that order (members need the image; a deactivated image gets its data first).

The bytes go from the source's ``GET /file`` (one range per part) straight into the part PUTs, a chunk at a time:
nothing is buffered whole and nothing touches the disk. The upload declares the source's MD5, so our service
refuses any other bytes, and the active image's size, MD5 and secure hash are compared with the source's.
A source without recorded digests (or with another hash algorithm) is read once more first, to compute them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sglance.api import ImageApi, image_path
from sglance.errors import ApiError, ChecksumMismatchError, SglanceError
from sglance.hashing import StreamDigest
from sglance.migrate.plan import ImagePlan, create_body, data_mismatches, metadata_patch, plan_image
from sglance.progress import Progress
from sglance.sources import ApiSource
from sglance.transfer import RateLimit, Transfer
from sglance.uploader import Uploader
from sglance.wire import Method, MiB

log = logging.getLogger("sglance")

Result = Literal["copied", "created", "updated", "unchanged", "skipped", "conflict", "failed"]
# The hash algorithm our service records (Glance's default too); another one means computing it ourselves.
TARGET_HASH = "sha512"


@dataclass(frozen=True)
class CopyOptions:
    """How images are copied.

    Args:
        part_parallel: parts of one image in flight at once.
        multipart_over: images larger than this many bytes are sent as multipart uploads (resumable part by part);
            smaller ones as one PUT.
        limit: a bandwidth cap shared by every transfer of the run.
        wait_timeout_s: how long to wait, after the last byte, for an image to become active.
    """

    part_parallel: int = 4
    multipart_over: int = 64 * MiB
    limit: RateLimit | None = None
    wait_timeout_s: float = 900.0


@dataclass
class ImageOutcome:
    """What happened to one image."""

    image_id: str
    name: str | None
    result: Result
    steps: list[str] = field(default_factory=list)
    size: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0
    resumed: bool = False
    parts_sent: tuple[int, ...] = ()
    detail: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.image_id,
            "name": self.name,
            "result": self.result,
            "steps": self.steps,
            "size": self.size,
            "bytes_copied": self.bytes_copied,
            "seconds": round(self.seconds, 3),
            "resumed": self.resumed,
            "parts_sent": list(self.parts_sent),
            "detail": self.detail,
            "warnings": self.warnings,
        }


class ImageCopier:
    """Copies images from ``source`` (any Glance v2 API) to ``target`` (our API, through its ``Uploader``)."""

    def __init__(self, source: ImageApi, target: Uploader, options: CopyOptions) -> None:
        self.source = source
        self.target = target
        self.options = options

    def run(self, plan: ImagePlan, progress: Progress) -> ImageOutcome:
        """Do ``plan``; every error ends as a ``failed`` outcome with its message, never as an exception."""
        started = time.monotonic()
        outcome = ImageOutcome(plan.image_id, plan.name, "unchanged", plan.steps, plan.size)
        try:
            self._run(plan, outcome, progress)
        except SglanceError as exc:
            outcome.result, outcome.detail = "failed", str(exc)
            log.warning("image %s: %s", plan.image_id, exc)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # an answer of an unexpected shape
            outcome.result, outcome.detail = "failed", f"{type(exc).__name__}: {exc}"
            log.warning("image %s: %s", plan.image_id, outcome.detail)
        outcome.seconds = time.monotonic() - started
        return outcome

    def _run(self, plan: ImagePlan, outcome: ImageOutcome, progress: Progress) -> None:
        if plan.skip_reason:
            outcome.result, outcome.detail = "skipped", plan.skip_reason
            return
        if plan.data == "conflict":
            held = plan.target or {}
            differs = data_mismatches(plan.source, held)
            detail = "; ".join(f"{key}: target {ours!r}, source {theirs!r}" for key, (ours, theirs) in differs.items())
            outcome.result = "conflict"
            outcome.detail = f"the target image is {held.get('status')} " + (
                f"with other data ({detail})" if detail else ""
            )
            return
        target = plan.target
        if target is None:
            target, fresh = self._create(plan)
            if fresh:
                outcome.result = "created"
            else:  # created meanwhile (an earlier, interrupted run that lost the answer, or another run)
                plan = self.replan(plan, target)
                outcome.steps = plan.steps
        if plan.status_action == "reactivate":
            self.target.api.action(plan.image_id, "reactivate")
        if plan.data in ("copy", "restart", "resume", "wait"):
            target = self._data(plan, outcome, progress)
            outcome.result = "copied"
        patch = metadata_patch(plan.source, target)
        if patch:
            target = self.target.api.update(plan.image_id, patch)
        if plan.members:
            self._members(plan, outcome)
        if plan.status_action == "deactivate":
            self.target.api.action(plan.image_id, "deactivate")
        if outcome.result == "unchanged" and (patch or plan.members or plan.status_action):
            outcome.result = "updated"

    def replan(self, plan: ImagePlan, target: Mapping[str, Any]) -> ImagePlan:
        """``plan`` again, against the target image as it is now."""
        session = None
        if target.get("status") == "uploading":
            session = self.target.api.call("GET", image_path(plan.image_id, "/upload"), missing_ok=True)
        members = self.target_members(target)
        return plan_image(plan.source, plan.source_members, target, members, session)

    def _create(self, plan: ImagePlan) -> tuple[Mapping[str, Any], bool]:
        try:
            return self.target.api.create(create_body(plan.source)), True
        except ApiError as exc:
            if exc.status != 409:
                raise
        found = self.target.api.find(plan.image_id)
        if found is None:
            raise ApiError("POST", "/v2/images", 409, f"image id {plan.image_id} was used and deleted in the target")
        return found, False

    def target_members(self, target: Mapping[str, Any]) -> dict[str, str]:
        """The target image's members and their status (none unless it is shared)."""
        if target.get("visibility") != "shared":
            return {}
        return {m["member_id"]: m["status"] for m in self.target.api.members(str(target["id"]))}

    # -- data -----------------------------------------------------------------------------------------------

    def _data(self, plan: ImagePlan, outcome: ImageOutcome, progress: Progress) -> Mapping[str, Any]:
        image_id, size = plan.image_id, plan.size
        digest = self._digests(plan)
        if plan.data in ("copy", "restart", "resume"):
            api = self.target.api
            session = api.upload_status(image_id) if plan.data != "copy" else None
            resumed = plan.data == "resume" and session is not None and session.image_status == "uploading"
            if plan.data == "restart" and session is not None and session.image_status == "uploading":
                log.info("image %s: aborting an upload that cannot be resumed", image_id)
                api.abort(image_id)
            if not resumed:
                method: Method = "multipart" if size > self.options.multipart_over else "single"
                session = api.open_upload(image_id, size, digest["checksum"], method)
            assert session is not None
            source = ApiSource(self.source, image_id, size, self.target.pool)
            transfer: Transfer = self.target.send_session(
                image_id,
                source,
                session,
                self.options.part_parallel,
                progress,
                resumed=resumed,
                limit=self.options.limit,
            )
            outcome.bytes_copied, outcome.resumed = transfer.bytes_sent, resumed
            outcome.parts_sent = tuple(sorted(transfer.sent))
        image = self.target.wait_until_settled(image_id, self.options.wait_timeout_s)
        mismatches = {
            key: (image.get(key), wanted)
            for key, wanted in digest.items()
            if wanted is not None and image.get(key) != wanted
        }
        if mismatches:
            raise ChecksumMismatchError(image_id, mismatches)
        return image

    def _digests(self, plan: ImagePlan) -> dict[str, Any]:
        """What the target's image must show: the source's size, MD5 and hash, computed if it has none."""
        source = plan.source
        algorithm = source.get("os_hash_algo")
        wanted = {"size": plan.size, "checksum": source.get("checksum")}
        if source.get("checksum") and source.get("os_hash_value") and algorithm == TARGET_HASH:
            return {**wanted, "os_hash_value": source["os_hash_value"]}
        log.info("image %s: the source records no %s digest; reading it once to compute it", plan.image_id, TARGET_HASH)
        digest = StreamDigest()
        try:
            reader = ApiSource(self.source, plan.image_id, plan.size, self.target.pool)
            digest.feed(reader.chunks(0, plan.size, threading.Event()))
        finally:
            digest.close()
        if source.get("checksum") and source["checksum"] != digest.md5:
            raise ChecksumMismatchError(plan.image_id, {"checksum": (source["checksum"], digest.md5)})
        return {"size": plan.size, "checksum": digest.md5, "os_hash_value": digest.sha512}

    # -- members --------------------------------------------------------------------------------------------

    def _members(self, plan: ImagePlan, outcome: ImageOutcome) -> None:
        api, changes = self.target.api, plan.members
        for member in changes.add:
            api.add_member(plan.image_id, member)
        for member, status in changes.set_status.items():
            try:
                api.set_member_status(plan.image_id, member, status)
            except ApiError as exc:
                if exc.status != 403:
                    raise
                outcome.warnings.append(
                    f"member {member}: status stays pending, not {status} (only an admin or the member project "
                    "may set it)"
                )
        for member in changes.remove:
            api.remove_member(plan.image_id, member)
