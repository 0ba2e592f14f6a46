"""Beat's renewal task (named in clusterpanel/celery.py): every enabled policy, every 10 minutes."""

from __future__ import annotations

from celery import shared_task

from nodes.renewal import services


@shared_task(name="nodes.run_renewal_policies", ignore_result=True)
def run_renewal_policies() -> list[str]:
    """What each enabled policy did (``<cluster>: launched job 7``, ``…: skipped …``)."""
    return [
        f"{o.cluster}: {o.action}" + (f" job {o.job}" if o.job else f" ({o.detail})")
        for o in services.run_policies()
    ]
