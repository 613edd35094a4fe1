"""An image's members: the projects a shared image is shared with, and their status (a mixin of ``Image``)."""

from __future__ import annotations

from shared.domain.errors import ConflictError, ForbiddenError, LimitExceededError, NotFoundError
from shared.domain.events import EventRecorder, MemberCreated, MemberDeleted, MemberUpdated
from shared.domain.limits import check_key_text
from shared.domain.member import Member


class ImageMembers(EventRecorder):
    """The image aggregate's members (``Image`` holds the fields used here)."""

    id: str
    # Glance's visibility ("shared" is the one that has members); Image narrows it to its Visibility enum.
    visibility: str
    members: dict[str, Member]
    removed_members: set[str]

    def add_member(self, project_id: str, limit: int) -> Member:
        """Share with a project (pending until it accepts).

        Raises:
            ForbiddenError: the image is not ``shared`` (only shared images have members).
            ConflictError: the project is already a member.
            LimitExceededError: the image has ``limit`` members.
        """
        if self.visibility != "shared":
            raise ForbiddenError(detail="Only shared images have members.")
        check_key_text("member id", project_id)
        if project_id in self.members:
            raise ConflictError(detail=f"Member {project_id} already exists for image {self.id}.")
        if len(self.members) >= limit:
            raise LimitExceededError(what="image members", limit=limit)
        member = Member(self.id, project_id)
        self.members[project_id] = member
        self.removed_members.discard(project_id)
        self.record(MemberCreated(member))
        return member

    def set_member_status(self, project_id: str, status: object) -> Member:
        """A member project accepts, rejects or resets its membership (404 when it is not a member)."""
        member = self.members.get(project_id)
        if member is None:
            raise NotFoundError(kind="member", id=project_id)
        member.set_status(status)
        self.record(MemberUpdated(member))
        return member

    def remove_member(self, project_id: str) -> Member:
        """Stop sharing with a project (404 when it is not a member); returns the membership removed."""
        member = self.members.pop(project_id, None)
        if member is None:
            raise NotFoundError(kind="member", id=project_id)
        self.removed_members.add(project_id)
        self.record(MemberDeleted(member))
        return member
