"""``GET /api/v1/clusters/?name=`` lists only the cluster of exactly that name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.factories import make_cluster


@pytest.mark.django_db
def test_the_name_filter_matches_exactly_and_an_unknown_name_is_an_empty_list(
    api_client: Callable[[str], Any],
) -> None:
    for name in ("prod", "prod-eu", "staging"):
        make_cluster(name)
    client = api_client("viewer")

    found = client.get("/api/v1/clusters/", {"name": "prod"})
    assert found.status_code == 200
    assert [row["name"] for row in found.json()["results"]] == ["prod"]
    assert found.json()["count"] == 1

    # Exact: neither a prefix nor another case names a cluster.
    for other in ("pro", "PROD", "nowhere", "prod\0", "p" * 64, " prod"):
        missing = client.get("/api/v1/clusters/", {"name": other})
        assert missing.status_code == 200, other
        assert missing.json()["results"] == [] and missing.json()["count"] == 0, other

    # Without the filter (or with it empty) every cluster is listed.
    everyone = client.get("/api/v1/clusters/", {"name": ""}).json()
    assert [row["name"] for row in everyone["results"]] == ["prod", "prod-eu", "staging"]


@pytest.mark.django_db
def test_the_name_filter_combines_with_paging_and_leaves_detail_urls_alone(
    api_client: Callable[[str], Any],
) -> None:
    # More clusters than one page holds (PAGE_SIZE is 50): the one asked for sorts last.
    for index in range(55):
        make_cluster(f"c{index:02d}")
    client = api_client("viewer")
    assert client.get("/api/v1/clusters/").json()["next"] is not None

    answer = client.get("/api/v1/clusters/", {"name": "c54"}).json()
    assert [row["name"] for row in answer["results"]] == ["c54"]
    assert answer["count"] == 1 and answer["next"] is None and answer["previous"] is None
    # A second page of a one-row answer does not exist, as for any list.
    assert client.get("/api/v1/clusters/", {"name": "c54", "page": 2}).status_code == 404

    # A detail URL is named by its id; a stray ?name= does not hide it.
    other = make_cluster("elsewhere")
    detail = client.get(f"/api/v1/clusters/{other.pk}/", {"name": "c54"})
    assert detail.status_code == 200 and detail.json()["name"] == "elsewhere"


@pytest.mark.django_db
def test_the_schema_lists_the_name_filter(web_client: Callable[[str], Any]) -> None:
    schema = yaml.safe_load(web_client("viewer").get("/api/schema/").content)
    parameters = schema["paths"]["/api/v1/clusters/"]["get"]["parameters"]
    names = {parameter["name"]: parameter for parameter in parameters}
    assert names["name"]["in"] == "query"
    assert names["name"]["schema"]["type"] == "string"
    # Only the list takes it.
    detail = schema["paths"]["/api/v1/clusters/{id}/"]["get"].get("parameters", [])
    assert "name" not in {parameter["name"] for parameter in detail}


@pytest.mark.django_db(transaction=True)
def test_the_example_client_finds_a_cluster_by_name_in_one_request(live_server: Any) -> None:
    """examples/panel_client.py against the live API: a name beyond the first page is found
    with one filtered request, not by paging through every cluster."""
    import sys

    from clusterpanel.models import ApiToken
    from tests.factories import make_user
    from tests.integration.examples.scripts import EXAMPLES

    for index in range(55):
        make_cluster(f"c{index:02d}")
    _token, key = ApiToken.issue(make_user("lookup-viewer", "viewer"), "lookup")
    sys.path.insert(0, str(EXAMPLES))
    try:
        import panel_client
    finally:
        sys.path.remove(str(EXAMPLES))
        sys.modules.pop("panel_client", None)

    client = panel_client.PanelClient(live_server.url, key)
    sent: list[tuple[str, str, dict[str, Any] | None]] = []
    request = client.request

    def recorded(method: str, path: str, **kwargs: Any) -> Any:
        sent.append((method, path, kwargs.get("query")))
        return request(method, path, **kwargs)

    client.request = recorded  # type: ignore[method-assign]
    assert client.cluster("c54")["name"] == "c54"
    assert sent == [("GET", "clusters/", {"name": "c54"})]
    sent.clear()
    with pytest.raises(panel_client.UsageError, match="no cluster named 'nowhere'"):
        client.cluster("nowhere")
    assert sent == [("GET", "clusters/", {"name": "nowhere"})]
