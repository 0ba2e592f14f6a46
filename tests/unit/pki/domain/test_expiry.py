"""Expiry bands, kubeadm's residual-time format and the check-expiration table."""

from __future__ import annotations

import datetime as dt

import pytest

from pki.domain.expiry import (
    ExpirationRow,
    band,
    check_expiration_table,
    days_left,
    go_date,
    node_expiration_rows,
    residual,
    tabwriter,
)
from pki.domain.kubeadm import ClusterSpec, NodeSpec, issue, plan

D = dt.timedelta


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (365, "ok"),
        (31, "ok"),
        (30, "warning"),
        (8, "warning"),
        (7, "critical"),
        (0, "critical"),
        (-1, "expired"),
    ],
)
def test_bands(days: int, expected: str) -> None:
    assert band(days) == expected


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (D(seconds=-5), "<invalid>"),
        (D(seconds=-1), "0s"),
        (D(seconds=-0.5), "0s"),
        (D(0), "0s"),
        (D(seconds=59.9), "59s"),
        (D(seconds=60), "1m"),
        (D(minutes=59, seconds=59), "59m"),
        (D(hours=1), "1h"),
        (D(hours=23, minutes=59), "23h"),
        (D(hours=24), "1d"),
        (D(days=364, hours=23, minutes=55), "364d"),
        (D(days=365), "1y"),
        (D(days=3649, hours=23), "9y"),
        (D(days=3650), "10y"),
    ],
)
def test_residual_matches_short_human_duration(delta: dt.timedelta, expected: str) -> None:
    assert residual(delta) == expected


def test_go_date_format() -> None:
    assert go_date(dt.datetime(2020, 12, 30, 23, 36, 59, tzinfo=dt.UTC)) == (
        "Dec 30, 2020 23:36 UTC"
    )
    cet = dt.timezone(dt.timedelta(hours=1))
    assert go_date(dt.datetime(2021, 1, 1, 0, 30, tzinfo=cet)) == "Dec 31, 2020 23:30 UTC"


def test_tabwriter_pads_columns_like_go() -> None:
    # minwidth 10, padding 3; the last cell of each line is not a column.
    out = tabwriter(["a\tbb\tlast", "cccccccccccc\td\tx", "", "z\ty"], minwidth=10, padding=3)
    assert out == ("a              bb        last\ncccccccccccc   d         x\n\nz         y\n")


# The layout of kubeadm's documented example output (kubeadm-certs page).
HEADER = (
    "CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   "
    "EXTERNALLY MANAGED"
)
KUBEADM_EXAMPLE = f"""\
{HEADER}
admin.conf                 Dec 30, 2020 23:36 UTC   364d            ca                      no
apiserver                  Dec 30, 2020 23:36 UTC   364d            ca                      no
apiserver-etcd-client      Dec 30, 2020 23:36 UTC   364d            etcd-ca                 no
apiserver-kubelet-client   Dec 30, 2020 23:36 UTC   364d            ca                      no
controller-manager.conf    Dec 30, 2020 23:36 UTC   364d            ca                      no
etcd-healthcheck-client    Dec 30, 2020 23:36 UTC   364d            etcd-ca                 no
etcd-peer                  Dec 30, 2020 23:36 UTC   364d            etcd-ca                 no
etcd-server                Dec 30, 2020 23:36 UTC   364d            etcd-ca                 no
front-proxy-client         Dec 30, 2020 23:36 UTC   364d            front-proxy-ca          no
scheduler.conf             Dec 30, 2020 23:36 UTC   364d            ca                      no

CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED
ca                      Dec 28, 2029 23:36 UTC   9y              no
etcd-ca                 Dec 28, 2029 23:36 UTC   9y              no
front-proxy-ca          Dec 28, 2029 23:36 UTC   9y              no
"""


def test_table_reproduces_kubeadms_output() -> None:
    expires = dt.datetime(2020, 12, 30, 23, 36, tzinfo=dt.UTC)
    ca_expires = dt.datetime(2029, 12, 28, 23, 36, tzinfo=dt.UTC)
    now = expires - D(days=364, hours=23)
    names = {
        "scheduler.conf": "ca",
        "admin.conf": "ca",
        "apiserver": "ca",
        "apiserver-etcd-client": "etcd-ca",
        "apiserver-kubelet-client": "ca",
        "controller-manager.conf": "ca",
        "etcd-healthcheck-client": "etcd-ca",
        "etcd-peer": "etcd-ca",
        "etcd-server": "etcd-ca",
        "front-proxy-client": "front-proxy-ca",
    }
    rows = [ExpirationRow(name, expires, ca) for name, ca in names.items()]
    ca_rows = [ExpirationRow(n, ca_expires) for n in ("front-proxy-ca", "ca", "etcd-ca")]
    table = check_expiration_table(rows, ca_rows, now)
    # kubeadm prints the last column with %-8v, so "no" carries six trailing spaces.
    assert "   no      \n" in table
    assert [line.rstrip() for line in table.splitlines()] == KUBEADM_EXAMPLE.splitlines()


def test_missing_and_expired_rows() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [
        ExpirationRow("apiserver", now - D(days=2), "ca"),
        ExpirationRow("etcd-peer", None),
    ]
    table = check_expiration_table(rows, [ExpirationRow("ca", None)], now)
    assert table.splitlines() == [
        "CERTIFICATE           EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   "
        "EXTERNALLY MANAGED",
        "apiserver             Dec 30, 2025 00:00 UTC   <invalid>       ca                      "
        "no      ",
        "!MISSING! etcd-peer" + " " * 68,
        "",
        "CERTIFICATE AUTHORITY   EXPIRES   RESIDUAL TIME   EXTERNALLY MANAGED",
        "!MISSING! ca" + " " * 38,
    ]


@pytest.fixture(scope="module")
def issued():
    cluster = ClusterSpec(key_algorithm="ECDSA-P256", nodes=(NodeSpec("cp-1", "10.0.0.11"),))
    return issue(plan(cluster))


def test_days_left_and_band_of_a_fresh_tree(issued) -> None:
    now = dt.datetime.now(dt.UTC)
    apiserver = issued.get("apiserver", "cp-1").cert
    assert days_left(apiserver, now) == 364
    assert band(days_left(apiserver, now)) == "ok"
    assert days_left(apiserver, apiserver.not_valid_after_utc + D(seconds=1)) == -1
    assert band(days_left(apiserver, apiserver.not_valid_after_utc - D(days=3))) == "critical"


def test_node_rows_cover_what_kubeadm_checks(issued) -> None:
    certs = {i.spec.key: i.cert for i in issued.all()}
    rows, ca_rows = node_expiration_rows(certs, "cp-1")
    assert [r.name for r in sorted(rows, key=lambda r: r.name)] == [
        "admin.conf",
        "apiserver",
        "apiserver-etcd-client",
        "apiserver-kubelet-client",
        "controller-manager.conf",
        "etcd-healthcheck-client",
        "etcd-peer",
        "etcd-server",
        "front-proxy-client",
        "scheduler.conf",
        "super-admin.conf",
    ]
    assert all(r.not_after is not None for r in rows + ca_rows)
    assert [r.name for r in ca_rows] == ["ca", "front-proxy-ca", "etcd-ca"]
    external_rows, external_cas = node_expiration_rows(certs, "cp-1", external_etcd=True)
    assert not {r.name for r in external_rows} & {"etcd-peer", "apiserver-etcd-client"}
    assert [r.name for r in external_cas] == ["ca", "front-proxy-ca"]
    missing, _ = node_expiration_rows({}, "cp-1")
    assert all(r.not_after is None for r in missing)
