"""URLs: the API, Django's admin for platform staff, and the console (a single-page app)."""

from django.contrib import admin
from django.urls import path, re_path

from miniapps.views import app_page

from . import views
from .api import api

admin.site.site_header = "FireFlow platform administration"

urlpatterns = [
    path("api/", api.urls),
    re_path(r"^api/.*$", views.api_not_found),
    path("django-admin/", admin.site.urls),
    path("apps/<slug:org_slug>/<slug:app_slug>", app_page),
    re_path(r"^(?!static/).*$", views.console),
]
