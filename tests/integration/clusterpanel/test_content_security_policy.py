"""The Content-Security-Policy on every response, and no template that would need more.

Chromium checks that the pages need no more than the policy allows
(tests/e2e/test_content_security_policy.py); here every kind of response carries the header
(tests/integration/clusterpanel/test_get_writes_nothing.py checks every GET route), and no
template brings an inline script, style or event handler back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from clusterpanel.web.middleware import CONTENT_SECURITY_POLICY
from nodes.models import Cluster

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


@pytest.mark.django_db
@pytest.mark.urls("tests.integration.clusterpanel.test_error_pages")
def test_every_kind_of_response_carries_the_policy(
    web_client: Callable[[str | None], Any], cluster: Cluster, personas: dict[str, Any]
) -> None:
    operator = web_client("operator")
    responses = {
        "page": operator.get("/"),
        "htmx fragment": operator.get(f"/clusters/{cluster.pk}/join/", HTTP_HX_REQUEST="true"),
        "download": operator.get(f"/clusters/{cluster.pk}/config/audit-policy.yaml"),
        "redirect": operator.post(f"/clusters/{cluster.pk}/config/certificate-key/"),
        "api": operator.get("/api/v1/clusters/"),
        "browsable api": operator.get("/api/v1/", HTTP_ACCEPT="text/html"),
        "api docs": operator.get("/api/docs/"),
        "admin login": operator.get("/admin/"),
        "login": Client().get("/login/"),
        "health": Client().get("/healthz"),
        "static": Client().get("/static/css/panel.css"),
        "403": web_client("viewer").get(f"/clusters/{cluster.pk}/edit/"),
        "404": operator.get("/no-such-page/"),
        "500": _server_error(personas["viewer"]),
    }
    for kind, response in responses.items():
        assert response.get("Content-Security-Policy") == CONTENT_SECURITY_POLICY, kind
        if hasattr(response, "close"):
            response.close()
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'self'")
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def _server_error(user: Any) -> Any:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.get("/boom/")
    assert response.status_code == 500
    return response


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline script"),
    (re.compile(r"<style\b", re.I), "a style element"),
    (re.compile(r"\sstyle=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+=", re.I), "an event handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
    (re.compile(r"\shx-on", re.I), "an hx-on handler (evaluated code)"),
]


def test_no_template_has_inline_script_style_or_handlers() -> None:
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = re.sub(r"{% comment %}.*?{% endcomment %}", "", template.read_text(), flags=re.S)
        for pattern, what in INLINE:
            if pattern.search(text):
                found.append(f"{template.relative_to(TEMPLATES)}: {what}")
    assert not found, "\n".join(found)
