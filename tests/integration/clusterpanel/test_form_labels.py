"""Every form label on the panel's pages is written as people write it: acronyms in capitals
("DNS domain", "CA validity days", "SSH port", "UID"), program names as they are spelled
("etcd", "kube-apiserver"), and otherwise starting with a capital letter."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from nodes.models import Cluster
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db

# Words Django's capitalisation of field names gets wrong.
MISCASED = re.compile(
    r"\b(Dns|Ca|Cas|Ssh|Ttl|Uid|Ip|Ips|San|Sans|Cn|Pem|Csr|Url|Api|Etcd|Cidr|Tls|Sha|Spki"
    r"|Cfssl|Kubeadm|Rbac|Cpu|Id)\b"
)
# Labels that may start in lower case: program and file names, and kubeadm's token usages
# (the choices of the token form, shown as kubeadm spells them).
LOWER_CASE_NAMES = (
    "etcd",
    "kube-",
    "kubelet",
    "ca.pem",
    "ca-key.pem",
    "ca-csr.json",
    "tokens.csv",
    "signing",
    "authentication",
)


def _labels(page: str) -> list[str]:
    found = re.findall(r"<label\b[^>]*>(.*?)</label>", page, flags=re.S)
    texts = [html.unescape(re.sub(r"<[^>]+>", "", text)).strip() for text in found]
    return [text for text in texts if text]


@pytest.fixture
def lab(db: Any) -> Cluster:
    cluster = make_cluster("lab", key_algorithm="ECDSA-P256")
    make_node(cluster)
    return cluster


def _pages(cluster: Cluster) -> list[str]:
    node = cluster.nodes.get()
    return [
        "/clusters/new/",
        f"/clusters/{cluster.pk}/edit/",
        f"/clusters/{cluster.pk}/nodes/new/",
        f"/nodes/{node.pk}/edit/",
        f"/clusters/{cluster.pk}/delete/",
        f"/clusters/{cluster.pk}/certificates/",
        f"/clusters/{cluster.pk}/certificates/check-san/",
        f"/clusters/{cluster.pk}/authorities/import/",
        f"/clusters/{cluster.pk}/tokens/",
        f"/clusters/{cluster.pk}/config/",
        "/pki/inspect/",
    ]


def test_every_form_label_is_capitalised_as_written(
    web_client: Callable[[str | None], Client], lab: Cluster
) -> None:
    client = web_client("admin")
    seen: dict[str, str] = {}
    for url in _pages(lab):
        response = client.get(url)
        assert response.status_code == 200, url
        for label in _labels(response.content.decode()):
            seen.setdefault(label, url)
    wrong = {
        label: url
        for label, url in seen.items()
        if MISCASED.search(label) or (label[0].islower() and not label.startswith(LOWER_CASE_NAMES))
    }
    assert not wrong, f"labels written wrongly: {wrong}"
    for expected in (
        "DNS domain",
        "CA validity days",
        "etcd topology",
        "SSH port",
        "SSH user",
        "SSH private key",
        "UID",
        "TTL",
        "kube-apiserver extra args",
    ):
        assert expected in seen, f"no label {expected!r} among {sorted(seen)}"
    assert len(seen) > 40  # the pages' forms were all read
