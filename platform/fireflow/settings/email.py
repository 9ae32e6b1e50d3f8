"""Mail: the console backend in development, SMTP in production (or when EMAIL_HOST is set).
Tests swap in Django's in-memory backend themselves."""

from .env import env_bool, env_int, env_str, profile

_PROFILE = profile()

DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "FireFlow <no-reply@fireflow.example.com>")
if _PROFILE == "production" or env_str("EMAIL_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": env_str("EMAIL_HOST", "localhost"),
                "port": env_int("EMAIL_PORT", 587),
                "username": env_str("EMAIL_HOST_USER"),
                "password": env_str("EMAIL_HOST_PASSWORD"),
                "use_tls": env_bool("EMAIL_USE_TLS", True),
                # A mail server that hangs must not hold a worker's notifier (or a request).
                "timeout": env_int("EMAIL_TIMEOUT", 10),
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
