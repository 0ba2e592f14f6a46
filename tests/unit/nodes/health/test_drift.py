"""The drift rules: expiry bands, the ledger comparison, keys across control-plane nodes and
SANs, on certificates made here with pki.domain.x509."""

from __future__ import annotations

import datetime as dt

import pytest

from nodes.health import drift
from pki.domain import x509 as px

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
CA_KEY = px.generate_private_key("ECDSA-P256")
CA = px.create_ca(
    px.CertSpec("ca", None, "kubernetes", is_ca=True, validity=dt.timedelta(days=3650)), CA_KEY, NOW
)
R = "/etc/kubernetes/pki"


def _leaf(days: float, ips: tuple[str, ...] = (), dns: tuple[str, ...] = ()) -> str:
    spec = px.CertSpec("apiserver", "ca", "kube-apiserver", dns_names=dns, ip_addresses=ips,
                       usages=("server",), validity=dt.timedelta(days=days))  # fmt: skip
    key = px.generate_private_key("ECDSA-P256")
    cert = px.sign_certificate(spec, key.public_key(), CA, CA_KEY, NOW)
    return px.certificate_to_pem(cert).decode()


def _fp(pem: str) -> str:
    return px.fingerprint_sha256(px.load_certificate(pem.encode()))


def _node(name: str, certs: dict[str, str], keys: dict[str, str] | None = None,
          role: str = "control-plane", address: str = "10.0.0.1") -> drift.ScannedNode:  # fmt: skip
    return drift.ScannedNode(
        name, role, address,
        [{"path": p, "pem": pem} for p, pem in certs.items()],
        [{"path": p, "sha256": d} for p, d in (keys or {}).items()],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("days", "kind", "severity"),
    [(40, None, None), (29.5, "expiring", "warning"), (14.5, "expiring", "warning"),
     (13.5, "expiring", "critical"), (0.5, "expiring", "critical"), (-1, "expired", "critical")],
)  # fmt: skip
def test_expiry_bands(days: float, kind: str | None, severity: str | None) -> None:
    found = drift.expiry_finding("n", f"{R}/x.crt", NOW + dt.timedelta(days=days), NOW,
                                 (30, 14, 7, 1))  # fmt: skip
    assert (found.kind, found.severity) == (kind, severity) if found else kind is None
    assert drift.parse_bands("1, 30,14,7") == (30, 14, 7, 1)
    with pytest.raises(ValueError, match="positive"):
        drift.parse_bands("30,0")


def test_ledger_comparison_keys_across_control_planes_and_sans() -> None:
    good, replaced, older = (
        _leaf(365, ips=("10.0.0.1",), dns=("api.example",)),
        _leaf(365),
        _leaf(365),
    )
    nodes = [
        _node("cp-1", {f"{R}/apiserver.crt": good, f"{R}/front-proxy-client.crt": good,
                       f"{R}/extra.crt": replaced, "/var/lib/kubelet/pki/kubelet.crt": replaced},
              {f"{R}/sa.key": "a" * 64, f"{R}/ca.key": "c" * 64}),
        _node("cp-2", {f"{R}/apiserver.crt": replaced, f"{R}/front-proxy-client.crt": older},
              {f"{R}/sa.key": "b" * 64, f"{R}/ca.key": "d" * 64}, address="10.0.0.2"),
        _node("w-1", {}, {f"{R}/sa.key": "e" * 64}, role="worker"),
    ]  # fmt: skip
    ledger = drift.Ledger(
        expected={
            name: {f"{R}/apiserver.crt": _fp(good), f"{R}/front-proxy-client.crt": _fp(good)}
            for name in ("cp-1", "cp-2")
        },
        expected_keys={f"{R}/sa.key": "a" * 64, f"{R}/ca.key": "f" * 64},
        known=frozenset({_fp(good), _fp(older)}),
        endpoint_hosts=("api.example",),
    )  # fmt: skip
    result = drift.evaluate(nodes, ledger, NOW, (30, 14, 7, 1))
    got = {(f.node, f.kind, f.path): f for f in result.findings}
    assert set(got) == {
        ("cp-1", "not-issued", f"{R}/extra.crt"),
        ("cp-2", "fingerprint-mismatch", f"{R}/apiserver.crt"),
        ("cp-2", "fingerprint-mismatch", f"{R}/front-proxy-client.crt"),
        ("cp-2", "san-missing", f"{R}/apiserver.crt"),
        (None, "key-mismatch", f"{R}/ca.key"),
        (None, "key-mismatch", f"{R}/sa.key"),
    }
    sa = got[(None, "key-mismatch", f"{R}/sa.key")]
    assert sa.severity == "critical" and sa.action == "distribute-pki"
    assert "cp-1 hold aaaaaaaaaaaaaaaa… (the panel's)" in sa.message and "cp-2" in sa.message
    assert "did not issue" in got[("cp-2", "fingerprint-mismatch", f"{R}/apiserver.crt")].message
    assert "older" in got[("cp-2", "fingerprint-mismatch", f"{R}/front-proxy-client.crt")].message
    assert "api.example, 10.0.0.2" in got[("cp-2", "san-missing", f"{R}/apiserver.crt")].message
    assert got[("cp-1", "not-issued", f"{R}/extra.crt")].severity == "info"
    assert len(result.rows) == 6
    assert [r.not_after for r in result.rows] == sorted(r.not_after for r in result.rows)


def test_a_lone_control_plane_with_another_key_and_a_ca_mismatch_are_critical() -> None:
    ca_pem = px.certificate_to_pem(CA).decode()
    nodes = [_node("cp-1", {f"{R}/ca.crt": _leaf(365)}, {f"{R}/sa.key": "b" * 64})]
    ledger = drift.Ledger({"cp-1": {f"{R}/ca.crt": _fp(ca_pem)}}, {f"{R}/sa.key": "a" * 64})
    found = drift.evaluate(nodes, ledger, NOW, (30, 14, 7, 1)).findings
    assert [(f.node, f.kind, f.path, f.severity) for f in found] == [
        ("cp-1", "fingerprint-mismatch", f"{R}/ca.crt", "critical"),
        ("cp-1", "fingerprint-mismatch", f"{R}/sa.key", "critical"),
    ]
