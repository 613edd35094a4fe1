"""The URL policy for fetching user-supplied URLs (web-download, and any later fetch of a URL a user chose).

Two steps, both always taken:

``validate_url`` decides whether a URL may be fetched: the scheme, no credentials, the port, the host lists, and
every address the host resolves to must be public unicast (``is_public_address``). IPv4 literals in the forms
``inet_aton`` accepts (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``) are decoded here, because the
resolver would accept them, and then refused unless written as four decimal numbers; IPv4 carried in IPv6
(mapped, NAT64, 6to4) is judged as that IPv4 address. It returns the validated addresses.

``open_url`` (``shared/net/web_fetch.py``) fetches with each connection pinned to a validated address, and
validates every redirect again.

Errors (both ``InvalidInputError``, so a 400 at the API)::

    UrlNotAllowedError   the policy refuses the URL or a redirect's target
    WebDownloadError     the fetch failed: HTTP status, too many redirects, connection, timeout, truncated body

Messages name the rule that refused, never a resolved address or the remote server's own text.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from shared.domain.errors import InvalidInputError

if TYPE_CHECKING:
    from shared.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048

# Cloud metadata endpoints (EC2 IMDS, ECS task metadata, IMDS over IPv6): refused even for allowlisted hosts.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254"))

# Listed as well as asked of ``ipaddress``, whose flags have changed between Python patch releases.
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback, deprecated IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo among them)
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


# The settings (shared/config.py, as environment variables) a refusal names, so an operator knows what to change.
ALLOWED_HOSTS_SETTING = "SGLANCE_WEB_DOWNLOAD_ALLOWED_HOSTS"
ALLOWED_PORTS_SETTING = "SGLANCE_WEB_DOWNLOAD_ALLOWED_PORTS"
DISALLOWED_HOSTS_SETTING = "SGLANCE_WEB_DOWNLOAD_DISALLOWED_HOSTS"


class UrlNotAllowedError(InvalidInputError):
    """The URL, or a URL it redirects to, is not one the policy lets the service fetch."""

    template = "URL not allowed: {reason}."


class WebDownloadError(InvalidInputError):
    """The URL passed the policy but fetching it failed."""

    template = "The URL could not be fetched: {reason}."


@dataclass(frozen=True)
class UrlPolicy:
    """Which user-supplied URLs the service fetches (after Glance's ``[import_filtering_opts]``)."""

    allowed_schemes: tuple[str, ...] = ("http", "https")
    # Empty: any port.
    allowed_ports: tuple[int, ...] = (80, 443)
    # Hosts fetched even though they resolve to non-public addresses (metadata endpoints excepted); compared with
    # the URL's host as written: names exactly (case-insensitive), IP literals as addresses.
    allowed_hosts: tuple[str, ...] = ()
    # Never fetched: names (".example.com": the domain and its subdomains), IP addresses or networks (which are also
    # compared with the addresses a name resolves to). Checked before allowed_hosts.
    disallowed_hosts: tuple[str, ...] = ()
    max_redirects: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        unknown = set(self.allowed_schemes) - DEFAULT_PORTS.keys()
        if unknown or not self.allowed_schemes:
            raise ValueError(f"allowed_schemes must be a non-empty subset of http, https (got {self.allowed_schemes})")
        if self.max_redirects < 0 or self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("max_redirects must be >= 0 and the timeouts > 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlPolicy:
        """The policy the ``web_download_*`` settings describe."""
        return cls(
            allowed_schemes=settings.web_download_allowed_schemes,
            allowed_ports=settings.web_download_allowed_ports,
            allowed_hosts=settings.web_download_allowed_hosts,
            disallowed_hosts=settings.web_download_disallowed_hosts,
            max_redirects=settings.web_download_max_redirects,
            connect_timeout=settings.web_download_connect_timeout_seconds,
            read_timeout=settings.web_download_read_timeout_seconds,
        )


@dataclass(frozen=True)
class ValidatedUrl:
    """A URL the policy accepts, with the only addresses a fetch of it may connect to."""

    url: str
    scheme: str
    # Lower case, IDNA-encoded, without brackets or trailing dot; IP literals in canonical form.
    host: str
    port: int
    # Path and query, percent-encoded, as sent in the request line.
    target: str
    host_header: str
    # Every address the host resolved to, all validated, in resolver order.
    addresses: tuple[str, ...]

    @property
    def address(self) -> str:
        """The address to connect to first."""
        return self.addresses[0]


def validate_url(url: str, policy: UrlPolicy) -> ValidatedUrl:
    """Check ``url`` against ``policy`` and resolve its host once; raises ``UrlNotAllowedError`` (a 400)."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowedError(reason=f"the URL is longer than {MAX_URL_LENGTH} characters")
    # urlsplit quietly drops some of these; other parsers read them differently.
    if any(ch <= " " or ch in "\x7f\\" for ch in url):
        raise UrlNotAllowedError(reason="the URL contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" in the host
        raise UrlNotAllowedError(reason="the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in policy.allowed_schemes:
        raise UrlNotAllowedError(reason=f"the scheme must be one of: {', '.join(policy.allowed_schemes)}")
    if "@" in parts.netloc:
        raise UrlNotAllowedError(reason="the URL must not contain credentials")
    try:
        explicit_port = parts.port
    except ValueError:
        raise UrlNotAllowedError(reason="the port is not valid") from None
    port = explicit_port if explicit_port is not None else DEFAULT_PORTS[scheme]
    if port == 0 or (policy.allowed_ports and port not in policy.allowed_ports):
        allowed = ", ".join(map(str, policy.allowed_ports))
        raise UrlNotAllowedError(
            reason=f"port {port} is not allowed ({ALLOWED_PORTS_SETTING} lists those that are: {allowed})"
        )

    host, literal, canonical = _normalize_host(parts.hostname or "", bracketed=parts.netloc.startswith("["))
    shown = f"[{host}]" if ":" in host else host
    blocked = f"the host {shown} is not allowed ({DISALLOWED_HOSTS_SETTING} refuses it)"
    blocked_names, blocked_networks = _split_entries(policy.disallowed_hosts)
    if _name_matches(host, blocked_names) or (literal is not None and _in_any(literal, blocked_networks)):
        raise UrlNotAllowedError(reason=blocked)
    allowlisted = _is_allowlisted(host, literal, policy.allowed_hosts)
    addresses = (literal,) if literal is not None else _resolve(host, port)
    for address in addresses:
        if _in_any(address, blocked_networks):
            raise UrlNotAllowedError(reason=blocked)
        if _unwrap(address) in METADATA_ADDRESSES or not (allowlisted or is_public_address(address)):
            what = (
                f"the address {shown} is not public"
                if literal is not None
                else (f"the host {shown} resolves to a non-public address")
            )
            # Never say what a name resolved to; say which setting would let the host through (none would for a
            # metadata address, and an allowlisted host only gets here for one).
            hint = (
                "cloud metadata addresses are never fetched"
                if allowlisted
                else (f"{ALLOWED_HOSTS_SETTING} lists the hosts fetched anyway")
            )
            raise UrlNotAllowedError(reason=f"{what} ({hint})")
    if not canonical:
        raise UrlNotAllowedError(reason="IPv4 addresses must be written as four decimal numbers")

    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    authority = f"[{host}]" if ":" in host else host
    if port != DEFAULT_PORTS[scheme]:
        authority += f":{port}"
    return ValidatedUrl(
        url=f"{scheme}://{authority}{target}",
        scheme=scheme,
        host=host,
        port=port,
        target=target,
        host_header=authority,
        addresses=tuple(str(_unwrap(a)) for a in addresses),
    )


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is public unicast; IPv4 inside IPv6 (mapped, NAT64, 6to4) is judged as IPv4."""
    embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else address
    if embedded is not None:
        address = embedded
    if _in_any(address, _BLOCKED_V4 if isinstance(address, ipaddress.IPv4Address) else _BLOCKED_V6):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _MAPPED:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _unwrap(address: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 as the IPv4 address it is (what the kernel would connect to)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _normalize_host(raw: str, bracketed: bool) -> tuple[str, IPAddress | None, bool]:
    """(normalised host, its address if it is an IP literal, whether the literal was written canonically)."""
    if not raw:
        raise UrlNotAllowedError(reason="the URL has no host")
    if bracketed or ":" in raw:  # an IPv6 literal; urlsplit took the brackets off
        if "%" in raw:
            raise UrlNotAllowedError(reason="IPv6 zone identifiers are not allowed")
        try:
            v6 = ipaddress.IPv6Address(raw)
        except ValueError:
            raise UrlNotAllowedError(reason="the host is not a valid IPv6 address") from None
        return str(v6), v6, True
    name = raw[:-1] if raw.endswith(".") else raw
    try:
        # IDNA also folds look-alikes such as full-width digits, so the numeric check below sees plain ASCII.
        name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlNotAllowedError(reason="the host name is not valid") from None
    if not _HOSTNAME.fullmatch(name):
        raise UrlNotAllowedError(reason="the host name is not valid")
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        v4 = _parse_ipv4(name)
        if v4 is None:
            raise UrlNotAllowedError(reason="the host is not a valid IPv4 address")
        return str(v4), v4, str(v4) == name
    return name, None, True


def _parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """Decode every IPv4 form ``inet_aton`` accepts: 1 to 4 parts, each decimal, octal (0...) or hex (0x...)."""
    labels = text.split(".")
    if len(labels) > 4:
        return None
    values = [_ipv4_number(label) for label in labels]
    numbers = [v for v in values if v is not None]
    if len(numbers) != len(values):
        return None
    *head, last = numbers
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, part in enumerate(head):
        value += part << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int | None:
    if label.startswith("0x"):
        digits = label[2:]
        return int(digits or "0", 16) if re.fullmatch(r"[0-9a-f]*", digits) else None
    if re.fullmatch(r"0[0-7]+", label):
        return int(label, 8)
    if re.fullmatch(r"0|[1-9][0-9]*", label):
        return int(label)
    return None


def _split_entries(entries: tuple[str, ...]) -> tuple[list[str], list[Network]]:
    names: list[str] = []
    networks: list[Network] = []
    for entry in entries:
        text = entry.strip().lower().strip("[]")
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            names.append(text[:-1] if text.endswith(".") else text)
    return names, networks


def _name_matches(host: str, names: list[str]) -> bool:
    return any(host == n or (n.startswith(".") and (host.endswith(n) or host == n[1:])) for n in names)


def _in_any(address: IPAddress, networks: Collection[Network]) -> bool:
    candidates = {address, _unwrap(address)}
    return any(a.version == n.version and a in n for a in candidates for n in networks)


def _is_allowlisted(host: str, literal: IPAddress | None, allowed_hosts: tuple[str, ...]) -> bool:
    for entry in allowed_hosts:
        text = entry.strip().lower().strip("[]")
        if literal is None:
            if host == (text[:-1] if text.endswith(".") else text):
                return True
            continue
        try:
            if _unwrap(ipaddress.ip_address(text)) == _unwrap(literal):
                return True
        except ValueError:
            continue
    return False


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UrlNotAllowedError(reason=f"the host name {host} could not be resolved") from None
    found: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            raise UrlNotAllowedError(reason=f"the host name {host} could not be resolved") from None
        if address not in found:
            found.append(address)
    if not found:
        raise UrlNotAllowedError(reason=f"the host name {host} could not be resolved")
    return tuple(found)
