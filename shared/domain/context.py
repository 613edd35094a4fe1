"""The request context: who is calling, as Keystone's auth_token middleware would describe them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestContext:
    """Identity and request metadata every controller call receives.

    The fields mirror what keystonemiddleware puts in ``X-*`` headers: the Keystone authenticator and the
    trusted-headers dev mode fill the same object. Whether the caller is an admin is the policy's question
    (``ImagePolicy.is_admin``, Glance's ``context_is_admin``), not the context's.
    """

    request_id: str
    project_id: str | None
    user_id: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    domain_id: str | None = None
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    system_scope: str | None = None
    service_roles: frozenset[str] = field(default_factory=frozenset)
    # The caller's Keystone token (keystone auth mode only): glance-download presents it to the remote region's
    # Glance and to Keystone for the caller's catalog, as Glance's context.auth_token. Never printed.
    auth_token: str | None = field(default=None, repr=False, compare=False)

    @property
    def owner(self) -> str | None:
        """The project that owns what this caller creates."""
        return self.project_id
