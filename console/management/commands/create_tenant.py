"""The platform operator's: a tenant with its first admin.

    python manage.py create_tenant "Acme Corp" acme --admin-email ada@acme.example

An existing account with that email becomes the tenant's admin at once; otherwise an admin invitation is
made, emailed, and its link printed (it works once, for 7 days)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email, validate_slug

from console.models import Tenant
from console.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant with its first admin (an existing account by email, or an emailed admin invitation)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The tenant's name, as people see it")
        parser.add_argument("slug", help="The tenant's short name in URLs (/t/<slug>/)")
        parser.add_argument("--admin-email", required=True, help="The first admin's email address")

    def handle(self, *args, name, slug, admin_email, **options):
        try:
            validate_slug(slug)
            validate_email(admin_email)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if not name.strip() or len(name) > 100 or len(slug) > 50:
            raise CommandError("Give a name of 1–100 characters and a slug of at most 50.")
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"A tenant with the slug '{slug}' exists already.")
        tenant, membership, issued = tenant_create(name=name, slug=slug, admin_email=admin_email)
        if membership is not None:
            self.stdout.write(f"Created {tenant.name} (/t/{tenant.slug}/); {membership.user.username} is its admin.")
        else:
            self.stdout.write(f"Created {tenant.name} (/t/{tenant.slug}/); invited {admin_email} as its admin.\n"
                              f"Invitation link (works once, until {issued.invitation.expires_at:%Y-%m-%d %H:%M UTC}):"
                              f"\n{issued.link}")
