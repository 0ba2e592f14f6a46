"""REST endpoints of the PKI. Thin: access check, input, one service call, audit, response.

Only two routes ever return private keys, both audited: the node bundle and the user
kubeconfig. Everything else answers certificates, fingerprints and reports.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from clusterpanel.api.params import is_object_id, query_id, query_int
from clusterpanel.api.parsers import JSONObjectParser
from clusterpanel.security.audit import Actor
from clusterpanel.web.responses import download
from nodes.models import Node
from nodes.rules.validation import MAX_VALIDITY_DAYS
from pki.api.serializers.certificates import (
    AuthoritySerializer,
    CAChoiceSerializer,
    CertificateIdsSerializer,
    CertificateSerializer,
    CfsslSignSerializer,
    KubeconfigSerializer,
    RenewSerializer,
    SanCheckSerializer,
)
from pki.api.views.base import ClusterView
from pki.models.certificates import Certificate, CertificateAuthority, CertificateStatus
from pki.services import certificates as certificate_services

# Uploads are PEM files and small archives; anything bigger is not a PKI.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def upload_bytes(request: Request, name: str, *, required: bool = True) -> bytes | None:
    """A field given as an uploaded file (multipart) or as text (JSON or form)."""
    upload = request.FILES.get(name)
    if upload is not None:
        if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
            raise serializers.ValidationError({name: ["the file is larger than 10 MiB"]})
        return bytes(upload.read())
    value = request.data.get(name)
    if value is not None and not isinstance(value, str):
        raise serializers.ValidationError({name: ["must be text or an uploaded file"]})
    if isinstance(value, str) and value.strip():
        return value.encode()
    if required:
        raise serializers.ValidationError({name: ["This field is required."]})
    return None


class PKIView(ClusterView):
    """Base of the certificate views: issuing needs ``issue_certificates``; uploads allowed."""

    write_permission = "issue_certificates"
    parser_classes = [JSONObjectParser, MultiPartParser, FormParser]


class IssueView(PKIView):
    """POST: issue whatever the current topology lacks (idempotent)."""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        result = certificate_services.issue_missing(cluster, actor=Actor.from_request(request))
        return Response(
            {
                "created": CertificateSerializer(result.created, many=True).data,
                "warnings": result.warnings,
            },
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


def coverage_data(report: certificate_services.CoverageReport) -> dict[str, Any]:
    """JSON form of a coverage report."""
    return {
        "ok": report.ok,
        "stale": [
            {
                "certificate": s.certificate.pk,
                "name": s.certificate.name,
                "node": s.certificate.node_name,
                "missing_sans": s.missing_sans,
            }
            for s in report.stale
        ],
        "missing": [{"name": s.name, "node": s.node or ""} for s in report.missing],
        "orphaned": [
            {"certificate": c.pk, "name": c.name, "node": c.node_name} for c in report.orphaned
        ],
        "warnings": report.warnings,
    }


class CoverageView(PKIView):
    """GET: which files are missing or no longer cover the topology."""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        return Response(coverage_data(certificate_services.coverage(self.cluster(pk))))


class ReissueView(PKIView):
    """POST: reissue stale certificates (or the chosen ones) with the same CAs and sa keys."""

    @extend_schema(request=CertificateIdsSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        params = CertificateIdsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        created = certificate_services.reissue(
            cluster, params.validated_data.get("certificates"), actor=Actor.from_request(request)
        )
        return Response({"reissued": CertificateSerializer(created, many=True).data})


class RenewView(PKIView):
    """POST: renew leaf certificates (all active, or the chosen ones)."""

    @extend_schema(request=RenewSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        params = RenewSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        created = certificate_services.renew(
            cluster,
            data.get("certificates"),
            reuse_key=data["reuse_key"],
            validity_days=data.get("validity_days"),
            actor=Actor.from_request(request),
        )
        return Response({"renewed": CertificateSerializer(created, many=True).data})


class SanCheckView(PKIView):
    """POST {host, certificate?}: covered or not, as Go's TLS client would say it.

    Without ``certificate`` every active apiserver certificate of the cluster is checked. A read:
    viewers may ask.
    """

    write_permission = "view"

    @extend_schema(request=SanCheckSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        params = SanCheckSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        host = params.validated_data["host"]
        cert_id = params.validated_data.get("certificate")
        if cert_id is not None:
            rows = list(Certificate.objects.filter(cluster=cluster, pk=cert_id))
            if not rows:
                raise serializers.ValidationError(
                    {"certificate": ["no certificate with this id in the cluster"]}
                )
        else:
            rows = list(Certificate.objects.tree().filter(cluster=cluster, name="apiserver"))
        results = []
        for row in rows:
            outcome = certificate_services.check_san(row, host)
            results.append(
                {
                    "certificate": row.pk,
                    "name": row.name,
                    "node": row.node_name,
                    "covered": outcome.covered,
                    "message": outcome.message,
                    "san_to_add": outcome.san_to_add,
                }
            )
        return Response({"host": host, "results": results})


class EndpointCheckView(PKIView):
    """GET: every endpoint name of the cluster against every apiserver certificate."""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        results = certificate_services.endpoint_checks(self.cluster(pk))
        return Response({"ok": all(r["covered"] for r in results), "results": results})


class ExpirationView(PKIView):
    """GET: ``kubeadm certs check-expiration`` per control-plane node; ``?output=text`` for text."""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response | HttpResponse:
        tables = certificate_services.expiration(self.cluster(pk))
        if request.query_params.get("output") == "text":
            text = "".join(f"# {t['node']}\n{t['text']}\n" for t in tables)
            return HttpResponse(text, content_type="text/plain; charset=utf-8")
        return Response({"nodes": tables})


class AuthorityListView(PKIView):
    """GET: the cluster's CAs, active first, then the history."""

    @extend_schema(request=None, responses=AuthoritySerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        rows = CertificateAuthority.objects.filter(cluster=cluster).order_by("status", "name")
        return Response(AuthoritySerializer(rows, many=True).data)


class BundleView(PKIView):
    """GET ?node=<id>: the node's /etc/kubernetes as tar.gz, with keys. Audited. Control-plane
    and etcd bundles (CA keys, etcd's keys) are admin downloads: 403 with the reason otherwise."""

    method_permissions = {"GET": "download_bundle"}

    @extend_schema(request=None, responses=OpenApiTypes.BINARY)
    def get(self, request: Request, pk: int) -> HttpResponse:
        cluster = self.cluster(pk)
        node_id = query_id(request, "node", "the node id")
        if node_id is None:
            raise serializers.ValidationError({"node": ["give the node id: ?node=<id>"]})
        node = Node.objects.filter(cluster=cluster, pk=node_id).first()
        if node is None:
            raise serializers.ValidationError({"node": ["no node with this id in the cluster"]})
        data = certificate_services.download_bundle(
            cluster, node, actor=Actor.from_request(request)
        )
        filename = f"{cluster.name}-{node.name}-etc-kubernetes.tar.gz"
        return download(data, filename, "application/gzip")


class KubeconfigView(PKIView):
    """POST {username, groups, validity}: a kubeconfig with the user's own client cert."""

    write_permission = "download_bundle"

    @extend_schema(request=KubeconfigSerializer, responses=OpenApiTypes.STR)
    def post(self, request: Request, pk: int) -> HttpResponse:
        cluster = self.cluster(pk)
        params = KubeconfigSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        text, row = certificate_services.user_kubeconfig(
            cluster,
            data["username"],
            data["groups"],
            data.get("validity") or cluster.certificate_validity_days,
            actor=Actor.from_request(request),
        )
        response = download(text, f"{row.common_name}.conf")
        response.status_code = status.HTTP_201_CREATED
        return response


def _import_response(result: certificate_services.ImportResult) -> Response:
    return Response(
        {
            "authorities": AuthoritySerializer(result.authorities, many=True).data,
            "certificates": CertificateSerializer(result.certificates, many=True).data,
            "superseded": result.superseded,
            "notes": result.notes,
        },
        status=status.HTTP_201_CREATED,
    )


class KubeadmImportView(PKIView):
    """POST multipart ``archive`` (+ optional ``node``): take over an existing kubeadm PKI."""

    write_permission = "manage_ca"

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        data = upload_bytes(request, "archive")
        node = None
        node_id = request.data.get("node")
        if node_id not in (None, ""):
            if is_object_id(node_id):
                node = Node.objects.filter(cluster=cluster, pk=int(node_id)).first()
            if node is None:
                raise serializers.ValidationError({"node": ["no node with this id in the cluster"]})
        result = certificate_services.import_kubeadm_archive(
            cluster, data or b"", node, actor=Actor.from_request(request)
        )
        return _import_response(result)


class CfsslCAImportView(PKIView):
    """POST ``ca_pem`` + ``ca_key_pem`` (+ ``name``): make a cfssl CA one of the cluster's CAs."""

    write_permission = "manage_ca"

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        params = CAChoiceSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        ca_pem = upload_bytes(request, "ca_pem", required=False)
        key_pem = upload_bytes(request, "ca_key_pem", required=False)
        missing = {
            n: ["This field is required."]
            for n, v in (("ca_pem", ca_pem), ("ca_key_pem", key_pem))
            if v is None
        }
        if missing:
            raise serializers.ValidationError(missing)
        result = certificate_services.import_cfssl_ca(
            cluster,
            ca_pem or b"",
            key_pem or b"",
            params.validated_data["name"],
            actor=Actor.from_request(request),
        )
        return _import_response(result)


class CfsslCsrCAView(PKIView):
    """POST ``ca_csr`` (a cfssl ca-csr.json) (+ ``name``): create a new CA from it."""

    write_permission = "manage_ca"

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        params = CAChoiceSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        csr = upload_bytes(request, "ca_csr")
        result = certificate_services.create_ca_from_cfssl_csr(
            cluster, csr or b"", params.validated_data["name"], actor=Actor.from_request(request)
        )
        return _import_response(result)


class CfsslSignView(PKIView):
    """POST ``ca_config``, ``profile`` and ``csr_json`` or ``csr_pem``: sign like cfssl."""

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        params = CfsslSignSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        uploads: dict[str, bytes | None] = {}
        errors: dict[str, Any] = {}
        for name in ("ca_config", "csr_json", "csr_pem"):
            try:
                uploads[name] = upload_bytes(request, name, required=name == "ca_config")
            except serializers.ValidationError as error:
                errors.update(error.detail)  # type: ignore[arg-type]
        if errors:
            raise serializers.ValidationError(errors)
        row = certificate_services.cfssl_sign(
            cluster,
            uploads["ca_config"] or b"",
            params.validated_data["profile"],
            csr_json=uploads["csr_json"],
            csr_pem=uploads["csr_pem"],
            authority=params.validated_data["authority"],
            actor=Actor.from_request(request),
        )
        return Response(CertificateSerializer(row).data, status=status.HTTP_201_CREATED)


class InspectView(PKIView):
    """POST ``pem`` (text or file): inspect an uploaded certificate; nothing is stored."""

    write_permission = "view"

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        data = upload_bytes(request, "pem")
        return Response({"certificates": certificate_services.inspect_upload(data or b"")})


class CertificateViewSet(viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """Certificates, ordered by expiry. Filters: ``cluster``, ``expiring_within_days``,
    ``name``, ``node``, ``kind``, ``status`` (``active`` by default, ``all`` for history)."""

    serializer_class = CertificateSerializer

    def get_queryset(self) -> QuerySet[Certificate]:
        queryset = Certificate.objects.select_related("authority").order_by(
            "not_after", "name", "node_name", "pk"
        )
        if self.action != "list":
            return queryset
        params = self.request.query_params
        for name in ("cluster", "node"):
            query_id(self.request, name, "a whole number")
        # Days ahead: up to the longest validity a certificate of the panel can have.
        within = query_int(self.request, "expiring_within_days", 0, MAX_VALIDITY_DAYS)
        if params.get("cluster"):
            queryset = queryset.filter(cluster_id=int(params["cluster"]))
        if params.get("node"):
            queryset = queryset.filter(node_id=int(params["node"]))
        if within is not None:
            queryset = queryset.expiring_within(within)
        if params.get("name"):
            queryset = queryset.filter(name=params["name"])
        if params.get("kind"):
            queryset = queryset.filter(kind=params["kind"])
        wanted = params.get("status", CertificateStatus.ACTIVE)
        if wanted != "all":
            if wanted not in CertificateStatus.values:
                raise serializers.ValidationError(
                    {"status": [f"one of {', '.join(CertificateStatus.values)} or all"]}
                )
            queryset = queryset.filter(status=wanted)
        return queryset

    @extend_schema(responses={(200, "application/x-pem-file"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def pem(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The certificate alone, as PEM (never its key)."""
        row = self.get_object()
        name = row.name.replace("/", "-").replace(":", "-")
        return download(row.certificate_pem.encode(), f"{name}.crt", "application/x-pem-file")

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def inspect(self, request: Request, pk: str | None = None) -> Response:
        """Everything the inspector shows about this certificate."""
        return Response(certificate_services.inspect_stored(self.get_object()))
