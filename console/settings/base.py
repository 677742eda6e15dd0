"""Settings shared by every mode; what differs between machines comes from the environment."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from console import broker, embedded

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("HANDOFF_DATA_DIR", BASE_DIR / ".data"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Without DATABASE_URL / REDIS_URL the embedded servers of `make run` are used: the addresses
# they recorded under .data/ while running, or where they listen when started.
_embedded = embedded.discover(DATA_DIR)
_default_database_url, _default_redis_url = (
    (_embedded.database_url, _embedded.redis_url) if _embedded else embedded.default_urls(DATA_DIR)
)
DATABASE_URL = os.environ.get("DATABASE_URL") or _default_database_url
REDIS_URL = os.environ.get("REDIS_URL") or _default_redis_url

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    # First: its createsuperuser, changepassword and axes_reset* put what they do on the audit
    # trail, and of commands with one name the earliest app's wins.
    "console",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_filters",
    "template_partials",
    "axes",
    "csp",
    "audit",
    "workflows",
    "exceptions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audit.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.shell",
            ],
        },
    }
]

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
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

# Failed logins: five in a row for one username from one address locks that pair out.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind trusted proxies the client is the address they forwarded; without any, X-Forwarded-For
# is whatever the client wrote and is never read (console/proxies.py).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "console.proxies.client_address"
AXES_VERBOSE = False

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 12
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept default

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "handoff",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# No inline scripts or styles anywhere: every script and stylesheet is a vendored file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# How often beat sweeps for due events, and when a sweep that did not come is flagged as stale
# (on the overview and in /readyz): beat or every worker on the sweeps queue has stopped.
HANDOFF_SWEEP_INTERVAL_SECONDS = env_int("HANDOFF_SWEEP_INTERVAL_SECONDS", 2)
HANDOFF_SWEEP_STALE_SECONDS = env_int(
    "HANDOFF_SWEEP_STALE_SECONDS", max(60, 10 * HANDOFF_SWEEP_INTERVAL_SECONDS)
)

# How often beat walks the whole chain and checks the head file; a check older than twice this
# shows as stale on the overview and in /readyz.
AUDIT_VERIFY_INTERVAL_SECONDS = env_int("AUDIT_VERIFY_INTERVAL_SECONDS", 900)

# Celery queues, one per kind of work, so each can have workers of its own (docs/scaling.md):
# "events" is processing (draining due events), "sweeps" beat's periodic jobs, "bulk" the chunks
# of bulk jobs, "audit" sealing and verifying the chain, "default" the rest (diagnostics, demo).
CELERY_QUEUES = ("events", "sweeps", "bulk", "audit", "default")
CELERY_TASK_QUEUES = {
    "workflows.process_due": "events",
    "workflows.sweep": "sweeps",
    "workflows.expire_outcomes": "sweeps",
    "workflows.learn_shapes": "sweeps",
    "console.outcomes_roll_up": "sweeps",
    "exceptions.resume_bulk_jobs": "sweeps",
    "exceptions.wake_snoozed": "sweeps",
    "exceptions.escalate": "sweeps",
    "exceptions.send_notices": "sweeps",
    "exceptions.bulk_run": "bulk",
    "audit.seal": "audit",
    "audit.verify": "audit",
    "audit.prune": "audit",
    "console.ping": "default",
    "console.demo_triage": "default",
}

# Celery: the database is the truth, a message carries only ids (DESIGN.md section 5).
CELERY_TASK_HARD_TIME_LIMIT = env_int("CELERY_TASK_HARD_TIME_LIMIT", 300)
CELERY = {
    "broker_url": embedded.celery_broker_url(REDIS_URL),
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": broker.transport_options(CELERY_TASK_HARD_TIME_LIMIT),
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_time_limit": CELERY_TASK_HARD_TIME_LIMIT,
    "task_soft_time_limit": CELERY_TASK_HARD_TIME_LIMIT - 30,
    "task_ignore_result": True,
    "task_serializer": "json",
    "accept_content": ["json"],
    "timezone": "UTC",
    "enable_utc": True,
    "worker_hijack_root_logger": False,
    "beat_schedule_filename": str(DATA_DIR / "celerybeat-schedule"),
    "task_default_queue": "default",
    "task_routes": {name: {"queue": queue} for name, queue in CELERY_TASK_QUEUES.items()},
    "beat_schedule": {
        "audit-seal": {
            "task": "audit.seal",
            "schedule": float(env_int("AUDIT_SEAL_INTERVAL_SECONDS", 2)),
            "options": {"expires": 10},
        },
        "audit-verify": {
            "task": "audit.verify",
            "schedule": float(AUDIT_VERIFY_INTERVAL_SECONDS),
            "options": {"expires": 600},
        },
        # Re-enqueues due events and takes back claims of workers that died.
        "workflows-sweep": {
            "task": "workflows.sweep",
            "schedule": float(HANDOFF_SWEEP_INTERVAL_SECONDS),
            "options": {"expires": 10},
        },
        # Each workflow's usual payload shape, which the engine compares each payload with.
        "workflows-learn-shapes": {
            "task": "workflows.learn_shapes",
            "schedule": float(env_int("HANDOFF_SHAPE_LEARN_SECONDS", 300)),
            "options": {"expires": 250},
        },
        "workflows-expire-outcomes": {
            "task": "workflows.expire_outcomes",
            "schedule": 30.0,
            "options": {"expires": 60},
        },
        # Bulk jobs whose chain of tasks was lost are sent to the workers again.
        "exceptions-resume-bulk-jobs": {
            "task": "exceptions.resume_bulk_jobs",
            "schedule": 30.0,
            "options": {"expires": 25},
        },
        # SLA breach notices and escalations, each step once per deadline; approval requests
        # nobody decided in time expire.
        "exceptions-escalate": {
            "task": "exceptions.escalate",
            "schedule": 60.0,
            "options": {"expires": 50},
        },
        # Each person's owed notices, gathered into one email.
        "exceptions-send-notices": {
            "task": "exceptions.send_notices",
            "schedule": 30.0,
            "options": {"expires": 25},
        },
        # Past days' outcome figures: the days that ended, and those whose records changed.
        "console-outcomes-roll-up": {
            "task": "console.outcomes_roll_up",
            "schedule": float(env_int("HANDOFF_OUTCOME_ROLLUP_SECONDS", 120)),
            "options": {"expires": 100},
        },
        # Snoozed cases whose snooze has ended come back to the queue.
        "exceptions-wake-snoozed": {
            "task": "exceptions.wake_snoozed",
            "schedule": 60.0,
            "options": {"expires": 50},
        },
    },
}

# The engine: events claimed per batch, how long one task keeps claiming, when a claim is stale.
HANDOFF_CLAIM_BATCH_SIZE = env_int("HANDOFF_CLAIM_BATCH_SIZE", 50)
HANDOFF_PROCESS_BUDGET_SECONDS = env_int("HANDOFF_PROCESS_BUDGET_SECONDS", 20)
HANDOFF_STALE_CLAIM_SECONDS = env_int(
    "HANDOFF_STALE_CLAIM_SECONDS", CELERY_TASK_HARD_TIME_LIMIT + 60
)
HANDOFF_SWEEP_MAX_WAKES = env_int("HANDOFF_SWEEP_MAX_WAKES", 4)
# An unexpected error (or a dead worker) in an event's run: tried again after this many seconds
# times the failures so far, and after this many failed runs in a row it stops for a person.
HANDOFF_PROCESSING_ATTEMPTS = env_int("HANDOFF_PROCESSING_ATTEMPTS", 5)
HANDOFF_PROCESSING_RETRY_SECONDS = env_int("HANDOFF_PROCESSING_RETRY_SECONDS", 10)

# Deliveries: at most this many at once to one destination (scheme, host and port), and which
# addresses they may reach. Loopback, private, link-local (cloud metadata) and other non-public
# addresses are refused unless HANDOFF_DESTINATION_ALLOWLIST names the host or its network;
# local and test mode allow them, so the demo's sink on 127.0.0.1 works.
HANDOFF_DELIVERY_PER_DESTINATION = env_int("HANDOFF_DELIVERY_PER_DESTINATION", 4)
HANDOFF_DESTINATION_REFUSE_PRIVATE = env_bool("HANDOFF_DESTINATION_REFUSE_PRIVATE", True)
HANDOFF_DESTINATION_ALLOWLIST = env_list("HANDOFF_DESTINATION_ALLOWLIST", [])

# Workflow definitions and rules: the largest definition file load_workflows reads, and the
# estimated element steps one rule may take on one event (about a second at worst; README).
HANDOFF_MAX_DEFINITION_BYTES = env_int("HANDOFF_MAX_DEFINITION_BYTES", 256 * 1024)
HANDOFF_RULE_COST_BUDGET = env_int("HANDOFF_RULE_COST_BUDGET", 20_000_000)

AUDIT_SEAL_BATCH_SIZE = env_int("AUDIT_SEAL_BATCH_SIZE", 1000)
# The chain head kept outside the table (audit/head.py): the file the sealer moves forward after
# every seal ("" keeps none), and the key of its HMAC (derived from SECRET_KEY when empty).
AUDIT_HEAD_FILE = os.environ.get("AUDIT_HEAD_FILE", str(DATA_DIR / "audit-head.json"))
AUDIT_HEAD_KEY = os.environ.get("AUDIT_HEAD_KEY", "")
# Retention (audit/retention.py): entries older than this many days are archived to
# AUDIT_ARCHIVE_DIR with their digest, then removed from the table, by beat every hour and by
# `manage.py audit_prune`. Unset (the default): entries stay for ever.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 0) or None
AUDIT_ARCHIVE_DIR = os.environ.get("AUDIT_ARCHIVE_DIR", str(DATA_DIR / "audit-archive"))
if AUDIT_RETENTION_DAYS:
    CELERY["beat_schedule"]["audit-prune"] = {  # type: ignore[index]
        "task": "audit.prune",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    }

# Email: who owns a case hears of it (assignments, breaches, escalations). Links in emails
# start with HANDOFF_BASE_URL. An unacknowledged breach goes to the team's leads, then after
# HANDOFF_ESCALATION_STEP_SECONDS more to the first fallback team.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "handoff@localhost")
HANDOFF_BASE_URL = os.environ.get("HANDOFF_BASE_URL", "http://127.0.0.1:8000")
HANDOFF_ESCALATION_STEP_SECONDS = env_int("HANDOFF_ESCALATION_STEP_SECONDS", 1800)

# A bulk job whose chunks stopped committing this long ago is sent to the workers again.
HANDOFF_BULK_STALL_SECONDS = env_int("HANDOFF_BULK_STALL_SECONDS", 60)

# Four-eyes (README "Four-eyes approvals"): a bulk replay or dismiss of more cases than this
# waits for a second person's approval; a request nobody decides expires after the TTL; and
# the role that must approve each kind of request (admins hold every role).
HANDOFF_APPROVAL_BULK_THRESHOLD = env_int("HANDOFF_APPROVAL_BULK_THRESHOLD", 50)
HANDOFF_APPROVAL_TTL_HOURS = env_int("HANDOFF_APPROVAL_TTL_HOURS", 72)
HANDOFF_APPROVAL_ROLES = {
    "edited_replay": "manager",
    "delivered_replay": "manager",
    "bulk_replay": "manager",
    "bulk_dismiss": "manager",
    "workflow_routing_change": "manager",
    "workflow_ownership_change": "manager",
}

# HTTP API: one event's payload, a whole batch request, and each token's request budget.
HANDOFF_MAX_PAYLOAD_BYTES = env_int("HANDOFF_MAX_PAYLOAD_BYTES", 256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("HANDOFF_MAX_BATCH_BYTES", 8 * 1024 * 1024)
HANDOFF_API_RATE_LIMIT = env_int("HANDOFF_API_RATE_LIMIT", 600)
HANDOFF_API_RATE_WINDOW_SECONDS = env_int("HANDOFF_API_RATE_WINDOW_SECONDS", 60)
# How long a process keeps a token and a workflow it read: the bound on revocation elsewhere.
HANDOFF_API_CACHE_SECONDS = env_int("HANDOFF_API_CACHE_SECONDS", 5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Successful task runs (the sealer every two seconds) are not news; failures still log.
    # httpx logs every request's full URL at INFO, and destination URLs can carry secrets: our
    # own delivery logs name them redacted.
    "loggers": {
        "axes": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
