"""Which addresses a webhook must never reach (the pure rule; the lookup and the pinned
connection are tested against a local sink in tests/integration/nodes/test_alerts.py)."""

from __future__ import annotations

import pytest

from nodes.rules import alert_targets


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged as the IPv4 address
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::5", "private"),
        ("0.0.0.0", "private"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("224.0.0.1", "non-public"),
    ],
)
def test_internal_addresses_are_refused_by_kind(address: str, kind: str) -> None:
    assert alert_targets.refused_kind(address) == kind


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:84e5", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert alert_targets.refused_kind(address) is None


def test_allowed_hosts_are_read_case_and_bracket_free() -> None:
    assert alert_targets.allowed_hosts(" Hooks.Internal, [::1],,10.0.0.5 ") == {
        "hooks.internal",
        "::1",
        "10.0.0.5",
    }
    assert alert_targets.allowed_hosts("") == frozenset()
