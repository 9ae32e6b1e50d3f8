"""`manage.py vault_rewrap`: move every secret to the current master key version (a job
the workers run), and with --wait, report until it is done."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from vault import rewrap


class Command(BaseCommand):
    help = "Rewrap every vault secret under the current master key version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--wait", action="store_true", help="until no row is left")
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args: Any, **options: Any) -> None:
        before = rewrap.status()
        self.stdout.write(f"before: {before}")
        if before["rows_to_rewrap"] == 0:
            self.stdout.write("nothing to rewrap: every secret is under the current version")
            return
        job = rewrap.start(options["batch_size"])
        self.stdout.write(f"queued {job} for the workers")
        if not options["wait"]:
            return
        deadline = time.monotonic() + options["timeout"]
        while (now := rewrap.status())["rows_to_rewrap"] and time.monotonic() < deadline:
            self.stdout.write(f"  {now['rows_to_rewrap']} left")
            time.sleep(1)
        self.stdout.write(f"after: {rewrap.status()}")
