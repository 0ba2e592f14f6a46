"""``POST /api/v1/clusters/{id}/binary-import/``: take over a binary-installed cluster's PKI."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from clusterpanel.security.audit import Actor
from pki.api.views.certificates import PKIView, upload_bytes
from pki.services.certificates.binary_import import import_binary_cluster


class BinaryImportView(PKIView):
    """POST multipart ``certificates`` (+ ``units``) archives: map each certificate to its
    service from the unit flags, fill the ledger and answer the mapping and the findings."""

    write_permission = "manage_ca"

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        # The optional field first: a wrong type in it is named even when the other is missing.
        units = upload_bytes(request, "units", required=False)
        certificates = upload_bytes(request, "certificates")
        result = import_binary_cluster(
            cluster, certificates or b"", units, actor=Actor.from_request(request)
        )
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)
