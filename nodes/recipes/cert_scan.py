"""The ``cert-scan`` job: every certificate a node holds, read in one command (pure, no Django).

One phase ``scan`` with one step ``read certificates`` per node, running a single shell script
that prints a stream of sections, each opened by a marker line:

- ``cert <path>`` then the ``CERTIFICATE`` PEM blocks of one file under ``/etc/kubernetes``
  (``pki/**/*.crt``) or ``/var/lib/kubelet/pki`` (``*.crt``, ``*.pem``). Only the certificate
  blocks are printed: ``kubelet-client-*.pem`` holds the kubelet's private key too, and no
  private key ever leaves the node;
- ``kubeconfig <path> <field>`` then the base64 value of ``client-certificate-data`` or
  ``certificate-authority-data`` of a kubeconfig (``/etc/kubernetes/*.conf``), never
  ``client-key-data``;
- ``key <path> <sha256>`` for the keys that must be the same on every control-plane node (the
  three CA keys and the service-account key): the SHA-256 of the DER public key
  (``openssl pkey -pubout -outform DER``), so that keys are compared without being moved.

The step's data is the parsed stream; the glue (``nodes.scan_jobs``) turns it into findings.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
)

KIND = "cert-scan"
MUTATING = False  # reads files; writes nothing
PHASE = "scan"
STEP = "read certificates"
MARKER = "### clusterpanel-scan"
ROOT = "/etc/kubernetes"
KUBELET_PKI = "/var/lib/kubelet/pki"
# The keys compared across control-plane nodes by their public half (kubeadm's shared keys).
SHARED_KEYS = ("pki/ca.key", "pki/front-proxy-ca.key", "pki/etcd/ca.key", "pki/sa.key")
KUBECONFIG_FIELDS = ("client-certificate-data", "certificate-authority-data")
# Key hash words other than a digest: the file is there but could not be read as a key.
UNREADABLE = "unreadable"
NO_OPENSSL = "no-openssl"
# A find over two directories and one openssl per key: seconds, even on a slow disk.
TIMEOUT = 60.0
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL)


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """cert-scan takes no parameters."""
    for key in params:
        raise InputError(f"cert-scan takes no parameters; unknown parameter {key!r}", key)
    return {}


def scan_script() -> str:
    """The one script run on each node (as root: the keys are 0600)."""
    fields = " ".join(KUBECONFIG_FIELDS)
    keys = " ".join(SHARED_KEYS)
    return (
        f"M='{MARKER}'\n"
        f"find {ROOT} {KUBELET_PKI} -path {ROOT}/backup -prune -o -type f "
        r"\( -name '*.crt' -o -name '*.pem' -o -name '*.conf' \) -print 2>/dev/null"
        " | LC_ALL=C sort | while IFS= read -r f; do\n"
        '  case "$f" in\n'
        f"    {KUBELET_PKI}/*.conf) ;;\n"
        f"    {ROOT}/*/*.conf) ;;\n"
        f"    *.conf) for k in {fields}; do\n"
        '      sed -n "s/^[[:space:]]*$k:[[:space:]]*//p" "$f" | while IFS= read -r v; do\n'
        '        printf \'%s kubeconfig %s %s\\n%s\\n\' "$M" "$f" "$k" "$v"; done; done;;\n'
        '    *) printf \'%s cert %s\\n\' "$M" "$f"\n'
        "       sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \"$f\";;\n"
        "  esac\n"
        "done\n"
        f"for k in {keys}; do\n"
        f'  p="{ROOT}/$k"; [ -f "$p" ] || continue\n'
        f"  if ! command -v openssl >/dev/null 2>&1; then h={NO_OPENSSL}\n"
        '  elif openssl pkey -in "$p" -noout 2>/dev/null; then\n'
        '    h=$(openssl pkey -in "$p" -pubout -outform DER 2>/dev/null | sha256sum | cut -c1-64)\n'
        f"  else h={UNREADABLE}; fi\n"
        '  printf \'%s key %s %s\\n\' "$M" "$p" "$h"\n'
        "done\n"
        "printf '%s end\\n' \"$M\"\n"
    )


def parse_stream(text: str) -> dict[str, Any]:
    """The script's output as data: ``certificates`` ([{path, source, pem}], a file with several
    blocks gives one entry per block, ``#n`` appended from the second on), ``keys``
    ([{path, sha256}], ``sha256`` a hex digest or ``unreadable`` / ``no-openssl``) and
    ``complete`` (the end marker was seen). Unparseable sections are skipped: the output is the
    node's and the scan must not fail on one odd file."""
    certificates: list[dict[str, str]] = []
    keys: list[dict[str, str]] = []
    complete = False
    sections: list[tuple[list[str], list[str]]] = []
    for line in text.splitlines():
        if line.startswith(MARKER + " "):
            sections.append((line[len(MARKER) + 1 :].split(" "), []))
        elif sections:
            sections[-1][1].append(line)
    for words, body in sections:
        kind = words[0]
        if kind == "end":
            complete = True
        elif kind == "cert" and len(words) >= 2:
            path = " ".join(words[1:])
            for index, pem in enumerate(_PEM_CERT.findall("\n".join(body) + "\n")):
                name = path if index == 0 else f"{path}#{index + 1}"
                certificates.append({"path": name, "source": "file", "pem": pem + "\n"})
        elif kind == "kubeconfig" and len(words) == 3:
            pem = _decode_data("".join(body).strip())
            for index, block in enumerate(_PEM_CERT.findall(pem)):
                name = f"{words[1]}:{words[2]}" + ("" if index == 0 else f"#{index + 1}")
                certificates.append({"path": name, "source": "kubeconfig", "pem": block + "\n"})
        elif kind == "key" and len(words) == 3:
            digest = words[2]
            if not _HEX64.fullmatch(digest) and digest != NO_OPENSSL:
                digest = UNREADABLE
            keys.append({"path": words[1], "sha256": digest})
    return {"certificates": certificates, "keys": keys, "complete": complete}


def bundle_stream(files: Mapping[str, bytes]) -> str:
    """What the script would print for a bundle (relative path → content) written to
    ``/etc/kubernetes``, without the keys: the panel's side of the comparison, so that both sides
    name each certificate the same way."""
    lines: list[str] = []
    for relative in sorted(files):
        path, text = f"{ROOT}/{relative}", files[relative].decode("utf-8", "replace")
        if relative.endswith(".conf") and "/" not in relative:
            for name in KUBECONFIG_FIELDS:
                for line in text.splitlines():
                    stripped = line.strip()
                    if stripped.startswith(name + ":"):
                        value = stripped[len(name) + 1 :].strip()
                        lines += [f"{MARKER} kubeconfig {path} {name}", value]
        elif relative.endswith((".crt", ".pem")):
            lines += [f"{MARKER} cert {path}", *_PEM_CERT.findall(text)]
    lines.append(f"{MARKER} end")
    return "\n".join(lines) + "\n"


def _decode_data(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def read_scan(context: StepContext) -> Outcome:
    (output,) = context.outputs
    if output.timed_out:
        return Outcome("failed", "the scan timed out")
    if output.exit_code != 0:
        return Outcome("failed", f"the scan exited with code {output.exit_code}")
    data = parse_stream(output.stdout)
    if not data["complete"]:
        return Outcome("failed", "the scan's output ended early")
    found = f"{len(data['certificates'])} certificates, {len(data['keys'])} shared keys"
    return Outcome("succeeded", found, data)


def plan(spec: ClusterSpec, nodes: Sequence[NodeTarget], params: Mapping[str, Any]) -> Plan:
    """One read-only step per node. Node steps are gathered even when some fail
    (``continue_on_failure``): the findings of the nodes that answered still count."""
    validate_params(params)
    if not nodes:
        raise InputError("a certificate scan needs at least one node", "nodes")
    command = Command(scan_script(), timeout=TIMEOUT)
    steps = tuple(Step(STEP, node.name, (command,), read_scan) for node in nodes)
    return Plan(KIND, (Phase(PHASE, steps, continue_on_failure=True),))
