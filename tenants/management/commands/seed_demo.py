"""Create the demo organisation and its owner if missing; print the credentials once."""

import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from flows.demo import seed_demo_flows
from tenants import services
from tenants.models import Organization, User

DEMO_SLUG = "demo"
DEMO_EMAIL = "owner@demo.example.com"


class Command(BaseCommand):
    help = "Create the demo organisation (slug 'demo') and its owner, if they do not exist."

    def handle(self, *args: object, **options: object) -> None:
        if Organization.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write(
                f"[fireflow] demo organisation exists; log in as {DEMO_EMAIL} "
                "(the password was printed when it was created)"
            )
            return
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            owner = User.objects.filter(email__iexact=DEMO_EMAIL).first()
            if owner is None:
                owner = services.user_create(
                    email=DEMO_EMAIL, name="Demo Owner", password=password, verified=True
                )
            else:
                owner.set_password(password)
                owner.save(update_fields=["password"])
            org = services.organization_create(
                name="Demo Organisation", slug=DEMO_SLUG, owner=owner
            )
            seed_demo_flows(org=org, owner=owner)
        self.stdout.write(
            "[fireflow] demo organisation created. Log in with\n"
            f"[fireflow]   email:    {DEMO_EMAIL}\n"
            f"[fireflow]   password: {password}\n"
            "[fireflow] (shown once; this password is not stored anywhere else)"
        )
