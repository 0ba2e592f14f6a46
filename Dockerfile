# clusterpanel production image: gunicorn for the web, the same image for the
# Celery worker and beat (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLUSTERPANEL_DATA_DIR=/var/lib/clusterpanel \
    CLUSTERPANEL_STATIC_ROOT=/app/staticfiles \
    CLUSTERPANEL_MANIFEST_STATIC=true

RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/clusterpanel --create-home clusterpanel

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic needs settings to load; the keys here are throwaways for this step only
# (the containers get theirs from .env), so the build writes nothing to the data directory.
RUN CLUSTERPANEL_SECRET_KEY=collectstatic-only CLUSTERPANEL_ENCRYPTION_KEYS=collectstatic-only \
    python manage.py collectstatic --noinput \
    && chown -R clusterpanel /var/lib/clusterpanel

USER clusterpanel
EXPOSE 8000
CMD ["gunicorn", "clusterpanel.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
