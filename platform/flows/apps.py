from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "Flows and runs"
    default_auto_field = "django.db.models.BigAutoField"
