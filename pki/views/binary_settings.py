"""The page of a binary install's layout settings (directories, user, kube-proxy, profiles).

Thin: the access check, the form, one call into ``pki.services.binary_settings``, a render.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from clusterpanel.errors import InputError
from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user, require
from clusterpanel.web.forms import add_errors
from nodes.models import Cluster
from pki.forms.binary_settings import BinarySettingsForm
from pki.services import binary_settings
from pki.services.certificates import is_binary


def binary_settings_page(request: HttpRequest, pk: int) -> HttpResponse:
    """GET shows the settings (viewers too); POST saves them (operators and admins)."""
    cluster = get_for_user(request, Cluster, pk)
    stored = binary_settings.settings_of(cluster)
    status = 200
    if request.method == "POST":
        require(request, "edit_inventory")
        form = BinarySettingsForm.for_settings(stored, request.POST, request.FILES)
        if form.is_valid():
            try:
                binary_settings.update(cluster, form.values, actor=Actor.from_request(request))
                messages.success(request, "Binary install settings saved.")
                return redirect("binary_settings", pk=cluster.pk)
            except InputError as error:
                add_errors(form, error)
        status = 400
    else:
        form = BinarySettingsForm.for_settings(stored)
    context = {"cluster": cluster, "form": form, "binary": is_binary(cluster), "stored": stored}
    return render(request, "pki/binary_settings.html", context, status=status)
