"""Image members: projects an image is shared with, and their acceptance status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from shared.domain.errors import InvalidInputError


def _now() -> datetime:
    return datetime.now(UTC)


class MemberStatus(StrEnum):
    """Glance's membership statuses; only ``accepted`` puts the image in the member's default list."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass
class Member:
    """One project's membership of one shared image."""

    image_id: str
    member_id: str
    status: MemberStatus = MemberStatus.PENDING
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)

    def set_status(self, status: object) -> None:
        """Change the status (400 for a value Glance does not know)."""
        if not isinstance(status, str) or status not in {s.value for s in MemberStatus}:
            raise InvalidInputError(f"Invalid status: {status}")
        self.status = MemberStatus(status)
        self.updated_at = _now()
