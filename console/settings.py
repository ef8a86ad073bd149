"""Proctor's one settings module: everything that differs between machines comes
from the environment (see the configuration table in README.md)."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from console.env import database_from_url, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PROCTOR_VAR_DIR", str(BASE_DIR / "var")))

# Django's debug pages (tracebacks in the browser): only when DEBUG=1 is set, under `make run` too. Without it a
# failing page is templates/500.html and the API answers JSON; the traceback goes to the server's log.
DEBUG = env_bool("DEBUG", False)
# A developer's machine, not a deployment: `make run` and `make test` set PROCTOR_DEV=1 (console/supervisor.py),
# for a generated secret key, localhost hosts, cookies over plain http and static files from the source folders.
DEV = env_bool("PROCTOR_DEV", DEBUG)


def _secret_key() -> str:
    if key := env_str("SECRET_KEY"):
        return key
    if not DEV:
        raise ImproperlyConfigured("SECRET_KEY must be set (outside `make run`, `make test` and DEBUG=1)")
    # Development: generated once, kept under var/ so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()


def _secrets_keys() -> list[str]:
    """Fernet keys for secrets kept in the database (console/secrets_box.py): SECRETS_KEYS, comma separated, the
    first encrypts, all decrypt (rotation: put a new key first, run `manage.py rotate_secrets`, then drop the old).
    Development: one generated into var/ like the secret key."""
    if keys := env_list("SECRETS_KEYS", []):
        return keys
    if not DEV:
        return []  # storing a secret then says to set it (console/secrets_box.py)
    path = VAR_DIR / "secrets_key"
    if not path.exists():
        import base64

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return [path.read_text().strip()]


SECRETS_KEYS = _secrets_keys()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEV else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "console",
    "agents",
    "approvals",
    "memory",
    "demo",
    "traces",
    "webhooks",
    "costs",
    "mcp_servers",
    # More apps by dotted path, e.g. one that registers into the step's hooks (agents.hooks).
    *env_list("PROCTOR_EXTRA_APPS", []),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Around all the rest: under /api/ every error not JSON yet (an unknown path, 405, Django's pages) becomes JSON.
    "console.middleware.ApiJsonErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Before any view, form or schema reads the request: NUL characters, JSON depth and numbers, body size
    # (console/input.py). After the headers' middleware, so a refusal carries them too.
    "console.middleware.InputCleaningMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

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
                "csp.context_processors.nonce",
                "console.context_processors.shell",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/proctor")
DATABASES = {"default": {**database_from_url(DATABASE_URL), "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 0)}}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# psycopg's pool per process (web threads, each worker child): a step or request borrows a
# connection instead of opening one (~4 ms saved each, see bench Bh). DB_POOL_MAX_SIZE bounds
# the connections one process holds; with the threads pool give it the worker's concurrency.
if env_bool("DB_POOL", True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections, Django must not
    DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "timeout": 10,
                                             "max_size": env_int("DB_POOL_MAX_SIZE", env_int("WORKER_CONCURRENCY", 16) + 4)}
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
# The step's hot statements are prepared once per connection (console/db.py). Set 0 behind a pooler that
# cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASE_PREPARED_STATEMENTS:  # Django's default (None) forbids preparing at all; the ORM's cursors never prepare
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "proctor",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Pub/sub: a group send is one PUBLISH, and each web process hands it to its own sockets (console/channel_layer.py,
# which also tells the sockets when a lost connection may have dropped messages). The read timeout ends a read
# from a Redis that went away; a connection idle longer than the health check interval is pinged before use.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "console.channel_layer.PubSubChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5,
                       "socket_keepalive": True, "health_check_interval": 30}],
            "prefix": "proctor-channels",
        },
    }
}

# --- Celery (see console/celery.py) ------------------------------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A step mostly waits (for the model, for Postgres): threads let one worker process carry many runs
# (bench P2). WORKER_POOL=prefork gives a process per slot instead.
CELERY_WORKER_POOL = env_str("WORKER_POOL", "threads")
CELERY_WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 16)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE = {
    # A canary: beat schedules it, a worker runs it; /healthz reads when it last ran.
    # Cheap (one Redis SET), so frequent: start-up is ready within seconds.
    "scheduler-canary": {"task": "console.tasks.scheduler_canary", "schedule": 5.0},
    # Re-enqueue runs whose lease expired (a worker died) or that sit queued without a task.
    "sweep-runs": {"task": "agents.sweep_runs", "schedule": float(env_int("RUN_SWEEP_SECONDS", 5))},
    # Approval SLAs: escalate overdue requests, apply the policy's outcome to expired ones.
    "sweep-approvals": {"task": "approvals.sweep", "schedule": float(env_int("APPROVAL_SWEEP_SECONDS", 30))},
    # Repricing jobs whose worker stopped: queued again, continued from their last committed chunk.
    "sweep-repricing": {"task": "costs.repricing_sweep", "schedule": 60.0},
    # Memories past their retention: status expired (retrieval skips them by time already).
    "expire-memories": {"task": "memory.expire", "schedule": 300.0},
}
WORKER_HEARTBEAT_SECONDS = 10

# --- The run loop ----------------------------------------------------------------------------

RUN_LEASE_SECONDS = env_int("RUN_LEASE_SECONDS", 30)
# A worker goes on with a run's next steps itself for this long before it hands the run back to the queue.
RUN_TURN_SECONDS = float(env_str("RUN_TURN_SECONDS", "0.5"))
RUN_SWEEP_AFTER_SECONDS = env_int("RUN_SWEEP_AFTER_SECONDS", 10)
MODEL_TIMEOUT_SECONDS = env_int("MODEL_TIMEOUT_SECONDS", 60)
MODEL_BACKOFF_SECONDS = float(env_str("MODEL_BACKOFF_SECONDS", "0.5"))
# The most output a model call is expected to ask for: pre-call estimates (budgets) price it at this.
MODEL_MAX_OUTPUT_TOKENS = env_int("MODEL_MAX_OUTPUT_TOKENS", 1024)
# The offline demo model is priced as this real model's list price, labelled "simulated" everywhere.
DEMO_PRICED_AS = env_str("DEMO_PRICED_AS", "openai:gpt-4o-mini")

# --- Auth, sessions, security -------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Password guessing: after LOGIN_FAILURE_LIMIT failed logins for one username from one address, that pair is
# locked out for LOGIN_LOCKOUT_MINUTES (django-axes; a failure during the lockout starts it again). Behind a
# proxy every client shares its address, so it comes down to the username.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "console.views.login_locked_out"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEV)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# The largest request body accepted (413 above it). Django's own limit on what it reads into memory agrees.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BYTES

# --- Static files --------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served by the ASGI app itself (WhiteNoise): from the source folders in development,
# from `collectstatic`'s hashed, compressed copies in production.
WHITENOISE_USE_FINDERS = DEV
WHITENOISE_AUTOREFRESH = DEV
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEV
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "proctor@localhost")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # for django.core.mail.backends.filebased
# The console's address as people reach it: deep links in notifications.
CONSOLE_URL = env_str("CONSOLE_URL", "http://127.0.0.1:8000").rstrip("/")
# Development only: webhook URLs may be http:// and receivers may be on this machine's loopback.
# Private, link-local (cloud metadata) and other internal addresses are refused either way.
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", False)
# MCP servers: stdio servers only from this operator list (JSON {"name": ["command", "arg", …]}); tenants never run
# commands on workers. Servers by URL follow the webhook URL rules (https, public addresses; WEBHOOK_ALLOW_HTTP for
# http and loopback in development).
MCP_STDIO_SERVERS = json.loads(env_str("MCP_STDIO_SERVERS", "{}") or "{}")
MCP_CALL_TIMEOUT_SECONDS = float(env_str("MCP_CALL_TIMEOUT_SECONDS", "20"))

# --- Observability -------------------------------------------------------------------------

OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "proctor")
# Set: spans also go to this OTLP/HTTP backend, sent by the span relay (python manage.py relay_spans).
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT")
# How long finished spans may wait before a batch goes to the Span table (and the OTLP outbox).
SPAN_EXPORT_DELAY_MS = env_int("SPAN_EXPORT_DELAY_MS", 1000)
# At most this many spans a batch. A batch's export holds the worker's interpreter (about 8 µs a span, plus
# the INSERT's own work in Postgres beside it) while a step runs: the SDK's default, 512, made a 40-50 ms burst
# every ~130 steps; 128, a 6.5 ms one every ~30 steps, which made most of P1's slowest 1%. At 32, a 2 ms one every
# ~8 steps: P1's p99 6.6 → 5.0 ms in the same run (bench notes, issue 10).
SPAN_EXPORT_BATCH_SIZE = env_int("SPAN_EXPORT_BATCH_SIZE", 32)
# Batches the OTLP outbox keeps while no relay drains it (the oldest are dropped, and counted, beyond).
OTLP_OUTBOX_MAX_BATCHES = env_int("OTLP_OUTBOX_MAX_BATCHES", 10_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Model providers (used by the model gateway; the offline demo model needs none) --------

OPENAI_API_KEY = env_str("OPENAI_API_KEY")
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")

# --- Memory ----------------------------------------------------------------------------------
# Embeddings for memory records: the offline "wordllama" (weights shipped in its wheel) unless an
# OpenAI-compatible embeddings endpoint is named here (asked for 256 dimensions).
MEMORY_EMBEDDINGS_URL = env_str("MEMORY_EMBEDDINGS_URL")  # e.g. https://host/v1 (POST {url}/embeddings)
MEMORY_EMBEDDINGS_MODEL = env_str("MEMORY_EMBEDDINGS_MODEL", "text-embedding-3-small")
MEMORY_EMBEDDINGS_API_KEY = env_str("MEMORY_EMBEDDINGS_API_KEY", OPENAI_API_KEY)
MEMORY_CONTEXT_K = env_int("MEMORY_CONTEXT_K", 5)  # memories placed in a step's context at most
# A real model (e.g. openai:gpt-4o-mini) that classifies memory proposals (add / merge / supersede / ignore);
# empty: the offline rules decide.
MEMORY_CLASSIFIER_MODEL = env_str("MEMORY_CLASSIFIER_MODEL")
