"""Write the OpenAPI schema (the contract the console's TypeScript types come from)."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from fireflow.api import api

DEFAULT_PATH = settings.BASE_DIR / "frontend" / "openapi.json"


def openapi_text() -> str:
    return json.dumps(api.get_openapi_schema(), indent=2, sort_keys=True) + "\n"


class Command(BaseCommand):
    help = "Write the API's OpenAPI schema to frontend/openapi.json (or --output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=DEFAULT_PATH)

    def handle(self, *args: object, output: Path, **options: object) -> None:
        output.write_text(openapi_text())
        self.stdout.write(f"wrote {output}")
