"""Tenant admin: members and roles, API tokens, the audit log."""

import re

import pytest
from django.urls import reverse

from console.models import ApiToken, AuditEvent, Membership
from console.selectors import AUDIT_PAGE_SIZE
from console.services import audit_record, token_hash


def test_an_admin_changes_a_role_and_it_is_audited(cast, client_for):
    target = Membership.objects.get(user=cast.member, tenant=cast.acme)
    client = client_for(cast.admin)
    client.post(reverse("admin_member_role", args=["acme", target.id]), {"role": "reviewer"})
    target.refresh_from_db()
    assert target.role == "reviewer"
    event = AuditEvent.objects.for_tenant(cast.acme).get(verb="membership.role_changed")
    assert (event.actor, event.target, event.data) == (cast.admin, "max", {"from": "member", "to": "reviewer"})
    assert "membership.role_changed" in client.get(reverse("admin_audit", args=["acme"])).content.decode()


def test_the_last_admin_cannot_be_demoted(cast, client_for):
    mine = Membership.objects.get(user=cast.admin, tenant=cast.acme)
    response = client_for(cast.admin).post(reverse("admin_member_role", args=["acme", mine.id]), {"role": "member"}, follow=True)
    mine.refresh_from_db()
    assert mine.role == "admin"
    assert "last admin" in response.content.decode()


def test_an_unknown_role_is_a_clear_error_not_a_500(cast, client_for):
    target = Membership.objects.get(user=cast.member, tenant=cast.acme)
    response = client_for(cast.admin).post(reverse("admin_member_role", args=["acme", target.id]), {"role": "god"}, follow=True)
    assert response.status_code == 200
    assert "Choose one of the roles" in response.content.decode()


def test_a_token_is_shown_once_and_stored_hashed(cast, client_for):
    client = client_for(cast.admin)
    page = client.post(reverse("admin_tokens", args=["acme"]), {"name": "CI pipeline", "scopes": ["runs:read"]}, follow=True).content.decode()
    token = ApiToken.objects.for_tenant(cast.acme).get(name="CI pipeline")
    secret = page.split('<pre class="secret">')[1].split("</pre>")[0]
    assert token.token_hash == token_hash(secret) and secret not in token.token_hash
    assert secret not in client.get(reverse("admin_tokens", args=["acme"])).content.decode()
    assert AuditEvent.objects.filter(verb="api_token.created", target="CI pipeline").exists()


def test_creating_a_token_redirects_so_a_reload_makes_no_second_one_and_nothing_is_cached(cast, client_for):
    client, url = client_for(cast.admin), reverse("admin_tokens", args=["acme"])
    created = client.post(url, {"name": "CI pipeline", "scopes": ["runs:read"]})
    assert created.status_code == 302 and created.url == url
    shown = client.get(url)  # the page the browser lands on, and then reloads
    assert '<pre class="secret">prt_' in shown.content.decode() and "no-store" in shown["Cache-Control"]
    reloaded = client.get(url)
    assert '<pre class="secret">' not in reloaded.content.decode() and "no-store" in reloaded["Cache-Control"]
    assert ApiToken.objects.for_tenant(cast.acme).filter(name="CI pipeline").count() == 1


def test_a_tokens_secret_shows_on_its_own_tenants_page_only(cast, client_for):
    from console.models import Role
    from tests.factories import make_user

    client = client_for(make_user("olga", {cast.acme: Role.ADMIN, cast.globex: Role.ADMIN}))
    client.post(reverse("admin_tokens", args=["globex"]), {"name": "globex token", "scopes": ["runs:read"]})
    assert '<pre class="secret">' not in client.get(reverse("admin_tokens", args=["acme"])).content.decode()
    assert '<pre class="secret">prt_' in client.get(reverse("admin_tokens", args=["globex"])).content.decode()


def test_revoking_a_token_stops_it_working(cast, client_for):
    client = client_for(cast.admin)
    page = client.post(reverse("admin_tokens", args=["acme"]), {"name": "temp", "scopes": ["runs:read"]}, follow=True).content.decode()
    secret = page.split('<pre class="secret">')[1].split("</pre>")[0]
    assert client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    token = ApiToken.objects.get(name="temp")
    client.post(reverse("admin_token_revoke", args=["acme", token.id]))
    assert client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_a_token_of_another_tenant_cannot_be_revoked_from_mine(cast, client_for):
    client = client_for(cast.both)  # admin of Globex, reviewer in Acme
    client.post(reverse("admin_tokens", args=["globex"]), {"name": "globex token", "scopes": ["runs:read"]})
    token = ApiToken.objects.get(name="globex token")
    assert client_for(cast.admin).post(reverse("admin_token_revoke", args=["acme", token.id])).status_code == 404
    token.refresh_from_db()
    assert token.is_active


def test_an_empty_token_name_is_refused_with_a_message(cast, client_for):
    page = client_for(cast.admin).post(reverse("admin_tokens", args=["acme"]), {"name": "  "}).content.decode()
    assert "This field is required" in page
    assert not ApiToken.objects.exists()


class TestAuditLog:
    def test_it_pages_through_many_events_without_gaps(self, cast, client_for):
        AuditEvent.objects.bulk_create(
            AuditEvent(tenant=cast.acme, actor_label="ada", verb="test.event", target=f"t{i}") for i in range(120)
        )
        client = client_for(cast.admin)
        url = reverse("admin_audit", args=["acme"])
        body = client.get(url).content.decode()
        seen = re.findall(r"<td>(t\d+)</td>", body)
        assert len(seen) == AUDIT_PAGE_SIZE
        while cursor := re.search(r'hx-get="\?after=(\d+_\d+)', body):
            body = client.get(url, {"after": cursor.group(1)}, HTTP_HX_REQUEST="true").content.decode()
            seen += re.findall(r"<td>(t\d+)</td>", body)
        assert len(seen) == 120 == len(set(seen))
        assert seen[0] == "t119" and seen[-1] == "t0"  # newest first

    def test_it_filters_and_shows_only_my_tenant(self, cast, client_for):
        audit_record(tenant=cast.acme, actor=cast.admin, verb="agent.updated", target="Renewals")
        audit_record(tenant=cast.globex, actor=cast.both, verb="agent.updated", target="Globex secret")
        page = client_for(cast.admin).get(reverse("admin_audit", args=["acme"]), {"verb": "agent.updated"}).content.decode()
        assert "Renewals" in page and "Globex secret" not in page

    @pytest.mark.parametrize("cursor", ["garbage", "1_x", "99999999999999999999999_1", "_"])
    def test_a_bad_cursor_shows_the_first_page(self, cast, client_for, cursor):
        response = client_for(cast.admin).get(reverse("admin_audit", args=["acme"]), {"after": cursor})
        assert response.status_code == 200

    def test_the_htmx_request_gets_only_the_rows(self, cast, client_for):
        audit_record(tenant=cast.acme, actor=cast.admin, verb="x.y", target="row")
        response = client_for(cast.admin).get(reverse("admin_audit", args=["acme"]), HTTP_HX_REQUEST="true")
        body = response.content.decode()
        assert "<tr>" in body and "<html" not in body
