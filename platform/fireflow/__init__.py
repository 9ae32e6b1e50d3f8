"""The FireFlow Django project: settings, URLs, the ASGI application and the API root."""
