"""The flag parser of systemd unit files (``pki.domain.systemd_units``)."""

from __future__ import annotations

from pki.domain.systemd_units import logical_lines, parse_env_file, parse_flags, parse_unit

APISERVER = """\
[Unit]
Description=Kubernetes API Server
# ExecStart=/usr/bin/false   (a comment, not the command)

[Service]
ExecStart=/opt/kubernetes/bin/kube-apiserver \\
  --tls-cert-file=/etc/k8s/ssl/kubernetes.pem \\
  # a comment line inside the continued command is skipped, as systemd does
  --tls-private-key-file /etc/k8s/ssl/kubernetes-key.pem \\
  -client-ca-file=/etc/k8s/ssl/ca.pem \\
  --enable-bootstrap-token-auth \\
  --etcd-servers="https://10.0.0.11:2379,https://10.0.0.12:2379" \\
  --v=2 --v=4
Restart=on-failure
"""


def test_continuations_and_comments_join_into_one_logical_line() -> None:
    lines = logical_lines(APISERVER)
    exec_start = [line for line in lines if line.startswith("ExecStart=")]
    assert len(exec_start) == 1
    assert "--tls-private-key-file /etc/k8s/ssl/kubernetes-key.pem" in exec_start[0]
    assert not any("a comment" in line for line in lines)
    assert "Restart=on-failure" in lines


def test_equals_and_space_separated_values_single_dashes_and_booleans() -> None:
    unit = parse_unit("kube-apiserver.service", APISERVER)
    assert unit.service == "kube-apiserver"
    assert unit.command[0] == "/opt/kubernetes/bin/kube-apiserver"
    assert unit.flags["tls-cert-file"] == "/etc/k8s/ssl/kubernetes.pem"
    assert unit.flags["tls-private-key-file"] == "/etc/k8s/ssl/kubernetes-key.pem"
    assert unit.flags["client-ca-file"] == "/etc/k8s/ssl/ca.pem"
    assert unit.flags["enable-bootstrap-token-auth"] == ""
    assert unit.flags["etcd-servers"] == "https://10.0.0.11:2379,https://10.0.0.12:2379"
    assert unit.flags["v"] == "4"  # the last of a repeated flag wins
    assert unit.problems == [] and unit.unresolved == []


def test_variables_come_from_an_uploaded_environment_file_only() -> None:
    unit_text = """\
[Service]
EnvironmentFile=-/etc/k8s/cfg/kube-scheduler.conf
Environment="LEVEL=3"
ExecStart=-/opt/kubernetes/bin/kube-scheduler $KUBE_SCHEDULER_OPTS --v=${LEVEL} $EXTRA
"""
    env = (
        b'KUBE_SCHEDULER_OPTS="--kubeconfig=/etc/k8s/kube-scheduler.kubeconfig \\\n'
        b'  --leader-elect=true"\n'
    )
    files = {"/etc/k8s/cfg/kube-scheduler.conf": env}
    unit = parse_unit("kube-scheduler.service", unit_text, files.get)
    assert unit.flags == {
        "kubeconfig": "/etc/k8s/kube-scheduler.kubeconfig",
        "leader-elect": "true",
        "v": "3",
    }
    assert unit.env_files == ["/etc/k8s/cfg/kube-scheduler.conf"]
    assert unit.missing_env_files == []
    assert unit.unresolved == ["EXTRA"]
    # Without the environment file the variable is reported, never guessed.
    bare = parse_unit("kube-scheduler.service", unit_text)
    assert bare.missing_env_files == ["/etc/k8s/cfg/kube-scheduler.conf"]
    assert bare.unresolved == ["KUBE_SCHEDULER_OPTS", "EXTRA"]
    assert "kubeconfig" not in bare.flags


def test_etcd_reads_its_etcd_variables_as_flags_unless_a_flag_overrides_them() -> None:
    unit_text = """\
[Service]
EnvironmentFile=/etc/etcd/etcd.conf
ExecStart=/usr/local/bin/etcd --peer-cert-file=/etc/etcd/ssl/peer.pem
"""
    env = b'ETCD_CERT_FILE="/etc/etcd/ssl/etcd.pem"\nETCD_PEER_CERT_FILE=/ignored.pem\n'
    unit = parse_unit("etcd.service", unit_text, {"/etc/etcd/etcd.conf": env}.get)
    assert unit.service == "etcd"
    assert unit.flags["cert-file"] == "/etc/etcd/ssl/etcd.pem"
    assert unit.flags["peer-cert-file"] == "/etc/etcd/ssl/peer.pem"


def test_the_service_is_named_by_the_binary_when_the_unit_file_name_is_not_a_component() -> None:
    unit = parse_unit("k8s-api.service", "[Service]\nExecStart=/usr/bin/kube-apiserver --v=2\n")
    assert unit.service == "kube-apiserver"


def test_a_unit_without_exec_start_or_with_broken_quotes_is_a_problem() -> None:
    assert parse_unit("etcd.service", "[Unit]\nDescription=x\n").problems
    broken = parse_unit("etcd.service", '[Service]\nExecStart=/bin/etcd --name="open\n')
    assert broken.problems and "cannot be split" in broken.problems[0]


def test_the_last_exec_start_counts_and_lines_outside_service_are_ignored() -> None:
    text = "[Unit]\nExecStart=/bin/false\n[Service]\nExecStart=/a --x=1\nExecStart=/b --y=2\n"
    unit = parse_unit("etcd.service", text)
    assert unit.command == ["/b", "--y=2"]


def test_flag_values_are_the_next_word_unless_it_is_a_flag() -> None:
    assert parse_flags(["--a", "--b", "x", "positional", "--", "--c=1"]) == {"a": "", "b": "x"}


def test_environment_files_strip_quotes_and_skip_comments() -> None:
    text = "# comment\nexport A='one two'\nB=\"x\"\nnot an assignment\nC=3\n"
    assert parse_env_file(text) == {"A": "one two", "B": "x", "C": "3"}
