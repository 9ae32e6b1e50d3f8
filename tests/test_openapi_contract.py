"""The OpenAPI schema is the contract: the console's TypeScript types are generated from the
committed frontend/openapi.json, so it must match what the API serves."""

import json

from django.test import Client

from fireflow.management.commands.export_openapi import DEFAULT_PATH, openapi_text


def test_committed_schema_matches_the_api() -> None:
    assert DEFAULT_PATH.read_text() == openapi_text(), (
        "frontend/openapi.json is stale: run `.venv/bin/fireflow with-db -- "
        ".venv/bin/python manage.py export_openapi` and `npm run gen:api` in frontend/"
    )


def test_schema_and_docs_are_served() -> None:
    client = Client()
    schema = client.get("/api/openapi.json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/orgs/{org_slug}/members" in paths
    member_params = {p["name"] for p in paths["/api/orgs/{org_slug}/members"]["get"]["parameters"]}
    assert "org_slug" in member_params
    assert client.get("/api/docs").status_code == 200
