"""Settings for benchmarks: the test settings plus a bare view to compare ingest against."""

from console.settings.test import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.urls"
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": True}
