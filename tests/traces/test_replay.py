"""Replay and compare: a replay is a new run marked as replaying the original; tools with side effects
never run for real (the demo outbox, drafts and CRM are unchanged), a call the original never made gets
"no recorded result", the compare page shows where the two first diverged; a batch replay is a Celery
job with progress. Real worker processes take every step."""

from django.forms.models import model_to_dict
from django.urls import reverse

from agents.models import ModelCall, RunStatus, ToolInvocation
from agents.services import run_start
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from demo.models import CrmAccount, CrmNote, EmailMessage
from tests.agents.test_runs_with_worker import status_of
from tests.conftest import wait_for
from tests.factories import RENEWAL_GOAL, make_looper
from traces.models import Replay, ReplayBatch
from traces.replay import replay_compare, replay_start


def demo_systems(tenant) -> list:
    return [sorted((model_to_dict(row) for row in model.objects.filter(tenant=tenant)), key=lambda r: r["id"])
            for model in (EmailMessage, CrmNote, CrmAccount)]


def completed_renewal(cast, renewals):
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    status_of(run, RunStatus.WAITING_FOR_HUMAN)
    approval_decide(approval=ApprovalRequest.objects.get(run=run), approve=True, actor=cast.reviewer)
    status_of(run, RunStatus.COMPLETED)
    return run


def test_a_replay_answers_side_effects_from_the_recording_and_changes_nothing(cast, renewals, start_worker, client_for):
    start_worker()
    original = completed_renewal(cast, renewals)
    assert EmailMessage.objects.filter(tenant=cast.acme, sent_at__isnull=False).count() == 1
    before = demo_systems(cast.acme)

    replay = replay_start(original=original, actor=cast.member, model="demo:planner")
    assert status_of(replay, RunStatus.COMPLETED, RunStatus.FAILED) == RunStatus.COMPLETED
    assert demo_systems(cast.acme) == before  # no email sent or drafted, no note written
    assert not ApprovalRequest.objects.filter(run=replay).exists()  # nobody asked: nothing ran for real
    assert Replay.objects.get(run=replay).original == original
    sent = ToolInvocation.objects.get(run=replay, tool="email.send")
    assert sent.result == ToolInvocation.objects.get(run=original, tool="email.send").result
    compared = replay_compare(replay=Replay.objects.get(run=replay))
    assert compared["divergence"] is None and all(pair["same"] for pair in compared["pairs"])

    page = client_for(cast.member).get(reverse("trace_compare", args=["acme", replay.number])).content.decode()
    assert "No divergence" in page and f"#{original.number}" in page
    timeline = client_for(cast.member).get(reverse("trace_timeline", args=["acme", replay.number])).content.decode()
    assert f"Replay of <a" in timeline


def test_a_call_the_original_never_made_gets_no_recorded_result_and_compare_shows_where(cast, renewals, start_worker,
                                                                                        client_for):
    start_worker()
    original = completed_renewal(cast, renewals)
    recorded = ToolInvocation.objects.get(run=original, tool="email.send")
    recorded.arguments = {**recorded.arguments, "to": "someone-else@acme.example"}  # the replay's call will not match
    recorded.save(update_fields=["arguments"])
    before = demo_systems(cast.acme)

    response = client_for(cast.member).post(reverse("trace_replay", args=["acme", original.number]),
                                            {"model": "", "agent_version": "", "read_only": "live"})
    replay = Replay.objects.get(original=original).run
    assert response["Location"] == reverse("trace_compare", args=["acme", replay.number])
    status_of(replay, RunStatus.COMPLETED, RunStatus.FAILED)
    assert demo_systems(cast.acme) == before
    sent = ToolInvocation.objects.get(run=replay, tool="email.send")
    assert sent.status == "error" and sent.result["error_type"] == "no_recorded_result"
    assert "never made this call" in sent.result["message"]
    compared = replay_compare(replay=Replay.objects.get(run=replay))
    assert compared["divergence"]["what"] == "email.send was called with other arguments (to)"
    page = client_for(cast.member).get(response["Location"]).content.decode()
    assert "First divergence" in page and "no_recorded_result" in page and "someone-else@acme.example" in page


def test_a_replay_is_refused_with_a_reason_for_a_bad_model_or_version(cast, renewals, client_for):
    original = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    client = client_for(cast.member)
    url = reverse("trace_replay", args=["acme", original.number])
    page = client.post(url, {"read_only": "recorded"}, follow=True).content.decode()
    assert "Replay a run once it has ended" in page
    original.status = RunStatus.COMPLETED
    original.save(update_fields=["status"])
    assert "has no version 99" in client.post(url, {"agent_version": "99"}, follow=True).content.decode()
    assert "&lt;provider&gt;:&lt;model&gt;" in client.post(url, {"model": "gpt"}, follow=True).content.decode()
    assert not Replay.objects.exists()


def test_a_batch_replay_is_a_celery_job_with_progress_and_a_table(cast, start_worker, client_for):
    start_worker()
    looper = make_looper(cast.acme)
    originals = [run_start(tenant=cast.acme, agent=looper, goal=f"Call noop {n} times", requested_by=cast.member)
                 for n in (1, 2, 3)]
    for run in originals:
        status_of(run, RunStatus.COMPLETED)
    client = client_for(cast.member)
    response = client.post(reverse("trace_batch_create", args=["acme"]),
                           {"agent": "looper", "runs": "2", "read_only": "recorded"})
    batch = ReplayBatch.objects.get()
    assert response["Location"] == reverse("trace_batch", args=["acme", batch.pk])
    wait_for(lambda: Replay.objects.filter(batch=batch, run__status=RunStatus.COMPLETED).count() == 2, 30,
             message="the batch's replays")
    assert {r.original_id for r in Replay.objects.filter(batch=batch)} == {originals[1].pk, originals[2].pk}
    page = client.get(response["Location"]).content.decode()
    assert "2 of 2 replays started · 2 finished · 0 diverged" in page
    refused = client.post(reverse("trace_batch_create", args=["acme"]), {"agent": "looper", "runs": "500"}, follow=True)
    assert "from 1 to 100 runs" in refused.content.decode()


def test_outsiders_get_404_from_the_replay_pages(cast, client_for, renewals):
    original = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    original.status = RunStatus.COMPLETED
    original.save(update_fields=["status"])
    replay = replay_start(original=original, actor=cast.member)
    batch = ReplayBatch.objects.create(tenant=cast.acme, agent=renewals, runs_wanted=1)
    outsider = client_for(cast.outsider)
    assert outsider.post(reverse("trace_replay", args=["acme", original.number])).status_code == 404
    assert outsider.get(reverse("trace_compare", args=["acme", replay.number])).status_code == 404
    assert outsider.get(reverse("trace_batch", args=["acme", batch.pk])).status_code == 404
    assert outsider.post(reverse("trace_batch_create", args=["acme"]), {"agent": "renewals", "runs": "1"}).status_code == 404
    assert outsider.get(reverse("trace_batch", args=["globex", batch.pk])).status_code == 404
    assert Replay.objects.count() == 1 and ReplayBatch.objects.count() == 1


def test_the_api_starts_replays_and_batches_and_compares(cast, client, renewals):
    from console.services import api_token_create

    member = api_token_create(tenant=cast.acme, name="acme", actor=cast.member).secret
    outsider = api_token_create(tenant=cast.globex, name="globex", actor=cast.outsider).secret

    def call(method, path, token=member, **body):
        return getattr(client, method)("/api/v1" + path, body, content_type="application/json",
                                       HTTP_AUTHORIZATION=f"Bearer {token}")
    original = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    assert call("post", f"/traces/{original.number}/replays").status_code == 409
    original.status = RunStatus.COMPLETED
    original.save(update_fields=["status"])
    assert call("post", f"/traces/{original.number}/replays", token=outsider).status_code == 404
    assert call("post", f"/traces/{original.number}/replays", read_only="sometimes").json()["code"] == "invalid"
    created = call("post", f"/traces/{original.number}/replays", model="demo:planner")
    assert created.status_code == 201 and created.json()["original"] == original.number
    number = created.json()["run"]
    compared = call("get", f"/traces/{number}/compare").json()
    assert compared["compare"]["finished"] is False and compared["compare"]["model"] == "demo:planner"
    assert call("get", f"/traces/{number}/compare", token=outsider).status_code == 404
    assert call("get", f"/traces/{original.number}/compare").status_code == 404  # not a replay
    batch = call("post", "/replay-batches", agent="renewals", runs=1)
    assert batch.status_code == 202 and batch.json()["runs_wanted"] == 1
    assert call("get", f"/replay-batches/{batch.json()['id']}", token=outsider).status_code == 404
    assert call("post", "/replay-batches", agent="renewals", runs=0).json()["code"] == "invalid"


AMBIGUOUS_GOAL = "Prepare the renewal for Acme and email it to its success manager"


def answered_question_run(cast, renewals):
    """The original: the agent asks which account, a reviewer answers, approves the email; all in this process."""
    from approvals.models import ApprovalKind
    from tests.factories import advance

    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=AMBIGUOUS_GOAL, requested_by=cast.member))
    approval_decide(approval=ApprovalRequest.objects.get(run=run, kind=ApprovalKind.QUESTION), approve=True,
                    actor=cast.reviewer, answer="The Anvil Works one, ACME-017")
    run = advance(run)
    approval_decide(approval=ApprovalRequest.objects.get(run=run, tool="email.send"), approve=True, actor=cast.reviewer)
    run = advance(run)
    assert run.status == RunStatus.COMPLETED
    return run


def question_results(run) -> list[dict]:
    from agents.models import RunEvent

    return [payload["result"] for payload in RunEvent.objects.filter(run=run, type="tool.result", payload__tool="human.ask")
            .order_by("seq").values_list("payload", flat=True)]


def test_a_replays_question_is_answered_from_the_recording_without_waiting_for_a_person(cast, renewals):
    from tests.factories import advance

    original = answered_question_run(cast, renewals)
    before = demo_systems(cast.acme)
    replay = advance(replay_start(original=original, actor=cast.member))
    assert replay.status == RunStatus.COMPLETED
    assert not ApprovalRequest.objects.filter(run=replay).exists()  # nobody was asked anything
    assert question_results(replay) == question_results(original)
    assert question_results(replay)[0]["data"]["answer"] == "The Anvil Works one, ACME-017"
    sent = ToolInvocation.objects.get(run=replay, tool="email.send")
    assert sent.arguments["to"] == "csm-017@acme.example" and demo_systems(cast.acme) == before


def test_a_question_the_original_never_asked_gets_no_recorded_result(cast, renewals):
    """Read-only tools live: an account added since makes the replay's question differ from the recorded one."""
    from tests.factories import advance

    original = answered_question_run(cast, renewals)
    CrmAccount.objects.create(tenant=cast.acme, key="ACME-099", name="Acme Newco", success_manager="csm-099@acme.example")
    replay = advance(replay_start(original=original, actor=cast.member, read_only="live"))
    assert replay.status == RunStatus.COMPLETED and "could not tell which account" in replay.answer
    assert not ApprovalRequest.objects.filter(run=replay).exists()
    [result] = question_results(replay)
    assert result["error_type"] == "no_recorded_result" and "never made this call" in result["message"]
    assert not ToolInvocation.objects.filter(run=replay, tool="email.send").exists()


def test_a_replay_against_an_earlier_version_runs_that_version_whole(cast, renewals):
    """Not only its model and instructions: its tools and settings too, and it is counted under that version."""
    from agents.services.agent_versions import agent_update
    from tests.factories import advance

    looper = make_looper(cast.acme)
    original = advance(run_start(tenant=cast.acme, agent=looper, goal="Call noop 1 times", requested_by=cast.member))
    agent_update(agent=looper, actor=cast.admin, tools=[], instructions="Answer at once.")
    replay = advance(replay_start(original=original, actor=cast.member, agent_version=1))
    assert replay.agent_version == 1 and replay.status == RunStatus.COMPLETED
    assert ToolInvocation.objects.filter(run=replay, tool="noop").count() == 1  # version 1's tool, from the recording


def test_the_turns_of_a_tenant_that_never_replayed_read_no_replay_row_and_a_replay_started_since_is_one(
        cast, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import advance

    settings.RUN_TURN_SECONDS = 0  # a turn per step: each asks the run-overrides hook
    looper = make_looper(cast.acme)
    with CaptureQueriesContext(connection) as queries:
        original = advance(run_start(tenant=cast.acme, agent=looper, goal="Call noop 2 times", requested_by=cast.member))
    assert original.status == RunStatus.COMPLETED
    read = [q["sql"] for q in queries.captured_queries if "traces_replay" in q["sql"]]
    assert len(read) == 1 and "run_id" not in read[0]  # whether the tenant replays, once for its three turns
    replay = advance(replay_start(original=original, actor=cast.member, model="demo:noop-200ms"))
    assert replay.status == RunStatus.COMPLETED
    assert set(ModelCall.objects.filter(run=replay).values_list("model", flat=True)) == {"demo-noop-200ms"}  # overridden
