"""Input cleaning: what no part of Proctor accepts, said plainly, for pages and the API alike."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.forms import arguments_from_fields
from approvals.models import ApprovalPolicy
from approvals.policy import condition_problem
from console.input import MAX_JSON_DEPTH, InputRefused, json_load, strict_int, strict_number
from console.services import api_token_create


@pytest.mark.parametrize("text,number", [("12", 12), ("-3", -3), ("0", 0), ("²", None), ("١٢", None), ("１２", None),
                                         ("+1", None), (" 1", None), ("1_000", None), ("9" * 19, None), ("", None)])
def test_integers_are_ascii_digits(text, number):
    assert strict_int(text) == number


@pytest.mark.parametrize("text,number", [("99.5", 99.5), ("-1e3", -1000.0), ("1000", 1000.0), ("NaN", None),
                                         ("Infinity", None), ("-inf", None), ("1e999", None), ("１２", None),
                                         ("1_000", None), ("0x10", None)])
def test_numbers_are_finite_and_written_plainly(text, number):
    assert strict_number(text) == number


@pytest.mark.parametrize("raw,says", [
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "nested too deeply"),
    ('{"amount": NaN}', "NaN is not a number"),
    ('{"amount": -Infinity}', "-Infinity is not a number"),
    ('{"amount": 1e999}', "too large"),
    ('{"goal": "a\\u0000b"}', "The JSON at goal contains a NUL character"),
    ('{"steps": ["ok", {"x\\u0000": 1}]}', "A key in the JSON at steps[1] contains a NUL"),
    ('{"n": ' + "9" * 5000 + "}", "not valid JSON"),
    (b'{"goal": "\xff"}', "not UTF-8"),
    ("{not json", "not valid JSON"),
])
def test_json_is_read_strictly_and_the_refusal_says_why(raw, says):
    with pytest.raises(InputRefused) as refused:
        json_load(raw)
    assert says in str(refused.value)


def test_json_within_the_bounds_reads_as_usual():
    nested = "[" * MAX_JSON_DEPTH + "1" + "]" * MAX_JSON_DEPTH
    assert json_load(nested) is not None
    assert json_load('{"amount": 1200.5, "to": ["a@b.example"], "n": 123456789012345678901234567890}') == {
        "amount": 1200.5, "to": ["a@b.example"], "n": 123456789012345678901234567890}


@given(st.text() | st.binary())
def test_any_text_is_json_or_a_refusal_never_a_crash(raw):
    try:
        json_load(raw)
    except InputRefused as refused:
        assert str(refused)


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=50))
def test_what_json_load_accepts_postgresql_can_store(value):
    """Whatever passes holds no NUL and no NaN or Infinity, and is no deeper than allowed."""
    try:
        data = json_load(json.dumps(value))
    except InputRefused:
        return
    text = json.dumps(data, allow_nan=False)  # raises on NaN/Infinity
    assert "\\u0000" not in text


@given(st.text())
def test_strict_numbers_are_finite_and_agree_with_python_on_plain_digits(text):
    number = strict_number(text)
    assert number is None or math.isfinite(number)
    if (integer := strict_int(text)) is not None:
        assert integer == int(text) and text.isascii()


# --- Pages ---------------------------------------------------------------------------------------------


def test_a_nul_character_in_a_form_is_refused_with_a_page_that_names_the_field(cast, renewals, client_for):
    response = client_for(cast.member).post("/t/acme/runs/", {"agent": renewals.pk, "goal": "Renew\x00ACME-042"})
    page = response.content.decode()
    assert response.status_code == 400 and "This request was refused" in page
    assert "form field “goal” contains a NUL character" in page
    assert not renewals.runs.exists()


def test_a_nul_character_in_a_filter_or_a_cookie_is_refused(cast, client_for):
    client = client_for(cast.reviewer)
    response = client.get("/t/acme/approvals/?tool=email%00send")
    assert response.status_code == 400 and "query parameter “tool”" in response.content.decode()
    client.cookies["sessionid"] = "abcdefgh\x00"  # a session key PostgreSQL would refuse
    assert client.get("/t/acme/runs/").status_code == 400


def test_unicode_digits_in_a_filter_are_no_number(cast, client_for, renewals):
    client = client_for(cast.reviewer)
    for query in ["?min_risk=²", "?id=²", "?id=١٢", "?min_risk=-1"]:
        assert client.get("/t/acme/approvals/" + query).status_code == 200, query


def test_a_body_over_the_limit_is_413_with_a_page_that_says_so(cast, client_for, settings):
    response = client_for(cast.member).post("/t/acme/runs/", {"goal": "x" * settings.REQUEST_MAX_BYTES})
    assert response.status_code == 413 and "This request is too large" in response.content.decode()


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", "1e999", "１２", "²"])
def test_a_policy_condition_must_be_a_finite_number(cast, client_for, value):
    response = client_for(cast.admin).post("/t/acme/admin/policies/", {
        "name": "big invoices", "tool": "billing.create_invoice", "min_risk": 0, "required_approvals": 2,
        "sla_minutes": 60, "expire_minutes": 120, "expiry_outcome": "reject", "escalate_to_role": "admin",
        "enabled": "on", "condition_argument": "amount_usd", "condition_op": "gt", "condition_value": value})
    assert response.status_code == 422 and "Compare with a number." in response.content.decode()
    assert not ApprovalPolicy.objects.exists()
    assert condition_problem({"argument": "amount_usd", "op": "gt", "value": value}) == "Compare with a number."


def test_a_schema_form_passes_on_what_is_no_number_for_the_schema_check_to_name():
    schema = {"properties": {"n": {"type": "integer"}, "amount": {"type": "number"}, "extra": {}},
              "required": ["n", "amount"]}
    fields = {"arg:n": "²", "arg:amount": "NaN", "arg:extra": "[" * 5000 + "]" * 5000}
    assert arguments_from_fields(schema, fields) == {"n": "²", "amount": "NaN", "extra": fields["arg:extra"]}
    assert arguments_from_fields(schema, {"arg:n": "12", "arg:amount": "99.5", "arg:extra": '{"a": [1]}'}) == {
        "n": 12, "amount": 99.5, "extra": {"a": [1]}}


def test_an_edit_as_json_nested_too_deeply_is_refused_in_the_pane(cast, client_for, renewals):
    from agents.services import run_start
    from tests.factories import RENEWAL_GOAL, advance

    approval = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL,
                                 requested_by=cast.member)).approval_requests.get()
    response = client_for(cast.reviewer).post(f"/t/acme/approvals/{approval.pk}/decision/", {
        "decision": "edit", "form": "json", "arguments": "[" * 5000 + "]" * 5000}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "nested too deeply" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "pending"


# --- The API ---------------------------------------------------------------------------------------------


@pytest.fixture
def api(cast, renewals, client):
    token = api_token_create(tenant=cast.acme, name="ci", actor=cast.admin).secret

    def call(method, path, body=None, **kwargs):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body) if body is not None else None
        kwargs = {"data": data, "content_type": "application/json", **kwargs} if data is not None else kwargs
        return getattr(client, method)("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {token}", **kwargs)

    return call


@pytest.mark.parametrize("body,says", [
    ({"agent": "renewals", "goal": "Renew\x00ACME-042"}, "The request body at goal contains a NUL character"),
    ('{"agent": "renewals", "goal": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    ('{"agent": "renewals", "goal": "x", "extra": NaN}', "NaN is not a number"),
    ('{"agent": "renewals", "goal": "x", "extra": 1e999}', "too large"),
    ("{not json", "not valid JSON"),
])
def test_the_api_refuses_unreadable_bodies_with_400_bad_request(api, renewals, body, says):
    response = api("post", "/runs", body)
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    assert says in response.json()["message"]
    assert not renewals.runs.exists()


def test_the_api_refuses_a_body_over_the_limit_with_413(api, settings):
    response = api("post", "/runs", {"agent": "renewals", "goal": "x" * 5_000_000})
    assert response.status_code == 413
    assert response.json() == {"code": "payload_too_large", "message": response.json()["message"]}
    assert f"{settings.REQUEST_MAX_BYTES:,} bytes" in response.json()["message"]


def test_the_api_refuses_nul_in_a_query_or_header_and_unicode_digits_as_numbers(api):
    assert api("get", "/runs?status=queued%00").json()["code"] == "bad_request"
    assert api("get", "/runs", HTTP_IDEMPOTENCY_KEY="a\x00b").status_code == 400
    response = api("get", "/runs?limit=²")
    assert response.status_code == 422 and response.json()["code"] == "invalid"
