"""Layout in Chromium, measured: boxes stay inside their columns and cards at a desktop width,
and no page scrolls sideways on a phone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nodes.models import Cluster
from pki.models import Certificate
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}

# Elements whose box reaches past the right edge of the viewport, outside any box that scrolls
# sideways on its own (a wide table in its scroll container may, the page may not).
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (["auto", "scroll"].includes(style.overflowX)) return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width && (box.right > width + 0.5 || box.left < -0.5) && !scrolls(el)) {
      out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ${box.left}-${box.right}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
          clientWidth: width, out: out.slice(0, 10)};
}"""

# For each item of a facts grid: how far its value's text reaches past its own column.
FACTS_SPILL = """(selector) => {
  const items = [...document.querySelectorAll(selector + " > div")];
  return items.map((item) => {
    const dd = item.querySelector("dd");
    const range = document.createRange();
    range.selectNodeContents(dd);
    const text = range.getBoundingClientRect();
    const column = item.getBoundingClientRect();
    return {
      name: item.querySelector("dt").textContent,
      spill: Math.max(0, text.right - column.right, column.left - text.left),
      scroll: dd.scrollWidth - dd.clientWidth,
    };
  });
}"""

# Cells of a table that reach outside the card the table is in, and its sideways scroll.
OUTSIDE_CARD = """(selector) => {
  const table = document.querySelector(selector);
  const card = table.closest(".card").getBoundingClientRect();
  const cells = [...table.querySelectorAll("th, td")].filter((cell) => {
    const box = cell.getBoundingClientRect();
    return box.right > card.right + 0.5 || box.left < card.left - 0.5;
  }).map((cell) => cell.textContent.trim().slice(0, 40));
  const scroller = table.closest(".table-scroll");
  return {cells: cells,
          scroll: scroller ? scroller.scrollWidth - scroller.clientWidth : 0,
          table: table.getBoundingClientRect().right, card: card.right};
}"""


@pytest.fixture
def lab(transactional_db: Any) -> Cluster:
    """Two control-plane nodes and a worker, with every certificate issued (ECDSA: fast)."""
    cluster = make_cluster(
        "lab", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_nodes(
        cluster,
        [
            ("cp-1", "10.0.0.11", "control-plane"),
            ("cp-2", "10.0.0.12", "control-plane"),
            ("w-1", "10.0.1.1", "worker"),
        ],
    )
    certificate_services.issue_missing(cluster, actor=SETUP)
    return cluster


def _no_sideways_scroll(page: Any, url: str) -> None:
    result = page.evaluate(OVERFLOWING)
    assert result["scrollWidth"] <= result["innerWidth"], (url, result)
    assert not result["out"], (url, result)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1400px", "390px"])
def test_the_inspector_keeps_every_value_in_its_own_column(
    lab: Cluster, page_as: Callable[[str], Any], viewport: dict[str, int]
) -> None:
    page = page_as("viewer")
    page.set_viewport_size(viewport)
    page.goto(f"/clusters/{lab.pk}/certificates/")
    row = Certificate.objects.tree().get(cluster=lab, name="apiserver", node_name="cp-1")
    page.locator(f"#cert-{row.pk} >> text=Inspect").click()
    page.locator("#inspector-panel").wait_for()
    items = page.evaluate(FACTS_SPILL, "#inspector-panel .facts")
    assert {"Not before", "Not after"} <= {item["name"] for item in items}
    spilled = [item for item in items if item["spill"] > 0.5 or item["scroll"] > 0]
    assert not spilled, spilled
    # The long fingerprints below the grid stay inside the card too.
    card = page.locator("#inspector").bounding_box()
    for value in page.locator("#inspector-panel dl.fingerprints dd").all():
        box = value.bounding_box()
        assert box["x"] + box["width"] <= card["x"] + card["width"] + 0.5
    _no_sideways_scroll(page, "inspector")


def test_the_ca_fingerprints_stay_inside_their_card_at_1400px(
    lab: Cluster, page_as: Callable[[str], Any]
) -> None:
    page = page_as("viewer")
    page.set_viewport_size(DESKTOP)
    page.goto(f"/clusters/{lab.pk}/authorities/")
    result = page.evaluate(OUTSIDE_CARD, "#authorities-table")
    assert not result["cells"], result
    assert result["scroll"] <= 0, result  # nothing hidden behind a scroll bar at this width
    fingerprint = page.locator("#authorities-table td.fingerprints code").first
    assert ":" in fingerprint.inner_text()  # the whole value is shown, wrapped
    _no_sideways_scroll(page, "authorities")


def test_no_page_scrolls_sideways_on_a_390px_phone(
    lab: Cluster, page_as: Callable[[str], Any]
) -> None:
    bootstrap_services.create_token(
        lab, bootstrap_services.validate_token_request(description="rack 4"), actor=SETUP
    )
    bootstrap_services.add_static_token(lab, token="s3cret", user="deployer", uid="1", actor=SETUP)
    page = page_as("admin")
    page.set_viewport_size(PHONE)
    node = lab.nodes.get(name="cp-1")
    for url in (
        "/",
        "/clusters/",
        "/jobs/",
        "/clusters/new/",
        f"/clusters/{lab.pk}/",
        f"/clusters/{lab.pk}/edit/",
        f"/clusters/{lab.pk}/delete/",
        f"/nodes/{node.pk}/edit/",
        f"/clusters/{lab.pk}/certificates/",
        f"/clusters/{lab.pk}/authorities/",
        f"/clusters/{lab.pk}/tokens/",
        f"/clusters/{lab.pk}/config/",
        "/pki/inspect/",
    ):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        _no_sideways_scroll(page, url)
    # Every link of the top bar can be seen and reached on the phone's screen.
    page.goto("/")
    for link in page.locator("header.topbar a, header.topbar button").all():
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert link.is_visible()
