"""Validation of inventory input, free of Django so it can be tested on its own.

Every function raises ``ValueError`` with a message meant for the operator, or
returns the normalised value. Django validators and forms wrap these.
"""

from __future__ import annotations

import ipaddress
import re

from pki.domain.names import DNS1123_LABEL_RE, parse_version

_LABEL_NAME = re.compile(r"\A([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_SSH_USER = re.compile(r"\A[a-z_][a-z0-9_.-]{0,31}\Z")
_FINGERPRINT = re.compile(r"\ASHA256:[A-Za-z0-9+/]{43}\Z")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# The Kubernetes 1.x minor versions the panel knows how to configure, any patch release of each.
# pki.kubeadm_config renders kubeadm.k8s.io/v1beta3 for 1.24 to 1.30 and v1beta4 (kubeadm 1.31+)
# from 1.31 on; a new minor joins the list once its kubeadm configuration has been checked.
SUPPORTED_MINORS: tuple[int, ...] = tuple(range(24, 35))

# The kubelet takes a node's labels as --node-labels and refuses to start when one of them is in
# the kubernetes.io or k8s.io namespaces and is not a label it may set on its own node
# (k8s.io/kubelet/pkg/apis IsKubeletLabel): these keys, or keys under these namespaces.
KUBELET_LABELS = frozenset(
    {
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "beta.kubernetes.io/os",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "kubernetes.io/arch",
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")

# The longest validity of a CA or certificate the panel issues: 100 years, in days.
MAX_VALIDITY_DAYS = 36500

# Sizes of what an operator types; forms, the API and the models refuse more.
MAX_DESCRIPTION = 1000
MAX_EXTRA_SANS = 100
MAX_SAN_LENGTH = 253  # a DNS name; a wildcard too
MAX_LABELS = 64
MAX_TAINTS = 64
MAX_PRIVATE_KEY = 64 * 1024  # as the key file upload; an RSA-16384 key is about 13 KiB
MAX_SECRET = 1024  # a passphrase or a password

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def dns1123_label(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"'{value[:20]}…' is longer than 63 characters (a DNS-1123 label)")
    if not DNS1123_LABEL_RE.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a DNS-1123 label: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def dns1123_subdomain(value: str) -> str:
    if not value or len(value) > 253:
        raise ValueError("a DNS-1123 subdomain must have 1 to 253 characters")
    for label in value.split("."):
        if not label or len(label) > 63 or not DNS1123_LABEL_RE.fullmatch(label):
            raise ValueError(
                f"'{value}' is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.',"
                " each part starting and ending with a letter or digit"
            )
    return value


def ip_address(value: str) -> IPAddress:
    """``ipaddress.ip_address`` without IPv6 zones (``fe80::1%eth0``): ``ipaddress`` takes any
    text after the ``%`` as the zone, shell metacharacters and spaces included, and Kubernetes
    (Go's ``net.ParseIP``) takes no zone in a node address, an endpoint or a SAN at all."""
    if "%" in value:
        raise ValueError(f"'{value[:60]}' has an IPv6 zone (%…); give the address without it")
    return ipaddress.ip_address(value)


def is_ip(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True


def validity_days(value: int) -> int:
    """A validity in days, of a CA or of the certificates it signs."""
    if value < 1:
        raise ValueError("must be at least 1 day")
    if value > MAX_VALIDITY_DAYS:
        raise ValueError(f"must be at most 100 years ({MAX_VALIDITY_DAYS} days)")
    return value


def host(value: str) -> str:
    """A host a client connects to: an IP address or a DNS-1123 name (lowercased, as DNS
    compares); the one rule for endpoints, SAN checks and anything else named by host."""
    text = value.strip()
    if is_ip(text):
        return str(ip_address(text))
    name = text.lower()
    try:
        dns1123_subdomain(name)
    except ValueError:
        raise ValueError(f"'{value[:60]}' is neither an IP address nor a DNS name") from None
    if name.rsplit(".", 1)[-1].isdigit():
        # "10.0.0.300" or "0": a mistyped IP address, not a host name.
        raise ValueError(f"'{value[:60]}' is neither a valid IP address nor a host name")
    return name


def kubernetes_version(value: str) -> str:
    """Accept ``1.31.2`` or ``v1.31.2``; store kubeadm's ``v1.31.2`` form."""
    parsed = parse_version(value.strip(), suffix=False)
    if parsed is None:
        raise ValueError(f"'{value}' is not a Kubernetes version such as v1.31.2")
    major, minor, patch = parsed
    if major != 1 or minor not in SUPPORTED_MINORS:
        raise ValueError(
            f"'{value}' is not supported: the panel configures Kubernetes "
            f"v1.{SUPPORTED_MINORS[0]} to v1.{SUPPORTED_MINORS[-1]} (any patch release)"
        )
    return f"v{major}.{minor}.{patch}"


def version_tuple(value: str) -> tuple[int, int, int]:
    parsed = parse_version(value, suffix=False)
    if parsed is None:
        raise ValueError(f"'{value}' is not a Kubernetes version")
    return parsed


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is out of range 1-65535")
    return value


def split_endpoint(value: str) -> tuple[str, int]:
    """Split ``host[:port]`` (IPv6 in brackets) into host and port, default 6443.

    Rejects schemes and paths: kubeadm's controlPlaneEndpoint is host[:port] only.
    """
    text = value.strip()
    if not text:
        raise ValueError("the endpoint is empty")
    if "://" in text:
        raise ValueError(f"'{value}' has a scheme: give host[:port] without https://")
    if "/" in text or "?" in text or "#" in text:
        raise ValueError(f"'{value}' has a path: give host[:port] only")
    if text.startswith("["):
        name, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"'{value}': missing ']' after the IPv6 address")
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            raise ValueError(f"'{name}' in brackets is not an IPv6 address") from None
        if rest and not rest.startswith(":"):
            raise ValueError(f"'{value}': expected ':port' after ']'")
        port_text = rest[1:] if rest else ""
    elif text.count(":") > 1:
        raise ValueError(f"'{value}': put an IPv6 address in brackets, e.g. [fd00::1]:6443")
    else:
        name, _, port_text = text.partition(":")
        if not is_ip(name):
            name = name.lower()
            dns1123_subdomain(name)  # its own message, which names the rule broken
            name = host(name)
    if port_text == "" and text.endswith(":"):
        raise ValueError(f"'{value}': the port after ':' is empty")
    if port_text:
        if not port_text.isdigit():
            raise ValueError(f"'{value}': the port '{port_text}' is not a number")
        return name, port(int(port_text))
    return name, 6443


def format_endpoint(host: str, port_number: int) -> str:
    return f"[{host}]:{port_number}" if ":" in host else f"{host}:{port_number}"


def cidr(value: str) -> IPNetwork:
    text = value.strip()
    if "/" not in text:
        raise ValueError(f"'{value}' is not a CIDR: add a prefix length such as /16")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            network = ipaddress.ip_network(text, strict=False)
            raise ValueError(f"'{value}' has host bits set; did you mean {network}?") from None
        raise ValueError(f"'{value}' is not a valid CIDR") from None


def service_subnet(value: str) -> IPNetwork:
    """The service range must hold .1 (kubernetes) and .10 (cluster DNS), and the
    apiserver refuses ranges larger than /12 (IPv4) or /108 (IPv6)."""
    network = cidr(value)
    bits = network.max_prefixlen
    largest = 12 if bits == 32 else 108
    smallest = bits - 4
    if network.prefixlen > smallest:
        raise ValueError(
            f"service subnet {network} is too small: it needs at least /{smallest} to hold "
            "the kubernetes service (.1) and cluster DNS (.10)"
        )
    if network.prefixlen < largest:
        raise ValueError(
            f"service subnet {network} is too large: the apiserver accepts at most /{largest}"
        )
    return network


def pod_subnet(value: str) -> IPNetwork:
    """Each node gets a /24 (IPv4) or /64 (IPv6) slice of the pod range by default."""
    network = cidr(value)
    node_mask = 24 if network.max_prefixlen == 32 else 64
    if network.prefixlen > node_mask:
        raise ValueError(
            f"pod subnet {network} is smaller than one node's pod range (/{node_mask})"
        )
    return network


def ip(value: str) -> str:
    try:
        return str(ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"'{value[:60]}' is not an IP address (IPv6 without a %zone)") from None


def subject_alt_name(value: str) -> str:
    """A certificate SAN as kubeadm accepts it: an IP, a DNS-1123 subdomain or a wildcard."""
    text = value.strip()
    if len(text) > MAX_SAN_LENGTH:
        raise ValueError(f"'{text[:20]}…' is longer than {MAX_SAN_LENGTH} characters")
    if is_ip(text):
        return str(ip_address(text))
    name = text.lower()
    if name.startswith("*."):
        dns1123_subdomain(name[2:])
        return name
    try:
        return dns1123_subdomain(name)
    except ValueError:
        raise ValueError(
            f"'{value}' is not an IP address, a DNS-1123 subdomain or a wildcard (*.example.com)"
        ) from None


def label_key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            raise ValueError(f"label key '{key}' has an empty prefix before '/'")
        try:
            dns1123_subdomain(prefix)
        except ValueError:
            raise ValueError(
                f"label key '{key}': prefix '{prefix}' is not a DNS subdomain"
            ) from None
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValueError(
            f"label key '{key}' is not valid: a name of up to 63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit, optionally with a DNS prefix/"
        )
    return key


def label_value(value: str) -> str:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        raise ValueError(
            f"label value '{value}' is not valid: up to 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _in_namespace(namespace: str, parent: str) -> bool:
    return namespace == parent or namespace.endswith("." + parent)


def kubelet_label(key: str) -> str:
    """A label the kubelet accepts in ``--node-labels`` (see ``KUBELET_LABELS``)."""
    namespace = key.partition("/")[0] if "/" in key else ""
    reserved = _in_namespace(namespace, "kubernetes.io") or _in_namespace(namespace, "k8s.io")
    if not reserved or key in KUBELET_LABELS:
        return key
    if any(_in_namespace(namespace, allowed) for allowed in KUBELET_LABEL_NAMESPACES):
        return key
    raise ValueError(
        f"label key '{key}': the kubelet refuses to start with a kubernetes.io or k8s.io label "
        "it may not set itself (allowed: the kubelet.kubernetes.io/ and node.kubernetes.io/ "
        "prefixes, kubernetes.io/os, topology.kubernetes.io/zone and a few more); add it with "
        "kubectl label once the node has joined"
    )


def labels(value: object) -> dict[str, str]:
    """A node's labels; the kubelet gets them as ``--node-labels``."""
    if not isinstance(value, dict):
        raise ValueError("labels must be an object of key: value strings")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ValueError("labels must map strings to strings")
        label_key(key)
        label_value(item)
        kubelet_label(key)
    return dict(value)


def taint(value: str) -> str:
    """``key=value:Effect`` or ``key:Effect``, as ``kubectl taint`` takes them."""
    spec, colon, effect = value.strip().rpartition(":")
    if not colon or not spec:
        raise ValueError(f"taint '{value}' must look like key=value:Effect")
    if effect not in TAINT_EFFECTS:
        raise ValueError(f"taint '{value}': effect must be one of {', '.join(TAINT_EFFECTS)}")
    key, _, taint_value = spec.partition("=")
    try:
        label_key(key)
        label_value(taint_value)
    except ValueError as exc:
        raise ValueError(f"taint '{value}': {exc}") from None
    return value.strip()


def taints(value: object) -> list[str] | None:
    """A list of taints, or None for the role's default taints."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("taints must be a list of 'key=value:Effect' strings")
    return [taint(item) for item in value]


def ssh_user(value: str) -> str:
    if not _SSH_USER.match(value):
        raise ValueError(f"'{value}' is not a valid login name (lowercase letters, digits, _ . -)")
    return value


def host_key_fingerprint(value: str) -> str:
    if not _FINGERPRINT.match(value.strip()):
        raise ValueError(
            f"'{value}' is not an SSH SHA-256 fingerprint as ssh-keygen -lf prints it "
            "(SHA256: followed by 43 base64 characters)"
        )
    return value.strip()


def overlapping(first: IPNetwork, second: IPNetwork) -> bool:
    return first.version == second.version and first.overlaps(second)  # type: ignore[arg-type]


def address_in(address: str, network: IPNetwork) -> bool:
    parsed = ipaddress.ip_address(address)
    return parsed.version == network.version and parsed in network
