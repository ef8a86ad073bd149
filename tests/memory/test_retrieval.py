"""Retrieval: only what the run's requester may see (ACL in the SQL, before ranking), meaning and words
fused, never a record that is not active, k rows for a selective filter; the step's context through the
real context hook, and the uses written in the step's transaction."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agents.models import Agent, RunEvent
from agents.services import run_start
from memory import selectors, services
from memory.embedders import embed_one
from memory.models import MemoryRecord, MemoryUse, Team, TeamMember
from memory.selectors import retrieve
from tests.factories import advance


@pytest.fixture(params=["exact", "branches"])
def shape(request, monkeypatch):
    """Both statement shapes: one exact sort of every eligible row (a requester who may see few records, as in
    every test here) and the two ACL branches that may walk HNSW (taken when EXACT_UP_TO is below the count)."""
    monkeypatch.setattr(selectors, "_eligible_small", {})
    if request.param == "branches":
        monkeypatch.setattr(selectors, "EXACT_UP_TO", 0)
    return request.param


def _make(tenant, content, **kw):
    kw.setdefault("scope", "tenant")
    kw.setdefault("type", "fact")
    return services.memory_create(tenant=tenant, actor=None, content=content, **kw)


def _ids(found):
    return {f.id for f in found}


def _retrieve(user, agent, text, k=20):
    return retrieve(tenant_id=agent.tenant_id, user_id=user.pk if user else None, agent_id=agent.pk, text=text,
                    vector=embed_one(text)[0], k=k)


def test_only_the_requesters_own_their_teams_the_tenants_and_the_runs_agents(cast, renewals, shape):
    other_agent = Agent.objects.create(tenant=cast.acme, name="Other", slug="other", model="demo:noop")
    team = Team.objects.create(tenant=cast.acme, name="Renewals")
    TeamMember.objects.create(tenant=cast.acme, team=team, user=cast.member)
    not_my_team = Team.objects.create(tenant=cast.acme, name="Finance")
    TeamMember.objects.create(tenant=cast.acme, team=not_my_team, user=cast.finance)
    globex_agent = Agent.objects.create(tenant=cast.globex, name="G", slug="g", model="demo:noop")
    text = "renewal note about ACME-042"
    shared = {_make(cast.acme, f"Tenant {text}").pk, _make(cast.acme, f"Agent {text}", scope="agent", agent=renewals).pk}
    maxs = {_make(cast.acme, f"Max's {text}", scope="user", user=cast.member).pk,
            _make(cast.acme, f"Team {text}", scope="team", team=team).pk}
    ritas = _make(cast.acme, f"Rita's {text}", scope="user", user=cast.reviewer).pk
    visible = shared | maxs
    hidden = {
        ritas,
        _make(cast.acme, f"Finance team {text}", scope="team", team=not_my_team).pk,
        (other_agents := _make(cast.acme, f"Other agent {text}", scope="agent", agent=other_agent).pk),
        _make(cast.globex, f"Globex {text}").pk,
        _make(cast.globex, f"Gus {text}", scope="user", user=cast.outsider).pk,
        _make(cast.globex, f"Globex agent {text}", scope="agent", agent=globex_agent).pk,
    }
    assert _ids(_retrieve(cast.member, renewals, text)) == visible
    assert not _ids(_retrieve(cast.member, renewals, text)) & hidden
    # Rita sees her own and the shared ones, not Max's nor a team she is not in.
    assert _ids(_retrieve(cast.reviewer, renewals, text)) == shared | {ritas}
    # With the other agent, its records instead of the renewals agent's.
    tenant_record = min(shared)
    assert _ids(_retrieve(cast.member, other_agent, text)) == maxs | {tenant_record, other_agents}
    # Gus in Globex never sees anything of Acme.
    assert _ids(_retrieve(cast.outsider, globex_agent, text)) <= hidden - {ritas}


def test_never_superseded_deleted_expired_proposed_or_refused(cast, renewals, shape):
    text = "The champion at ACME-042"
    live = _make(cast.acme, f"{text} is Lee.")
    gone = [_make(cast.acme, f"{text} is Dana."), _make(cast.acme, f"{text} is Kim."),
            _make(cast.acme, f"{text} is Pat."), _make(cast.acme, f"{text} is Jo.", status="proposed")]
    MemoryRecord.objects.filter(pk=gone[0].pk).update(status="superseded", superseded_by=live)
    services.memory_delete(gone[1], actor=cast.admin)
    MemoryRecord.objects.filter(pk=gone[2].pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert _ids(_retrieve(cast.member, renewals, text)) == {live.pk}
    services.memory_refuse(gone[3], actor=cast.admin)
    assert _ids(_retrieve(cast.member, renewals, text)) == {live.pk}


def test_words_find_keys_that_meaning_alone_would_miss(cast, renewals, shape):
    for n in range(30):
        _make(cast.acme, f"Renewal note number {n} about an account and its champion.")
    key = _make(cast.acme, "Security review requested for ACME-042.")
    [first, *_] = _retrieve(cast.member, renewals, "What do we know about ACME-042?", k=5)
    assert first.id == key.pk


def test_the_step_gets_the_chosen_records_words_in_the_same_statement(cast, renewals, django_assert_num_queries):
    for n in range(8):
        _make(cast.acme, f"Renewal note number {n} about an account and its champion.")
    key = _make(cast.acme, "Security review requested for ACME-042.")
    plain = _retrieve(cast.member, renewals, "What do we know about ACME-042?", k=5)
    with django_assert_num_queries(1):
        worded = retrieve(tenant_id=cast.acme.pk, user_id=cast.member.pk, agent_id=renewals.pk,
                          text="What do we know about ACME-042?", vector=embed_one("What do we know about ACME-042?")[0],
                          k=5, with_content=True)
    assert [(f.id, f.score) for f in worded] == [(f.id, f.score) for f in plain]
    assert (worded[0].id, worded[0].content, worded[0].type) == (key.pk, "Security review requested for ACME-042.", "fact")


def test_pins_and_confidence_break_ties(cast, renewals, shape):
    a = _make(cast.acme, "Quotes go out two weeks before renewal.", confidence=0.5)
    b = _make(cast.acme, "Quotes go out two weeks before renewal!", confidence=0.5)
    services.memory_pin(b, actor=cast.admin, pinned=True)
    assert [f.id for f in _retrieve(cast.member, renewals, "Quotes go out two weeks before renewal", k=2)] == [b.pk, a.pk]


def test_a_selective_filter_still_returns_k_rows(cast, renewals, shape):
    """5,000 records of other people in the tenant, 5 of Max's (0.1%): the top 5 are all 5 of Max's."""
    others = [cast.reviewer.pk, cast.finance.pk, cast.admin.pk]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.7)")
        cursor.execute(
            "INSERT INTO memory_memoryrecord (tenant_id, scope, user_id, embedding, content, subject, type, embedder, "
            "confidence, status, pinned, version, created_at, updated_at) "
            "SELECT %s, 'user', CASE WHEN n %% 1001 = 0 THEN %s ELSE (%s::int[])[1 + n %% 3] END, "
            "l2_normalize(v.a::vector), "
            "'note ' || n, '', 'fact', 'random', 0.5, 'active', false, 1, now(), now() "
            "FROM generate_series(0, 5004) n, LATERAL (SELECT array_agg(random() - 0.5) AS a "
            "FROM generate_series(1, 256) WHERE n >= 0) v", [cast.acme.pk, cast.member.pk, others])
        cursor.execute("ANALYZE memory_memoryrecord")
    mine = set(MemoryRecord.objects.filter(user=cast.member).values_list("pk", flat=True))
    assert len(mine) == 5
    found = _retrieve(cast.member, renewals, "anything at all", k=5)
    assert len(found) == 5 and _ids(found) <= mine


def test_a_requester_in_no_team_still_gets_their_own_the_tenants_and_the_agents(cast, renewals, shape):
    """Rita is in no team; a team's record (Max's) stays out, everything else she may see comes, k of them."""
    team = Team.objects.create(tenant=cast.acme, name="Renewals")
    TeamMember.objects.create(tenant=cast.acme, team=team, user=cast.member)
    text = "renewal plan for ACME-042"
    hers = {_make(cast.acme, f"Tenant {text}").pk, _make(cast.acme, f"Agent {text}", scope="agent", agent=renewals).pk,
            _make(cast.acme, f"Rita's {text}", scope="user", user=cast.reviewer).pk}
    _make(cast.acme, f"Team {text}", scope="team", team=team)
    assert not TeamMember.objects.filter(user=cast.reviewer).exists()
    assert _ids(_retrieve(cast.reviewer, renewals, text, k=3)) == hers
    assert _ids(_retrieve(cast.reviewer, renewals, text, k=10)) == hers


def test_the_shape_follows_how_many_records_the_requester_may_see(cast, renewals, django_assert_num_queries):
    """Few eligible records: the exact statement; more than EXACT_UP_TO: the two branches. The count is asked once
    and kept (one statement a retrieval after that), and either way the answer is the same k records."""
    selectors._eligible_small.clear()
    text = "renewal plan for ACME-042"
    for n in range(4):
        _make(cast.acme, f"Tenant note {n}: {text}")
    _make(cast.acme, f"Max's {text}", scope="user", user=cast.member)
    with django_assert_num_queries(2):  # the count, then the retrieval
        exact = _retrieve(cast.member, renewals, text, k=3)
    with django_assert_num_queries(1):
        assert _retrieve(cast.member, renewals, text, k=3) == exact
    key = (cast.acme.pk, cast.member.pk, renewals.pk)
    assert selectors._eligible_small[key][1] is True
    selectors._eligible_small.clear()
    try:
        selectors.EXACT_UP_TO, before = 4, selectors.EXACT_UP_TO
        branches = _retrieve(cast.member, renewals, text, k=3)
        assert selectors._eligible_small[key][1] is False  # 5 eligible, more than 4
    finally:
        selectors.EXACT_UP_TO = before
        selectors._eligible_small.clear()
    assert [(f.id, f.score) for f in branches] == [(f.id, f.score) for f in exact]


def test_a_step_gets_its_memories_in_a_block_and_records_their_use(cast, renewals):
    pref = _make(cast.acme, "Max prefers a short bullet summary at the top of renewal emails.", scope="user",
                 user=cast.member, type="preference", subject="email format")
    _make(cast.acme, "Rita prefers long emails.", scope="user", user=cast.reviewer, type="preference")
    run = run_start(tenant=cast.acme, agent=renewals, goal="Prepare the renewal plan for ACME-042 and email it",
                    requested_by=cast.member)
    run = advance(run, until=("completed", "failed", "waiting_for_human"))
    assert run.status == "waiting_for_human", run.terminal_reason  # email.send waits for a reviewer; drafted by now
    uses = list(MemoryUse.objects.filter(run=run))
    assert uses and {u.record_id for u in uses} == {pref.pk}
    assert {u.version for u in uses} == {1} and all(u.rank == 1 and u.score > 0 for u in uses)
    used = [e.payload for e in RunEvent.objects.filter(run=run, type="context.used")]
    assert used and used[0]["blocks"][0]["references"][0]["id"] == pref.pk
    # The transcript keeps ids, never the memory's text; the drafted email shows the preference was used.
    transcript = " ".join(str(m.message) for m in run.messages.all()) + str(used)
    assert "bullet summary at the top" not in transcript
    from demo.models import EmailMessage

    assert "In short:\n- ARR" in EmailMessage.objects.get(tenant=cast.acme).body


def _renewal_run_waiting_for_its_email(cast, renewals):
    """The demo renewals agent on ACME-042, stopped at its risky email for a reviewer."""
    run = run_start(tenant=cast.acme, agent=renewals, goal="Prepare the renewal plan for ACME-042 and email it",
                    requested_by=cast.member)
    run = advance(run, until=("completed", "failed", "waiting_for_human"))
    assert run.status == "waiting_for_human", run.terminal_reason
    return run


def _redirected(cast, run, instruction: str, note: str) -> list[dict]:
    """The person instructs the run and the reviewer rejects its email; the context the steps after that used."""
    from agents.services.control import run_add_instruction
    from approvals.services import approval_decide

    before = set(RunEvent.objects.filter(run=run, type="context.used").values_list("seq", flat=True))
    run_add_instruction(run=run, actor=cast.member, text=instruction)
    approval_decide(approval=run.approval_requests.get(), approve=False, actor=cast.reviewer, note=note)
    run = advance(run, until=("completed", "failed", "waiting_for_human"))
    later = [e.payload for e in RunEvent.objects.filter(run=run, type="context.used").exclude(seq__in=before)]
    assert later, "the run took no further model step"
    return later


def test_a_step_that_turns_to_another_account_gets_that_accounts_memories(cast, renewals, settings):
    """The demo renewals agent works on ACME-042; the person then tells it to switch to ACME-017: the next step
    asks memory with the goal and that instruction, so it is given ACME-017's memory, not ACME-042's again."""
    settings.MEMORY_CONTEXT_K = 1
    rocket = _make(cast.acme, "Rocket Supply ACME-042 renewal plan: the champion is Dana; email her the plan.",
                   subject="ACME-042 renewal")
    anvil = _make(cast.acme, "Anvil Works ACME-017: usage is down 30%, offer a training session.",
                  subject="ACME-017 renewal")
    run = _renewal_run_waiting_for_its_email(cast, renewals)
    assert {u.record_id for u in MemoryUse.objects.filter(run=run)} == {rocket.pk}
    later = _redirected(cast, run, "Switch to Anvil Works ACME-017 instead: usage is down, offer them a training "
                                   "session.", "Not this account: see the instruction.")
    assert later[0]["blocks"][0]["references"][0]["id"] == anvil.pk
    assert MemoryUse.objects.filter(run=run, record=anvil, step=later[0]["step"]).exists()


def test_what_a_step_asks_memory_is_the_goal_with_the_latest_message_and_tool_result_bounded(cast, renewals):
    from agents.models import ConversationMessage
    from memory.context import RECENT_CHARS, latest_messages_stored, step_question

    run = run_start(tenant=cast.acme, agent=renewals, goal="Renew ACME-042", requested_by=cast.member)
    ConversationMessage.objects.bulk_create([
        ConversationMessage(run=run, seq=10, step=1, message={"role": "user", "text": "Renew ACME-042"}),
        ConversationMessage(run=run, seq=11, step=1, message={"role": "tool", "call_id": "c1", "tool": "crm.lookup",
                                                               "result": {"status": "ok", "note": "x" * 5000}}),
        ConversationMessage(run=run, seq=12, step=2, message={"role": "user", "text": "Now ROAD-105, please"}),
    ])
    question = step_question(run.goal, latest_messages_stored(run.pk))
    assert question.startswith("Renew ACME-042\nNow ROAD-105, please\nok x")
    assert len(question) <= len(run.goal) + 2 * RECENT_CHARS + 2
    # A step in a turn is handed the same messages by the runtime (its conversation), and asks the same.
    from agents.conversation import Conversation
    from agents.run_store import conversation_load
    held = Conversation(instructions="", messages=conversation_load(run_id=run.pk)).latest
    assert step_question(run.goal, held) == question


def test_every_connection_has_the_hnsw_settings_retrieval_needs(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('hnsw.iterative_scan'), current_setting('hnsw.ef_search')")
        assert cursor.fetchone() == ("relaxed_order", "200")


def test_a_tenant_without_memories_still_runs_and_its_steps_place_no_memory_block(cast, renewals):
    run = _renewal_run_waiting_for_its_email(cast, renewals)
    assert not MemoryUse.objects.filter(run=run).exists()
    blocks = [b for e in RunEvent.objects.filter(run=run, type="context.used") for b in e.payload.get("blocks", ())]
    assert not [b for b in blocks if b.get("source") == "memory"]


def test_a_memory_saved_mid_run_is_used_by_the_runs_next_step(cast, renewals):
    run = _renewal_run_waiting_for_its_email(cast, renewals)
    assert not MemoryUse.objects.filter(run=run).exists()
    saved = _make(cast.acme, "Rocket Supply ACME-042 renewal plan: the champion is Dana; email her the plan.",
                  subject="ACME-042 renewal")
    later = _redirected(cast, run, "Send the ACME-042 plan to the champion instead.",
                        "Not this address: see the instruction.")
    assert later[0]["blocks"][0]["references"][0]["id"] == saved.pk
    assert MemoryUse.objects.filter(run=run, record=saved, step=later[0]["step"]).exists()


def test_a_tenant_without_active_memories_asks_no_retrieval_and_a_memory_confirmed_mid_run_is_used(cast, renewals):
    from django.test.utils import CaptureQueriesContext

    proposed = _make(cast.acme, "Rocket Supply ACME-042 renewal plan: the champion is Dana; email her the plan.",
                     subject="ACME-042 renewal", status="proposed")
    with CaptureQueriesContext(connection) as queries:
        run = _renewal_run_waiting_for_its_email(cast, renewals)
    assert not [q for q in queries.captured_queries if "chosen.id" in q["sql"]]  # retrieve's statement
    services.memory_confirm(proposed, actor=cast.member)
    later = _redirected(cast, run, "Send the ACME-042 plan to the champion instead.",
                        "Not this address: see the instruction.")
    assert later[0]["blocks"][0]["references"][0]["id"] == proposed.pk
