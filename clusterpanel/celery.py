"""The Celery application. Broker settings come from Django settings (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clusterpanel.settings")

app = Celery("clusterpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "worker-heartbeat": {"task": "clusterpanel.tasks.heartbeat", "schedule": 30.0},
    # Ends running jobs whose worker stopped heartbeating (clusterpanel/jobs/runner.py).
    "reap-jobs": {"task": "clusterpanel.jobs.reap_jobs", "schedule": 30.0},
    # Takes the etcd backups that clusters' etcd_backup_interval_hours make due. Named by string:
    # the task lives in the nodes app (nodes/tasks.py), which this package does not import.
    "schedule-etcd-backups": {"task": "nodes.schedule_etcd_backups", "schedule": 300.0},
    # Sends the health rounds that clusters' health_interval_seconds make due (nodes/health/).
    "schedule-health-rounds": {"task": "nodes.schedule_health_rounds", "schedule": 10.0},
    # Deletes health history older than CLUSTERPANEL_HEALTH_HISTORY_DAYS.
    "prune-health-history": {"task": "nodes.prune_health_history", "schedule": 3600.0},
    # A certificate scan (cert-scan) of every cluster with nodes, daily.
    "schedule-cert-scans": {"task": "nodes.schedule_cert_scans", "schedule": 86400.0},
    # Alerts (nodes/alerts): certificate expiry bands once a day (and at beat's start: it sends
    # each band once whatever runs it), and the retry sweep of webhook and e-mail deliveries.
    "alert-certificate-expiry": {"task": "nodes.alert_certificate_expiry", "schedule": 86400.0},
    "retry-alert-deliveries": {"task": "nodes.retry_alert_deliveries", "schedule": 60.0},
    # Clusters' renewal policies (nodes/renewal): inside its maintenance window a cluster whose
    # leaves are due is renewed and rolled out, once per due period whatever runs it.
    "run-renewal-policies": {"task": "nodes.run_renewal_policies", "schedule": 600.0},
}
