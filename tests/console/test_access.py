"""Every URL of the shell: outsider → 404, wrong role → 403, right role → 200."""

import pytest
from django.urls import reverse

from console.models import Membership

# (url name, roles that may open it)
PAGES = [
    ("runs", {"admin", "reviewer", "finance", "member"}),
    ("agents", {"admin", "reviewer", "finance", "member"}),
    ("agent_new", {"admin"}),
    ("demo_systems", {"admin", "reviewer", "finance", "member"}),
    ("approvals", {"admin", "reviewer"}),
    ("memory", {"admin", "reviewer", "finance", "member"}),
    ("traces", {"admin", "reviewer", "finance", "member"}),
    ("costs", {"admin", "finance"}),
    ("costs_runs", {"admin", "finance"}),
    ("costs_budgets", {"admin", "finance"}),
    ("costs_ledger_csv", {"admin", "finance"}),
    ("costs_pricing", {"admin", "finance"}),
    ("costs_reconciliation", {"admin", "finance"}),
    ("admin_members", {"admin"}),
    ("admin_audit", {"admin"}),
    ("admin_tokens", {"admin"}),
    ("admin_tools", {"admin"}),
    ("admin_webhooks", {"admin"}),
    ("admin_mcp_servers", {"admin"}),
    ("memory_admin", {"admin"}),
    ("memory_badge", {"admin", "reviewer", "finance", "member"}),
]
ROLES = ["admin", "reviewer", "finance", "member"]


def user_with_role(cast, role):
    return {"admin": cast.admin, "reviewer": cast.reviewer, "finance": cast.finance, "member": cast.member}[role]


@pytest.mark.parametrize("name,allowed", PAGES)
def test_it_returns_404_to_outsiders(cast, client_for, name, allowed):
    response = client_for(cast.outsider).get(reverse(name, args=["acme"]))
    assert response.status_code == 404
    assert b"Acme" not in response.content


@pytest.mark.parametrize("name,allowed", PAGES)
def test_it_returns_404_for_a_tenant_that_does_not_exist(cast, client_for, name, allowed):
    assert client_for(cast.admin).get(reverse(name, args=["nope"])).status_code == 404


@pytest.mark.parametrize("name,allowed", PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_it_checks_the_role(cast, client_for, name, allowed, role):
    response = client_for(user_with_role(cast, role)).get(reverse(name, args=["acme"]))
    assert response.status_code == (200 if role in allowed else 403)
    if role not in allowed:
        assert b"cannot open" in response.content  # says why, in the shell


@pytest.mark.parametrize("name,allowed", PAGES)
def test_it_sends_anonymous_visitors_to_login(db, client, name, allowed):
    url = reverse(name, args=["acme"])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_post_endpoints_check_tenant_and_role(cast, client_for):
    target = Membership.objects.get(user=cast.member, tenant=cast.acme)
    url = reverse("admin_member_role", args=["acme", target.id])
    assert client_for(cast.outsider).post(url, {"role": "admin"}).status_code == 404
    assert client_for(cast.reviewer).post(url, {"role": "admin"}).status_code == 403
    assert client_for(cast.admin).post(url, {"role": "reviewer"}).status_code == 302
    revoke = reverse("admin_token_revoke", args=["acme", 1])
    assert client_for(cast.outsider).post(revoke).status_code == 404
    assert client_for(cast.member).post(revoke).status_code == 403
    for name, args in [("admin_member_remove", [target.id]), ("admin_invitation_revoke", [1])]:
        url = reverse(name, args=["acme", *args])
        assert client_for(cast.outsider).post(url).status_code == 404, name
        for role in ("reviewer", "finance", "member"):
            assert client_for(user_with_role(cast, role)).post(url).status_code == 403, (name, role)
    invite = reverse("admin_members", args=["acme"])
    assert client_for(cast.outsider).post(invite, {"email": "x@example.com", "role": "admin"}).status_code == 404
    assert client_for(cast.member).post(invite, {"email": "x@example.com", "role": "admin"}).status_code == 403


def test_a_membership_of_another_tenant_cannot_be_reached_through_mine(cast, client_for):
    globex_membership = Membership.objects.get(user=cast.outsider, tenant=cast.globex)
    url = reverse("admin_member_role", args=["acme", globex_membership.id])
    assert client_for(cast.admin).post(url, {"role": "admin"}).status_code == 404
    globex_membership.refresh_from_db()
    assert globex_membership.role == "member"


def test_the_shell_shows_tenant_role_and_only_the_sections_of_the_role(cast, client_for):
    page = client_for(cast.reviewer).get(reverse("runs", args=["acme"])).content.decode()
    assert "Acme" in page and "Reviewer" in page
    assert ">Approvals<" in page
    assert ">Costs<" not in page and ">Admin<" not in page
    assert "Log out" in page


def test_home_redirects_to_the_last_tenant_used(cast, client_for):
    client = client_for(cast.both)
    assert client.get("/").headers["Location"] == "/t/acme/runs/"
    client.get(reverse("runs", args=["globex"]))
    assert client.get("/").headers["Location"] == "/t/globex/runs/"


def test_a_user_without_tenant_is_told_so(db, client_for):
    from tests.factories import make_user

    response = client_for(make_user("lonely")).get("/")
    assert response.status_code == 200
    assert b"not a member of any tenant" in response.content


class TestTenantSwitcher:
    def test_it_switches_to_a_tenant_of_mine(self, cast, client_for):
        client = client_for(cast.both)
        response = client.post(reverse("tenant_switch"), {"tenant": "globex"})
        assert response.headers["Location"] == "/t/globex/runs/"
        page = client.get("/t/globex/runs/").content.decode()
        assert "Globex" in page and "Admin" in page

    def test_it_refuses_a_tenant_i_am_not_in(self, cast, client_for):
        client = client_for(cast.reviewer)
        assert client.post(reverse("tenant_switch"), {"tenant": "globex"}).status_code == 404
        assert client.post(reverse("tenant_switch"), {"tenant": ""}).status_code == 404
        assert client.get("/").headers["Location"] == "/t/acme/runs/"

    def test_it_is_offered_only_to_people_in_several_tenants(self, cast, client_for):
        assert b"Switch tenant" in client_for(cast.both).get("/t/acme/runs/").content
        assert b"Switch tenant" not in client_for(cast.reviewer).get("/t/acme/runs/").content

    def test_it_needs_post(self, cast, client_for):
        assert client_for(cast.both).get(reverse("tenant_switch")).status_code == 405


def test_the_access_helper_reads_a_membership_with_its_tenant_and_person_in_one_statement(cast):
    """membership_for (every page, API call and socket) is one prepared read: the right tenant's membership, or
    none for another tenant's slug, a missing one, or a person not signed in."""
    from django.contrib.auth.models import AnonymousUser
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from console.access import membership_for

    with CaptureQueriesContext(connection) as reads:
        membership = membership_for(cast.both, "globex")
        shown = (membership.role, membership.tenant.name, membership.user.username)
    assert len(reads) == 1 and shown == ("admin", "Globex", "sam")
    assert membership_for(cast.both, "acme").role == "reviewer"
    assert membership_for(cast.outsider, "acme") is None and membership_for(cast.both, "initech") is None
    assert membership_for(AnonymousUser(), "acme") is None
