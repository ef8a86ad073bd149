from django.core.management.base import BaseCommand, CommandError

from console.models import Tenant
from costs.services import rollups_rebuild


class Command(BaseCommand):
    help = "Rebuild the hourly cost rollups from the ledger (all tenants, or one by slug)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="a tenant's slug (default: every tenant)")

    def handle(self, *args, tenant=None, **options):
        tenants = Tenant.objects.all() if tenant is None else Tenant.objects.filter(slug=tenant)
        if tenant is not None and not tenants.exists():
            raise CommandError(f"no tenant '{tenant}'")
        for each in tenants.order_by("pk"):
            rows = rollups_rebuild(each)
            self.stdout.write(f"{each.slug}: {rows} hourly rows from the ledger")
