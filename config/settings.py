"""Settings, read from the environment: one family for a laptop, CI and production alike.

With nothing set, the site runs on the embedded default: a SQLite file, a SQLite Celery broker and
local media, all under DATA_DIR. Production sets DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY,
ALLOWED_HOSTS and HTTPS=true (see README, "Configuration").
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from kombu import Exchange, Queue

from core import local_state

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# Read only: the entry points create DATA_DIR and its secrets (core.local_state.prepare), importing settings creates
# nothing.
DATA_DIR = local_state.data_dir()


# From the environment, else generated once in DATA_DIR by an entry point ("" before: check core.E001 names it).
SECRET_KEY = local_state.secret("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# HTTPS=true behind a TLS-terminating proxy turns on every transport-security setting at once.
HTTPS = env_bool("HTTPS", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- content security and permissions policy (django-csp 4, django-permissions-policy) ---------------
# Every page loads its scripts, styles, images and audio from this origin only: no inline script, no
# inline style, no eval. media-src allows blob: because the record page plays a take back from memory
# before it is uploaded. Views that need more say so with csp_update (the Swagger UI, see config.urls).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "manifest-src": ["'self'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
    }
}
# Powerful features off everywhere; the record page alone turns the microphone on for this origin
# (frontend.views.record). Only features Chromium and Firefox know, so that no browser logs a warning.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer", "browsing-topics", "camera", "display-capture", "geolocation", "gyroscope", "hid",
        "idle-detection", "magnetometer", "microphone", "midi", "payment", "serial", "usb",
    )
}  # fmt: skip

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "contributors",
    "benchmark",
    "training",
    "frontend",
    "demo",  # last: it stands on every other app
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.UploadSizeLimitMiddleware",
    "core.middleware.LargeUploadLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lock-out flagged during the view into the lock-out response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- database -------------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The validation path's fixed statements (core.sql.prepared_cursor) are prepared on the server from this many
    # executions on a connection; Django's own statements are never prepared. "off" for a transaction-pooling
    # pgbouncer older than 1.21, which cannot keep a prepared statement between transactions.
    # Their plans are generic, made once: every one of them is a walk of unique or queue indexes whichever the
    # values, and PostgreSQL's default (a custom plan per execution, as its costs come out lower) planned the
    # queue's statements in 1.2 ms each to run them in 0.15 ms. Only prepared statements read this setting.
    _prepare = env_str("DATABASE_PREPARE_THRESHOLD", "2")
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["prepare_threshold"] = None if _prepare == "off" else int(_prepare)
    _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()
    # Django's backend, whose health check asks the server only when the socket says it may have closed
    # (core/db/postgresql/base.py): a round trip less on every request.
    DATABASES["default"]["ENGINE"] = "core.db.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share the file: WAL lets readers run beside the writer, IMMEDIATE
    # transactions queue writers behind a busy timeout instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so that worker processes started by the integration tests see the test data;
    # one per test process, so that two test runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- login lock-out (django-axes) -------------------------------------------------------------------
# Every login goes through authenticate() with the request (the pages, the admin, auth/login and auth/token), so
# the first backend refuses a locked-out client before the password is even checked: the right password does not
# get through a lock-out either. Failures are rows in the database (AccessAttempt), shared by every process.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
# An address that keeps guessing is locked out whatever the account, and an account guessed at from many addresses
# is locked too (a botnet gets LOGIN_FAILURE_LIMIT guesses per cool-off, not that many per address). The price: a
# stranger can keep one account's owner out for a cool-off at a time; they still sign in after it, and an operator
# clears it at once with `manage.py axes_reset_username NAME`.
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- files ----------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = local_state.static_root()  # created by the entry points: whitenoise warns about a missing root
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "media/"  # never routed publicly: clip audio is served by permission-checked views

STORAGE_BACKEND = env_str("STORAGE_BACKEND", "local")
if STORAGE_BACKEND == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET"),
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "region_name": env_str("S3_REGION") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
elif STORAGE_BACKEND == "local":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ValueError(f"STORAGE_BACKEND={STORAGE_BACKEND!r}: use 'local' or 's3'")
# Hashed, compressed static files once `collectstatic` has written its manifest (the Docker image does);
# before that (a laptop, the tests) files are served as they are, from the apps, by whitenoise's finders.
_static_manifest = (STATIC_ROOT / "staticfiles.json").exists()
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if _static_manifest and not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not _static_manifest
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads larger than this spill to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# The request body cap for uploads, enforced before Django reads the body (core.middleware).
UPLOAD_MAX_BODY_BYTES = env_int("UPLOAD_MAX_BODY_BYTES", 10 * 1024 * 1024)
# Bodies over UPLOAD_LARGE_BYTES (model submissions) take one of UPLOAD_LARGE_CONCURRENT slots shared by every web
# process while they are received and checked: each holds a web worker, temporary disk and some memory (a few
# per cent of the model, docs/benchmarks.md) for as long. One more gets 503 uploads_busy with Retry-After. A slot's
# lease frees it if its process dies mid-upload.
UPLOAD_LARGE_BYTES = env_int("UPLOAD_LARGE_BYTES", 16 * 1024 * 1024)
UPLOAD_LARGE_CONCURRENT = env_int("UPLOAD_LARGE_CONCURRENT", 2)
UPLOAD_SLOT_LEASE_SECONDS = env_int("UPLOAD_SLOT_LEASE_SECONDS", 900)
UPLOAD_LARGE_RETRY_SECONDS = env_int("UPLOAD_LARGE_RETRY_SECONDS", 30)

# --- clips ----------------------------------------------------------------------------------------
# Limits for uploaded audio (contributors.conf reads them with these defaults).
CLIP_LIMITS = {
    "MIN_DURATION_S": 1.0,
    "MAX_DURATION_S": 15.0,
    "MIN_SAMPLE_RATE": 8000,
    "MAX_SAMPLE_RATE": 48000,
    "MAX_CHANNELS": 8,
    "SILENCE_MAX_RMS_DBFS": -60.0,
    "CLIPPING_MAX_RATIO": 0.01,
    # Refused below this speech ratio (audio_no_speech); measured in docs/benchmarks.md, "Speech ratio".
    "MIN_SPEECH_RATIO": 0.1,
}

# --- trust engine --------------------------------------------------------------------------------
# z and MIN_TRUST are the proposal's; the rest are argued in speech/trust.py. TRUST_PRESET=proposal
# scores trust by the proposal's literal rule and quota (one vote per clip); the default, wilson, by the Wilson
# bound over decided clips with QUOTA_VOTES_PER_CLIP (None: the preset's default) votes per clip recorded.
TRUST = {
    "PRESET": env_str("TRUST_PRESET", "wilson"),
    "QUOTA_VOTES_PER_CLIP": None,
    "Z": 1.96,
    "MIN_TRUST": 0.6,
    "MIN_VOTES": 1,
    "DISCARD_MIN_VOTES": 10,
    "DISCARD_MAX_SCORE": 0.3,
    "MAX_ITERATIONS": 100,
}
VALIDATION_ASSIGNMENT_TTL_S = 600  # how long a trustee holds the clip validation/next handed them
# The validation path's two shortcuts, each answering exactly as the plain path does (tests send the same requests
# both ways): on PostgreSQL a vote's statements up to its next pick as one PL/pgSQL call
# (contributors/sql_functions.py), and token requests to votes and validation/next answered without DRF's
# per-request machinery (core/lean.py). Off, the plain paths run (SQLite always runs the vote's statements one by one).
VOTE_ONE_CALL = env_bool("VOTE_ONE_CALL", True)
API_LEAN_DISPATCH = env_bool("API_LEAN_DISPATCH", True)

# --- sentences (contributors.sentences.SentenceRules holds the defaults and says why) ----------------------
SENTENCES = {
    "REPORTS_TO_HOLD": env_int("SENTENCE_REPORTS_TO_HOLD", 3),  # distinct readers' reports that hold a prompt
    "APPROVALS_TO_ACCEPT": 2,  # trustee approvals that make a proposal a prompt
    "REJECTIONS_TO_RETIRE": 2,  # trustee rejections that close a proposal
    "PROPOSALS_PER_DAY": env_int("SENTENCE_PROPOSALS_PER_DAY", 20),  # per contributor, any outcome
}

# --- REST framework -------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {  # values of every kind: appended to and indexed below
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous request gets 401 with a WWW-Authenticate header.
        "contributors.authentication.ContributorTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's three, with core.parsers' JSON parser (a deeply nested document is a 400, not a 500).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.schema.ErrorDocumentingAutoSchema",  # every operation lists its 4xx answers
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    # Throttles count atomically in the shared cache's storage (core.ratelimit), keyed by core.throttling.client_ip.
    "DEFAULT_THROTTLE_RATES": {
        "auth": env_str("THROTTLE_AUTH", "30/min"),
        # Accounts opened per client address, on the API and the /signup/ page together.
        "signup": env_str("THROTTLE_SIGNUP", "20/hour"),
        "votes": env_str("THROTTLE_VOTES", "120/min"),
        # The public run list and run pages' polling: a run page asks every 2 s.
        "runs": env_str("THROTTLE_RUNS", "120/min"),
    },
    # Client addresses come from REMOTE_ADDR, or from X-Forwarded-For behind this many trusted proxies: a header
    # the client writes itself must not choose whose budget a request spends.
    "NUM_PROXIES": env_int("TRUSTED_PROXIES", 1 if HTTPS else 0),
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "OpenPhone API",
    "DESCRIPTION": "Record, validate and download an open TIMIT-like speech corpus.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Fields named "status" with different choice sets; submissions and training runs share one set (a job's).
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "benchmark.models.SubmissionStatus",
        "ReleaseStatusEnum": "benchmark.models.ReleaseStatus",
        "ClipStatusEnum": "contributors.models.ClipStatus",
        "ProposalStatusEnum": "contributors.models.ProposalStatus",
    },
}

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/record/"

# --- cache ----------------------------------------------------------------------------------------
# Redis with CACHE_URL; otherwise the database's own cache table, so that every process (gunicorn workers, the
# Celery workers) shares the byte budgets and cached counts; core's post_migrate creates the table (migrate runs it).
# Throttles count in core.ratelimit, atomically on either.
_cache_url = env_str("CACHE_URL")
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
    if _cache_url
    else {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "core_cache",
        "OPTIONS": {"MAX_ENTRIES": 50_000},
    }
}

# --- Celery ---------------------------------------------------------------------------------------
# The embedded default is SQLite (config.broker): transactional, and a killed worker's task is handed out again.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", f"sqlite:///{DATA_DIR / 'broker.sqlite3'}")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
# A worker that dies mid-task gets the task back after this many seconds (Redis and SQS). It must exceed
# the longest training run, or a healthy run is handed to a second worker; tasks are guarded by their
# row's status, so a redelivery does no harm, but a short timeout would waste GPU time. The embedded broker
# needs none: it hands a task out again as soon as the process that held it is gone.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
if CELERY_BROKER_URL.startswith("filesystem://"):
    raise ValueError(
        "CELERY_BROKER_URL: the filesystem transport loses the task of a worker that dies and can read a message "
        "before it is written; leave the variable unset for the embedded SQLite broker, or use Redis."
    )
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("gpu", Exchange("gpu"), routing_key="gpu"),
    # Leaderboard evaluations: their own queue and workers, so a submission never delays clip work or training.
    Queue("eval", Exchange("eval"), routing_key="eval"),
)
CELERY_TASK_ROUTES = {
    # The reaper of dead workers' runs must not wait behind a training run on the gpu queue (exact names win).
    "training.tasks.runs_reap": {"queue": "default"},
    "training.tasks.*": {"queue": "gpu"},
    "benchmark.tasks.submission_evaluate": {"queue": "eval"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "storage-sweep-orphans": {"task": "contributors.tasks.storage_sweep_orphans", "schedule": 3600.0},
    "clips-analyse-missing": {"task": "contributors.tasks.clips_analyse_missing", "schedule": 900.0},
    # The backstop for the incremental path after each vote.
    "trust-recompute": {"task": "contributors.tasks.trust_recompute", "schedule": 3600.0},
    # Submissions whose evaluating worker died: re-queued or failed; dead workers' temp folders removed.
    "submissions-reap": {"task": "benchmark.tasks.submissions_reap", "schedule": 60.0},
    # Release builds whose worker died: re-queued or failed (Redis would hand the message out only after hours).
    "releases-reap": {"task": "benchmark.tasks.releases_reap", "schedule": 60.0},
    # Training runs whose worker died: queued again (they resume from their checkpoint) or failed.
    "training-runs-reap": {"task": "training.tasks.runs_reap", "schedule": 60.0},
    # Rate-limit counters of windows long past (core.ratelimit, when the cache is not Redis).
    "rate-counters-sweep": {"task": "core.tasks.rate_counters_sweep", "schedule": 3600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- releases (benchmark app) ----------------------------------------------------------------------
# The key of the keyed hash that orders new speakers into splits (speech.splits): from the environment, else
# generated once and kept in DATA_DIR like SECRET_KEY, so that nobody can predict or choose their split.
RELEASE_SPLIT_KEY = local_state.secret("RELEASE_SPLIT_KEY")
# Demographic groups with fewer speakers than this are withheld from a release (datasheet and metadata).
RELEASE_MIN_GROUP_SPEAKERS = env_int("RELEASE_MIN_GROUP_SPEAKERS", 5)
# The TIMIT tree's audio: "wav" (RIFF PCM, as TIMIT recipes read it) or "flac" (about half the bytes; Lhotse's TIMIT
# preparer then finds no audio). A release can override it (release_build --audio-format).
RELEASE_AUDIO_FORMAT = env_str("RELEASE_AUDIO_FORMAT", "wav")
# A build beats this often from a background thread; one silent for the stale time (five minutes: well past a
# stalled disk, far short of the hours a lost build used to wait) is re-queued by the reaper, until it has made
# RELEASE_MAX_ATTEMPTS attempts, then failed with the reason.
RELEASE_HEARTBEAT_SECONDS = env_int("RELEASE_HEARTBEAT_SECONDS", 15)
RELEASE_HEARTBEAT_STALE_SECONDS = env_int("RELEASE_HEARTBEAT_STALE_SECONDS", 300)
RELEASE_MAX_ATTEMPTS = env_int("RELEASE_MAX_ATTEMPTS", 3)
# Anonymous release downloads are throttled by bytes sent per client (benchmark.throttling; "" turns it off)...
THROTTLE_DOWNLOAD_BYTES = env_str("THROTTLE_DOWNLOAD_BYTES", "1GB/min")
# ... under a request-count ceiling for the public API, high enough that a split's ~2,300 files fetched one by one
# (plus the listings) fit in a minute.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["downloads"] = env_str("THROTTLE_DOWNLOADS", "6000/min")

# --- leaderboard (benchmark app: submissions and their evaluation) --------------------------------
# The largest ONNX file accepted; its request gets a body cap 1 MB above it (core.middleware, by path).
SUBMISSION_MAX_BYTES = env_int("SUBMISSION_MAX_BYTES", 200 * 1024 * 1024)
UPLOAD_MAX_BODY_BYTES_BY_PATH = {"/api/v1/submissions/": SUBMISSION_MAX_BYTES + 1024 * 1024}
# Submissions a user may make per UTC day; failed ones count (unless the platform was at fault), cancelled
# ones give their place back.
SUBMISSION_DAILY_QUOTA = env_int("SUBMISSION_DAILY_QUOTA", 3)
# A running evaluation (a re-evaluation too) beats this often; one silent for the stale time is re-queued by the
# reaper this many times, then failed with eval_worker_lost, which counts towards the submitter's quota (a model
# that kills its worker on every try must not be evaluated for free).
SUBMISSION_HEARTBEAT_SECONDS = env_int("SUBMISSION_HEARTBEAT_SECONDS", 10)
SUBMISSION_HEARTBEAT_STALE_SECONDS = env_int("SUBMISSION_HEARTBEAT_STALE_SECONDS", 120)
SUBMISSION_MAX_RECOVERIES = env_int("SUBMISSION_MAX_RECOVERIES", 2)
# benchmark.leaderboard.evaluation.sandbox.SandboxLimits for each evaluation (keys are its field names).
SUBMISSION_SANDBOX = {
    "memory_bytes": env_int("SUBMISSION_SANDBOX_MEMORY_BYTES", 4 * 1024**3),
    "cpu_seconds": env_int("SUBMISSION_SANDBOX_CPU_SECONDS", 900),
    "wall_seconds": env_int("SUBMISSION_SANDBOX_WALL_SECONDS", 1200),
    "threads": 1,
    "rtf_runs": 5,
    "rtf_utterances": 20,
}

# --- training runs (training app) ------------------------------------------------------------------
# The worker's cache of releases' features and alignments and of runs' directories (storage holds the truth).
TRAINING_DIR = Path(env_str("TRAINING_DIR", str(DATA_DIR / "training"))).resolve()
# The sizes this deployment trains at; a GPU deployment sets training/ml/configs/full_gpu.json.
TRAINING_BASE_CONFIG = env_str(
    "TRAINING_BASE_CONFIG", str(BASE_DIR / "training" / "ml" / "configs" / "release_cpu.json")
)
# A running run whose worker has not reported for this long is taken to be a dead worker's and taken over.
TRAINING_HEARTBEAT_STALE_SECONDS = env_int("TRAINING_HEARTBEAT_STALE_SECONDS", 300)
# The reaper queues such a run again (it resumes from its last checkpoint) until it has been claimed this many
# times, then fails it with worker_lost.
TRAINING_MAX_ATTEMPTS = env_int("TRAINING_MAX_ATTEMPTS", 5)
# Progress, heartbeat and cancel checks at most this often (and at every epoch).
TRAINING_PROGRESS_SECONDS = env_int("TRAINING_PROGRESS_SECONDS", 2)
