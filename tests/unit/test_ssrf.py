"""The URL policy (shared/net/ssrf.py): every class of URL it refuses, and what it lets through.

DNS answers are injected by patching ``socket.getaddrinfo``; no test here touches the network.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from shared.config import Settings
from shared.domain.errors import InvalidInputError
from shared.net.ssrf import METADATA_ADDRESSES, UrlNotAllowedError, UrlPolicy, validate_url

POLICY = UrlPolicy()

NON_PUBLIC_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.1.1",
    "169.254.169.254",  # EC2 instance metadata
    "169.254.170.2",  # ECS task metadata
    "100.64.0.1",  # carrier-grade NAT
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.8",
    "192.0.2.10",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",  # EC2 instance metadata over IPv6
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "2001:db8::1",
    "2001::1",  # Teredo
    "100::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::8.8.8.8",
    "64:ff9b::7f00:1",  # NAT64 well-known prefix -> 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 -> 127.0.0.1
    "2002:a00:1::1",  # 6to4 -> 10.0.0.1
]

ENCODED_LITERALS = [
    "2130706433",  # 127.0.0.1, decimal
    "0x7f000001",  # hex
    "0X7F000001",
    "017700000001",  # octal
    "0177.0.0.1",
    "0x7f.0.0.1",
    "0x7f.0x0.0x0.0x1",
    "127.1",  # short forms
    "127.0.1",
    "0",  # 0.0.0.0
    "0x0",
    "2852039166",  # 169.254.169.254
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "169.254.43518",
    "10.1",
    "127.0.0.1.",  # trailing dot
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # full-width digits, folded by IDNA
]

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


Resolver = Callable[..., list[tuple[Any, ...]]]


def answers(*addresses: str) -> Resolver:
    """A getaddrinfo that answers every name with ``addresses``."""

    def getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = []
        for address in addresses:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result

    return getaddrinfo


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """``dns("10.0.0.1", ...)`` makes every name resolve to those addresses; returns the names looked up."""
    looked_up: list[str] = []

    def install(*addresses: str) -> list[str]:
        resolve = answers(*addresses)

        def getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list[tuple[Any, ...]]:
            looked_up.append(host)
            return resolve(host, port)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return looked_up

    return install


def refusal(url: str, policy: UrlPolicy = POLICY) -> str:
    with pytest.raises(UrlNotAllowedError) as caught:
        validate_url(url, policy)
    assert isinstance(caught.value, InvalidInputError)
    return caught.value.message


# -- schemes, credentials, shape --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/image.qcow2",
        "file:///etc/passwd",
        "gopher://example.com/",
        "s3://bucket/key",
        "data:text/plain,hello",
        "//example.com/image",
        "example.com/image",
    ],
)
def test_validate__with_a_scheme_other_than_http_or_https__is_refused(url: str) -> None:
    assert "scheme" in refusal(url)


def test_validate__with_https_only_policy__refuses_http(dns: Callable[..., list[str]]) -> None:
    dns(PUBLIC_V4)
    policy = UrlPolicy(allowed_schemes=("https",))

    assert "scheme" in refusal("http://example.com/", policy)
    assert validate_url("https://example.com/", policy).port == 443


def test_policy__with_a_scheme_it_cannot_fetch__cannot_be_built() -> None:
    with pytest.raises(ValueError, match="allowed_schemes"):
        UrlPolicy(allowed_schemes=("http", "ftp"))


@pytest.mark.parametrize(
    "url",
    [
        "http://user@example.com/",
        "http://user:secret@example.com/",
        "http://:@example.com/",
        "http://example.com@127.0.0.1/",
        "http://127.0.0.1@example.com/",
    ],
)
def test_validate__with_userinfo__is_refused(url: str) -> None:
    assert "credentials" in refusal(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a b",
        "http://example.com/\t",
        "http://exam\nple.com/",
        "http://example.com\\@127.0.0.1/",
        "http:\\\\127.0.0.1\\",
        "http://example.com/\x00",
    ],
)
def test_validate__with_whitespace_control_characters_or_backslashes__is_refused(url: str) -> None:
    assert "control characters or backslashes" in refusal(url)


@pytest.mark.parametrize("url", ["http://[::1/", "http://[v1.x]/", "http://[127.0.0.1]/"])
def test_validate__with_a_malformed_bracketed_host__is_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowedError):
        validate_url(url, POLICY)


def test_validate__with_an_overlong_url__is_refused() -> None:
    assert "longer than" in refusal("http://example.com/" + "a" * 3000)


@pytest.mark.parametrize("url", ["http:///image", "http://:80/image", "http:image"])
def test_validate__without_a_host__is_refused(url: str) -> None:
    assert "no host" in refusal(url)


@pytest.mark.parametrize("url", ["http://exa*mple.com/", "http://a..b/", "http://127.0.0.%31/", "http://" + "a" * 64])
def test_validate__with_an_invalid_host_name__is_refused(url: str) -> None:
    assert "host name is not valid" in refusal(url)


# -- ports ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://example.com:22/", "https://example.com:8443/", "http://example.com:0/"])
def test_validate__with_a_port_outside_the_list__is_refused(url: str) -> None:
    assert "port" in refusal(url)


@pytest.mark.parametrize("url", ["http://example.com:99999/", "http://example.com:http/", "http://example.com:-1/"])
def test_validate__with_an_invalid_port__is_refused(url: str) -> None:
    assert "port" in refusal(url)


def test_validate__checks_the_default_port_of_the_scheme(dns: Callable[..., list[str]]) -> None:
    dns(PUBLIC_V4)
    http_only = UrlPolicy(allowed_ports=(80,))

    assert "port 443 is not allowed" in refusal("https://example.com/", http_only)
    assert validate_url("http://example.com/", http_only).port == 80
    assert validate_url("http://example.com:80/", http_only).host_header == "example.com"


def test_validate__with_an_allowed_non_default_port__keeps_it_in_the_host_header(dns: Callable[..., list[str]]) -> None:
    dns(PUBLIC_V4)
    checked = validate_url("http://example.com:8080/x", UrlPolicy(allowed_ports=(80, 8080)))

    assert (checked.port, checked.host_header, checked.url) == (8080, "example.com:8080", "http://example.com:8080/x")


def test_validate__with_an_empty_port_list__accepts_any_port(dns: Callable[..., list[str]]) -> None:
    dns(PUBLIC_V4)

    assert validate_url("http://example.com:2222/", UrlPolicy(allowed_ports=())).port == 2222


# -- addresses --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", NON_PUBLIC_ADDRESSES)
def test_validate__with_a_name_resolving_to_a_non_public_address__is_refused(
    address: str, dns: Callable[..., list[str]]
) -> None:
    dns(address)

    message = refusal("http://images.example.com/image.qcow2")

    assert "resolves to a non-public address" in message
    assert address not in message  # never tell the caller what the name resolved to


def test_refusal__of_a_non_public_host__names_the_host_and_the_setting_that_allows_it(
    dns: Callable[..., list[str]],
) -> None:
    dns("10.1.2.3")

    by_name = refusal("http://mirror.internal:80/image.qcow2")
    by_literal = refusal("http://127.0.0.1/image.qcow2")

    assert "the host mirror.internal resolves to a non-public address" in by_name
    assert "the address 127.0.0.1 is not public" in by_literal
    for message in (by_name, by_literal):
        assert "SGLANCE_WEB_DOWNLOAD_ALLOWED_HOSTS" in message
    assert "10.1.2.3" not in by_name


def test_refusal__of_a_port__names_the_setting_and_the_ports_allowed() -> None:
    message = refusal("http://127.0.0.1:8099/x", UrlPolicy(allowed_hosts=("127.0.0.1",), allowed_ports=(80, 443)))

    assert message == (
        "URL not allowed: port 8099 is not allowed (SGLANCE_WEB_DOWNLOAD_ALLOWED_PORTS lists those that are: 80, 443)."
    )


def test_refusal__of_an_allowlisted_metadata_address__says_it_is_never_fetched() -> None:
    message = refusal("http://169.254.169.254/", UrlPolicy(allowed_hosts=("169.254.169.254",)))

    assert "cloud metadata addresses are never fetched" in message


@pytest.mark.parametrize("address", NON_PUBLIC_ADDRESSES)
def test_validate__with_a_non_public_ip_literal__is_refused(address: str) -> None:
    host = f"[{address}]" if ":" in address else address

    assert "is not public (" in refusal(f"http://{host}/image")


def test_validate__when_any_one_answer_is_non_public__is_refused(dns: Callable[..., list[str]]) -> None:
    dns(PUBLIC_V4, PUBLIC_V6, "10.0.0.7")

    assert "non-public" in refusal("http://images.example.com/")


@pytest.mark.parametrize("literal", ENCODED_LITERALS)
def test_validate__with_an_encoded_ipv4_literal__decodes_it_and_refuses(literal: str) -> None:
    assert "is not public (" in refusal(f"http://{literal}/")


@pytest.mark.parametrize("literal", ["134744072", "0x8080808", "8.8.2056", "010.010.010.010"])
def test_validate__with_an_encoded_public_ipv4_literal__asks_for_dotted_decimal(literal: str) -> None:
    assert "four decimal numbers" in refusal(f"http://{literal}/")


@pytest.mark.parametrize("host", ["256.0.0.1", "1.2.3.4.5", "0x1ffffffff", "4294967296", "08.0.0.1", "example.123"])
def test_validate__with_a_numeric_host_that_is_no_ipv4_address__is_refused(host: str) -> None:
    assert "not a valid IPv4 address" in refusal(f"http://{host}/")


@pytest.mark.parametrize("host", ["[fe80::1%25eth0]", "[::1%251]"])
def test_validate__with_an_ipv6_zone__is_refused(host: str) -> None:
    assert "zone" in refusal(f"http://{host}/")


def test_validate__with_a_public_name__returns_every_validated_address(dns: Callable[..., list[str]]) -> None:
    looked_up = dns(PUBLIC_V4, PUBLIC_V6, PUBLIC_V4)

    checked = validate_url("https://Images.Example.COM./pub/cirros.img?x=1&y=%2F#part", POLICY)

    assert checked.addresses == (PUBLIC_V4, PUBLIC_V6)
    assert checked.address == PUBLIC_V4
    assert (checked.scheme, checked.host, checked.port) == ("https", "images.example.com", 443)
    assert checked.host_header == "images.example.com"
    assert checked.target == "/pub/cirros.img?x=1&y=%2F"
    assert checked.url == "https://images.example.com/pub/cirros.img?x=1&y=%2F"
    assert looked_up == ["images.example.com"]  # resolved once; the fetch connects to these addresses


def test_validate__with_a_public_ipv4_mapped_answer__connects_to_the_ipv4_address(
    dns: Callable[..., list[str]],
) -> None:
    dns(f"::ffff:{PUBLIC_V4}")

    assert validate_url("http://images.example.com/", POLICY).addresses == (PUBLIC_V4,)


def test_validate__with_a_public_nat64_answer__is_accepted(dns: Callable[..., list[str]]) -> None:
    dns("64:ff9b::5db8:d70e")  # 93.184.215.14 through DNS64

    assert validate_url("http://images.example.com/", POLICY).addresses == ("64:ff9b::5db8:d70e",)


@pytest.mark.parametrize("url", [f"http://{PUBLIC_V4}/", f"http://[{PUBLIC_V6}]/", f"http://[::ffff:{PUBLIC_V4}]/"])
def test_validate__with_a_public_ip_literal__does_not_resolve(url: str, dns: Callable[..., list[str]]) -> None:
    looked_up = dns("127.0.0.1")

    checked = validate_url(url, POLICY)

    assert looked_up == []
    assert checked.address in (PUBLIC_V4, PUBLIC_V6)


def test_validate__with_an_ipv6_literal__brackets_it_in_the_host_header() -> None:
    checked = validate_url(f"http://[{PUBLIC_V6.upper()}]:80/x", POLICY)

    assert (checked.host, checked.host_header) == (PUBLIC_V6, f"[{PUBLIC_V6}]")


def test_validate__with_an_idn_host__resolves_its_ascii_form(dns: Callable[..., list[str]]) -> None:
    looked_up = dns(PUBLIC_V4)

    checked = validate_url("http://bücher.example/", POLICY)

    assert checked.host == looked_up[0] == "xn--bcher-kva.example"


def test_validate__when_the_name_does_not_resolve__is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)

    assert "the host name nowhere.invalid could not be resolved" in refusal("http://nowhere.invalid/")


def test_validate__when_the_resolver_returns_nothing__is_refused(dns: Callable[..., list[str]]) -> None:
    dns()

    assert "could not be resolved" in refusal("http://images.example.com/")


# -- host lists -------------------------------------------------------------------------------------------------


def test_allowed_hosts__lets_an_allowlisted_loopback_literal_through() -> None:
    policy = UrlPolicy(allowed_hosts=("127.0.0.1",), allowed_ports=(80, 8080))

    checked = validate_url("http://127.0.0.1:8080/image", policy)

    assert (checked.address, checked.host_header) == ("127.0.0.1", "127.0.0.1:8080")


def test_allowed_hosts__compares_ip_literals_as_addresses() -> None:
    policy = UrlPolicy(allowed_hosts=("[0:0::1]",))

    assert validate_url("http://[::1]/", policy).address == "::1"


def test_allowed_hosts__lets_an_allowlisted_name_resolving_inside_through(dns: Callable[..., list[str]]) -> None:
    dns("10.20.30.40")
    policy = UrlPolicy(allowed_hosts=("Mirror.Internal.",))

    assert validate_url("http://mirror.internal/image", policy).address == "10.20.30.40"
    assert "non-public" in refusal("http://other.internal/image", policy)


@pytest.mark.parametrize("url", ["http://2130706433/", "http://127.1/", "http://localhost/", "http://[::1]/"])
def test_allowed_hosts__does_not_cover_other_spellings_or_names_of_the_address(url: str) -> None:
    policy = UrlPolicy(allowed_hosts=("127.0.0.1",))

    with pytest.raises(UrlNotAllowedError):
        validate_url(url, policy)


def test_allowed_hosts__still_checks_scheme_port_and_credentials() -> None:
    policy = UrlPolicy(allowed_hosts=("127.0.0.1",))

    assert "port" in refusal("http://127.0.0.1:8080/", policy)
    assert "scheme" in refusal("ftp://127.0.0.1/", policy)
    assert "credentials" in refusal("http://u:p@127.0.0.1/", policy)


@pytest.mark.parametrize("address", sorted(str(a) for a in METADATA_ADDRESSES))
def test_allowed_hosts__never_opens_the_metadata_endpoints(address: str, dns: Callable[..., list[str]]) -> None:
    dns(address)
    host = f"[{address}]" if ":" in address else address
    policy = UrlPolicy(allowed_hosts=(address, "metadata.internal"))

    assert "is not public (" in refusal(f"http://{host}/latest/meta-data/", policy)
    assert "non-public" in refusal("http://metadata.internal/latest/meta-data/", policy)


@pytest.mark.parametrize(
    ("entry", "url"),
    [
        ("images.example.com", "http://IMAGES.example.com./x"),
        (".example.com", "http://a.b.example.com/x"),
        (".example.com", "http://example.com/x"),
        (PUBLIC_V4, f"http://{PUBLIC_V4}/x"),
        ("93.184.0.0/16", f"http://{PUBLIC_V4}/x"),
        ("93.184.0.0/16", "http://images.example.net/x"),  # the name resolves into the network
        (f"[{PUBLIC_V6}]", "http://images.example.net/x"),
    ],
)
def test_disallowed_hosts__refuses_names_domains_addresses_and_networks(
    entry: str, url: str, dns: Callable[..., list[str]]
) -> None:
    dns(PUBLIC_V4, PUBLIC_V6)

    assert "is not allowed (SGLANCE_WEB_DOWNLOAD_DISALLOWED_HOSTS refuses it)" in refusal(
        url, UrlPolicy(disallowed_hosts=(entry,))
    )


def test_disallowed_hosts__does_not_refuse_other_hosts(dns: Callable[..., list[str]]) -> None:
    dns(PUBLIC_V4)
    policy = UrlPolicy(disallowed_hosts=(".example.com", "203.0.113.0/24"))

    assert validate_url("http://notexample.com/", policy).address == PUBLIC_V4


def test_disallowed_hosts__win_over_allowed_hosts() -> None:
    policy = UrlPolicy(allowed_hosts=("127.0.0.1",), disallowed_hosts=("127.0.0.0/8",))

    assert "the host 127.0.0.1 is not allowed" in refusal("http://127.0.0.1/", policy)


# -- settings ---------------------------------------------------------------------------------------------------


def test_from_settings__reads_the_comma_separated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGLANCE_WEB_DOWNLOAD_ALLOWED_SCHEMES", "https")
    monkeypatch.setenv("SGLANCE_WEB_DOWNLOAD_ALLOWED_PORTS", "443, 8443")
    monkeypatch.setenv("SGLANCE_WEB_DOWNLOAD_ALLOWED_HOSTS", "mirror.internal,10.0.0.5")
    monkeypatch.setenv("SGLANCE_WEB_DOWNLOAD_DISALLOWED_HOSTS", ".corp.example")
    monkeypatch.setenv("SGLANCE_WEB_DOWNLOAD_MAX_REDIRECTS", "2")
    monkeypatch.setenv("SGLANCE_WEB_DOWNLOAD_READ_TIMEOUT_SECONDS", "7.5")

    policy = UrlPolicy.from_settings(Settings())

    assert policy == UrlPolicy(
        allowed_schemes=("https",),
        allowed_ports=(443, 8443),
        allowed_hosts=("mirror.internal", "10.0.0.5"),
        disallowed_hosts=(".corp.example",),
        max_redirects=2,
        connect_timeout=10.0,
        read_timeout=7.5,
    )


def test_from_settings__defaults_to_glance_defaults() -> None:
    assert UrlPolicy.from_settings(Settings()) == UrlPolicy()
    assert UrlPolicy() == UrlPolicy(("http", "https"), (80, 443), (), (), 5, 10.0, 30.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("web_download_allowed_schemes", "http,ftp"),
        ("web_download_allowed_schemes", ""),
        ("web_download_allowed_ports", "80,70000"),
        ("web_download_allowed_ports", "http"),
        ("web_download_max_redirects", "-1"),
        ("web_download_connect_timeout_seconds", "0"),
    ],
)
def test_settings__refuse_an_unusable_policy(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"SGLANCE_{name.upper()}", value)

    with pytest.raises(ValidationError):
        Settings()
