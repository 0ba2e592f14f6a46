"""What the PKI API views share: the 409 answer with its way out, query flags, the cluster."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework.request import Request
from rest_framework.views import APIView

from clusterpanel.api.errors import ConflictError
from clusterpanel.api.params import query_id
from nodes.models import Cluster
from pki.services import bootstrap as bootstrap_services


def unavailable(error: bootstrap_services.JoinUnavailable) -> ConflictError:
    """The 409 answer; a missing token or certificate key comes with the API's way out."""
    if isinstance(error, bootstrap_services.NoUsableToken):
        return ConflictError(f"{error} Create a token, or ask for a new one with new_token=1.")
    if isinstance(error, bootstrap_services.NoCertificateKey):
        return ConflictError(
            f"{error} Make one with POST /api/v1/clusters/{error.cluster_pk}/certificate-key/."
        )
    return ConflictError(str(error))


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def cluster_filter(request: Request) -> int | None:
    return query_id(request, "cluster", "a cluster id")


# --- per-cluster views ---------------------------------------------------------------------------


class ClusterView(APIView):
    """A view of one cluster: ``/clusters/{pk}/…``; it names its ``method_permissions``."""

    method_permissions: dict[str, str] = {}

    def cluster(self, pk: int) -> Cluster:
        return get_object_or_404(Cluster, pk=pk)
