"""The page of a published app: the console's shell, framable only by the sites the app's
publisher allowed (Content-Security-Policy frame-ancestors); every other page stays DENY."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.clickjacking import xframe_options_exempt

from fireflow.views import console

from .models import App


@xframe_options_exempt
def app_page(request: HttpRequest, org_slug: str, app_slug: str) -> HttpResponse:
    response = console(request)
    origins = (
        App.objects.filter(org__slug=org_slug, slug=app_slug, published=True)
        .values_list("allowed_origins", flat=True)
        .first()
    )
    ancestors = " ".join(["'self'", *(origins or [])])
    response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return response
