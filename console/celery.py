"""The Celery app: configuration lives in settings.CELERY (DESIGN.md section 5)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from console import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings.production")

app = Celery("handoff")
broker.install()


def _settings() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.CELERY)


# Read when the configuration is first needed, as part of it: an update from on_configure
# would re-enter configuration (task_routes makes the router read the configuration back).
app.add_defaults(_settings)
app.autodiscover_tasks()
