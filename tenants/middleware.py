"""Refuse API keys in URLs: query strings end up in logs, browser history and Referer
headers. The request is rejected before anything else runs, even on public routes."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from .tokens import API_KEY_LIKE

_QUERY_KEY_NAMES = {"api_key", "apikey", "key", "token", "access_token", "bearer"}


class RejectApiKeyInQueryMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and _carries_key(request):
            return JsonResponse(
                {
                    "detail": "API keys are accepted only in the 'Authorization: Bearer' header, "
                    "never in the URL. A key sent in a URL may be in logs now: revoke it and "
                    "create a new one.",
                    "code": "api_key_in_query",
                    "fields": {},
                },
                status=401,
            )
        return self.get_response(request)


def _carries_key(request: HttpRequest) -> bool:
    for name, values in request.GET.lists():
        if API_KEY_LIKE.search(name):  # `?ff_...` with no value at all
            return True
        for value in values:
            if API_KEY_LIKE.search(value) or (
                name.lower() in _QUERY_KEY_NAMES and value.startswith(("ff_", "ffa_"))
            ):
                return True
    return False
