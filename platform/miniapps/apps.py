from django.apps import AppConfig


class MiniappsConfig(AppConfig):
    name = "miniapps"
    verbose_name = "Mini-apps"
    default_auto_field = "django.db.models.BigAutoField"
