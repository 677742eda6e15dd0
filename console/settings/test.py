"""Test mode: fast hashing, nothing sent anywhere."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import INSTALLED_APPS, env_bool

SECRET_KEY = "test-only-not-secret-" + "x" * 40  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True

# Deliveries may reach this machine's own addresses (the demo's sink, test destinations).
HANDOFF_DESTINATION_REFUSE_PRIVATE = env_bool("HANDOFF_DESTINATION_REFUSE_PRIVATE", False)

# No head file shared between tests: a test that needs one names its own.
AUDIT_HEAD_FILE = ""

# The test database's flush, done the one way the append-only tables' TRUNCATE triggers allow.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.dbsetup"]
