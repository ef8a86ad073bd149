"""Members: invitations (accept, expiry, reuse refused), roles, removal (never the last admin), tenants made by
the platform operator."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from console.models import ApiToken, AuditEvent, Invitation, Membership, Tenant
from console.services import api_token_create, invitation_create

NEW_PASSWORD = "a long enough passphrase 42"


def invite_on_page(client, email, role="reviewer", commit=None):
    with commit(execute=True):
        client.post(reverse("admin_members", args=["acme"]), {"email": email, "role": role})
    page = client.get(reverse("admin_members", args=["acme"])).content.decode()
    return page.split('<pre class="secret">')[1].split("</pre>")[0]


def path_of(link):
    return link.split("127.0.0.1:8000", 1)[-1]


class TestInvitations:
    def test_a_new_person_accepts_sets_a_password_and_is_in_with_the_role(
            self, cast, client_for, client, mailoutbox, django_capture_on_commit_callbacks):
        link = invite_on_page(client_for(cast.admin), "kim@example.com", commit=django_capture_on_commit_callbacks)
        assert mailoutbox[-1].to == ["kim@example.com"] and link in mailoutbox[-1].body
        assert "kim@example.com" in client_for(cast.admin).get(reverse("admin_members", args=["acme"])).content.decode()
        page = client.get(path_of(link))
        assert page.status_code == 200 and b"Set password and join" in page.content
        response = client.post(path_of(link), {"username": "kim", "password1": NEW_PASSWORD,
                                               "password2": NEW_PASSWORD})
        assert response.status_code == 302 and response.url == "/t/acme/runs/"
        kim = get_user_model().objects.get(username="kim")
        assert kim.email == "kim@example.com" and kim.check_password(NEW_PASSWORD)
        assert Membership.objects.get(user=kim, tenant=cast.acme).role == "reviewer"
        assert client.get("/t/acme/approvals/").status_code == 200  # logged in, as a reviewer
        assert AuditEvent.objects.filter(verb="invitation.accepted", target="kim@example.com").exists()

    def test_the_link_works_once(self, cast, client):
        issued = invitation_create(tenant=cast.acme, email="kim@example.com", role="member", actor=cast.admin)
        body = {"username": "kim", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
        assert client.post(path_of(issued.link), body).status_code == 302
        client.logout()
        again = client.post(path_of(issued.link), {**body, "username": "kim2"})
        assert again.status_code == 410 and b"used already" in again.content
        assert not get_user_model().objects.filter(username="kim2").exists()

    def test_an_expired_or_withdrawn_link_is_refused_and_a_made_up_one_is_404(self, cast, client, client_for):
        expired = invitation_create(tenant=cast.acme, email="old@example.com", role="member", actor=cast.admin)
        Invitation.objects.filter(pk=expired.invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        response = client.get(path_of(expired.link))
        assert response.status_code == 410 and b"expired" in response.content
        withdrawn = invitation_create(tenant=cast.acme, email="w@example.com", role="member", actor=cast.admin)
        client_for(cast.admin).post(reverse("admin_invitation_revoke", args=["acme", withdrawn.invitation.pk]))
        assert client.get(path_of(withdrawn.link)).status_code == 410
        assert client.get("/invite/not-a-real-token/").status_code == 404

    def test_someone_with_an_account_logs_in_and_joins_and_nobody_else_can(self, cast, client_for, client):
        cast.outsider.email = "gus@example.com"
        cast.outsider.save()
        issued = invitation_create(tenant=cast.acme, email="GUS@example.com", role="finance", actor=cast.admin)
        assert b"Log in" in client.get(path_of(issued.link)).content
        wrong = client_for(cast.member).post(path_of(issued.link))
        assert b"this invitation is for gus@example.com" in wrong.content
        assert not Membership.objects.filter(user=cast.member, role="finance").exists()
        assert client_for(cast.outsider).post(path_of(issued.link)).status_code == 302
        assert Membership.objects.get(user=cast.outsider, tenant=cast.acme).role == "finance"

    def test_a_member_is_not_invited_twice(self, cast, client_for):
        cast.member.email = "max@example.com"
        cast.member.save()
        page = client_for(cast.admin).post(reverse("admin_members", args=["acme"]),
                                           {"email": "max@example.com", "role": "admin"}).content.decode()
        assert "already a member" in page


class TestRemoval:
    def test_an_admin_removes_a_member_whose_tokens_stop_working(self, cast, client_for, client):
        secret = api_token_create(tenant=cast.acme, name="max's", actor=cast.member).secret
        target = Membership.objects.get(user=cast.member, tenant=cast.acme)
        client_for(cast.admin).post(reverse("admin_member_remove", args=["acme", target.pk]))
        assert not Membership.objects.filter(pk=target.pk).exists()
        assert client.get("/api/v1/runs", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
        assert client_for(cast.member).get("/t/acme/runs/").status_code == 404
        assert AuditEvent.objects.filter(verb="membership.removed", target="max").exists()

    def test_the_last_admin_cannot_be_removed(self, cast, client_for):
        mine = Membership.objects.get(user=cast.admin, tenant=cast.acme)
        page = client_for(cast.admin).post(reverse("admin_member_remove", args=["acme", mine.pk]), follow=True)
        assert b"last admin" in page.content
        assert Membership.objects.filter(pk=mine.pk).exists()


class TestMembersApi:
    def call(self, client, method, path, secret, **kwargs):
        return getattr(client, method)("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {secret}",
                                       content_type="application/json", **kwargs)

    def test_invite_list_change_and_remove(self, cast, client):
        secret = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
        made = self.call(client, "post", "/invitations", secret, data={"email": "lee@example.com", "role": "finance"})
        assert made.status_code == 201 and "/invite/" in made.json()["link"]
        assert [i["email"] for i in self.call(client, "get", "/invitations", secret).json()] == ["lee@example.com"]
        members = {m["username"]: m for m in self.call(client, "get", "/members", secret).json()}
        assert set(members) == {"ada", "rita", "finn", "max", "sam"}
        changed = self.call(client, "put", f"/members/{members['max']['id']}/role", secret, data={"role": "reviewer"})
        assert changed.json()["role"] == "reviewer"
        last = self.call(client, "delete", f"/members/{members['ada']['id']}", secret)
        assert last.status_code == 409 and "last admin" in last.json()["message"]
        assert self.call(client, "delete", f"/members/{members['rita']['id']}", secret).status_code == 204
        assert self.call(client, "delete", f"/invitations/{made.json()['id']}", secret).status_code == 204
        assert self.call(client, "get", "/invitations", secret).json() == []

    def test_another_tenants_member_is_404(self, cast, client):
        secret = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
        globex = Membership.objects.get(user=cast.outsider, tenant=cast.globex)
        assert self.call(client, "delete", f"/members/{globex.pk}", secret).status_code == 404


class TestTenants:
    def test_the_command_makes_a_tenant_with_an_existing_account_as_admin(self, cast):
        cast.member.email = "max@example.com"
        cast.member.save()
        out = StringIO()
        call_command("create_tenant", "Initech", "initech", "--admin-email", "max@example.com", stdout=out)
        assert "max is its admin" in out.getvalue()
        assert Membership.objects.get(user=cast.member, tenant__slug="initech").role == "admin"

    def test_the_command_invites_a_new_admin_whose_link_works(self, db, client):
        out = StringIO()
        call_command("create_tenant", "Initech", "initech", "--admin-email", "boss@initech.example", stdout=out)
        link = out.getvalue().strip().splitlines()[-1]
        client.post(path_of(link), {"username": "boss", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert Membership.objects.get(user__username="boss", tenant__slug="initech").role == "admin"

    def test_the_command_refuses_bad_input(self, cast):
        with pytest.raises(CommandError, match="exists already"):
            call_command("create_tenant", "Acme again", "acme", "--admin-email", "a@example.com")
        with pytest.raises(CommandError):
            call_command("create_tenant", "X", "not a slug", "--admin-email", "a@example.com")

    def test_the_platform_admin_adds_a_tenant_with_its_first_admin(self, db, client_for):
        operator = get_user_model().objects.create_superuser("root", "root@example.com", NEW_PASSWORD)
        response = client_for(operator).post(reverse("admin:console_tenant_add"), {
            "name": "Hooli", "slug": "hooli", "first_admin_email": "gavin@hooli.example"})
        assert response.status_code == 302
        tenant = Tenant.objects.get(slug="hooli")
        assert Invitation.objects.get(tenant=tenant).role == "admin"
        assert not ApiToken.objects.filter(tenant=tenant).exists()
