"""The browsable API's HTML under the panel's Content-Security-Policy.

DRF's page has two inline styles: a ``<style>`` element with pygments' CSS for highlighted
descriptions, and ``style`` attributes on the "Extra Actions" and "Filters" buttons. The policy
allows neither, so the page goes without highlighting (the panel's descriptions hold no code),
and ``templates/rest_framework/api.html`` draws the extra actions with a class instead. The
panel's API has no filter backends; the Filters button stays off until one needs it.
"""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BrowsableAPIRenderer


class PanelBrowsableAPIRenderer(BrowsableAPIRenderer):
    def get_context(self, data: Any, accepted_media_type: Any, renderer_context: Any) -> Any:
        context = super().get_context(data, accepted_media_type, renderer_context)
        context["panel_extra_actions"] = context.get("extra_actions")
        context["extra_actions"] = None
        context["filter_form"] = None
        context["code_style"] = None
        return context
