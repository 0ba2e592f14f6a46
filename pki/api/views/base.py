"""What the PKI API views share: the 409 answer, query flags and the cluster lookup."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.views import APIView

from clusterpanel.api.params import query_id
from nodes.models import Cluster
from pki.services import bootstrap as bootstrap_services


class Unavailable(APIException):
    """409: the request is fine but the cluster's state does not allow it (no usable token)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not available in the cluster's current state."
    default_code = "unavailable"


def unavailable(error: bootstrap_services.JoinUnavailable) -> Unavailable:
    """The 409 answer; a missing token comes with the API's way out."""
    if isinstance(error, bootstrap_services.NoUsableToken):
        return Unavailable(f"{error} Create a token, or ask for a new one with new_token=1.")
    return Unavailable(str(error))


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def cluster_filter(request: Request) -> int | None:
    return query_id(request, "cluster", "a cluster id")


def validation_error(error: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(error.message_dict)


# --- per-cluster views ---------------------------------------------------------------------------


class ClusterView(APIView):
    """A view of one cluster: ``/clusters/{pk}/…``; it names its ``method_permissions``."""

    method_permissions: dict[str, str] = {}

    def cluster(self, pk: int) -> Cluster:
        return get_object_or_404(Cluster, pk=pk)
