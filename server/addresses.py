"""The addresses `serve` prints and the page shows: where viewers join, where the presenter goes.

With --host 0.0.0.0 (or ::) the server listens on every interface, and viewers need the
machine's LAN address. It is found without sending anything: connect() on a UDP socket only
asks the kernel which local address would route to a private network address; no packet
leaves. If that fails (no network), the host name's address, then loopback.
"""

from __future__ import annotations

import ipaddress
import socket

WILDCARDS = ("0.0.0.0", "::", "")
PROBE_ADDRESS = ("10.255.255.255", 1)       # private and unassigned: only used for routing


def lan_address() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(PROBE_ADDRESS)    # UDP connect: no packet is sent
            address = probe.getsockname()[0]
        if address and not address.startswith("0."):
            return address
    except OSError:
        pass
    try:
        address = socket.gethostbyname(socket.gethostname())
        if address:
            return address
    except OSError:
        pass
    return "127.0.0.1"


def _url_host(host: str) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


def local_only(host: str) -> bool:
    """Listening on loopback only: nobody else in the room can join."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def join_url(host: str, port: int) -> str:
    """The address viewers open."""
    shown = lan_address() if host in WILDCARDS else host
    return f"http://{_url_host(shown)}:{port}/"


def presenter_url(host: str, port: int, token: str) -> str:
    """The address the presenter opens on this machine (loopback when listening everywhere)."""
    shown = "127.0.0.1" if host in WILDCARDS else host
    return f"http://{_url_host(shown)}:{port}/?token={token}"
