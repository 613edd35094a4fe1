"""The test Keystone's projects, users and roles, created through its API, and tokens for them.

Runs in the project's virtualenv (keystoneauth1 only), against a Keystone that ``start.sh`` bootstrapped:

    account    project        roles on it            token
    admin      project-a      admin (bootstrap user)  scoped to project-a (admin implies member and reader)
    member-a   project-a      member                  scoped to project-a (member implies reader)
    reader-a   project-a      reader                  scoped to project-a
    member-b   project-b      member                  scoped to project-b
    no-role    (project-c)    none                    unscoped: Keystone scopes no token to a project without a role
    glance     service        service, admin          scoped to service: the service user that validates tokens

Every password is random per start. By hand::

    .venv/bin/python -m tests.backends.keystone.accounts RUN_DIR/env     # prints the accounts as JSON
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

DOMAIN_ID = "default"
DOMAIN_NAME = "Default"
PROJECTS = ("project-a", "project-b", "project-c", "service")
# (account, project its token is scoped to or None, roles granted on the project, default project)
ACCOUNTS: tuple[tuple[str, str | None, tuple[str, ...], str | None], ...] = (
    ("admin", "project-a", ("admin",), None),
    ("member-a", "project-a", ("member",), "project-a"),
    ("reader-a", "project-a", ("reader",), "project-a"),
    ("member-b", "project-b", ("member",), "project-b"),
    ("no-role", None, (), "project-c"),
    ("glance", "service", ("service", "admin"), "service"),
)


@dataclass(frozen=True)
class Account:
    """A Keystone user of the tests, and the project its tokens are scoped to (None: unscoped)."""

    name: str
    password: str
    user_id: str
    project: str | None
    project_id: str | None
    domain: str = DOMAIN_NAME

    def auth(self, url: str) -> dict[str, Any]:
        """keystoneauth1 / openstacksdk ``auth`` arguments for this account."""
        auth: dict[str, Any] = {
            "auth_url": url,
            "username": self.name,
            "password": self.password,
            "user_domain_name": self.domain,
        }
        if self.project is not None:
            auth.update(project_name=self.project, project_domain_name=self.domain)
        return auth


@dataclass(frozen=True)
class KeystoneEnv:
    """A running test Keystone: its URL, the accounts and the projects' ids."""

    url: str
    region: str
    run_dir: Path
    accounts: Mapping[str, Account]
    projects: Mapping[str, str] = field(default_factory=dict)

    def token(self, account: str) -> str:
        """A fresh token of ``account`` (project-scoped, or unscoped for an account without a project)."""
        return issue_token(self.url, self.accounts[account])

    def settings(self) -> dict[str, Any]:
        """``Settings`` arguments that make the service validate tokens against this Keystone as ``glance``."""
        glance = self.accounts["glance"]
        return {
            "auth_mode": "keystone",
            "keystone_url": self.url,
            "keystone_region": self.region,
            "keystone_service_username": glance.name,
            "keystone_service_password": glance.password,
            "keystone_service_project_name": glance.project,
        }


@contextmanager
def _session(auth: v3.Password) -> Iterator[ks_session.Session]:
    with requests.Session() as http:
        yield ks_session.Session(auth=auth, session=http, timeout=30)


def issue_token(url: str, account: Account) -> str:
    """Authenticate ``account`` with its password; the token id."""
    with _session(v3.Password(**account.auth(url))) as session:
        token = session.get_token()
    assert token is not None
    return token


class _Admin:
    """The few identity API calls the setup needs, as the bootstrap admin."""

    def __init__(self, session: ks_session.Session, url: str) -> None:
        self.session = session
        self.url = url

    def _find(self, collection: str, name: str) -> str | None:
        response = self.session.get(f"{self.url}/{collection}", params={"name": name})
        found: list[dict[str, Any]] = response.json()[collection]
        return str(found[0]["id"]) if found else None

    def ensure(self, collection: str, kind: str, body: dict[str, Any]) -> str:
        existing = self._find(collection, body["name"])
        if existing is not None:
            # a second run against the same Keystone: new password (not the admin's own: a password change revokes
            # the caller's token, and Keystone also refuses new tokens issued within the same second)
            if kind == "user" and body["name"] != "admin":
                self.session.patch(f"{self.url}/users/{existing}", json={"user": {"password": body["password"]}})
            return existing
        return str(self.session.post(f"{self.url}/{collection}", json={kind: body}).json()[kind]["id"])

    def grant(self, project_id: str, user_id: str, role_id: str) -> None:
        self.session.put(f"{self.url}/projects/{project_id}/users/{user_id}/roles/{role_id}")


def create_accounts(url: str, region: str, admin_password: str, run_dir: Path) -> KeystoneEnv:
    """Create (or find) the projects, roles and users of the tests; their credentials."""
    admin_auth = v3.Password(
        auth_url=url,
        username="admin",
        password=admin_password,
        user_domain_id=DOMAIN_ID,
        project_name="admin",
        project_domain_id=DOMAIN_ID,
    )
    with _session(admin_auth) as session:
        api = _Admin(session, url)
        projects = {
            name: api.ensure("projects", "project", {"name": name, "domain_id": DOMAIN_ID}) for name in PROJECTS
        }
        wanted_roles = sorted({role for _, _, roles, _ in ACCOUNTS for role in roles})
        roles = {name: api.ensure("roles", "role", {"name": name}) for name in wanted_roles}
        accounts: dict[str, Account] = {}
        for name, project, granted, default_project in ACCOUNTS:
            password = admin_password if name == "admin" else secrets.token_urlsafe(18)
            body: dict[str, Any] = {"name": name, "password": password, "domain_id": DOMAIN_ID}
            if default_project is not None:
                body["default_project_id"] = projects[default_project]
            user_id = api.ensure("users", "user", body)
            for role in granted:
                assert project is not None
                api.grant(projects[project], user_id, roles[role])
            project_id = projects[project] if project is not None else None
            accounts[name] = Account(name, password, user_id, project, project_id)
    return KeystoneEnv(url=url, region=region, run_dir=run_dir, accounts=accounts, projects=projects)


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines ``start.sh`` writes."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def main(argv: list[str]) -> int:
    """Create the accounts on the Keystone described by an env file; print them as JSON."""
    if len(argv) != 1:
        print("usage: python -m tests.backends.keystone.accounts RUN_DIR/env", file=sys.stderr)
        return 2
    env_file = Path(argv[0])
    values = read_env_file(env_file)
    made = create_accounts(
        values["KEYSTONE_URL"], values["KEYSTONE_REGION"], values["KEYSTONE_ADMIN_PASSWORD"], env_file.parent
    )
    accounts = [asdict(account) for account in made.accounts.values()]
    print(json.dumps({"url": made.url, "projects": made.projects, "accounts": accounts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
