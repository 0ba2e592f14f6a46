"""The "Import binary cluster PKI" page of a binary-installed cluster's Certificates tab."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from clusterpanel.errors import InputError
from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user
from nodes.models import Cluster, ClusterFlavor
from pki.forms.binary_import import BinaryImportForm
from pki.services.certificates.binary_import import import_binary_cluster


def binary_import(request: HttpRequest, pk: int) -> HttpResponse:
    """The upload form; after an import, the mapping table and the findings."""
    cluster = get_for_user(request, Cluster, pk, "manage_ca")
    if cluster.flavor != ClusterFlavor.BINARY:
        raise Http404("only binary-installed clusters have this import")
    result: dict[str, Any] | None = None
    if request.method == "POST":
        form = BinaryImportForm(request.POST, request.FILES)
        if form.is_valid():
            units = form.cleaned_data.get("units")
            try:
                imported = import_binary_cluster(
                    cluster,
                    bytes(form.cleaned_data["certificates"].read()),
                    bytes(units.read()) if units is not None else None,
                    actor=Actor.from_request(request),
                )
            except InputError as exc:
                form.apply_error(exc)
            else:
                result = imported.as_dict()
                form = BinaryImportForm()
    else:
        form = BinaryImportForm()
    context = {"cluster": cluster, "form": form, "result": result}
    return render(request, "pki/binary_import.html", context, status=200)
