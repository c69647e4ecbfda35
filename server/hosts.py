"""The Host names this server answers to (server/middleware.py enforces them).

The machine's own: loopback by name and address, its host name (and the `.local` name
mDNS gives it on a LAN), its LAN address (found as addresses.lan_address does: no packet
leaves), the address it listens on; plus the operator's `--allowed-host NAME` (repeatable;
`*` turns the check off, for a reverse proxy that checks names itself). Found once, when the
app is made: a laptop that changes networks mid-lecture restarts the server or names the new
address with --allowed-host.
"""

from __future__ import annotations

import ipaddress
import socket

from server.addresses import WILDCARDS, lan_address


def host_pattern(name: str) -> str:
    """A name as a Host header carries it: lower case, IPv6 addresses in brackets."""
    name = name.strip().lower()
    try:
        if ipaddress.ip_address(name.strip("[]")).version == 6:
            return f"[{name.strip('[]')}]"
    except ValueError:
        pass
    return name


def pattern_problem(name: str) -> str | None:
    """Why `name` cannot be an allowed host (None: it can): a name or address, `*`, or
    `*.domain` for every name under a domain."""
    name = name.strip()
    if not name:
        return "an allowed host must not be empty"
    if name != "*" and "*" in (name[2:] if name.startswith("*.") else name):
        return f"allowed host {name!r}: use a name, '*' or '*.domain'"
    return None


def machine_names() -> set[str]:
    names = {"localhost", "127.0.0.1", "[::1]", lan_address()}
    try:
        hostname = socket.gethostname()
    except OSError:
        hostname = ""
    if hostname:
        names |= {hostname, f"{hostname.split('.')[0]}.local"}
    return names


def allowed_hosts(settings) -> list[str]:
    names = machine_names() | set(settings.allowed_hosts)
    if settings.host not in WILDCARDS:
        names.add(settings.host)
    return sorted({host_pattern(name) for name in names if name.strip()})
