"""nginx or haproxy configuration in front of the cluster's control-plane nodes."""

from __future__ import annotations

from clusterpanel.errors import InputError
from nodes.models import Cluster, Node, NodeRole
from pki.domain import loadbalancer
from pki.services.certificates.spec import apiserver_port

# Debian and Ubuntu build nginx's stream module as a dynamic module (libnginx-mod-stream).
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def _backend_name(node: Node) -> str:
    # Backend names must be DNS labels; node names may be dotted subdomains.
    return node.name.replace(".", "-")[:63].strip("-")


def load_balancer_config(cluster: Cluster, kind: str) -> str:
    """nginx (``stream``) or haproxy configuration over the cluster's control-plane nodes."""
    nodes = cluster.nodes.filter(role=NodeRole.CONTROL_PLANE).order_by("name")
    port = apiserver_port(cluster)
    backends = [(_backend_name(node), str(node.address), port) for node in nodes]
    try:
        if kind == "nginx":
            return loadbalancer.render_nginx_stream(
                cluster.name,
                backends,
                cluster.endpoint_port,
                stream_module_path=NGINX_STREAM_MODULE,
            )
        if kind == "haproxy":
            return loadbalancer.render_haproxy(cluster.name, backends, cluster.endpoint_port)
    except loadbalancer.LoadBalancerError as error:
        raise InputError(str(error), "backends") from None
    raise InputError("must be nginx or haproxy", "kind")
