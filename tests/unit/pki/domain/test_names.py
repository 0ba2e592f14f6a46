"""The DNS-1123 and version syntax every module shares."""

from __future__ import annotations

import pytest

from pki.domain import names


@pytest.mark.parametrize(
    ("value", "label", "subdomain"),
    [
        ("cp-1", True, True),
        ("a" * 63, True, True),
        # k8s checks a subdomain's length as a whole, not per label.
        ("a" * 64, False, True),
        ("api.example.internal", False, True),
        ("-cp", False, False),
        ("CP", False, False),
        ("a." * 126 + "a", False, True),
        ("a." * 127 + "a", False, False),
    ],
)
def test_dns1123_names_follow_kubernetes_rules(value: str, label: bool, subdomain: bool) -> None:
    assert names.is_dns1123_label(value) is label
    assert names.is_dns1123_subdomain(value) is subdomain


def test_wildcards_need_a_subdomain_after_the_star() -> None:
    assert names.is_wildcard_dns1123_subdomain("*.apps.example.internal")
    assert not names.is_wildcard_dns1123_subdomain("*")
    assert not names.is_wildcard_dns1123_subdomain("a.*.example")


def test_versions_parse_with_or_without_v_and_suffixes_only_when_allowed() -> None:
    assert names.parse_version("v1.31.2") == (1, 31, 2)
    assert names.parse_version("1.31.2") == (1, 31, 2)
    assert names.parse_version("v1.31.0-rc.1") == (1, 31, 0)
    assert names.parse_version("v1.31.0-rc.1", suffix=False) is None
    assert names.parse_version("v1.31") is None
    assert names.parse_version(131) is None
