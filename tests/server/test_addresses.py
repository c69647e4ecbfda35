"""The printed addresses: the LAN address for 0.0.0.0, loopback for the presenter."""

from __future__ import annotations

import ipaddress

from server.addresses import join_url, lan_address, presenter_url


def test_lan_address_is_an_ipv4_address():
    assert ipaddress.ip_address(lan_address()).version == 4


def test_join_and_presenter_urls():
    assert join_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert join_url("0.0.0.0", 8000) == f"http://{lan_address()}:8000/"
    assert join_url("::1", 80) == "http://[::1]:80/"
    assert presenter_url("0.0.0.0", 8000, "T" * 32) == f"http://127.0.0.1:8000/?token={'T' * 32}"


def test_local_only_hosts():
    from server.addresses import local_only
    assert local_only("127.0.0.1") and local_only("localhost") and local_only("::1")
    assert not local_only("0.0.0.0") and not local_only("192.168.1.20")
    assert not local_only("my-laptop.local")
