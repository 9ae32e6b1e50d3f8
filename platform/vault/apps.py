from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "vault"
    verbose_name = "Secrets vault"
    default_auto_field = "django.db.models.BigAutoField"
