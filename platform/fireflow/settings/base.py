"""Applications, middleware, templates, static files and the API."""

from pathlib import Path

from .env import env_int, env_list, env_str, profile

BASE_DIR = Path(__file__).resolve().parents[3]
FIREFLOW_ENV = profile()
DEBUG = FIREFLOW_ENV == "development"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
# Where the console is reached; used in links sent by email.
PUBLIC_URL = env_str("FIREFLOW_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "guardian",
    "channels",
    "tenants",
    "flows",
    "vault",
    "billing",
    "miniapps",
    "fireflow",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "fireflow.middleware.RequestIdMiddleware",
    "tenants.middleware.RejectApiKeyInQueryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fireflow.urls"
ASGI_APPLICATION = "fireflow.asgi.application"
WSGI_APPLICATION = "fireflow.wsgi.application"

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

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no guardian anonymous user: visitors hold no object permissions

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The console is built by Vite into frontend/dist; its assets are served under /static/.
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATIC_URL = "/static/"
# Where `collectstatic` gathers files for a production image (unset in development).
if env_str("STATIC_ROOT"):
    STATIC_ROOT = env_str("STATIC_ROOT")
STATICFILES_DIRS = [FRONTEND_DIST] if FRONTEND_DIST.is_dir() else []
WHITENOISE_USE_FINDERS = True

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Rate limits for the unauthenticated endpoints, per client address.
RATE_LIMITS = {
    "signup": env_str("FIREFLOW_RATE_SIGNUP", "10/h"),
    "login": env_str("FIREFLOW_RATE_LOGIN", "10/m"),
    "password_reset": env_str("FIREFLOW_RATE_PASSWORD_RESET", "5/h"),
}

# Private networks workspace owners may open to the HTTP node (self-hosted LLMs, internal
# APIs). Never link-local (cloud metadata); loopback only in development, for the demo.
NETWORK_ALLOWABLE = env_list(
    "FIREFLOW_ALLOWABLE_NETWORKS",
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        *(["127.0.0.0/8", "::1/128"] if FIREFLOW_ENV != "production" else []),
    ],
)

# Private hosts that budget-alert webhooks may reach although they resolve to private
# addresses (an internal receiver): host names, IPs or CIDR ranges. None by default.
FIREFLOW_WEBHOOK_ALLOW = env_list("FIREFLOW_WEBHOOK_ALLOW", [])

INVITATION_TTL_DAYS = env_int("FIREFLOW_INVITATION_TTL_DAYS", 7)
EMAIL_VERIFICATION_TTL_SECONDS = env_int("FIREFLOW_EMAIL_VERIFICATION_TTL", 3 * 24 * 3600)
PASSWORD_RESET_TIMEOUT = env_int("FIREFLOW_PASSWORD_RESET_TTL", 3600)

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_PER_PAGE_SIZE = 200

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
