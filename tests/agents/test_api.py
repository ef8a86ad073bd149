"""The run API: idempotent create, tenant isolation, clear errors."""

import pytest

from agents.services import run_start_once
from console.services import api_token_create
from demo.seed import seed_demo_systems
from tests.conftest import at_once


@pytest.fixture
def api(cast, client):
    seed_demo_systems(cast.acme)
    seed_demo_systems(cast.globex)
    acme = api_token_create(tenant=cast.acme, name="acme", actor=cast.admin).secret
    globex = api_token_create(tenant=cast.globex, name="globex", actor=cast.outsider).secret

    def call(method, path, token=acme, **kwargs):
        return getattr(client, method)("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {token}",
                                       content_type="application/json", **kwargs)

    call.globex = globex
    return call


def test_create_is_idempotent_with_a_key(api):
    body = {"agent": "renewals", "goal": "Prepare the renewal plan for ACME-042"}
    first = api("post", "/runs", data=body, HTTP_IDEMPOTENCY_KEY="abc")
    again = api("post", "/runs", data=body, HTTP_IDEMPOTENCY_KEY="abc")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["number"] == again.json()["number"]
    assert api("post", "/runs", data=body).json()["number"] != first.json()["number"]


@pytest.mark.django_db(transaction=True)
def test_two_creates_racing_with_one_key_make_one_run_and_one_201(cast, renewals):
    def create():
        return run_start_once(tenant=cast.acme, agent=renewals, goal="Renew ACME-042", idempotency_key="k1")

    results = at_once(create, create)
    assert len({run.pk for run, _ in results}) == 1 and sorted(created for _, created in results) == [False, True]


def test_every_run_endpoint_is_404_for_another_tenant(api):
    run_id = api("post", "/runs", data={"agent": "renewals", "goal": "x"}).json()["number"]
    for method, path in [("get", f"/runs/{run_id}"), ("get", f"/runs/{run_id}/events"),
                         ("post", f"/runs/{run_id}/cancel"), ("post", f"/runs/{run_id}/pause"),
                         ("post", f"/runs/{run_id}/resume")]:
        response = api(method, path, token=api.globex)
        assert response.status_code == 404 and response.json()["code"] == "not_found", path
    assert api("post", f"/runs/{run_id}/messages", token=api.globex, data={"text": "hi"}).status_code == 404
    assert run_id not in [r["number"] for r in api("get", "/runs", token=api.globex).json()]


def test_events_after_a_sequence_number(api):
    run_id = api("post", "/runs", data={"agent": "renewals", "goal": "x"}).json()["number"]
    api("post", f"/runs/{run_id}/messages", data={"text": "hello"})
    events = api("get", f"/runs/{run_id}/events?after=2").json()
    assert [(e["seq"], e["type"]) for e in events] == [(3, "instruction.added")]


@pytest.mark.parametrize("body,status", [
    ({"agent": "nope", "goal": "x"}, 422),
    ({"agent": "renewals", "goal": ""}, 422),
    ({"agent": "renewals"}, 422),
    ({"agent": "renewals", "goal": "x" * 6000}, 422),
])
def test_bad_input_gets_a_4xx_with_a_message(api, body, status):
    response = api("post", "/runs", data=body)
    assert response.status_code == status
    assert response.json()["message"] and response.json()["code"] == "invalid"


def test_controls_refuse_impossible_transitions_with_409(api):
    run_id = api("post", "/runs", data={"agent": "renewals", "goal": "x"}).json()["number"]
    assert api("post", f"/runs/{run_id}/resume").status_code == 409
    assert api("post", f"/runs/{run_id}/cancel").json()["status"] == "cancelled"
    response = api("post", f"/runs/{run_id}/cancel")
    assert response.status_code == 409 and "already cancelled" in response.json()["message"]
    assert response.json()["code"] == "conflict"


def test_a_key_again_with_another_body_is_422_idempotency_mismatch(api):
    body = {"agent": "renewals", "goal": "Prepare the renewal plan for ACME-042"}
    first = api("post", "/runs", data=body, HTTP_IDEMPOTENCY_KEY="k-1")
    for other in [{**body, "goal": "Prepare the renewal plan for ACME-105"}, {**body, "agent": "renewals-reviewed"}]:
        response = api("post", "/runs", data=other, HTTP_IDEMPOTENCY_KEY="k-1")
        assert response.status_code == 422 and response.json()["code"] == "idempotency_mismatch"
        assert "Idempotency-Key" in response.json()["message"]
    again = api("post", "/runs", data={**body, "goal": f"  {body['goal']} "}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 200 and again.json()["number"] == first.json()["number"]  # the same goal, as stored
    assert len(api("get", "/runs").json()) == 1


def test_a_key_over_200_characters_is_invalid(api):
    response = api("post", "/runs", data={"agent": "renewals", "goal": "x"}, HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert response.status_code == 422 and response.json()["code"] == "invalid"


@pytest.mark.django_db(transaction=True)
def test_two_creates_racing_with_one_key_and_different_goals_make_one_run_and_one_mismatch(cast, renewals):
    from agents.services import IdempotencyMismatch

    def create(goal):
        return lambda: run_start_once(tenant=cast.acme, agent=renewals, goal=goal, idempotency_key="k2")

    results = at_once(create("Renew ACME-042"), create("Renew ACME-105"), expect=(IdempotencyMismatch,))
    assert sorted(type(result).__name__ for result in results) == ["IdempotencyMismatch", "tuple"]
    assert renewals.runs.count() == 1
