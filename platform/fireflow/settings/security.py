"""Secret key, cookies, passwords and headers; production refuses unsafe values."""

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_list, env_str, profile

_PROFILE = profile()

DEVELOPMENT_SECRET_KEY = "dev-insecure-fireflow-secret-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY)

if _PROFILE == "production" and (
    SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50 or "insecure" in SECRET_KEY
):
    raise ImproperlyConfigured(
        "SECRET_KEY is missing or is the development key. Production needs its own: "
        "set SECRET_KEY to at least 50 random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

# The vault's master keys stay in the environment (see vault.keys), never in settings.
if _PROFILE == "production" and not env_str("FIREFLOW_VAULT_KEYS").strip():
    raise ImproperlyConfigured(
        "FIREFLOW_VAULT_KEYS is missing. Production needs its own vault master key: "
        "set FIREFLOW_VAULT_KEYS=1:<key> "
        "(python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')."
    )

_SECURE = _PROFILE == "production" or env_bool("FIREFLOW_SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = _SECURE
CSRF_COOKIE_SECURE = _SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 14 * 24 * 3600
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if _PROFILE == "production":
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Client addresses are taken from X-Forwarded-For only behind a proxy we were told about.
TRUST_X_FORWARDED_FOR = env_bool("FIREFLOW_TRUST_X_FORWARDED_FOR", False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if _PROFILE == "test":
    # Hashing cost is not what tests are about.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
