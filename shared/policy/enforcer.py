"""The process-wide oslo.policy enforcer: Glance's defaults, overridden by the operator's policy file.

oslo.policy (and oslo.config, PyYAML, stevedore under it) is imported when the first decision is needed, not
when this module is imported, so functions that never authorise pay nothing at cold start. The policy file is
read and checked once, when the enforcer is built: a file that is missing means "defaults only"; a file that
does not parse, holds anything but ``name: check string`` pairs, has a check string oslo.policy cannot read
(oslo would silently turn it into "deny") or refers to an undefined rule (oslo would silently fall back to the
permissive ``default`` rule) is a ``PolicyFileError``. The rules are then frozen: a changed file takes a new
process (a cold start) to apply.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.policy.rules import RULE_NAMES, list_rules

if TYPE_CHECKING:
    from oslo_policy._checks import BaseCheck
    from oslo_policy.policy import Enforcer

_LOG = logging.getLogger(__name__)


class PolicyFileError(RuntimeError):
    """The operator's policy file cannot be used; the service refuses to decide rather than guess."""


class UnknownRuleError(LookupError):
    """A rule name no code registers was asked for (a programming error, never an authorisation answer)."""


class PolicyEnforcer:
    """Decides named rules for a set of credentials and a target; built lazily, once."""

    def __init__(self, policy_file: str | None = None) -> None:
        self.policy_file = policy_file
        self._enforcer: Enforcer | None = None
        self._lock = threading.Lock()
        # Parsed ad-hoc check strings (property protections ask the same few again and again).
        self._adhoc: dict[str, BaseCheck] = {}

    def load(self) -> None:
        """Build the oslo enforcer now (import oslo.policy, read and check the policy file).

        Raises:
            PolicyFileError: the policy file exists but cannot be used.
        """
        self._oslo()

    def allowed(self, rule: str, target: Mapping[str, Any], creds: Mapping[str, Any]) -> bool:
        """Whether ``rule`` allows ``creds`` on ``target``; a token of the wrong scope is simply refused.

        Raises:
            UnknownRuleError: ``rule`` is not one of the registered rules.
            PolicyFileError: the policy file cannot be used.
        """
        if rule not in RULE_NAMES:
            raise UnknownRuleError(rule)
        # oslo adds keys to the credentials it is given; hand it a copy.
        return bool(self._oslo().enforce(rule, dict(target), dict(creds)))

    def allowed_check(self, check_str: str, target: Mapping[str, Any], creds: Mapping[str, Any]) -> bool:
        """Whether an ad-hoc check string (``rule:name``, ``role:x`` ...) allows ``creds`` on ``target``."""
        enforcer = self._oslo()
        check = self._adhoc.get(check_str)
        if check is None:
            from oslo_policy import policy

            check = self._adhoc[check_str] = policy.RuleDefault("_adhoc", check_str).check
        return bool(enforcer.enforce(check, dict(target), dict(creds)))

    def has_rule(self, name: str) -> bool:
        """Whether ``name`` is defined (registered by us or added by the policy file)."""
        return name in self._oslo().rules

    def _oslo(self) -> Enforcer:
        enforcer = self._enforcer
        if enforcer is None:
            with self._lock:
                if self._enforcer is None:
                    self._enforcer = _build(self.policy_file)
                enforcer = self._enforcer
        return enforcer


def _build(policy_file: str | None) -> Enforcer:
    from oslo_config import cfg
    from oslo_policy import policy

    path = _existing(policy_file)
    overrides = _read(path, policy) if path is not None else {}
    # A private, never-parsed ConfigOpts: no command line, config files, config directories or OS_* variables;
    # the rules come only from the defaults and the file named in Settings.
    enforcer = policy.Enforcer(cfg.ConfigOpts(), use_conf=False)
    enforcer.register_defaults(list_rules())
    rules = {name: default.check for name, default in enforcer.registered_rules.items()}
    rules.update(overrides)
    # use_conf=False freezes the rules: no stat of the file on every check, no reload of an unchecked edit.
    enforcer.set_rules(policy.Rules(rules, enforcer.default_rule), overwrite=True, use_conf=False)
    undefined = sorted({ref for check in rules.values() for ref in _references(check, policy)} - set(rules))
    if undefined:
        raise PolicyFileError(f"policy file {path}: rule:{', rule:'.join(undefined)} is not defined anywhere")
    try:
        enforcer.check_rules(raise_on_violation=True)
    except policy.InvalidDefinitionError as exc:
        raise PolicyFileError(f"policy file {path}: rules refer to each other in a cycle: {exc}") from None
    overridden = sorted(set(overrides) & RULE_NAMES)
    _LOG.info("policy: %s", f"{path} overrides {', '.join(overridden) or 'nothing'}" if path else "defaults only")
    return enforcer


def _references(check: Any, policy: Any) -> Iterator[str]:
    """The rule names a check refers to with ``rule:<name>``, at any depth."""
    if isinstance(check, policy.RuleCheck):
        yield check.match
    for child in getattr(check, "rules", ()):
        yield from _references(child, policy)
    inner = getattr(check, "rule", None)
    if inner is not None:
        yield from _references(inner, policy)


def _existing(policy_file: str | None) -> Path | None:
    if not policy_file:
        return None
    path = Path(policy_file).expanduser().resolve()
    if not path.is_file():
        _LOG.warning("policy file %s not found: using the default rules only", path)
        return None
    return path


def _read(path: Path, policy: Any) -> dict[str, Any]:
    """The file's rules, parsed by oslo.policy; refuse what oslo would accept and then enforce as something else."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"policy file {path} cannot be read: {exc}") from None
    try:
        parsed = policy.parse_file_contents(text)
    except ValueError as exc:
        raise PolicyFileError(f"policy file {path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise PolicyFileError(f"policy file {path} must map rule names to check strings, not {type(parsed).__name__}")
    rules: dict[str, Any] = {}
    for name, check_str in parsed.items():
        if not isinstance(name, str) or not isinstance(check_str, str):
            raise PolicyFileError(f"policy file {path}: rule {name!r} must be a name mapped to a check string")
        check = policy.RuleDefault(name, check_str).check
        # oslo turns a check string it cannot parse into "!" (never); only a literal "!" may legitimately do so.
        if str(check) == "!" and check_str.replace("(", "").replace(")", "").strip() != "!":
            raise PolicyFileError(f"policy file {path}: rule {name!r} has a check string that cannot be parsed")
        rules[name] = check
    unknown = sorted(set(rules) - RULE_NAMES)
    if unknown:
        # Glance's own files carry rules for APIs this service does not offer (metadefs); keep them, say so.
        _LOG.info("policy file %s defines rules no API here checks: %s", path, ", ".join(unknown))
    return rules


@lru_cache(maxsize=8)
def enforcer_for(policy_file: str | None) -> PolicyEnforcer:
    """The process-wide enforcer of one policy file (built on its first decision); one per file, shared."""
    return PolicyEnforcer(policy_file)


def get_enforcer() -> PolicyEnforcer:
    """The process-wide enforcer for ``Settings.policy_file``."""
    from shared.config import get_settings

    return enforcer_for(get_settings().policy_file)
