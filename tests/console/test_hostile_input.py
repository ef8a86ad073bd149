"""Every HTML form and filter of the console, fed what broke them on a fresh clone: NUL characters, JSON
thousands of levels deep, Unicode digits that pass isdigit() and fail int(), NaN and Infinity, numbers too
large, a body over the size limit. The forms are found by reading the pages as people get them (so a form
added later is fed too); nothing may answer 500, and what is refused says why."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client

from agents.models import Agent
from agents.services import run_pause, run_start
from approvals.models import ApprovalPolicy, ApprovalRequest
from console.models import Membership, Role
from tests.factories import RENEWAL_GOAL, advance, make_looper

HOSTILE = {
    "NUL": "Renew\x00ACME-042",
    "deep JSON array": "[" * 5000 + "]" * 5000,
    "deep JSON object": '{"a":' * 3000 + "1" + "}" * 3000,
    "NaN in JSON": '{"to": "dana@acme.example", "amount": NaN}',
    "superscript digit": "²",
    "Arabic-Indic digits": "١٢",
    "fullwidth digits": "１２",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-inf": "-inf",
    "1e999": "1e999",
    "a 5,000-digit number": "9" * 5000,
    "negative": "-1",
}


class Forms(HTMLParser):
    """The forms of a page: action, method, hx-post, and their fields with the values the page gave them."""

    def __init__(self, page_url: str):
        super().__init__()
        self.page_url, self.forms, self.form, self.textarea, self.select = page_url, [], None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.form = {"action": attrs.get("action") or self.page_url, "method": (attrs.get("method") or "get").lower(),
                         "htmx": "hx-post" in attrs, "fields": {}}
            self.forms.append(self.form)
        elif tag == "option" and self.select and self.form is not None:
            if "selected" in attrs or self.select not in self.form["fields"]:
                self.form["fields"][self.select] = attrs.get("value", "")
        elif self.form is None or not attrs.get("name"):
            return
        elif tag == "input" and attrs.get("type") not in ("submit", "checkbox"):
            self.form["fields"].setdefault(attrs["name"], attrs.get("value") or "")
        elif tag == "input":  # a checkbox: sent only when checked
            if "checked" in attrs:
                self.form["fields"].setdefault(attrs["name"], attrs.get("value") or "on")
        elif tag == "button":
            self.form["fields"].setdefault(attrs["name"], attrs.get("value") or "")
        elif tag == "textarea":
            self.textarea = attrs["name"]
            self.form["fields"].setdefault(attrs["name"], "")
        elif tag == "select":
            self.select = attrs["name"]

    def handle_data(self, data):
        if self.textarea and self.form is not None:
            self.form["fields"][self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None


@pytest.fixture
def console(cast, renewals, client_for):
    """Acme with something on every page: a run waiting for email.send, a plan waiting for approval, a question,
    a paused run with a plan, a policy, a token; ada (admin) also in Globex, so she has the tenant switcher."""
    reviewed = Agent.objects.get(tenant=cast.acme, slug="renewals-reviewed")
    tool_run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    plan_run = advance(run_start(tenant=cast.acme, agent=reviewed, goal=RENEWAL_GOAL, requested_by=cast.member))
    question_run = advance(run_start(tenant=cast.acme, agent=renewals, requested_by=cast.member,
                                     goal="Prepare the renewal for Acme and email it to its success manager"))
    paused = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member),
                     until=("planned",))
    run_pause(run=paused, actor=cast.member)
    finished = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                                 requested_by=cast.member))  # its trace offers "Replay with…"
    policy = ApprovalPolicy.objects.create(tenant=cast.acme, name="big invoices", tool="billing.create_invoice",
                                           condition={"argument": "amount_usd", "op": "gt", "value": 1000.0},
                                           required_approvals=2)
    Membership.objects.create(user=cast.admin, tenant=cast.globex, role=Role.MEMBER)
    client = client_for(cast.admin)
    client.post("/t/acme/admin/tokens/", {"name": "ci"})
    approvals = {kind: ApprovalRequest.objects.get(run=run, kind=kind)
                 for kind, run in [("tool_call", tool_run), ("plan", plan_run), ("question", question_run)]}
    pages = ["/t/acme/runs/", f"/t/acme/runs/{tool_run.number}/", f"/t/acme/runs/{paused.number}/",
             f"/t/acme/runs/{paused.number}/plan/", *[f"/t/acme/approvals/?id={a.pk}" for a in approvals.values()],
             "/t/acme/admin/policies/", f"/t/acme/admin/policies/{policy.pk}/", "/t/acme/admin/",
             "/t/acme/admin/tokens/", "/t/acme/admin/audit/", "/t/acme/demo-systems/", "/t/acme/traces/",
             f"/t/acme/traces/{finished.number}/", f"/t/acme/traces/{tool_run.number}/", "/t/acme/admin/memory/"]
    from memory.services import memory_create

    mine = memory_create(tenant=cast.acme, actor=cast.admin, scope="user", user=cast.admin, type="fact",
                         content="Ada reviews quotes on Mondays.")
    proposed = memory_create(tenant=cast.acme, actor=None, scope="user", user=cast.admin, type="preference",
                             content="Ada likes short emails.", status="proposed")
    pages += [f"/t/acme/memory/?id={mine.pk}", f"/t/acme/memory/?tab=confirm&id={proposed.pk}"]
    return client, pages


# Query parameters pages read that no form of theirs carries (links, the pane's ?id=).
FILTERS = {"/t/acme/runs/": ["status", "q", "agent", "requester", "before"], "/t/acme/approvals/": ["id", "min_risk", "tool", "agent", "sort", "mine"],
           "/t/acme/admin/audit/": ["verb", "actor", "after"], "/t/acme/traces/": ["after"],
           "/t/acme/traces/1/search/": ["q"],
           "/t/acme/memory/": ["id", "tab", "type", "scope", "status", "q", "agent"]}


def forms_of(client: Client, pages: list[str]) -> list[dict]:
    """Each distinct form (action, method, field names) once. Logging out would end the session the other
    submissions need, and takes no input."""
    found = {}
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        parser = Forms(urlsplit(url).path)
        parser.feed(response.content.decode())
        for form in parser.forms:
            if form["action"] != "/logout/":
                found.setdefault((form["method"], form["action"], *sorted(form["fields"])), form)
    anonymous = Forms("/login/")
    anonymous.feed(Client().get("/login/").content.decode())
    return [*found.values(), *({**form, "anonymous": True} for form in anonymous.forms)]


def send(client: Client, form: dict, fields: dict):
    """One submission, rolled back afterwards, so every one meets the state the page was read in."""
    headers = {"HTTP_HX_REQUEST": "true"} if form.get("htmx") else {}
    with transaction.atomic():
        who = Client() if form.get("anonymous") else client
        if form["method"] == "post":
            response = who.post(form["action"], fields, **headers)
        else:
            response = who.get(form["action"], fields, **headers)
        transaction.set_rollback(True)
    return response


@pytest.mark.timeout(300)  # every field of every form and filter, a dozen values each: a few hundred requests
def test_no_form_or_filter_answers_500_to_hostile_input(console):
    client, pages = console
    forms = forms_of(client, pages)
    actions = {(form["method"], urlsplit(form["action"]).path) for form in forms}
    for expected in [("post", "/t/acme/runs/"), ("post", "/login/"), ("post", "/switch-tenant/"),
                     ("get", "/t/acme/approvals/"), ("get", "/t/acme/admin/audit/"), ("post", "/t/acme/admin/policies/"),
                     ("get", "/t/acme/traces/"), ("post", "/t/acme/traces/batches/")]:
        assert expected in actions, f"no {expected} form found: the crawl missed a page"
    assert sum("/decision/" in action for _, action in actions) >= 1 and len(forms) >= 20

    for page, params in FILTERS.items():
        forms.append({"action": page, "method": "get", "fields": dict.fromkeys(params, "")})
    failures, refused, sent = [], 0, 0
    for form in forms:
        names = [name for name in form["fields"] if name != "csrfmiddlewaretoken"]
        for name in names:
            for label, value in HOSTILE.items():
                response = send(client, form, {**form["fields"], name: value})
                sent += 1
                if response.status_code >= 500:
                    failures.append(f"{form['method'].upper()} {form['action']} {name}={label}: {response.status_code}")
                if label == "NUL":
                    refused += response.status_code == 400 and b"NUL character" in response.content
        if form["method"] == "post" and names:  # a body over the limit: 413, with a page that says so
            response = send(client, form, {**form["fields"], names[0]: "x" * settings.REQUEST_MAX_BYTES})
            if response.status_code != 413 or b"too large" not in response.content:
                failures.append(f"POST {form['action']} over the size limit: {response.status_code}")
    assert not failures, f"{len(failures)} of {sent} hostile submissions failed:\n" + "\n".join(failures)
    assert refused == sum(1 for form in forms for name in form["fields"] if name != "csrfmiddlewaretoken")
