"""Run pages and controls: outsiders 404, roles 403, bad input handled."""

import pytest

from agents.models import Agent
from agents.services import run_start
from approvals.models import ApprovalRequest
from demo.seed import seed_demo_systems


@pytest.fixture
def run(cast):
    seed_demo_systems(cast.acme)
    return run_start(tenant=cast.acme, agent=Agent.objects.get(tenant=cast.acme, slug="renewals"), goal="ACME-042 renewal",
                     requested_by=cast.member)


def test_run_urls_are_404_for_outsiders(cast, run, client_for):
    client = client_for(cast.outsider)
    assert client.get(f"/t/acme/runs/{run.number}/").status_code == 404
    assert client.get(f"/t/globex/runs/{run.number}/").status_code == 404  # his tenant, not his run
    for action in ["cancel", "pause", "resume", "instruct"]:
        assert client.post(f"/t/acme/runs/{run.number}/{action}/", {"text": "x"}).status_code == 404, action
    assert client.post("/t/acme/runs/", {"agent": run.agent_id, "goal": "sneaky"}).status_code == 404
    assert not run.agent.runs.filter(goal="sneaky").exists()
    assert client.get("/t/acme/demo-systems/").status_code == 404


def test_only_reviewers_decide_approvals(cast, run, client_for):
    approval = ApprovalRequest.objects.create(tenant=cast.acme, run=run, step=1, call_id="c", tool="email.send",
                                              arguments={}, risk=3, policy="test")
    url = f"/t/acme/approvals/{approval.pk}/decision/"  # the run card posts here, from=run
    assert client_for(cast.member).post(url, {"decision": "approve", "from": "run"}).status_code == 403
    assert client_for(cast.outsider).post(url, {"decision": "approve", "from": "run"}).status_code == 404
    client_for(cast.reviewer).post(url, {"decision": "approve", "from": "run"})
    response = client_for(cast.both).post(url, {"decision": "reject", "from": "run"}, follow=True)
    assert "Already approved by rita" in response.content.decode()
    live = client_for(cast.both).post(url, {"decision": "reject", "from": "run"}, HTTP_HX_REQUEST="true")
    assert live.status_code == 409 and live.content.decode().startswith("Already approved by rita")  # under the card


def test_the_run_page_shows_goal_status_and_the_demo_label(cast, run, client_for):
    page = client_for(cast.member).get(f"/t/acme/runs/{run.number}/").content.decode()
    assert "ACME-042 renewal" in page and "Queued" in page and "offline demo model" in page


def test_starting_a_run_without_a_goal_says_so(cast, run, client_for):
    agent = Agent.objects.get(tenant=cast.acme, slug="renewals")
    response = client_for(cast.member).post("/t/acme/runs/", {"agent": agent.pk, "goal": "  "})
    assert response.status_code == 200 and "This field is required" in response.content.decode()


def test_an_unknown_control_action_is_404(cast, run, client_for):
    assert client_for(cast.member).post(f"/t/acme/runs/{run.number}/explode/").status_code == 404


def test_an_empty_instruction_is_refused_with_a_message(cast, run, client_for):
    response = client_for(cast.member).post(f"/t/acme/runs/{run.number}/instruct/", {"text": "  "}, follow=True)
    assert "Write the instruction to add." in response.content.decode()
    run.refresh_from_db()
    assert run.inbox == []


def test_the_runs_list_makes_as_many_queries_for_twenty_runs_as_for_one(cast, run, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(cast.member)
    client.get("/t/acme/runs/")  # the first visit remembers the tenant in the session
    with CaptureQueriesContext(connection) as one:
        client.get("/t/acme/runs/")
    for _ in range(19):
        run_start(tenant=cast.acme, agent=run.agent, goal="another", requested_by=cast.member)
    with CaptureQueriesContext(connection) as twenty:
        page = client.get("/t/acme/runs/").content.decode()
    assert page.count('id="run-row-') == 20
    assert len(twenty) == len(one)


def test_the_run_page_makes_as_many_queries_for_three_decided_calls_as_for_one(cast, run, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.models import ToolInvocation

    def decided_call(step):
        ran = ToolInvocation.objects.create(tenant=cast.acme, run=run, step=step, call_id=f"c{step}", tool="email.send",
                                            idempotency_key=f"{run.pk}:{step}:c{step}", status="ok")
        ApprovalRequest.objects.create(tenant=cast.acme, run=run, step=step, call_id=f"c{step}", tool="email.send",
                                       risk=3, policy="test", status="approved", decided_by=cast.reviewer,
                                       tool_invocation=ran)

    client = client_for(cast.member)
    decided_call(1)
    client.get(f"/t/acme/runs/{run.number}/")
    with CaptureQueriesContext(connection) as one:
        client.get(f"/t/acme/runs/{run.number}/")
    decided_call(2)
    decided_call(3)
    with CaptureQueriesContext(connection) as three:
        page = client.get(f"/t/acme/runs/{run.number}/").content.decode()
    assert page.count("it ran: ok") == 3
    assert len(three) == len(one)


def test_only_people_who_may_decide_see_the_approval_buttons(cast, run, client_for):
    ApprovalRequest.objects.create(tenant=cast.acme, run=run, step=1, call_id="c", tool="email.send",
                                   arguments={"to": "x@example.test"}, risk=3, policy="test")
    member_page = client_for(cast.member).get(f"/t/acme/runs/{run.number}/").content.decode()
    assert "email.send" in member_page and ">Approve<" not in member_page and "A reviewer decides" in member_page
    assert ">Approve<" in client_for(cast.reviewer).get(f"/t/acme/runs/{run.number}/").content.decode()


def test_runs_are_numbered_per_tenant_in_urls_and_pages(cast, run, client_for, renewals):
    from agents.models import Agent as AgentModel
    from demo.seed import seed_demo_systems as seed

    seed(cast.globex)
    second = run_start(tenant=cast.acme, agent=renewals, goal="Acme's second", requested_by=cast.member)
    first_of_globex = run_start(tenant=cast.globex, agent=AgentModel.objects.get(tenant=cast.globex, slug="renewals"),
                                goal="Globex's first", requested_by=cast.outsider)
    assert (run.number, second.number, first_of_globex.number) == (1, 2, 1)
    assert first_of_globex.pk > second.pk  # the global id says nothing on the page
    page = client_for(cast.outsider).get("/t/globex/runs/1/").content.decode()
    assert "Globex&#x27;s first" in page and "#1 " in page and f"/runs/{first_of_globex.pk}/" not in page
    assert "Acme&#x27;s second" in client_for(cast.member).get("/t/acme/runs/2/").content.decode()
    assert client_for(cast.member).get(f"/t/acme/runs/{first_of_globex.pk}/").status_code == 404


def test_the_run_socket_s_frame_shows_the_request_for_each_role_then_the_decision_and_the_call_that_ran(cast, renewals):
    """The card a run socket pushes (run_get's prepared reads, not the ORM's prefetch): the pending request's tool,
    risk and assignee for everyone, the buttons only for who may decide; then who decided and how the call ended."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.live import render_run_update
    from agents.selectors import run_get
    from approvals.services import approval_assign, approval_decision_take
    from tests.factories import RENEWAL_GOAL, advance

    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    approval = run.approval_requests.get()
    approval_assign(approval=approval, assignee="rita", actor=cast.admin)
    for can_decide in (False, True):
        with CaptureQueriesContext(connection) as reads:
            shown = run_get(tenant=cast.acme, run_id=run.pk)
        assert len(reads) == 2  # the run, and its requests with their people and calls
        card = render_run_update(shown, 0, can_decide=can_decide)["replace"]["run-card"]
        assert "<strong>email.send</strong> (risk 3)" in card and "(rita)" in card
        assert (">Approve<" in card) == can_decide and ("A reviewer decides" in card) != can_decide

    approval_decision_take(approval=approval, decision="approve", actor=cast.reviewer)
    advance(run, until={"tool_done"})
    card = render_run_update(run_get(tenant=cast.acme, run_id=run.pk), 0, can_decide=True)["replace"]["run-card"]
    assert "email.send approved by rita" in card and "it ran: ok" in card and ">Approve<" not in card


def test_the_run_card_shows_only_its_tenant_s_requests(cast, run):
    """A request row naming the run but another tenant (it cannot happen through the services) is not shown."""
    from agents.selectors import run_get

    ApprovalRequest.objects.create(tenant=cast.globex, run=run, step=1, call_id="c", tool="crm.secret", risk=3,
                                   policy="test")
    assert list(run_get(tenant=cast.acme, run_id=run.pk).approval_requests.all()) == []
    with pytest.raises(type(run).DoesNotExist):
        run_get(tenant=cast.globex, run_id=run.pk)
