"""A cluster's flavor is chosen at creation and fixed afterwards; a binary install's layout
settings are read by viewers and edited by operators through the page and the API alike, with
errors by field name (for a ca-config.json import: the JSON path at fault)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from clusterpanel.models import AuditEvent
from nodes.models import Cluster, ClusterFlavor
from pki.models import ClusterBinarySettings
from pki.services import binary_settings
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_nodes

pytestmark = pytest.mark.django_db

CA_CONFIG = {
    "signing": {
        "default": {"expiry": "87600h"},
        "profiles": {
            "server": {
                "usages": ["signing", "key encipherment", "server auth"],
                "expiry": "87600h",
            },
            "client": {
                "usages": ["signing", "key encipherment", "client auth"],
                "expiry": "43800h",
            },
            "peer": {
                "usages": ["signing", "key encipherment", "server auth", "client auth"],
                "expiry": "87600h",
            },
        },
    }
}
NEW_CLUSTER = {"name": "bin", "control_plane_endpoint": "10.0.0.10:6443", "flavor": "binary"}


def test_the_flavor_is_chosen_at_creation_and_fixed_afterwards(
    api_client: Callable[[str], APIClient], web_client: Callable[[str], Client]
) -> None:
    api = api_client("operator")
    created = api.post("/api/v1/clusters/", NEW_CLUSTER, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["flavor"] == "binary"
    url = f"/api/v1/clusters/{created.json()['id']}/"
    refused = api.patch(url, {"flavor": "kubeadm"}, format="json")
    assert refused.status_code == 400
    assert "chosen when the cluster is created" in refused.json()["errors"]["flavor"][0]
    assert (
        api.patch(url, {"flavor": "binary", "description": "x"}, format="json").status_code == 200
    )
    assert api.get("/api/v1/clusters/", format="json").json()["results"][0]["flavor"] == "binary"
    bad = api.post(
        "/api/v1/clusters/", {**NEW_CLUSTER, "name": "b2", "flavor": "rpm"}, format="json"
    )
    assert bad.status_code == 400 and "flavor" in bad.json()["errors"]

    # The page: the edit form shows the flavor disabled, a posted other value is ignored.
    cluster = Cluster.objects.get(name="bin")
    page = web_client("operator")
    form = page.get(f"/clusters/{cluster.pk}/edit/").context["form"]
    assert form.fields["flavor"].disabled
    data = {
        name: form.initial.get(name, "")
        for name in form.fields
        if form.initial.get(name) is not None
    }
    data.update(flavor="kubeadm", description="edited", extra_sans="")
    data = {k: v for k, v in data.items() if not k.startswith(("bastion", "clear_", "trust"))}
    response = page.post(f"/clusters/{cluster.pk}/edit/", data)
    assert response.status_code == 302, (
        getattr(response, "context", {}) and response.context["form"].errors
    )
    cluster.refresh_from_db()
    assert (cluster.flavor, cluster.description) == ("binary", "edited")
    # The service refuses it whatever the door.
    cluster.flavor = ClusterFlavor.KUBEADM
    from clusterpanel.errors import InputError
    from nodes import services as inventory

    with pytest.raises(InputError) as caught:
        inventory.update_cluster(cluster, SETUP)
    assert caught.value.field == "flavor"


def test_settings_through_the_api_with_errors_by_name_and_an_audited_import(
    api_client: Callable[[str], APIClient],
) -> None:
    cluster = make_cluster("bin", flavor=ClusterFlavor.BINARY)
    url = f"/api/v1/clusters/{cluster.pk}/binary-settings/"
    shown = api_client("viewer").get(url).json()
    assert shown["cert_dir"] == "/etc/k8s/ssl" and shown["updated_at"] is None
    assert "ca_config" not in shown
    assert (
        api_client("viewer").patch(url, {"cert_dir": "/srv/ssl"}, format="json").status_code == 403
    )

    api = api_client("operator")
    bad = api.patch(
        url,
        {
            "cert_dir": "/etc/k8s/../ssl",
            "service_user": "Kube Admin",
            "service_node_port_range": "40000-30000",
            "ipvs_scheduler": "fastest",
            "install_prefix": "/opt/k8s; rm -rf /",
        },
        format="json",
    )
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {
        "cert_dir", "service_user", "service_node_port_range", "ipvs_scheduler", "install_prefix",
    }  # fmt: skip
    assert not ClusterBinarySettings.objects.exists()

    broken = json.loads(json.dumps(CA_CONFIG))
    broken["signing"]["profiles"]["client"]["expiry"] = "forever"
    refused = api.patch(url, {"ca_config": json.dumps(broken)}, format="json")
    assert refused.status_code == 400
    (message,) = refused.json()["errors"]["ca_config"]
    assert message.startswith("signing.profiles.client.expiry:")
    truncated = api.patch(url, {"ca_config": json.dumps(CA_CONFIG)[:40]}, format="json")
    assert truncated.json()["errors"]["ca_config"][0].startswith("$: the file is not JSON")

    saved = api.patch(
        url, {"ca_config": json.dumps(CA_CONFIG), "cert_dir": "/etc/kubernetes/ssl"}, format="json"
    )
    assert saved.status_code == 200, saved.content
    assert saved.json()["signing_profiles"]["client"]["expiry"] == "43800h"
    event = AuditEvent.objects.get(action="binary_settings.update")
    assert event.details == {"fields": ["cert_dir", "signing_profiles"], "ca_config": True}

    # A kubeadm cluster has no binary layout to edit.
    kubeadm = make_cluster("kadm")
    other = api.patch(f"/api/v1/clusters/{kubeadm.pk}/binary-settings/", {}, format="json")
    assert other.status_code == 400 and "cluster" in other.json()["errors"]

    # The plan signs with the imported profiles, into the configured directory.
    make_nodes(cluster, [("cp-1", "10.0.0.11", "control-plane"), ("w-1", "10.0.1.1", "worker")])
    cluster.ca_validity_days = 7300
    cluster.save()
    certificate_services.issue_missing(cluster, actor=SETUP)
    plan = certificate_services.current_plan(cluster)
    assert plan.get("admin").validity.days == 43800 // 24
    worker = cluster.nodes.get(name="w-1")
    files = certificate_services.binary_bundle_files(cluster, worker)
    assert set(files) == {
        "/etc/kubernetes/ssl/ca.pem",
        *(
            f"/etc/kubernetes/ssl/{base}{suffix}"
            for base in ("kube-proxy", "kubelet-client", "kubelet-server")
            for suffix in (".pem", "-key.pem", ".csr")
        ),
    }


def test_the_page_imports_an_uploaded_ca_config(web_client: Callable[[str], Client]) -> None:
    cluster = make_cluster("bin", flavor=ClusterFlavor.BINARY)
    url = f"/clusters/{cluster.pk}/binary-settings/"
    page = web_client("viewer").get(url)
    assert page.status_code == 200 and "Save settings" not in page.content.decode()
    form: dict[str, Any] = {
        name: getattr(binary_settings.settings_of(cluster), name) for name in binary_settings.FIELDS
    }
    form["signing_profiles"] = "{}"
    broken = json.dumps({"signing": {"profiles": {"server": {"usages": ["signing"]}}}})
    upload = io.BytesIO(broken.encode())
    upload.name = "ca-config.json"
    refused = web_client("operator").post(url, {**form, "ca_config_file": upload})
    assert refused.status_code == 400
    errors = refused.context["form"].errors["ca_config"]
    assert errors[0].startswith("signing.profiles.server.expiry:")
    upload = io.BytesIO(json.dumps(CA_CONFIG).encode())
    upload.name = "ca-config.json"
    saved = web_client("operator").post(url, {**form, "ca_config_file": upload})
    assert saved.status_code == 302
    stored = ClusterBinarySettings.objects.get(cluster=cluster)
    assert stored.signing_profiles == CA_CONFIG["signing"]["profiles"]
