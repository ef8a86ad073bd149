"""Deletion means gone: after a memory an agent proposed, a step used and a person corrected is deleted, its
content is nowhere in the database (every text and JSON column of every table searched), nor in the run's
transcript or events; a tombstone without content stays in the audit log."""

from django.db import connection

from agents.models import Agent
from agents.services import run_start
from console.models import AuditEvent
from demo.models import CrmAccount, CrmNote
from memory import services
from memory.models import MemoryProposal, MemoryRecord, MemoryUse, ProposalOutcome, Status
from tests.factories import advance

TEXT_TYPES = ("text", "character varying", "json", "jsonb", "tsvector", "character")


def database_dump_matches(*needles: str) -> list[str]:
    """Where any needle appears (case-insensitive): table.column, over every text-like column of every table."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, column_name FROM information_schema.columns "
                       "WHERE table_schema = 'public' AND data_type = ANY(%s)", [list(TEXT_TYPES)])
        for table, column in cursor.fetchall():
            for needle in needles:
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s', [f"%{needle}%"])
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column}: {needle}")
    return found


def _process_pending():
    for proposal in MemoryProposal.objects.filter(outcome=ProposalOutcome.PENDING):
        services.proposal_process(proposal.pk)


def test_a_deleted_memory_is_nowhere_in_the_database(cast, renewals):
    agent = Agent.objects.get(tenant=cast.acme, slug="renewals-memory")
    account = CrmAccount.objects.get(tenant=cast.acme, key="ACME-042")
    CrmNote.objects.filter(account=account, body__startswith="Champion").update(body="Champion: Quokkabérry Zed (VP Ops).")
    goal = "Prepare the renewal plan for account ACME-042 and email it to its success manager"
    run = advance(run_start(tenant=cast.acme, agent=agent, goal=goal, requested_by=cast.member))
    _process_pending()
    [record] = MemoryRecord.objects.filter(tenant=cast.acme, subject="champion of ACME-042")
    assert record.content == "The champion at ACME-042 is Quokkabérry Zed (VP Ops)."  # non-ASCII: escaped in json
    assert record.source_run == run
    # A second run uses it (and proposes it again: merged), then a person corrects it.
    second = advance(run_start(tenant=cast.acme, agent=agent, goal=goal, requested_by=cast.member))
    _process_pending()
    assert MemoryUse.objects.filter(run=second, record=record).exists()
    assert MemoryProposal.objects.filter(run=second, outcome="merged", record=record).exists()
    services.memory_correct(record, actor=cast.member, content="The champion at ACME-042 is Wombatine Zed, VP Ops.")
    secret_phrases = ("champion at ACME-042 is Quokkab", "Wombatine")
    assert database_dump_matches(*secret_phrases)  # the search finds it while it exists

    services.memory_delete(record, actor=cast.member)

    assert database_dump_matches(*secret_phrases) == []
    record.refresh_from_db()
    assert (record.status, record.content, record.embedding) == (Status.DELETED, "", None)
    assert set(record.versions.values_list("content", flat=True)) == {""}
    tombstone = AuditEvent.objects.get(verb="memory.deleted", target=f"memory #{record.pk}")
    assert tombstone.actor == cast.member and "Zed" not in str(tombstone.data)
    # The runs still read as they did, with the memory's text replaced.
    remembered = [m.message for m in run.messages.all() if (m.message.get("tool_call") or {}).get("tool") == "memory.remember"]
    assert remembered and remembered[0]["tool_call"]["arguments"]["content"] == services.DELETED_TEXT


def test_deleting_a_seeded_record_leaves_only_a_tombstone(cast):
    record = services.memory_create(tenant=cast.acme, actor=cast.member, scope="user", user=cast.member,
                                    type="preference", content="Max secretly loves Xylophonium music.")
    services.memory_pin(record, actor=cast.member, pinned=True)
    services.memory_delete(record, actor=cast.admin)
    assert database_dump_matches("Xylophonium") == []
    assert AuditEvent.objects.filter(verb="memory.deleted", actor=cast.admin).count() == 1
