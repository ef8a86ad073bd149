"""Embed memories again with the current embedder: those another embedder made (after a change of
MEMORY_EMBEDDINGS_URL or model), or every live one with --all."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from memory.embedders import current_embedder
from memory.models import MemoryRecord, Status


class Command(BaseCommand):
    help = "Re-embed memory records made by another embedder than the current one (or all with --all)."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="every record with content, whatever embedded it")
        parser.add_argument("--batch", type=int, default=64)

    def handle(self, *args, **options):
        embedder = current_embedder()
        rows = MemoryRecord.objects.exclude(status__in=(Status.DELETED, Status.REFUSED)).exclude(content="")
        if not options["all"]:
            rows = rows.exclude(embedder=embedder.name)
        done, batch = 0, max(1, min(options["batch"], 512))
        ids = list(rows.order_by("id").values_list("id", flat=True))
        for start in range(0, len(ids), batch):
            with transaction.atomic():
                records = list(MemoryRecord.objects.select_for_update(no_key=True).filter(pk__in=ids[start:start + batch])
                               .exclude(content=""))
                for record, vector in zip(records, embedder.embed([r.content for r in records])):
                    record.embedding, record.embedder = vector, embedder.name
                MemoryRecord.objects.bulk_update(records, ["embedding", "embedder"])
                done += len(records)
        self.stdout.write(f"re-embedded {done} memories with {embedder.name}")
