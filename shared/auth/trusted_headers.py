"""Development-only authentication: identity taken from trusted ``X-*`` headers.

This is what keystonemiddleware's auth_token hands a service after validating a token, so the rest of the
stack sees the same context either way. Settings validation refuses this mode in a deployed function.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.config import Settings
from shared.domain.context import RequestContext


class TrustedHeadersAuthenticator:
    """Reads X-Project-Id / X-User-Id / X-Roles, falling back to the configured development identity."""

    def __init__(self, settings: Settings) -> None:
        self._project = settings.dev_project_id
        self._user = settings.dev_user_id
        self._roles = frozenset(settings.dev_roles)

    def authenticate(self, headers: Mapping[str, str], request_id: str) -> RequestContext:
        """Build the caller's context from headers (names are case-insensitive)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        project = lowered.get("x-project-id") or lowered.get("x-tenant-id") or self._project
        user = lowered.get("x-user-id") or self._user
        roles_header = lowered.get("x-roles")
        roles = (
            frozenset(r.strip().lower() for r in roles_header.split(",") if r.strip())
            if roles_header is not None
            else self._roles
        )
        return RequestContext(
            request_id=request_id,
            project_id=project,
            user_id=user,
            roles=roles,
            domain_id=lowered.get("x-domain-id"),
            user_domain_id=lowered.get("x-user-domain-id"),
            project_domain_id=lowered.get("x-project-domain-id"),
            system_scope=lowered.get("openstack-system-scope"),
            # keystonemiddleware's header for the roles of a service token sent along the user's (Nova, Cinder)
            service_roles=frozenset(
                r.strip().lower() for r in lowered.get("x-service-roles", "").split(",") if r.strip()
            ),
        )
