"""Certificate expiry: days left, alert bands, and kubeadm's ``certs check-expiration`` table.

The table reproduces kubeadm's text printer (cmd/kubeadm/app/cmd/certs.go): Go ``text/tabwriter``
with minwidth 10, tabwidth 4, padding 3, space padding; dates as ``Jan 02, 2006 15:04 MST`` in UTC;
residual time from apimachinery's ``duration.ShortHumanDuration``; rows sorted by name; a missing
file shown as ``!MISSING! <name>``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
EXPIRED = "expired"
WARNING_DAYS = 30
CRITICAL_DAYS = 7

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(dt.UTC)


def days_left(cert: x509.Certificate, now: dt.datetime) -> int:
    """Whole days until NotAfter, rounded down: negative as soon as the certificate has expired."""
    remaining = cert.not_valid_after_utc - _utc(now)
    return math.floor(remaining / dt.timedelta(days=1))


def band(days: int) -> str:
    """``ok`` above 30 days, ``warning`` up to 30, ``critical`` up to 7, ``expired`` below 0."""
    if days < 0:
        return EXPIRED
    if days <= CRITICAL_DAYS:
        return CRITICAL
    if days <= WARNING_DAYS:
        return WARNING
    return OK


def residual(delta: dt.timedelta) -> str:
    """apimachinery ``ShortHumanDuration`` of a residual truncated to whole seconds.

    ``364d`` below a year, ``9y`` above, ``<invalid>`` once more than a second in the past (which
    is how kubeadm shows an expired certificate).
    """
    # kubeadm stores int64(residual / time.Second): truncation toward zero.
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def go_date(moment: dt.datetime) -> str:
    """``Jan 02, 2006 15:04 MST`` rendering of a UTC instant (locale-independent)."""
    t = _utc(moment)
    return f"{_MONTHS[t.month - 1]} {t.day:02d}, {t.year:04d} {t.hour:02d}:{t.minute:02d} UTC"


@dataclass(frozen=True)
class ExpirationRow:
    """One line of the table. ``not_after`` None means the file is missing."""

    name: str
    not_after: dt.datetime | None
    ca_name: str = ""
    externally_managed: bool = False

    @classmethod
    def for_certificate(
        cls, name: str, cert: x509.Certificate, ca_name: str = "", externally_managed: bool = False
    ) -> ExpirationRow:
        """Row for an existing certificate."""
        return cls(name, cert.not_valid_after_utc, ca_name, externally_managed)


def _yes_no(flag: bool) -> str:
    # kubeadm formats this last column with %-8v.
    return f"{'yes' if flag else 'no':<8}"


def _cert_line(row: ExpirationRow, now: dt.datetime) -> str:
    if row.not_after is None:
        return f"!MISSING! {row.name}\t\t\t\t"
    return "\t".join(
        (
            row.name,
            go_date(row.not_after),
            residual(_utc(row.not_after) - _utc(now)),
            row.ca_name,
            _yes_no(row.externally_managed),
        )
    )


def _ca_line(row: ExpirationRow, now: dt.datetime) -> str:
    if row.not_after is None:
        return f"!MISSING! {row.name}\t\t\t"
    return "\t".join(
        (
            row.name,
            go_date(row.not_after),
            residual(_utc(row.not_after) - _utc(now)),
            _yes_no(row.externally_managed),
        )
    )


def check_expiration_table(
    rows: Iterable[ExpirationRow], ca_rows: Iterable[ExpirationRow], now: dt.datetime
) -> str:
    """The output of ``kubeadm certs check-expiration`` for these rows, byte for byte."""
    lines = ["CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED"]
    lines += [_cert_line(r, now) for r in sorted(rows, key=lambda r: r.name)]
    lines.append("")
    lines.append("CERTIFICATE AUTHORITY\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED")
    lines += [_ca_line(r, now) for r in sorted(ca_rows, key=lambda r: r.name)]
    return tabwriter(lines, minwidth=10, padding=3)


def tabwriter(lines: list[str], minwidth: int = 0, padding: int = 1) -> str:
    """Go ``text/tabwriter`` with space padding and no flags, for ``\\n``-terminated lines.

    Cells are tab-terminated; the text after the last tab of a line is not part of any column.
    A column's width is fixed per block of consecutive lines that have a cell in that column,
    and a line without any tab flushes the writer, so tables on either side format separately.
    """
    out: list[str] = []
    chunk: list[list[str]] = []
    for line in lines:
        cells = line.split("\t")
        chunk.append(cells)
        if len(cells) == 1:
            out.extend(_format_block(chunk, minwidth, padding))
            chunk = []
    out.extend(_format_block(chunk, minwidth, padding))
    return "".join(line + "\n" for line in out)


def _format_block(rows: list[list[str]], minwidth: int, padding: int) -> list[str]:
    widths: list[int] = []
    rendered = [""] * len(rows)
    _format(rows, 0, len(rows), widths, minwidth, padding, rendered)
    return rendered


def _format(
    rows: list[list[str]],
    line0: int,
    line1: int,
    widths: list[int],
    minwidth: int,
    padding: int,
    rendered: list[str],
) -> None:
    """Port of tabwriter's recursive ``format``: one column block per recursion level."""
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(rows[this]) - 1:
            this += 1
            continue
        _write_lines(rows, line0, this, widths, rendered)
        line0 = this
        width = minwidth
        while this < line1 and column < len(rows[this]) - 1:
            width = max(width, len(rows[this][column]) + padding)
            this += 1
        widths.append(width)
        _format(rows, line0, this, widths, minwidth, padding, rendered)
        widths.pop()
        line0 = this
    _write_lines(rows, line0, line1, widths, rendered)


def _write_lines(
    rows: list[list[str]], line0: int, line1: int, widths: list[int], rendered: list[str]
) -> None:
    for i in range(line0, line1):
        if rendered[i]:
            continue
        parts = []
        for j, cell in enumerate(rows[i]):
            parts.append(cell + " " * (widths[j] - len(cell)) if j < len(widths) else cell)
        rendered[i] = "".join(parts) or rendered[i]


# kubeadm's names for the files it checks (certsphase names), keyed by the plan's base names.
_KUBEADM_CERT_NAMES = {
    "admin.conf": ("admin.conf", "ca"),
    "super-admin.conf": ("super-admin.conf", "ca"),
    "controller-manager.conf": ("controller-manager.conf", "ca"),
    "scheduler.conf": ("scheduler.conf", "ca"),
    "apiserver": ("apiserver", "ca"),
    "apiserver-kubelet-client": ("apiserver-kubelet-client", "ca"),
    "front-proxy-client": ("front-proxy-client", "front-proxy-ca"),
    "apiserver-etcd-client": ("apiserver-etcd-client", "etcd-ca"),
    "etcd/server": ("etcd-server", "etcd-ca"),
    "etcd/peer": ("etcd-peer", "etcd-ca"),
    "etcd/healthcheck-client": ("etcd-healthcheck-client", "etcd-ca"),
}
_KUBEADM_CA_NAMES = {"ca": "ca", "front-proxy-ca": "front-proxy-ca", "etcd/ca": "etcd-ca"}
_ETCD_ONLY = {"apiserver-etcd-client", "etcd-server", "etcd-peer", "etcd-healthcheck-client"}


def node_expiration_rows(
    certs: dict[tuple[str, str | None], x509.Certificate],
    node: str,
    external_etcd: bool = False,
) -> tuple[list[ExpirationRow], list[ExpirationRow]]:
    """Rows kubeadm would list on control-plane ``node``, from certificates keyed by (name, node).

    Shared files are looked up with node None, per-node files with ``node``; a file kubeadm
    expects but ``certs`` lacks becomes a ``!MISSING!`` row. With external etcd kubeadm checks
    neither the etcd certificates nor ``apiserver-etcd-client`` nor the etcd CA.
    """
    rows = []
    for plan_name, (kubeadm_name, ca_name) in _KUBEADM_CERT_NAMES.items():
        if external_etcd and kubeadm_name in _ETCD_ONLY:
            continue
        cert = certs.get((plan_name, node)) or certs.get((plan_name, None))
        if cert is None:
            rows.append(ExpirationRow(kubeadm_name, None))
        else:
            rows.append(ExpirationRow.for_certificate(kubeadm_name, cert, ca_name))
    ca_rows = []
    for plan_name, kubeadm_name in _KUBEADM_CA_NAMES.items():
        if external_etcd and kubeadm_name == "etcd-ca":
            continue
        cert = certs.get((plan_name, None))
        if cert is None:
            ca_rows.append(ExpirationRow(kubeadm_name, None))
        else:
            ca_rows.append(ExpirationRow.for_certificate(kubeadm_name, cert))
    return rows, ca_rows
