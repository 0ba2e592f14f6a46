"""Time issuing a whole cluster PKI: the panel against cfssl, and against key generation alone.

The cluster is 3 control-plane + 3 worker nodes with stacked etcd: 3 CAs, 30 leaf certificates
(the kubeconfig client certificates included) and the ``sa`` key pair. The same set is produced
with ``cfssl gencert | cfssljson -bare`` once per certificate, as an operator's shell script
would, from CSR and ca-config JSON files written to a temporary directory.

Run: ``.venv/bin/python -m bench.pki [--runs N]``. Prints one block per key algorithm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pki.domain.kubeadm as kubeadm
from pki.domain.kubeadm import ClusterSpec, NodeSpec, Plan, issue, plan
from pki.domain.x509 import CertSpec

ALGORITHMS = ("RSA-2048", "ECDSA-P256")
CLUSTER_NODES = (
    *(NodeSpec(f"cp-{i}", f"10.0.0.1{i}") for i in (1, 2, 3)),
    *(NodeSpec(f"w-{i}", f"10.0.1.{i}", "worker") for i in (1, 2, 3)),
)
CFSSL_KEYS = {
    "RSA-2048": {"algo": "rsa", "size": 2048},
    "ECDSA-P256": {"algo": "ecdsa", "size": 256},
}
CA_CONFIG = {
    "signing": {
        "default": {"expiry": "8760h"},
        "profiles": {
            "server": {"usages": ["signing", "key encipherment", "server auth"], "expiry": "8760h"},
            "client": {"usages": ["signing", "key encipherment", "client auth"], "expiry": "8760h"},
            "peer": {
                "usages": ["signing", "key encipherment", "server auth", "client auth"],
                "expiry": "8760h",
            },
        },
    }
}


def cluster(algorithm: str) -> ClusterSpec:
    """The benchmark topology."""
    return ClusterSpec(
        control_plane_endpoint="lb.example.internal:6443",
        key_algorithm=algorithm,
        nodes=CLUSTER_NODES,
    )


def timed(fn: Callable[[], object]) -> float:
    """Wall time of one call, in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- panel


def panel_run(the_plan: Plan) -> tuple[float, float]:
    """(total wall time of issue(), time spent inside its key generation)."""
    spent: list[float] = []
    original = kubeadm.generate_keys

    def measured(*args: object, **kwargs: object) -> list:
        start = time.perf_counter()
        keys = original(*args, **kwargs)  # type: ignore[arg-type]
        spent.append(time.perf_counter() - start)
        return keys

    kubeadm.generate_keys = measured  # type: ignore[assignment]
    try:
        total = timed(lambda: issue(the_plan))
    finally:
        kubeadm.generate_keys = original
    return total, sum(spent)


# --------------------------------------------------------------------------- cfssl


def _profile(spec: CertSpec) -> str:
    if set(spec.usages) == {"server", "client"}:
        return "peer"
    return spec.usages[0]


def _csr(spec: CertSpec, algorithm: str) -> dict:
    csr: dict = {"CN": spec.common_name, "key": CFSSL_KEYS[algorithm]}
    if spec.organizations:
        csr["names"] = [{"O": o} for o in spec.organizations]
    hosts = [*spec.dns_names, *spec.ip_addresses]
    if spec.is_ca:
        hosts = [spec.common_name]
        csr["ca"] = {"expiry": "87600h"}
    if hosts:
        csr["hosts"] = hosts
    return csr


def _stem(spec: CertSpec) -> str:
    stem = spec.name.replace("/", "-").replace(".conf", "")
    return f"{stem}-{spec.node}" if spec.node else stem


def write_cfssl_inputs(the_plan: Plan, algorithm: str, workdir: Path) -> list[list[str]]:
    """CSR files, ca-config.json, and the per-certificate cfssl command lines."""
    (workdir / "ca-config.json").write_text(json.dumps(CA_CONFIG, indent=2))
    commands = []
    for spec in the_plan.specs:
        csr_file = workdir / f"{_stem(spec)}-csr.json"
        csr_file.write_text(json.dumps(_csr(spec, algorithm), indent=2))
        if spec.is_ca:
            commands.append(["gencert", "-initca", csr_file.name, _stem(spec)])
        else:
            ca = _stem(CertSpec(spec.signer or "", None, "x"))
            commands.append(
                [
                    "gencert",
                    f"-ca={ca}.pem",
                    f"-ca-key={ca}-key.pem",
                    "-config=ca-config.json",
                    f"-profile={_profile(spec)}",
                    csr_file.name,
                    _stem(spec),
                ]
            )
    sa_csr = workdir / "sa-csr.json"
    sa_csr.write_text(json.dumps({"CN": "service-accounts", "key": CFSSL_KEYS[algorithm]}))
    commands.append(["genkey", sa_csr.name, "sa"])
    return commands


def run_cfssl(commands: list[list[str]], workdir: Path) -> None:
    """``cfssl <args> | cfssljson -bare <stem>`` for every command, one after the other."""
    for *args, stem in commands:
        cfssl = subprocess.Popen(
            ["cfssl", *args], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        subprocess.run(["cfssljson", "-bare", stem], cwd=workdir, stdin=cfssl.stdout, check=True)
        cfssl.stdout.close()  # type: ignore[union-attr]
        if cfssl.wait() != 0:
            raise RuntimeError(f"cfssl {' '.join(args)} failed")


def cfssl_run(the_plan: Plan, algorithm: str) -> float:
    """Wall time of the whole cfssl script in a fresh directory (writing the JSON included)."""
    with tempfile.TemporaryDirectory(prefix="bench-cfssl-") as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        commands = write_cfssl_inputs(the_plan, algorithm, workdir)
        run_cfssl(commands, workdir)
        elapsed = time.perf_counter() - start
        produced = len(list(workdir.glob("*-key.pem")))
        if produced != len(commands):
            raise RuntimeError(f"cfssl produced {produced} keys, expected {len(commands)}")
    return elapsed


# --------------------------------------------------------------------------- report


def bench(algorithm: str, runs: int) -> dict:
    """Median figures over ``runs`` runs for one algorithm."""
    the_plan = plan(cluster(algorithm))
    key_count = len(the_plan.specs) + 1
    panel = [panel_run(the_plan) for _ in range(runs)]
    keys_alone = [timed(lambda: kubeadm.generate_keys(algorithm, key_count)) for _ in range(runs)]
    one_thread = [
        timed(lambda: kubeadm.generate_keys(algorithm, key_count, workers=1)) for _ in range(runs)
    ]
    cfssl = [cfssl_run(the_plan, algorithm) for _ in range(runs)]
    return {
        "certificates": len(the_plan.specs),
        "keys": key_count,
        "panel": _figures([t for t, _ in panel]),
        "panel_keygen": _figures([k for _, k in panel]),
        "keygen_alone": _figures(keys_alone),
        "keygen_one_thread": _figures(one_thread),
        "cfssl": _figures(cfssl),
        # Within one run, so the randomness of RSA prime search cancels out.
        "overhead": statistics.median((t - k) / k for t, k in panel),
    }


def _figures(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), min(samples)


def _line(label: str, figures: tuple[float, float]) -> str:
    return f"  {label:<30}{figures[0]:8.3f} s   (min {figures[1]:.3f} s)"


def main() -> None:
    """Print the figures for every algorithm."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median kept)")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"key generation threads: {kubeadm.key_workers()}; runs per figure: {args.runs}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for algorithm in ALGORITHMS:
        r = bench(algorithm, args.runs)
        print(f"\n{algorithm}: {r['certificates']} certificates + sa = {r['keys']} keys")
        print(_line("panel issue()", r["panel"]))
        print(_line("  of which key generation", r["panel_keygen"]))
        print(_line("key generation alone", r["keygen_alone"]))
        print(_line("key generation, one thread", r["keygen_one_thread"]))
        print(_line("cfssl gencert | cfssljson", r["cfssl"]))
        print(f"  {'cfssl / panel (medians)':<30}{r['cfssl'][0] / r['panel'][0]:8.1f} x")
        print(f"  {'cfssl / panel (minimums)':<30}{r['cfssl'][1] / r['panel'][1]:8.1f} x")
        print(f"  {'panel above its key gen':<30}{r['overhead'] * 100:8.1f} %")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
