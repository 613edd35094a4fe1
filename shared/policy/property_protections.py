"""Glance's property protections: who may create, read, update and delete which extra properties.

Off unless ``Settings.property_protection_file`` names a file. The file is Glance's INI format: one section
per property-name regular expression (``re.search``, so unanchored unless written with ``^``/``$``), tried in
file order, the first match deciding; each section has all four of ``create``, ``read``, ``update`` and
``delete``. A value is, by ``property_protection_rule_format``:

- ``roles``: a comma-separated list of roles (the caller's roles, implied ones and service-token roles count);
- ``policies``: one rule name of the policy (default rules or the policy file), checked with an empty target.

In both formats ``@`` allows everyone and ``!`` nobody; an empty value allows nobody, and so does a property
that no section matches. An ``[os_glance.*]`` section allowing everything is put first, replacing any the
operator wrote, as Glance does (the service's own ``os_glance_*`` properties must keep working).

A missing or malformed file is a ``PropertyProtectionError`` on first use: the service refuses to run with
protections it cannot read rather than run without them.
"""

from __future__ import annotations

import configparser
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from shared.domain.context import RequestContext
from shared.policy.enforcer import PolicyEnforcer, PolicyFileError, enforcer_for
from shared.policy.targets import credentials, effective_roles

Operation = Literal["create", "read", "update", "delete"]
RuleFormat = Literal["roles", "policies"]
OPERATIONS: tuple[Operation, ...] = ("create", "read", "update", "delete")
EVERYONE = "@"
NOBODY = "!"
_INTERNAL_SECTION = "os_glance.*"

_LOG = logging.getLogger(__name__)


class PropertyProtectionError(PolicyFileError):
    """The property protection file is missing or malformed."""


@dataclass(frozen=True)
class ProtectionRule:
    """One section: a property-name pattern and who may do each operation."""

    section: str
    pattern: re.Pattern[str]
    allowed: Mapping[Operation, tuple[str, ...]]


class PropertyProtections:
    """The parsed protections; ``check`` answers one (caller, operation, property) question."""

    def __init__(
        self, rules: tuple[ProtectionRule, ...], rule_format: RuleFormat, enforcer: PolicyEnforcer | None = None
    ) -> None:
        if rule_format == "policies" and enforcer is None:
            raise ValueError("the policies format needs a policy enforcer")
        self.rules = rules
        self.rule_format = rule_format
        self.enforcer = enforcer

    @classmethod
    def from_file(
        cls, path: str | Path, rule_format: RuleFormat = "roles", enforcer: PolicyEnforcer | None = None
    ) -> PropertyProtections:
        """Read and check a property protection file.

        Raises:
            PropertyProtectionError: the file is missing, unreadable or malformed, or (policies format) names a
                rule the policy does not define.
        """
        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PropertyProtectionError(f"property protection file {file} cannot be read: {exc}") from None
        return cls.from_text(text, rule_format, enforcer, source=str(file))

    @classmethod
    def from_text(
        cls,
        text: str,
        rule_format: RuleFormat = "roles",
        enforcer: PolicyEnforcer | None = None,
        source: str = "<text>",
    ) -> PropertyProtections:
        """Parse protections from INI text (see ``from_file``)."""
        if rule_format == "policies" and enforcer is None:
            raise ValueError("the policies format needs a policy enforcer")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=source)
        except configparser.Error as exc:
            raise PropertyProtectionError(f"property protection file {source} is malformed: {exc}") from None
        sections = [s for s in parser.sections() if not s.startswith("os_glance")]
        everyone = dict.fromkeys(OPERATIONS, (EVERYONE,))
        rules = [ProtectionRule(_INTERNAL_SECTION, re.compile(_INTERNAL_SECTION), everyone)]
        for section in sections:
            rules.append(_section(parser, section, rule_format, source))
        protections = cls(tuple(rules), rule_format, enforcer)
        if enforcer is not None and rule_format == "policies":
            protections._check_policy_names(source)
        return protections

    def _check_policy_names(self, source: str) -> None:
        assert self.enforcer is not None
        for rule in self.rules:
            for operation, names in rule.allowed.items():
                for name in names:
                    if name not in (EVERYONE, NOBODY) and not self.enforcer.has_rule(name):
                        # oslo would fall back to the permissive "default" rule for an undefined name.
                        raise PropertyProtectionError(
                            f"property protection file {source}: [{rule.section}] {operation} names the rule "
                            f"{name!r}, which the policy does not define"
                        )

    def rule_for(self, key: str) -> ProtectionRule | None:
        """The first section whose pattern matches ``key`` (None: no section, so nobody may touch it)."""
        return next((rule for rule in self.rules if rule.pattern.search(key)), None)

    def check(self, ctx: RequestContext, operation: Operation, key: str) -> bool:
        """Whether ``ctx`` may ``operation`` the extra property ``key``."""
        if operation not in OPERATIONS:
            return False
        rule = self.rule_for(key)
        if rule is None:
            return False
        allowed = rule.allowed[operation]
        if NOBODY in allowed:
            return False
        if EVERYONE in allowed:
            return True
        if self.rule_format == "policies":
            assert self.enforcer is not None
            return any(self.enforcer.allowed_check(f"rule:{name}", {}, credentials(ctx)) for name in allowed)
        roles = {role.lower() for role in effective_roles(ctx) | ctx.service_roles}
        return any(role.lower() in roles for role in allowed)

    def readable(self, ctx: RequestContext, properties: Mapping[str, str]) -> dict[str, str]:
        """The properties ``ctx`` may read (Glance hides the others from every view)."""
        return {key: value for key, value in properties.items() if self.check(ctx, "read", key)}


class NoPropertyProtections(PropertyProtections):
    """Property protections off: everyone may do everything with every extra property."""

    def __init__(self) -> None:
        super().__init__((), "roles")

    def check(self, ctx: RequestContext, operation: Operation, key: str) -> bool:
        """Always True."""
        return True

    def readable(self, ctx: RequestContext, properties: Mapping[str, str]) -> dict[str, str]:
        """Every property."""
        return dict(properties)


def _section(parser: configparser.ConfigParser, section: str, rule_format: RuleFormat, source: str) -> ProtectionRule:
    where = f"property protection file {source}: [{section}]"
    try:
        pattern = re.compile(section)
    except re.error as exc:
        raise PropertyProtectionError(f"{where} is not a valid regular expression: {exc}") from None
    allowed: dict[Operation, tuple[str, ...]] = {}
    for operation in OPERATIONS:
        if not parser.has_option(section, operation):
            raise PropertyProtectionError(f"{where} has no '{operation}' entry")
        raw = parser.get(section, operation).strip()
        if rule_format == "policies" and "," in raw:
            raise PropertyProtectionError(f"{where} {operation}: one policy per operation (combine them in a rule)")
        values = tuple(part.strip() for part in raw.split(",") if part.strip())
        if EVERYONE in values and NOBODY in values:
            raise PropertyProtectionError(f"{where} {operation}: '@' and '!' exclude each other")
        if not values:
            _LOG.warning("%s %s is empty: nobody may %s these properties", where, operation, operation)
        allowed[operation] = values
    return ProtectionRule(section, pattern, allowed)


@lru_cache(maxsize=8)
def protections_for(
    protection_file: str | None, rule_format: RuleFormat = "roles", policy_file: str | None = None
) -> PropertyProtections:
    """The process-wide protections of one file (``NoPropertyProtections`` when ``protection_file`` is unset).

    Raises:
        PropertyProtectionError: the file is missing or malformed.
    """
    if not protection_file:
        return NoPropertyProtections()
    enforcer = enforcer_for(policy_file) if rule_format == "policies" else None
    return PropertyProtections.from_file(protection_file, rule_format, enforcer)
