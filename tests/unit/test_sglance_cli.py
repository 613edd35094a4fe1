"""``sglance``'s command line: where the options go, how a connection is chosen (clouds.yaml, a token, the dev
stack's headers), what ``create`` sends, and the exit codes of bad input. No request leaves the process."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from keystoneauth1 import token_endpoint
from keystoneauth1.identity import generic

from sglance import cli
from sglance.errors import ConfigurationError
from sglance.options import create_fields

# openstacksdk's config loader warns about its own deprecations whatever the configuration.
pytestmark = [
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]


@pytest.fixture
def clouds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clouds.yaml of two clouds, and an environment that names nothing else."""
    for name in [name for name in __import__("os").environ if name.startswith(("OS_", "SGLANCE_"))]:
        monkeypatch.delenv(name)
    auth = {"auth_url": "http://keystone.invalid/v3", "username": "u", "password": "p", "project_name": "x"}
    auth |= {"user_domain_name": "Default", "project_domain_name": "Default"}
    clouds = {
        "old": {"auth": auth, "region_name": "RegionOne"},
        "new": {"auth": auth, "region_name": "RegionOne", "image_endpoint_override": "https://images.invalid/v2"},
    }
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    return path


def _args(*argv: str) -> object:
    return cli.build_parser(argv).parse_args(argv)


def test_options__before_or_after_the_command__are_the_same(clouds: Path) -> None:
    before = _args("--os-cloud", "new", "--endpoint", "http://e", "-q", "status", "i")
    after = _args("status", "i", "--os-cloud", "new", "--endpoint", "http://e", "-q")
    overridden = _args("--os-cloud", "old", "status", "i", "--os-cloud", "new")

    assert [(a.os_cloud, a.endpoint, a.quiet) for a in (before, after)] == [("new", "http://e", True)] * 2  # type: ignore[attr-defined]
    assert overridden.os_cloud == "new"  # type: ignore[attr-defined]


def test_target_connection__of_a_cloud__authenticates_with_it_at_its_image_override(clouds: Path) -> None:
    connection = cli.target_connection(_args("--os-cloud", "new", "status", "i"))  # type: ignore[arg-type]

    assert isinstance(connection.session.auth, generic.Password)
    assert connection.endpoint == "https://images.invalid"
    assert connection.region_name == "RegionOne"


def test_target_connection__endpoint_option__wins_over_the_cloud(clouds: Path) -> None:
    connection = cli.target_connection(_args("--os-cloud", "old", "--endpoint", "http://mine:9292/", "status", "i"))  # type: ignore[arg-type]

    assert connection.endpoint == "http://mine:9292"
    assert isinstance(connection.session.auth, generic.Password)


def test_target_connection__without_a_cloud__uses_the_token_or_only_the_headers(clouds: Path) -> None:
    token = cli.target_connection(_args("--token", "t0k", "--endpoint", "http://e", "status", "i"))  # type: ignore[arg-type]
    headers = cli.target_connection(_args("--header", "X-Project-Id: p", "status", "i"))  # type: ignore[arg-type]
    none = cli.target_connection(_args("--os-auth-type", "none", "--os-endpoint-override", "http://n", "status", "i"))  # type: ignore[arg-type]

    assert isinstance(token.session.auth, token_endpoint.Token)
    assert token.endpoint == "http://e"
    assert headers.session.auth is None
    assert headers.session.additional_headers == {"X-Project-Id": "p"}
    assert headers.endpoint == cli.DEFAULT_ENDPOINT
    assert none.endpoint == "http://n"


def test_main__of_an_unknown_cloud__exits_1_with_the_reason(clouds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--os-cloud", "missing", "status", "i"])

    assert code == cli.EXIT_FAILED
    assert "Cloud missing was not found" in capsys.readouterr().err


def test_main__of_a_bad_command_line__exits_64(clouds: Path) -> None:
    with pytest.raises(SystemExit) as usage:
        cli.main(["migrate", "--parallel", "0"])

    assert usage.value.code == cli.EXIT_USAGE


def test_migrate__with_the_target_as_its_own_source__refuses(clouds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--os-cloud", "new", "migrate", "--from-endpoint", "https://images.invalid/", "--dry-run"])

    assert code == cli.EXIT_FAILED
    assert "the source and the target are both https://images.invalid" in capsys.readouterr().err


def test_create_fields__map_the_options_to_glance_fields(clouds: Path) -> None:
    args = _args(
        "create", "n", "f", "--disk-format", "qcow2", "--visibility", "community", "--protected", "--hidden",
        "--min-ram", "64", "--property", "os_distro=debian", "--property", "empty=", "--tag", "a", "--tag", "b",
    )  # fmt: skip

    assert create_fields(args, "n") == {  # type: ignore[arg-type]
        "name": "n",
        "disk_format": "qcow2",
        "container_format": "bare",
        "os_distro": "debian",
        "empty": "",
        "visibility": "community",
        "protected": True,
        "os_hidden": True,
        "min_ram": 64,
        "tags": ["a", "b"],
    }


def test_configuration_error__is_an_sglance_error() -> None:
    assert issubclass(ConfigurationError, cli.SglanceError)
