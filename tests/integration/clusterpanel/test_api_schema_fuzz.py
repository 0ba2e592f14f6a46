"""Every API operation, fuzzed from the panel's own OpenAPI schema: no request makes a 5xx and
every response matches what the schema declares (status, content type, body).

The schema and the requests go through the WSGI application in-process: nothing leaves the test.
Each operation is one test over its own database (a cluster with nodes and issued PKI, an admin
token), so destructive operations (deleting the cluster) cannot spoil the others.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from clusterpanel.models import ApiToken
from clusterpanel.wsgi import application
from nodes.models import NodeRole
from pki.services import bootstrap as bootstrap_services
from pki.services.certificates import issue_missing
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user


@pytest.fixture
def in_process(db: Any) -> Iterator[None]:
    """Requests through the WSGI handler keep the test's database connection (and transaction),
    as Django's test client does: the handler would otherwise close it at each request's end."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def admin_key(in_process: None) -> str:
    # ECDSA keys: the tree is issued once per operation, and RSA-2048's ~20 keys take seconds
    # each time; what the responses look like does not depend on the key algorithm.
    cluster = make_cluster("prod", key_algorithm="ECDSA-P256")
    # Loopback addresses on a port nothing listens on: scanning a host key is refused at once
    # and never leaves the machine.
    port = _closed_port()
    make_node(cluster, NodeRole.CONTROL_PLANE, "cp-1", "127.0.9.11", ssh_port=port)
    make_node(cluster, NodeRole.WORKER, "worker-1", "127.0.9.21", ssh_port=port)
    issue_missing(cluster, actor=SETUP)
    bootstrap_services.ensure_certificate_key(cluster, actor=SETUP)
    _, key = ApiToken.issue(make_user("fuzz-admin", "admin"), name="schema fuzz")
    return key


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _schema() -> dict[str, Any]:
    """The document ``/api/schema/`` serves, built by the same generator (serving it needs a
    logged-in user, hence a database, which collection has not got)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


schema = schemathesis.openapi.from_dict(_schema())
schema.app = application


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_schema(case: Any, admin_key: str) -> None:
    # Numeric ids point at the fixture's first objects (the cluster, a node, a certificate …),
    # which random ids would almost never find: the operations then answer with real objects.
    for parameters in (case.path_parameters, case.query):
        for name, value in (parameters or {}).items():
            if isinstance(value, int) and not isinstance(value, bool) and name != "limit":
                parameters[name] = 1
    checks = [not_a_server_error, response_schema_conformance]
    if case.path.endswith("/kubeadm-config/"):
        # kubeadm's configuration is a stream of several YAML documents (a file, format: binary);
        # schemathesis parses application/yaml bodies as one document and cannot read it.
        checks = [not_a_server_error]
    case.call_and_validate(headers={"Authorization": f"Token {admin_key}"}, checks=checks)
