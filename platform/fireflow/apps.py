from django.apps import AppConfig


class FireflowConfig(AppConfig):
    name = "fireflow"
    verbose_name = "FireFlow"
