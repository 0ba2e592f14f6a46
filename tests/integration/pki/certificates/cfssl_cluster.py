"""An existing binary-installed cluster's files, made the way the install guides make them.

The certificate directory is signed by the real ``cfssl gencert`` and written by the real
``cfssljson -bare`` (one CA from ``ca-csr.json``, a ``ca-config.json`` with server, client and peer
profiles); the kubeconfigs by the real ``kubectl config set-cluster/set-credentials/set-context
--embed-certs``. The unit files are fixtures in the usual guide style: backslash-continued
``ExecStart=`` lines, one unit reading its flags from an ``EnvironmentFile=``, etcd reading its own
from ``ETCD_*`` variables of another.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

SSL = "/etc/k8s/ssl"
CFG = "/etc/k8s"
BIN = "/opt/kubernetes/bin"
MASTERS = ("10.0.0.11", "10.0.0.12", "10.0.0.13")
NAMES = [{"C": "CN", "ST": "BeiJing", "L": "BeiJing", "O": "k8s", "OU": "System"}]

CA_CONFIG = {
    "signing": {
        "default": {"expiry": "175200h"},
        "profiles": {
            "server": {
                "usages": ["signing", "key encipherment", "server auth"],
                "expiry": "175200h",
            },
            "client": {
                "usages": ["signing", "key encipherment", "client auth"],
                "expiry": "175200h",
            },
            "peer": {
                "usages": ["signing", "key encipherment", "server auth", "client auth"],
                "expiry": "175200h",
            },
        },
    }
}

# name → (CN, O or None, hosts, profile)
LEAVES: dict[str, tuple[str, str | None, list[str], str]] = {
    "kubernetes": (
        "kubernetes",
        "k8s",
        [
            "127.0.0.1",
            *MASTERS,
            "10.254.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        "server",
    ),
    "etcd": ("etcd", "k8s", ["127.0.0.1", *MASTERS], "peer"),
    "admin": ("admin", "system:masters", [], "client"),
    "kube-proxy": ("system:kube-proxy", "k8s", [], "client"),
    "proxy-client": ("aggregator", "k8s", [], "client"),
    "kube-controller-manager": (
        "system:kube-controller-manager",
        "system:kube-controller-manager",
        ["127.0.0.1", *MASTERS],
        "peer",
    ),
    "kube-scheduler": (
        "system:kube-scheduler",
        "system:kube-scheduler",
        ["127.0.0.1", *MASTERS],
        "peer",
    ),
    # Signed by the same CA but named by no unit: the "unknown" certificate of the tests.
    "harbor": ("harbor.example.internal", None, ["harbor.example.internal"], "server"),
}


def _csr(cn: str, org: str | None, hosts: list[str]) -> dict[str, object]:
    names = [dict(NAMES[0], O=org)] if org else NAMES
    return {"CN": cn, "hosts": hosts, "key": {"algo": "rsa", "size": 2048}, "names": names}


def _run(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    return subprocess.run(args, cwd=cwd, input=stdin, check=True, capture_output=True).stdout


def cfssl_bare(cwd: Path, name: str, gencert_args: list[str]) -> None:
    """``cfssl gencert … | cfssljson -bare name``."""
    out = _run(["cfssl", "gencert", *gencert_args], cwd)
    _run(["cfssljson", "-bare", name], cwd, stdin=out)


def make_ssl_dir(root: Path) -> Path:
    """``<root>/ssl``: ca*.pem and every leaf of ``LEAVES`` as ``name.pem`` / ``name-key.pem``."""
    ssl = root / "ssl"
    ssl.mkdir(parents=True)
    (ssl / "ca-config.json").write_text(json.dumps(CA_CONFIG, indent=2))
    ca_csr = _csr("kubernetes", "k8s", [])
    ca_csr["ca"] = {"expiry": "876000h"}
    (ssl / "ca-csr.json").write_text(json.dumps(ca_csr, indent=2))
    cfssl_bare(ssl, "ca", ["-initca", "ca-csr.json"])
    for name, (cn, org, hosts, profile) in LEAVES.items():
        (ssl / f"{name}-csr.json").write_text(json.dumps(_csr(cn, org, hosts), indent=2))
        cfssl_bare(
            ssl,
            name,
            [
                "-ca=ca.pem",
                "-ca-key=ca-key.pem",
                "-config=ca-config.json",
                f"-profile={profile}",
                f"{name}-csr.json",
            ],
        )
    return ssl


def make_kubeconfig(cfg: Path, ssl: Path, name: str, user: str, server: str) -> Path:
    """``<name>.kubeconfig`` written by ``kubectl config … --embed-certs=true``."""
    path = cfg / f"{name}.kubeconfig"
    kc = ["kubectl", "config", f"--kubeconfig={path}"]
    _run(
        [
            *kc,
            "set-cluster",
            "kubernetes",
            f"--certificate-authority={ssl / 'ca.pem'}",
            "--embed-certs=true",
            f"--server={server}",
        ],
        cfg,
    )
    _run(
        [
            *kc,
            "set-credentials",
            user,
            f"--client-certificate={ssl / (name + '.pem')}",
            f"--client-key={ssl / (name + '-key.pem')}",
            "--embed-certs=true",
        ],
        cfg,
    )
    _run([*kc, "set-context", "default", "--cluster=kubernetes", f"--user={user}"], cfg)
    _run([*kc, "use-context", "default"], cfg)
    return path


ETCD_CONF = f"""\
#[Member]
ETCD_NAME="etcd-1"
ETCD_DATA_DIR="/var/lib/etcd/default.etcd"
ETCD_LISTEN_PEER_URLS="https://10.0.0.11:2380"
ETCD_LISTEN_CLIENT_URLS="https://10.0.0.11:2379,http://127.0.0.1:2379"
#[Security]
ETCD_CERT_FILE="{SSL}/etcd.pem"
ETCD_KEY_FILE="{SSL}/etcd-key.pem"
ETCD_TRUSTED_CA_FILE="{SSL}/ca.pem"
ETCD_PEER_CERT_FILE="{SSL}/etcd.pem"
ETCD_PEER_KEY_FILE="{SSL}/etcd-key.pem"
ETCD_PEER_TRUSTED_CA_FILE="{SSL}/ca.pem"
ETCD_CLIENT_CERT_AUTH="true"
"""

ETCD_SERVICE = f"""\
[Unit]
Description=Etcd Server
After=network.target
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=-{CFG}/cfg/etcd.conf
WorkingDirectory=/var/lib/etcd/
ExecStart={BIN}/etcd \\
  --initial-cluster-token=etcd-cluster \\
  --initial-cluster=etcd-1=https://10.0.0.11:2380,etcd-2=https://10.0.0.12:2380 \\
  --initial-cluster-state=new
Restart=on-failure
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""

APISERVER_SERVICE = f"""\
[Unit]
Description=Kubernetes API Server
Documentation=https://github.com/kubernetes/kubernetes
After=etcd.service
Wants=etcd.service

[Service]
ExecStart={BIN}/kube-apiserver \\
  --enable-admission-plugins=NamespaceLifecycle,NodeRestriction,LimitRanger \\
  --anonymous-auth=false \\
  --bind-address=10.0.0.11 \\
  --secure-port=6443 \\
  --advertise-address=10.0.0.11 \\
  --authorization-mode=Node,RBAC \\
  --runtime-config=api/all=true \\
  --enable-bootstrap-token-auth \\
  --service-cluster-ip-range=10.254.0.0/16 \\
  --token-auth-file={CFG}/token.csv \\
  --service-node-port-range=30000-50000 \\
  --tls-cert-file={SSL}/kubernetes.pem \\
  --tls-private-key-file={SSL}/kubernetes-key.pem \\
  --client-ca-file={SSL}/ca.pem \\
  --kubelet-client-certificate={SSL}/admin.pem \\
  --kubelet-client-key={SSL}/admin-key.pem \\
  --service-account-key-file={SSL}/ca-key.pem \\
  --service-account-signing-key-file={SSL}/ca-key.pem \\
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \\
  --etcd-cafile={SSL}/ca.pem \\
  --etcd-certfile={SSL}/etcd.pem \\
  --etcd-keyfile={SSL}/etcd-key.pem \\
  --etcd-servers=https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379 \\
  --requestheader-client-ca-file={SSL}/ca.pem \\
  --proxy-client-cert-file={SSL}/proxy-client.pem \\
  --proxy-client-key-file={SSL}/proxy-client-key.pem \\
  --requestheader-allowed-names=aggregator \\
  --requestheader-extra-headers-prefix=X-Remote-Extra- \\
  --requestheader-group-headers=X-Remote-Group \\
  --requestheader-username-headers=X-Remote-User \\
  --enable-aggregator-routing=true \\
  --allow-privileged=true \\
  --apiserver-count=3 \\
  --audit-log-maxage=30 \\
  --audit-log-maxbackup=3 \\
  --audit-log-maxsize=100 \\
  --audit-log-path=/var/log/kube-apiserver-audit.log \\
  --event-ttl=1h \\
  --v=4
Restart=on-failure
RestartSec=5
Type=notify
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""

CONTROLLER_MANAGER_SERVICE = f"""\
[Unit]
Description=Kubernetes Controller Manager
Documentation=https://github.com/kubernetes/kubernetes

[Service]
ExecStart={BIN}/kube-controller-manager \\
  --secure-port=10257 \\
  --bind-address=127.0.0.1 \\
  --kubeconfig={CFG}/kube-controller-manager.kubeconfig \\
  --service-cluster-ip-range=10.254.0.0/16 \\
  --cluster-name=kubernetes \\
  --cluster-signing-cert-file={SSL}/ca.pem \\
  --cluster-signing-key-file={SSL}/ca-key.pem \\
  --allocate-node-cidrs=true \\
  --cluster-cidr=172.30.0.0/16 \\
  --root-ca-file={SSL}/ca.pem \\
  --service-account-private-key-file={SSL}/ca-key.pem \\
  --leader-elect=true \\
  --feature-gates=RotateKubeletServerCertificate=true \\
  --controllers=*,bootstrapsigner,tokencleaner \\
  --tls-cert-file={SSL}/kube-controller-manager.pem \\
  --tls-private-key-file={SSL}/kube-controller-manager-key.pem \\
  --use-service-account-credentials=true \\
  --v=2
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""

SCHEDULER_OPTS = f"""\
KUBE_SCHEDULER_OPTS="--v=2 \\
--bind-address=127.0.0.1 \\
--kubeconfig={CFG}/kube-scheduler.kubeconfig \\
--tls-cert-file={SSL}/kube-scheduler.pem \\
--tls-private-key-file={SSL}/kube-scheduler-key.pem \\
--leader-elect=true"
"""

SCHEDULER_SERVICE = f"""\
[Unit]
Description=Kubernetes Scheduler
Documentation=https://github.com/kubernetes/kubernetes

[Service]
EnvironmentFile={CFG}/cfg/kube-scheduler.conf
ExecStart={BIN}/kube-scheduler $KUBE_SCHEDULER_OPTS
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

PROXY_CONFIG = f"""\
kind: KubeProxyConfiguration
apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
clientConnection:
  kubeconfig: {CFG}/kube-proxy.kubeconfig
clusterCIDR: 172.30.0.0/16
mode: ipvs
ipvs:
  scheduler: rr
"""

PROXY_SERVICE = f"""\
[Unit]
Description=Kubernetes Kube-Proxy Server
After=network.target

[Service]
WorkingDirectory=/var/lib/kube-proxy
ExecStart={BIN}/kube-proxy \\
  --config={CFG}/kube-proxy-config.yml \\
  --v=2
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""

UNITS = {
    "etcd.service": ETCD_SERVICE,
    "kube-apiserver.service": APISERVER_SERVICE,
    "kube-controller-manager.service": CONTROLLER_MANAGER_SERVICE,
    "kube-scheduler.service": SCHEDULER_SERVICE,
    "kube-proxy.service": PROXY_SERVICE,
}
ENV_FILES = {"cfg/etcd.conf": ETCD_CONF, "cfg/kube-scheduler.conf": SCHEDULER_OPTS}


def make_cluster_files(root: Path) -> tuple[Path, Path]:
    """The certificate directory (``ssl/`` + kubeconfigs) and the units directory of one cluster."""
    ssl = make_ssl_dir(root)
    certs = root / "certs"
    (certs / "ssl").mkdir(parents=True)
    for path in ssl.iterdir():
        (certs / "ssl" / path.name).write_bytes(path.read_bytes())
    server = "https://10.0.0.11:6443"
    for name, user in (
        ("kube-proxy", "kube-proxy"),
        ("kube-controller-manager", "system:kube-controller-manager"),
        ("kube-scheduler", "system:kube-scheduler"),
    ):
        make_kubeconfig(certs, ssl, name, user, server)
    (certs / "kube-proxy-config.yml").write_text(PROXY_CONFIG)
    (certs / "token.csv").write_text("0123456789abcdef0123456789abcdef,kubelet-bootstrap,10001\n")
    units = root / "units"
    (units / "cfg").mkdir(parents=True)
    for name, text in {**UNITS, **ENV_FILES}.items():
        (units / name).write_text(text)
    return certs, units


def tar_gz(directory: Path, *, arcroot: str = "", skip: tuple[str, ...] = ()) -> bytes:
    """A tar.gz of ``directory``'s files, named relative to it (under ``arcroot``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if path.is_file() and relative not in skip:
                archive.add(path, arcname=f"{arcroot}{relative}")
    return buffer.getvalue()
