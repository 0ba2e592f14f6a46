"""The fleet expiry table's route, included before the PKI app's routes: their
``certificates/<id>/`` would otherwise take ``certificates/fleet/`` for an id."""

from __future__ import annotations

from django.urls import path

from nodes.api.findings import FleetCertificateView

urlpatterns = [
    path("certificates/fleet/", FleetCertificateView.as_view(), name="certificate-fleet"),
]
