"""Settings for `make bench`: production settings plus a bare view to compare ingest against.

Two departures, both outside what is measured: static files are served from the source tree
(no collectstatic manifest is needed for the queue pages), and nothing is logged below WARNING.
"""

from console.settings.production import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.urls"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Served from the source folders by the finders, as in development: no collected copy.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None
AUDIT_HEAD_FILE = ""
