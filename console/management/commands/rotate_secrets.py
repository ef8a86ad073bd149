"""Re-encrypt every secret kept in the database under the first of SECRETS_KEYS (console/secrets_box.py).

Rotation: put a new key first in SECRETS_KEYS (keep the old one after it), restart, run this, then remove the
old key."""

from django.core.management.base import BaseCommand
from django.db import transaction

from console.secrets_box import reseal
from mcp_servers.models import McpServer


class Command(BaseCommand):
    help = "Re-encrypt the secrets kept in the database with the first of SECRETS_KEYS."

    def handle(self, *args, **options):
        count = 0
        with transaction.atomic():
            for server in McpServer.objects.exclude(secret="").select_for_update():
                server.secret = reseal(server.secret)
                server.save(update_fields=["secret"])
                count += 1
        self.stdout.write(f"Re-encrypted {count} secret{'s' if count != 1 else ''} with the first key.")
