"""Authorisation: Glance 33 secure-RBAC defaults via oslo.policy, the 404 mask, policy files, property protections.

The matrices read as truth tables. Columns are the image's visibility, each without and with a membership of
the caller's project ("-" / "+"): public-, public+, community-, community+, shared-, shared+, private-, private+.
Cells: o = allowed, F = 403 (ForbiddenError), N = 404 (NotFoundError). The image belongs to project p-own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from shared.bootstrap import Container
from shared.config import get_settings
from shared.domain.context import RequestContext
from shared.domain.errors import ForbiddenError, NotFoundError
from shared.domain.image import Image, Visibility
from shared.domain.member import Member, MemberStatus
from shared.domain.status import ImageStatus
from shared.policy import ImagePolicy, PolicyEnforcer, PolicyFileError, UnknownRuleError
from shared.policy import property_protections as pp
from shared.policy.property_protections import PropertyProtectionError, PropertyProtections
from shared.policy.rules import RULE_NAMES, RULES, list_rules
from shared.policy.targets import image_target

ROOT = Path(__file__).resolve().parents[2]
OWNER = "p-own"
OTHER = "p-other"

PERSONAS: dict[str, tuple[str | None, frozenset[str]]] = {
    "admin": ("p-admin", frozenset({"admin"})),
    "own_member": (OWNER, frozenset({"member", "reader"})),
    "own_reader": (OWNER, frozenset({"reader"})),
    "own_norole": (OWNER, frozenset()),
    "service": ("p-svc", frozenset({"service"})),
    "other_member": (OTHER, frozenset({"member", "reader"})),
    "other_reader": (OTHER, frozenset({"reader"})),
}
COLUMNS = [(vis, member) for vis in ("public", "community", "shared", "private") for member in (False, True)]

Call = Callable[[ImagePolicy, Image], None]


@pytest.fixture(scope="module")
def defaults() -> PolicyEnforcer:
    enforcer = PolicyEnforcer()
    enforcer.load()
    return enforcer


def ctx_of(persona: str, **extra: object) -> RequestContext:
    project, roles = PERSONAS[persona]
    return RequestContext(request_id="req-1", project_id=project, user_id=f"u-{persona}", roles=roles, **extra)  # type: ignore[arg-type]


def make_image(
    visibility: str = "shared",
    member: bool = False,
    status: ImageStatus = ImageStatus.ACTIVE,
    member_status: MemberStatus = MemberStatus.ACCEPTED,
    owner: str = OWNER,
) -> Image:
    image = Image(id="11111111-2222-3333-4444-555555555555", owner=owner, status=status)
    image.visibility = Visibility(visibility)
    if member:
        image.members[OTHER] = Member(image.id, OTHER, member_status)
    return image


def outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except NotFoundError:
        return "N"
    except ForbiddenError:
        return "F"
    return "o"


def row(enforcer: PolicyEnforcer, persona: str, call: Call) -> str:
    policy = ImagePolicy(ctx_of(persona), enforcer)
    return "".join(outcome(partial(call, policy, make_image(vis, member))) for vis, member in COLUMNS)


def assert_table(enforcer: PolicyEnforcer, call: Call, table: dict[str, str]) -> None:
    got = {persona: row(enforcer, persona, call) for persona in table}
    assert got == table


# -- the rules as data ------------------------------------------------------------------------------


def test_rules__cover_the_glance_rule_names_the_api_checks() -> None:
    expected = {
        "context_is_admin", "default", "service_api", "get_images", "get_image", "modify_image", "delete_image",
        "upload_image", "download_image", "download_from_store", "deactivate", "reactivate", "add_image",
        "publicize_image", "communitize_image", "copy_image", "add_member", "delete_member", "get_member",
        "get_members", "modify_member", "get_image_location", "set_image_location", "delete_image_location",
        "add_image_location", "fetch_image_location", "tasks_api_access", "stores_info_detail",
        "manage_image_cache", "cache_image", "cache_list", "cache_delete", "cache_clean", "cache_prune",
        "list_cached_nodes", "get_task", "get_tasks", "add_task",
    }  # fmt: skip
    assert expected <= RULE_NAMES
    assert len(RULE_NAMES) == len(RULES)


def test_rules__become_documented_oslo_defaults_with_project_scope() -> None:
    from oslo_policy import policy

    by_name = {rule.name: rule for rule in list_rules()}
    assert isinstance(by_name["get_image"], policy.DocumentedRuleDefault)
    assert by_name["get_image"].scope_types == ["project"]
    assert by_name["publicize_image"].check_str == "rule:context_is_admin"
    assert by_name["context_is_admin"].scope_types is None


def test_importing_the_policy_package__does_not_import_oslo() -> None:
    code = (
        "import sys\n"
        "import shared.policy, shared.policy.property_protections\n"
        "from shared.domain.context import RequestContext\n"
        "p = shared.policy.ImagePolicy(RequestContext('r', 'p', 'u', frozenset({'reader'})))\n"
        "before = any(m.startswith('oslo_policy') for m in sys.modules)\n"
        "p.get_images()\n"
        "print(before, 'oslo_policy.policy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


# -- images: the matrix -----------------------------------------------------------------------------

FIXED = {"admin": "oooooooo", "own_norole": "NNNNNNNN", "service": "NNNNNNNN"}


def test_get_image__defaults(defaults: PolicyEnforcer) -> None:
    table = {
        **FIXED,
        "own_member": "oooooooo",
        "own_reader": "oooooooo",
        "other_member": "ooooNoNN",
        "other_reader": "ooooNoNN",
    }
    assert_table(defaults, lambda p, i: p.get_image(i), table)


def test_download_image__defaults(defaults: PolicyEnforcer) -> None:
    table = {
        **FIXED,
        "own_member": "oooooooo",
        "own_reader": "FFFFFFFF",
        "other_member": "ooooNoNN",
        "other_reader": "FFFFNFNN",
    }
    assert_table(defaults, lambda p, i: p.download_image(i), table)


OWNER_WRITES: dict[str, Call] = {
    "modify_image": lambda p, i: p.modify_image(i),
    "delete_image": lambda p, i: p.modify_image(i, "delete the image"),
    "upload_image": lambda p, i: p.modify_image(i, "upload image data"),
    "deactivate": lambda p, i: p.modify_image(i, "deactivate the image"),
    "reactivate": lambda p, i: p.modify_image(i, "reactivate the image"),
    "add_member": lambda p, i: p.add_member(i),
    "delete_member": lambda p, i: p.delete_member(i),
}


@pytest.mark.parametrize("rule", OWNER_WRITES)
def test_owner_only_writes__defaults(defaults: PolicyEnforcer, rule: str) -> None:
    table = {
        **FIXED,
        "own_member": "oooooooo",
        "own_reader": "FFFFFFFF",
        "other_member": "FFFFNFNN",
        "other_reader": "FFFFNFNN",
    }
    assert_table(defaults, OWNER_WRITES[rule], table)


def test_copy_image__is_admin_only(defaults: PolicyEnforcer) -> None:
    table = {
        **FIXED,
        "own_member": "FFFFFFFF",
        "own_reader": "FFFFFFFF",
        "other_member": "FFFFNFNN",
        "other_reader": "FFFFNFNN",
    }
    assert_table(defaults, lambda p, i: p.copy_image(i), table)


# -- members: the matrix ----------------------------------------------------------------------------


def test_get_members__defaults(defaults: PolicyEnforcer) -> None:
    table = {
        **FIXED,
        "own_member": "oooooooo",
        "own_reader": "oooooooo",
        "other_member": "FFFFNoNN",
        "other_reader": "FFFFNoNN",
    }
    assert_table(defaults, lambda p, i: p.get_members(i), table)


def test_get_member__refusals_are_404_as_in_glance_show(defaults: PolicyEnforcer) -> None:
    table = {
        **FIXED,
        "own_member": "oooooooo",
        "own_reader": "oooooooo",
        "other_member": "NNNNNoNN",
        "other_reader": "NNNNNoNN",
    }
    assert_table(defaults, lambda p, i: p.get_member(i), table)


def test_modify_member__only_the_member_project_or_an_admin(defaults: PolicyEnforcer) -> None:
    table = {
        **FIXED,
        "own_member": "FFFFFFFF",
        "own_reader": "FFFFFFFF",
        "other_member": "FFFFNoNN",
        "other_reader": "FFFFNFNN",
    }
    assert_table(defaults, lambda p, i: p.modify_member(i, OTHER), table)


@pytest.mark.parametrize("status", list(MemberStatus))
def test_membership_of_any_status__makes_a_shared_image_visible(defaults: PolicyEnforcer, status: MemberStatus) -> None:
    policy = ImagePolicy(ctx_of("other_reader"), defaults)
    policy.get_image(make_image("shared", member=True, member_status=status))


def test_membership_passed_by_the_caller__counts_like_one_on_the_image(defaults: PolicyEnforcer) -> None:
    image = make_image("shared")
    policy = ImagePolicy(ctx_of("other_member"), defaults)
    policy.download_image(image, Member(image.id, OTHER))
    with pytest.raises(NotFoundError):
        policy.get_image(image, Member(image.id, "p-third"))


def test_membership_record_of_another_member__is_404_to_a_member(defaults: PolicyEnforcer) -> None:
    image = make_image("shared", member=True)
    image.members["p-third"] = Member(image.id, "p-third")
    policy = ImagePolicy(ctx_of("other_member"), defaults)
    for call in (
        lambda: policy.get_member(image, member_id="p-third"),
        lambda: policy.modify_member(image, "p-third"),
        lambda: policy.delete_member(image, "p-third"),
    ):
        assert outcome(call) == "N"
    assert outcome(lambda: policy.delete_member(image, OTHER)) == "F"
    assert policy.can_see_member(image, OTHER)
    assert not policy.can_see_member(image, "p-third")
    assert ImagePolicy(ctx_of("own_reader"), defaults).can_see_member(image, "p-third")


# -- images: creation, listing, visibility, owner ---------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "own", "other"),
    [
        ("admin", "o", "o"),
        ("own_member", "o", "F"),
        ("own_reader", "F", "F"),
        ("own_norole", "F", "F"),
        ("service", "F", "F"),
    ],
)
def test_add_image__defaults(defaults: PolicyEnforcer, persona: str, own: str, other: str) -> None:
    policy = ImagePolicy(ctx_of(persona), defaults)
    assert outcome(lambda: policy.add_image(policy.ctx.project_id)) == own
    assert outcome(lambda: policy.add_image("p-else")) == other


def test_add_image__for_another_project__names_it(defaults: PolicyEnforcer) -> None:
    with pytest.raises(ForbiddenError, match="owned by 'p-else'"):
        ImagePolicy(ctx_of("own_member"), defaults).add_image("p-else")


@pytest.mark.parametrize(
    ("persona", "listing", "public", "community", "owner"),
    [
        ("admin", "o", "o", "o", "o"),
        ("own_member", "o", "F", "o", "F"),
        ("own_reader", "o", "F", "F", "F"),
        ("own_norole", "F", "F", "F", "F"),
        ("service", "F", "F", "F", "F"),
    ],
)
def test_list_visibility_and_owner__defaults(
    defaults: PolicyEnforcer, persona: str, listing: str, public: str, community: str, owner: str
) -> None:
    policy = ImagePolicy(ctx_of(persona), defaults)
    assert outcome(policy.get_images) == listing
    assert outcome(lambda: policy.set_visibility("public")) == public
    assert outcome(lambda: policy.add_image(policy.ctx.project_id, "public")) == public
    assert outcome(lambda: policy.set_visibility("community")) == community
    assert outcome(policy.set_owner) == owner
    for free in ("shared", "private"):
        assert outcome(partial(policy.set_visibility, free)) == "o"


def test_communitize__of_another_projects_image__is_refused(defaults: PolicyEnforcer) -> None:
    policy = ImagePolicy(ctx_of("other_member"), defaults)
    assert outcome(lambda: policy.set_visibility("community", image=make_image("public"))) == "F"
    assert outcome(lambda: policy.set_visibility("community", image=make_image("public", owner=OTHER))) == "o"


def test_deactivated_image__data_is_admin_only(defaults: PolicyEnforcer) -> None:
    image = make_image("public", status=ImageStatus.DEACTIVATED)
    with pytest.raises(ForbiddenError, match="deactivated"):
        ImagePolicy(ctx_of("own_member"), defaults).download_image(image)
    ImagePolicy(ctx_of("admin"), defaults).download_image(image)


def test_deleted_image__is_404_even_to_an_admin(defaults: PolicyEnforcer) -> None:
    image = make_image("public", status=ImageStatus.DELETED)
    with pytest.raises(NotFoundError):
        ImagePolicy(ctx_of("admin"), defaults).get_image(image)


# -- scope, service, other rules --------------------------------------------------------------------


@pytest.mark.parametrize("scope", [{"system_scope": "all"}, {"domain_id": "default"}])
def test_system_or_domain_scoped_admin__fails_project_scoped_rules(
    defaults: PolicyEnforcer, scope: dict[str, str]
) -> None:
    policy = ImagePolicy(ctx_of("admin", **scope), defaults)
    assert outcome(policy.get_images) == "F"
    assert outcome(lambda: policy.get_image(make_image("public"))) == "N"
    assert outcome(lambda: policy.modify_image(make_image("public"))) == "N"
    # context_is_admin has no scope: the role still makes the caller an admin.
    assert policy.is_admin


@pytest.mark.parametrize(
    ("persona", "tasks", "stores", "fetch_locations", "add_location"),
    [
        ("admin", "o", "o", True, True),
        ("own_member", "F", "F", False, True),
        ("own_reader", "F", "F", False, False),
        ("service", "F", "o", True, True),
        ("other_member", "F", "F", False, False),
    ],
)
def test_non_image_and_location_rules__defaults(
    defaults: PolicyEnforcer, persona: str, tasks: str, stores: str, fetch_locations: bool, add_location: bool
) -> None:
    policy = ImagePolicy(ctx_of(persona), defaults)
    assert outcome(lambda: policy.enforce("tasks_api_access")) == tasks
    assert outcome(lambda: policy.enforce("stores_info_detail")) == stores
    image = make_image("public")
    assert policy.check("fetch_image_location", image) is fetch_locations
    assert policy.check("add_image_location", image) is add_location


def test_unknown_rule__is_a_programming_error(defaults: PolicyEnforcer) -> None:
    with pytest.raises(UnknownRuleError):
        ImagePolicy(ctx_of("admin"), defaults).check("get_imagez")


def test_image_target__ignores_extra_properties_named_like_base_keys() -> None:
    image = make_image("public")
    image.extra_properties.update(member_id=OTHER, project_id=OTHER, os_distro="cirros")
    target = image_target(ctx_of("other_member"), image)
    assert target["project_id"] == OWNER
    assert "member_id" not in target
    assert target["os_distro"] == "cirros"
    shared = image_target(ctx_of("other_member"), make_image("shared", member=True))
    assert (shared["member_id"], shared["member_status"]) == (OTHER, "accepted")


# -- the operator's policy file ---------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_policy_file__letting_members_publicize__changes_the_outcome(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", '"publicize_image": "role:member and project_id:%(project_id)s"\n')
    overridden = ImagePolicy(ctx_of("own_member"), PolicyEnforcer(path))
    overridden.set_visibility("public", image=make_image("shared"))
    overridden.add_image(OWNER, "public")
    with pytest.raises(ForbiddenError):
        overridden.set_visibility("public", image=make_image("shared", owner=OTHER))
    with pytest.raises(ForbiddenError):
        ImagePolicy(ctx_of("own_member"), PolicyEnforcer()).set_visibility("public", image=make_image("shared"))


def test_policy_file__in_json__is_read_too(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.json", json.dumps({"get_images": "role:admin"}))
    with pytest.raises(ForbiddenError):
        ImagePolicy(ctx_of("own_reader"), PolicyEnforcer(path)).get_images()


def test_policy_file__redefining_context_is_admin__moves_admin_rights(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", "context_is_admin: role:cloud_admin\n")
    enforcer = PolicyEnforcer(path)
    admin = ImagePolicy(ctx_of("admin"), enforcer)
    assert not admin.is_admin
    assert outcome(lambda: admin.modify_image(make_image("public"))) == "F"
    cloud_admin = ImagePolicy(
        RequestContext("req-1", OWNER, "u", frozenset({"cloud_admin", "member", "reader"})), enforcer
    )
    cloud_admin.download_image(make_image("private", status=ImageStatus.DEACTIVATED))


def test_policy_file__service_roles_of_a_service_token__can_be_tested(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", '"stores_info_detail": "service_roles:service"\n')
    enforcer = PolicyEnforcer(path)
    with_token = ImagePolicy(ctx_of("own_member", service_roles=frozenset({"service"})), enforcer)
    with_token.enforce("stores_info_detail")
    with pytest.raises(ForbiddenError):
        ImagePolicy(ctx_of("admin"), enforcer).enforce("stores_info_detail")


def test_policy_file__missing__means_defaults(tmp_path: Path) -> None:
    policy = ImagePolicy(ctx_of("own_member"), PolicyEnforcer(str(tmp_path / "absent.yaml")))
    policy.modify_image(make_image("private"))
    with pytest.raises(ForbiddenError):
        policy.set_visibility("public")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('"get_image": "role:admin\n  - [', "not valid YAML"),
        ("- get_image\n- role:admin\n", "must map rule names"),
        ("get_image: [role:admin]\n", "must be a name mapped"),
        ('"get_image": "role:admin and or"\n', "cannot be parsed"),
        ('"get_image": "rule:no_such_rule"\n', "rule:no_such_rule is not defined"),
        ('"a": "rule:b"\n"b": "rule:a"\n', "cycle"),
    ],
)
def test_policy_file__malformed__fails_on_load_and_on_first_use(tmp_path: Path, text: str, why: str) -> None:
    path = write(tmp_path, "policy.yaml", text)
    with pytest.raises(PolicyFileError, match=why):
        PolicyEnforcer(path).load()
    with pytest.raises(PolicyFileError):
        ImagePolicy(ctx_of("own_member"), PolicyEnforcer(path)).get_images()


def test_policy_file__literal_never__is_not_mistaken_for_a_parse_error(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", '"copy_image": "!"\n')
    assert outcome(lambda: ImagePolicy(ctx_of("admin"), PolicyEnforcer(path)).copy_image(make_image())) == "F"


# -- property protections ---------------------------------------------------------------------------

ROLES_CONF = """
[^x_owner_.*]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

[spl_read_only_prop]
create = admin
read = admin,spl_role
update = admin
delete = admin

[^x_all_permitted.*]
create = @
read = @
update = @
delete = @

[^x_none_permitted.*]
create = !
read = !
update = !
delete = !

[x_none_read]
create = admin
read = !
update = !
delete =

[os_glance_mine]
create = !
read = !
update = !
delete = !

[.*]
create = admin
read = admin
update = admin
delete = admin
"""


def roles_ctx(*roles: str, service_roles: tuple[str, ...] = ()) -> RequestContext:
    return RequestContext("req-1", OWNER, "u", frozenset(roles), service_roles=frozenset(service_roles))


@pytest.mark.parametrize(
    ("roles", "operation", "key", "allowed"),
    [
        (("member",), "create", "x_owner_foo", True),
        (("reader",), "read", "x_owner_foo", False),
        (("Member",), "update", "x_owner_foo", True),
        (("spl_role",), "read", "spl_read_only_prop", True),
        (("spl_role",), "update", "spl_read_only_prop", False),
        (("reader",), "delete", "x_all_permitted_1", True),
        (("admin",), "create", "x_none_permitted_1", False),
        (("admin",), "read", "x_none_read", False),
        (("admin",), "delete", "x_none_read", False),
        (("member",), "read", "anything_else", False),
        (("admin",), "update", "anything_else", True),
        (("member",), "create", "os_glance_import_task", True),
        (("member",), "read", "os_glance_mine", True),
        (("admin",), "purge", "x_all_permitted_1", False),
    ],
)
def test_property_protections__roles_format(roles: tuple[str, ...], operation: str, key: str, allowed: bool) -> None:
    protections = PropertyProtections.from_text(ROLES_CONF)
    assert protections.check(roles_ctx(*roles), operation, key) is allowed  # type: ignore[arg-type]


def test_property_protections__service_roles_and_implied_roles_count() -> None:
    protections = PropertyProtections.from_text(ROLES_CONF)
    assert protections.check(roles_ctx("reader", service_roles=("member",)), "create", "x_owner_a")
    assert protections.check(roles_ctx("admin"), "create", "x_owner_a")


def test_property_protections__first_matching_section_wins_and_no_match_denies() -> None:
    text = "[^a]\ncreate = @\nread = @\nupdate = @\ndelete = @\n\n[^ab]\ncreate = !\nread = !\nupdate = !\ndelete = !\n"
    protections = PropertyProtections.from_text(text)
    assert protections.check(roles_ctx("reader"), "create", "abc")
    assert not protections.check(roles_ctx("admin"), "read", "zzz")
    assert protections.readable(roles_ctx("reader"), {"abc": "1", "zzz": "2"}) == {"abc": "1"}


POLICIES_CONF = """
[spl_creator_policy]
create = glance_creator
read = glance_creator
update = context_is_admin
delete = !

[.*]
create = @
read = @
update = @
delete = @
"""


def test_property_protections__policies_format(tmp_path: Path) -> None:
    policy_file = write(tmp_path, "policy.yaml", '"glance_creator": "role:admin or role:spl_role"\n')
    protections = PropertyProtections.from_text(POLICIES_CONF, "policies", PolicyEnforcer(policy_file))
    assert protections.check(roles_ctx("spl_role"), "create", "spl_creator_policy")
    assert not protections.check(roles_ctx("member"), "read", "spl_creator_policy")
    assert not protections.check(roles_ctx("spl_role"), "update", "spl_creator_policy")
    assert protections.check(roles_ctx("admin"), "update", "spl_creator_policy")
    assert not protections.check(roles_ctx("admin"), "delete", "spl_creator_policy")
    assert protections.check(roles_ctx(), "delete", "other")


@pytest.mark.parametrize(
    ("text", "rule_format", "why"),
    [
        ("[a]\ncreate = @\nread = @\nupdate = @\n", "roles", "no 'delete' entry"),
        ("[a]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n", "roles", "exclude each other"),
        ("[(a]\ncreate = @\nread = @\nupdate = @\ndelete = @\n", "roles", "regular expression"),
        ("[a]\ncreate = @\n[a]\ncreate = @\n", "roles", "malformed"),
        ("create = @\n", "roles", "malformed"),
        ("[a]\ncreate = x,y\nread = @\nupdate = @\ndelete = @\n", "policies", "one policy per operation"),
        ("[a]\ncreate = no_such_rule\nread = @\nupdate = @\ndelete = @\n", "policies", "does not define"),
    ],
)
def test_property_protections__malformed_file__is_an_error(text: str, rule_format: str, why: str) -> None:
    with pytest.raises(PropertyProtectionError, match=why):
        PropertyProtections.from_text(text, rule_format, PolicyEnforcer())  # type: ignore[arg-type]


def test_property_protections__missing_file__is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PropertyProtectionError, match="cannot be read"):
        PropertyProtections.from_file(tmp_path / "absent.conf")


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    pp.protections_for.cache_clear()
    yield
    get_settings.cache_clear()
    pp.protections_for.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_property_protections__off_by_default__allow_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SGLANCE_PROPERTY_PROTECTION_FILE", raising=False)
    protections = Container(get_settings()).protections
    assert protections.check(roles_ctx(), "delete", "anything")
    assert protections.readable(roles_ctx(), {"a": "1"}) == {"a": "1"}


@pytest.mark.usefixtures("fresh_settings")
def test_property_protections__from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SGLANCE_PROPERTY_PROTECTION_FILE", write(tmp_path, "protections.conf", ROLES_CONF))
    protections = Container(get_settings()).protections
    assert protections.check(roles_ctx("member"), "create", "x_owner_a")
    assert not protections.check(roles_ctx("member"), "create", "x_none_permitted_a")
