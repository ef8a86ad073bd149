"""API tokens carry scopes chosen when they are made; every operation refuses a token without its scope."""

import re

import pytest
from django.urls import reverse

from console.api import api
from console.api_auth import TokenAuth
from console.models import ALL_SCOPES, ApiToken, AuditEvent, Membership
from console.services import api_token_create


def operations():
    """(method, path, requirement) of every operation the API serves, the ones other apps add included."""
    for router in api._get_bound_routers():  # as served: each operation with the requirement it was bound to
        for path, view in router.path_operations.items():
            for operation in view.operations:
                for method in operation.methods:
                    yield method, path, next(a for a in operation.auth_callbacks if isinstance(a, TokenAuth))


def call(client, method, path, secret, **kwargs):
    return getattr(client, method.lower())("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {secret}",
                                           content_type="application/json", **kwargs)


def test_every_operation_declares_a_token_requirement():
    found = list(operations())
    assert len(found) >= 15
    unscoped = [(m, p) for m, p, auth in found if auth.needed_scope(m) is None]
    assert unscoped == [("GET", "/whoami")]  # it only says who the token is


@pytest.mark.parametrize("method,path,needed", [(m, p, a.needed_scope(m)) for m, p, a in operations()
                                                if a.needed_scope(m)])
def test_every_operation_refuses_a_token_without_its_scope(cast, client, method, path, needed):
    others = [s for s in ALL_SCOPES if s != needed]
    secret = api_token_create(tenant=cast.acme, name="narrow", actor=cast.admin, scopes=others).secret
    response = call(client, method, re.sub(r"\{[^}]+\}", "1", path), secret, data={})
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "missing_scope"
    assert response.json()["scope"] == needed
    assert f"'{needed}'" in response.json()["message"]


def test_a_token_with_the_scope_gets_through(cast, client):
    secret = api_token_create(tenant=cast.acme, name="reader", actor=cast.member, scopes=["runs:read"]).secret
    assert call(client, "GET", "/runs", secret).status_code == 200
    refused = call(client, "POST", "/runs", secret, data={"agent": "x", "goal": "y"})
    assert refused.status_code == 403 and refused.json()["scope"] == "runs:write"


def test_a_token_acts_as_its_maker_with_their_current_role(cast, client):
    secret = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
    assert call(client, "GET", "/tokens", secret).status_code == 200
    Membership.objects.filter(user=cast.admin, tenant=cast.acme).update(role="member")
    response = call(client, "GET", "/tokens", secret)
    assert response.status_code == 403 and "cannot open admin" in response.json()["message"]
    Membership.objects.filter(user=cast.admin, tenant=cast.acme).delete()
    response = call(client, "GET", "/runs", secret)
    assert response.status_code == 403 and "no longer a member" in response.json()["message"]


def test_whoami_says_the_scopes_and_the_person(cast, client):
    secret = api_token_create(tenant=cast.acme, name="cli", actor=cast.reviewer,
                              scopes=["approvals:write", "runs:read"]).secret
    body = call(client, "GET", "/whoami", secret).json()
    assert body["scopes"] == ["runs:read", "approvals:write"] and body["user"] == "rita"


def test_tokens_made_before_scopes_have_them_all(cast):
    token = ApiToken.objects.create(tenant=cast.acme, name="old", prefix="prt_old", token_hash="0" * 64)
    assert token.scopes == ALL_SCOPES


class TestTokenApi:
    def test_an_admin_token_makes_a_narrower_token_shown_once(self, cast, client):
        admin = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
        response = call(client, "POST", "/tokens", admin, data={"name": "ci", "scopes": ["runs:write", "runs:read"]})
        assert response.status_code == 201
        made = response.json()
        assert made["scopes"] == ["runs:read", "runs:write"] and made["secret"].startswith("prt_")
        assert made["created_by"] == "ada"
        listed = call(client, "GET", "/tokens", admin).json()
        assert "secret" not in listed[0] and {t["name"] for t in listed} == {"ops", "ci"}
        assert call(client, "GET", "/runs", made["secret"]).status_code == 200
        assert AuditEvent.objects.filter(verb="api_token.created", target="ci",
                                         data__scopes=["runs:read", "runs:write"]).exists()

    def test_a_token_cannot_give_more_than_it_has(self, cast, client):
        narrow = api_token_create(tenant=cast.acme, name="n", actor=cast.admin, scopes=["admin"]).secret
        response = call(client, "POST", "/tokens", narrow, data={"name": "wide", "scopes": ["admin", "costs:read"]})
        assert response.status_code == 422 and "costs:read" in response.json()["message"]

    def test_unknown_or_no_scopes_are_refused(self, cast, client):
        admin = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
        for scopes in [[], ["root"]]:
            response = call(client, "POST", "/tokens", admin, data={"name": "x", "scopes": scopes})
            assert response.status_code == 422, scopes

    def test_revoke_and_another_tenants_token_is_404(self, cast, client):
        admin = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
        victim = api_token_create(tenant=cast.acme, name="victim", actor=cast.admin)
        foreign = api_token_create(tenant=cast.globex, name="g", actor=cast.both)
        assert call(client, "DELETE", f"/tokens/{foreign.token.pk}", admin).status_code == 404
        assert call(client, "DELETE", f"/tokens/{victim.token.pk}", admin).json()["revoked_at"]
        assert call(client, "GET", "/whoami", victim.secret).status_code == 401


def test_the_tokens_page_makes_a_token_with_the_scopes_chosen(cast, client_for):
    client = client_for(cast.admin)
    url = reverse("admin_tokens", args=["acme"])
    page = client.get(url).content.decode()
    assert 'value="costs:read"' in page
    client.post(url, {"name": "finance export", "scopes": ["costs:read"]})
    assert ApiToken.objects.get(name="finance export").scopes == ["costs:read"]
    shown = client.get(url).content.decode()
    assert "<code>costs:read</code>" in shown
    refused = client.post(url, {"name": "none"})
    assert refused.status_code == 200 and "Choose at least one scope" in refused.content.decode()
