"""Routes of the jobs pages (the API's are in clusterpanel/jobs/api.py)."""

from __future__ import annotations

from django.urls import path

from clusterpanel.jobs import views

urlpatterns = [
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/log/", views.job_log, name="job_log"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job_retry"),
    # The nodes app links its cluster page here.
    path("clusters/<int:pk>/jobs/", views.cluster_jobs, name="cluster_jobs"),
    path("clusters/<int:pk>/jobs/new/", views.job_new, name="job_new"),
]
