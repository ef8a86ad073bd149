"""Idempotent demo data: two tenants, one user per role in Acme, one member in Globex,
one user in both, a platform superuser, and an API token for Acme."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from console.models import ApiToken, Membership, Role, Tenant
from console.services import api_token_create, audit_record, token_hash

DEMO_PASSWORD = "proctor-demo"
TENANTS = {"acme": "Acme", "globex": "Globex"}
USERS = [
    # username, full name, {tenant: role}, superuser
    ("ada", "Ada Admin", {"acme": Role.ADMIN}, False),
    ("rita", "Rita Reviewer", {"acme": Role.REVIEWER}, False),
    ("finn", "Finn Finance", {"acme": Role.FINANCE}, False),
    ("max", "Max Member", {"acme": Role.MEMBER}, False),
    ("gus", "Gus Globex", {"globex": Role.MEMBER}, False),
    ("sam", "Sam Both", {"acme": Role.REVIEWER, "globex": Role.ADMIN}, False),
    ("root", "Platform Operator", {}, True),
]


def describe(memberships: dict, superuser: bool) -> str:
    parts = [f"{role.value} in {TENANTS[slug]}" for slug, role in memberships.items()]
    if superuser:
        parts.append("platform superuser (Django admin at /django-admin/)")
    return ", ".join(parts)


class Command(BaseCommand):
    help = "Create or refresh the demo tenants, users and API token (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        tenants = {slug: Tenant.objects.get_or_create(slug=slug, defaults={"name": name})[0] for slug, name in TENANTS.items()}
        created_users = 0
        for username, full_name, memberships, superuser in USERS:
            first, last = full_name.split(" ", 1)
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "is_superuser": superuser, "is_staff": superuser,
                          "email": f"{username}@example.test"},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
                created_users += 1
            for slug, role in memberships.items():
                Membership.objects.get_or_create(user=user, tenant=tenants[slug], defaults={"role": role})
        if created_users:
            audit_record(tenant=tenants["acme"], actor=None, verb="demo.seeded", target="Acme",
                         data={"users": created_users})
        from approvals.services import approval_policies_seed_demo
        from demo.seed import seed_demo_systems
        from memory.seed import seed_demo_memories

        for tenant in tenants.values():
            seed_demo_systems(tenant)
            approval_policies_seed_demo(tenant)
            seed_demo_memories(tenant)
        token = self._demo_token(tenants["acme"])
        summary = {
            "password": DEMO_PASSWORD,
            "users": [{"username": u, "describe": describe(m, s)} for u, _, m, s in USERS],
            "api_token": {"tenant": "Acme", "token": token},
        }
        self.stdout.write(f"demo data ready: {len(TENANTS)} tenants, {len(USERS)} users ({created_users} new)")
        if options["json"]:
            self.stdout.write(json.dumps(summary))

    def _demo_token(self, tenant: Tenant) -> str:
        """Reuse the token kept under var/ (development only) while it is still valid."""
        path = settings.VAR_DIR / "demo_api_token"
        if path.exists():
            secret = path.read_text().strip()
            if ApiToken.objects.filter(tenant=tenant, token_hash=token_hash(secret), revoked_at=None).exists():
                return secret
        # Ada's: a token acts as the person who made it (runs it starts are hers; approvals as an admin).
        admin = get_user_model().objects.get(username="ada")
        issued = api_token_create(tenant=tenant, name="Demo token (make run)", actor=admin)
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(issued.secret)
        path.chmod(0o600)
        return issued.secret
