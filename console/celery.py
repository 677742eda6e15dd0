"""The Celery app: configuration lives in settings.CELERY (DESIGN.md section 5)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings.production")

app = Celery("handoff")


@app.on_configure.connect
def _configure(sender: Celery, **_kwargs: object) -> None:
    from django.conf import settings

    sender.conf.update(settings.CELERY)


app.autodiscover_tasks()
