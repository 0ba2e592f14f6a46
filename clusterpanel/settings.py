"""Django settings for clusterpanel, read from the environment (see .env.example).

The embedded default needs no server: SQLite and a filesystem Celery broker,
both under ``CLUSTERPANEL_DATA_DIR``. Setting ``DATABASE_URL`` and ``REDIS_URL``
switches the same code to PostgreSQL and Redis.

Importing these settings writes nothing. The data directory, its keys and the
empty database file are made by ``manage.py bootstrap_data_dir`` (which
``manage.py serve`` runs first, see clusterpanel/datadir.py); when something
they need is missing, loading them fails with a message saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

from clusterpanel import datadir
from clusterpanel.broker import SCHEME as FILESYSTEM_BROKER_SCHEME
from clusterpanel.env import (
    SQLITE_OPTIONS,
    database_from_url,
    env_bool,
    env_int,
    env_list,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
_needs = datadir.needs()
datadir.require(_needs)
DATA_DIR = _needs.data

DEBUG = env_bool("CLUSTERPANEL_DEBUG", False)
# Behind TLS (the docker compose deployment) cookies are secure and HTTP is redirected.
HTTPS = env_bool("CLUSTERPANEL_HTTPS", False)

SECRET_KEY = env_secret("CLUSTERPANEL_SECRET_KEY") or datadir.read_secret_file(
    _needs.secret_key_file
)
# Loopback names stay allowed so that container health checks reach /healthz.
ALLOWED_HOSTS = [
    *env_list("CLUSTERPANEL_ALLOWED_HOSTS"),
    "localhost",
    "127.0.0.1",
    "[::1]",
]
CSRF_TRUSTED_ORIGINS = env_list("CLUSTERPANEL_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "clusterpanel",
    "nodes",
    "pki",
]

MIDDLEWARE = [
    # First, so that every response gets the policy, static files and error pages included.
    "clusterpanel.web.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before anything reads a body (the CSRF check reads the form): 413 over the limits below.
    "clusterpanel.web.middleware.RequestSizeMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clusterpanel.web.middleware.PanelLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "clusterpanel.web.middleware.DatabaseBusyMiddleware",
    "clusterpanel.web.middleware.ConflictMiddleware",
    # Axes last, as its documentation asks, so it sees the final response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clusterpanel.urls"
WSGI_APPLICATION = "clusterpanel.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clusterpanel.security.roles.role_context",
            ],
            # Filters every page uses (relative and absolute times), without {% load %}.
            "builtins": ["clusterpanel.templatetags.when"],
        },
    }
]

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": database_from_url(_database_url)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _needs.database_file,
            # A file, not memory, so that a Celery worker process started by the
            # tests can see the same test database; one per test run.
            "TEST": {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")},
            "OPTIONS": dict(SQLITE_OPTIONS),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Request bodies: forms and JSON up to 2.5 MiB (Django's default, stated here), multipart bodies
# up to 11 MiB: uploads (PKI archives, PEM files) may be 10 MiB, plus the form around them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024 // 2
MAX_UPLOAD_BODY_SIZE = 11 * 1024 * 1024

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: five failures per user and address lock for 15 minutes.
AXES_FAILURE_LIMIT = env_int("CLUSTERPANEL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = _needs.static_root
# Hashed file names need `collectstatic` first: the container image does that and
# turns this on; the embedded default serves files as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("CLUSTERPANEL_MANIFEST_STATIC", False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Serve files straight from the finders when no collectstatic has run (embedded default).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Security headers; secure cookies and HSTS only when the panel sits behind TLS.
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
# Health checks come over plain HTTP from inside the container network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("CLUSTERPANEL_SESSION_SECONDS", 8 * 3600, minimum=60)

# Secrets at rest: keys are kept apart from SECRET_KEY (see clusterpanel/crypto.py).
ENCRYPTION_KEYS_FILE = _needs.encryption_keys_file

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "clusterpanel.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["clusterpanel.api.permissions.RolePermission"],
    "DEFAULT_PARSER_CLASSES": [
        "clusterpanel.api.parsers.JSONObjectParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clusterpanel.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "clusterpanel.api.renderers.PanelBrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "clusterpanel API",
    "DESCRIPTION": "Clusters, nodes, certificates, tokens and jobs of self-hosted Kubernetes.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["clusterpanel.api.permissions.RolePermission"],
    "SERVE_AUTHENTICATION": [
        "clusterpanel.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Swagger UI and Redoc from the sidecar package: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status" choice; each enum gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "clusterpanel.jobs.models.JobStatus",
        "JobStepStatusEnum": "clusterpanel.jobs.models.StepStatus",
        "HealthStatusEnum": "nodes.models.HealthStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clusterpanel.api.schema.declare_errors",
    ],
}

# Jobs (clusterpanel/jobs): a worker heartbeats every INTERVAL seconds; a running job without
# a heartbeat for TIMEOUT seconds is ended by the reaper. A kind's deadline defaults to
# DEADLINE and is capped at DEADLINE_MAX. A step's log keeps its first HEAD and last TAIL bytes.
CLUSTERPANEL_JOB_HEARTBEAT_INTERVAL = env_int("CLUSTERPANEL_JOB_HEARTBEAT_INTERVAL", 10, minimum=1)
CLUSTERPANEL_JOB_HEARTBEAT_TIMEOUT = env_int("CLUSTERPANEL_JOB_HEARTBEAT_TIMEOUT", 120, minimum=2)
# How many hosts one job talks to at once inside a phase (one SSH connection each).
CLUSTERPANEL_JOB_MAX_PARALLEL_HOSTS = env_int("CLUSTERPANEL_JOB_MAX_PARALLEL_HOSTS", 20, minimum=1)
# A file streamed to a node (a release tarball) may take 60 s plus this many seconds per MiB.
CLUSTERPANEL_UPLOAD_SECONDS_PER_MIB = env_int("CLUSTERPANEL_UPLOAD_SECONDS_PER_MIB", 2, minimum=1)
CLUSTERPANEL_JOB_DEADLINE = env_int("CLUSTERPANEL_JOB_DEADLINE", 3600, minimum=10)
_MAX_DEADLINE = max(6 * 3600, CLUSTERPANEL_JOB_DEADLINE)
CLUSTERPANEL_JOB_DEADLINE_MAX = env_int("CLUSTERPANEL_JOB_DEADLINE_MAX", _MAX_DEADLINE, minimum=10)
# A queued job nobody claimed for this long gets its task message sent once more.
CLUSTERPANEL_JOB_REDISPATCH_AFTER = env_int("CLUSTERPANEL_JOB_REDISPATCH_AFTER", 300, minimum=10)
# The largest etcd snapshot an etcd-backup copies back (held in memory while it is sealed).
_SNAPSHOT_MAX = env_int("CLUSTERPANEL_ETCD_SNAPSHOT_MAX_BYTES", 1 << 30, minimum=1 << 20)
CLUSTERPANEL_ETCD_SNAPSHOT_MAX_BYTES = _SNAPSHOT_MAX
# Certificate expiry bands in days, widest first: inside the widest a scan's finding is a warning,
# inside any narrower one critical (x509-certificate-exporter and kube-prometheus use the like).
CLUSTERPANEL_EXPIRY_BANDS = env_str("CLUSTERPANEL_EXPIRY_BANDS", "30,14,7,1")
# The offline release bundles of binary-installed clusters on the panel host: the Kubernetes server,
# etcd and CNI plugin tarballs and their SHA256SUMS (nothing is downloaded).
CLUSTERPANEL_BINARY_BUNDLE_DIR = env_str("CLUSTERPANEL_BINARY_BUNDLE_DIR") or str(
    DATA_DIR / "binary-bundles"
)
CLUSTERPANEL_JOB_LOG_HEAD_BYTES = env_int("CLUSTERPANEL_JOB_LOG_HEAD_BYTES", 64 * 1024, minimum=0)
CLUSTERPANEL_JOB_LOG_TAIL_BYTES = env_int("CLUSTERPANEL_JOB_LOG_TAIL_BYTES", 64 * 1024, minimum=0)

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport with
# atomic writes and claimed, recoverable reads (clusterpanel/broker.py).
# Tasks are acknowledged late, so a broker that redelivers unacknowledged messages after a
# visibility timeout (Redis) must not do so while the longest job may still run; the job's
# atomic claim makes a redelivery harmless anyway, but it should not be routine.
_VISIBILITY_TIMEOUT = CLUSTERPANEL_JOB_DEADLINE_MAX + 2 * CLUSTERPANEL_JOB_HEARTBEAT_TIMEOUT + 600
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": _VISIBILITY_TIMEOUT}
else:
    _broker_dir = _needs.broker_dir
    CELERY_BROKER_URL = f"{FILESYSTEM_BROKER_SCHEME}://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        # Exchange tables; kombu's default is ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        # Claimed messages until acknowledged, and files that are not messages.
        "unacked_folder": str(_broker_dir / "unacked"),
        "quarantine_folder": str(_broker_dir / "quarantine"),
        # Claims are recovered when their reader dies, not after a timeout (broker.py); kept
        # here so that no kombu default shorter than a job ever applies.
        "visibility_timeout": _VISIBILITY_TIMEOUT,
    }
# The database is the record of truth; Celery results are not kept.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The one place for beat's schedule file: `celery beat` reads it unless --schedule is given.
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / datadir.BEAT_SCHEDULE_FILE)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("CLUSTERPANEL_LOG_LEVEL", "INFO")},
}

# SSH to the nodes: seconds to wait for the TCP connection, the server's banner, authentication,
# and between keepalives; nothing the panel sends to a host can hang longer than these allow.
CLUSTERPANEL_SSH_CONNECT_TIMEOUT = env_int("CLUSTERPANEL_SSH_CONNECT_TIMEOUT", 10, minimum=1)
CLUSTERPANEL_SSH_BANNER_TIMEOUT = env_int("CLUSTERPANEL_SSH_BANNER_TIMEOUT", 10, minimum=1)
CLUSTERPANEL_SSH_AUTH_TIMEOUT = env_int("CLUSTERPANEL_SSH_AUTH_TIMEOUT", 15, minimum=1)
CLUSTERPANEL_SSH_KEEPALIVE = env_int("CLUSTERPANEL_SSH_KEEPALIVE", 15, minimum=1)

# Component health: seconds one check may take (connect and answer together), checks run at once
# per round, and days of results kept for history.
CLUSTERPANEL_HEALTH_CHECK_TIMEOUT = env_int("CLUSTERPANEL_HEALTH_CHECK_TIMEOUT", 5, minimum=1)
CLUSTERPANEL_HEALTH_WORKERS = env_int("CLUSTERPANEL_HEALTH_WORKERS", 16, minimum=1)
CLUSTERPANEL_HEALTH_HISTORY_DAYS = env_int("CLUSTERPANEL_HEALTH_HISTORY_DAYS", 7, minimum=1)
# E-mail (alerts): Django's SMTP backend unless EMAIL_BACKEND names another one.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "clusterpanel@localhost")

# Alerts (nodes/alerts): the CAs' expiry bands in days (a CA cannot be renewed by a rollout, so its
# warnings start much earlier than CLUSTERPANEL_EXPIRY_BANDS'); webhook delivery attempts, the first
# retry's delay in seconds (doubled per attempt) and each request's timeout.
CLUSTERPANEL_CA_EXPIRY_BANDS = env_str("CLUSTERPANEL_CA_EXPIRY_BANDS", "365,180,90,30")
CLUSTERPANEL_ALERT_MAX_ATTEMPTS = env_int("CLUSTERPANEL_ALERT_MAX_ATTEMPTS", 8, minimum=1)
CLUSTERPANEL_ALERT_RETRY_SECONDS = env_int("CLUSTERPANEL_ALERT_RETRY_SECONDS", 30, minimum=1)
CLUSTERPANEL_ALERT_TIMEOUT = env_int("CLUSTERPANEL_ALERT_TIMEOUT", 10, minimum=1)
# Webhook hosts (comma-separated names or addresses) the panel may post to although they are, or
# resolve to, loopback, link-local, private or metadata addresses (an internal relay). Any other
# such host is refused when saved and at each delivery (nodes/alerts/webhook_guard.py).
CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS = env_str("CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS", "")

# Prometheus /metrics: a bearer token for scrapers (besides API tokens of viewers and up).
CLUSTERPANEL_METRICS_TOKEN = env_secret("CLUSTERPANEL_METRICS_TOKEN") or ""
