"""Authorisation of the metadata definitions catalog: Glance's ``MetadefAPIPolicy``.

The target is the namespace (``project_id`` its owner, ``visibility`` its visibility), or the caller's project when
no namespace is involved (creating one, listing). A refused rule on a namespace the caller may not
``get_metadef_namespace`` is a 404, so a namespace's existence does not leak; on one it may see, a 403.
"""

from __future__ import annotations

from typing import Any

from shared.domain.context import RequestContext
from shared.domain.errors import ForbiddenError, NotFoundError
from shared.domain.metadefs import Namespace, visible
from shared.policy.enforcer import PolicyEnforcer
from shared.policy.targets import credentials


class MetadefPolicy:
    """One caller's rights on the catalog."""

    def __init__(self, ctx: RequestContext, enforcer: PolicyEnforcer) -> None:
        self.ctx = ctx
        self.enforcer = enforcer
        self._creds = credentials(ctx)
        self._is_admin: bool | None = None

    @property
    def is_admin(self) -> bool:
        """``context_is_admin``: an admin sees every namespace."""
        if self._is_admin is None:
            self._is_admin = self.enforcer.allowed("context_is_admin", {"project_id": self.ctx.project_id}, self._creds)
        return self._is_admin

    def _target(self, ns: Namespace | None) -> dict[str, Any]:
        if ns is None:
            return {"project_id": self.ctx.project_id}
        return {"project_id": ns.owner, "visibility": ns.visibility}

    def visible(self, ns: Namespace) -> bool:
        """The data layer's rule: public, the caller's own, or any for an admin."""
        return visible(ns, self.ctx.project_id, self.is_admin)

    def check(self, rule: str, ns: Namespace | None = None) -> bool:
        """A soft check of ``rule`` on ``ns`` (or the caller's project)."""
        return self.enforcer.allowed(rule, self._target(ns), self._creds)

    def enforce(self, rule: str, ns: Namespace | None = None) -> None:
        """Enforce ``rule``.

        Raises:
            NotFoundError: ``rule`` fails on ``ns`` and so does ``get_metadef_namespace``.
            ForbiddenError: ``rule`` fails otherwise.
        """
        if self.check(rule, ns):
            return
        if ns is not None and (rule == "get_metadef_namespace" or not self.check("get_metadef_namespace", ns)):
            raise NotFoundError(f"Metadata definition namespace={ns.namespace} was not found.")
        raise ForbiddenError(f"You are not authorized to complete {rule} action.")
