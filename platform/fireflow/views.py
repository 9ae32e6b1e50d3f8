"""The console's HTML shell and the JSON 404 for unknown API paths."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import ensure_csrf_cookie

_MISSING_BUILD = """<!doctype html><title>FireFlow</title>
<h1>FireFlow</h1><p>The console has not been built. Run <code>make up</code> (it runs
<code>npm ci &amp;&amp; npm run build</code> in <code>frontend/</code>).</p>"""


@ensure_csrf_cookie
def console(request: HttpRequest) -> HttpResponse:
    """Every non-API path serves the console; the browser app routes it."""
    index = settings.FRONTEND_DIST / "index.html"
    if not index.is_file():
        return HttpResponse(_MISSING_BUILD, status=503)
    response = HttpResponse(index.read_bytes(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


def api_not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"detail": f"No API route at {request.path}.", "code": "not_found", "fields": {}},
        status=404,
    )
