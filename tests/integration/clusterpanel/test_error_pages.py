"""Error pages in the panel's layout, with its navigation and the way out.

403 and 404 are rendered with the request (navigation, the user, the role); 500 by Django's
``server_error`` view with no context at all, so it must render from nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.test import Client
from django.urls import path

from clusterpanel import urls as panel_urls
from nodes.models import Cluster


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a view")


urlpatterns = [path("boom/", boom), *panel_urls.urlpatterns]


@pytest.mark.django_db
def test_a_404_is_a_page_of_the_panel_with_its_navigation(
    web_client: Callable[[str | None], Any],
) -> None:
    response = web_client("viewer").get("/clusters/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert '<nav aria-label="Main">' in html and 'href="/clusters/"' in html
    assert "Not found" in html and "/clusters/999999/" in html
    assert "was deleted" in html
    anonymous = Client().get("/no-such-page/")
    assert anonymous.status_code == 404 and 'href="/login/' in anonymous.content.decode()


@pytest.mark.django_db
def test_a_403_says_why_and_what_to_do(
    web_client: Callable[[str | None], Any], cluster: Cluster
) -> None:
    viewer = web_client("viewer").get(f"/clusters/{cluster.pk}/edit/")
    assert viewer.status_code == 403
    html = viewer.content.decode()
    assert '<nav aria-label="Main">' in html and "Not allowed" in html
    assert "Your role (viewer) does not allow" in html and "another role" in html
    outsider = web_client("outsider").get("/clusters/").content.decode()
    assert "has no role yet" in outsider


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_500_is_a_page_of_the_panel_rendered_without_the_request(
    personas: dict[str, Any],
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(personas["viewer"])
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and '<nav aria-label="Main">' in html
    assert 'href="/clusters/"' in html and 'href="/static/css/panel.css"' in html
    assert "a bug in a view" not in html  # nothing of the error reaches the page
    # What Django's server_error does: the template alone, no request, no context processors.
    alone = render_to_string("500.html")
    assert "Something went wrong" in alone and 'href="/jobs/"' in alone


@pytest.mark.django_db
def test_a_refused_csrf_token_is_a_page_of_the_panel(personas: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas["operator"])
    response = client.post("/clusters/new/", {"name": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert '<nav aria-label="Main">' in html and "Form expired" in html
    assert "Nothing was saved" in html and "Reload the page" in html
