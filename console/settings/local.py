"""Local mode (`make run`, manage.py): plain HTTP on localhost, no debug pages unless DEBUG=1."""

from __future__ import annotations

import os

from console import embedded

from .base import *  # noqa: F403
from .base import DATA_DIR, SECRET_KEY, env_bool

if not SECRET_KEY:
    # A key of this machine's own, kept under .data/ so sessions survive restarts.
    SECRET_KEY = embedded.local_secret_key(DATA_DIR)

# Deliveries may reach this machine's own addresses (the demo's sink, test destinations).
HANDOFF_DESTINATION_REFUSE_PRIVATE = env_bool("HANDOFF_DESTINATION_REFUSE_PRIVATE", False)

# `make run` prints emails to the console instead of sending them.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
