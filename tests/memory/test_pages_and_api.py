"""The Memory pages and API: what each person sees (ACL matrix across two tenants), changes through the
same services, exports, and access (outsider 404, wrong role 403) for every page and endpoint."""

import csv
import io
import json

import pytest
from django.urls import reverse

from console.services import api_token_create
from memory import services
from memory.models import MemoryRecord, Team, TeamMember


@pytest.fixture
def records(cast, renewals):
    team = Team.objects.create(tenant=cast.acme, name="Renewals")
    TeamMember.objects.create(tenant=cast.acme, team=team, user=cast.member)
    def make(tenant, content, **kw):
        return services.memory_create(tenant=tenant, actor=None, content=content, **{"scope": "tenant", "type": "fact", **kw})

    return {
        "max": make(cast.acme, "Maxmarker prefers bullets.", scope="user", user=cast.member, type="preference"),
        "rita": make(cast.acme, "Ritamarker prefers mornings.", scope="user", user=cast.reviewer),
        "team": make(cast.acme, "Teammarker channel is #renewals.", scope="team", team=team),
        "tenant": make(cast.acme, "Tenantmarker fiscal year ends in January."),
        "agent": make(cast.acme, "Agentmarker signs as the demo agent.", scope="agent", agent=renewals),
        "globex": make(cast.globex, "Globexmarker secret plans."),
        "gus": make(cast.globex, "Gusmarker likes prose.", scope="user", user=cast.outsider),
    }


# who → the markers they may see in Acme (admin: all of Acme)
SEES = {
    "member": {"Maxmarker", "Teammarker", "Tenantmarker", "Agentmarker"},
    "reviewer": {"Ritamarker", "Tenantmarker", "Agentmarker"},
    "admin": {"Maxmarker", "Ritamarker", "Teammarker", "Tenantmarker", "Agentmarker"},
}
ALL = {"Maxmarker", "Ritamarker", "Teammarker", "Tenantmarker", "Agentmarker", "Globexmarker", "Gusmarker"}


def _user(cast, who):
    return getattr(cast, who)


@pytest.mark.parametrize("who", list(SEES))
def test_every_way_of_reading_shows_only_what_the_person_may_see(cast, client_for, records, who):
    client = client_for(_user(cast, who))
    for tab in ("me", "teams", "tenant", "agents", "confirm"):
        page = client.get(reverse("memory", args=["acme"]) + f"?tab={tab}").content.decode()
        assert not {m for m in ALL if m in page} - SEES[who], tab
    everything = "".join(client.get(reverse("memory", args=["acme"]) + f"?tab={t}").content.decode()
                         for t in ("me", "teams", "tenant", "agents", "people"))
    assert {m for m in ALL if m in everything} == SEES[who]
    search = client.get(reverse("memory", args=["acme"]) + "?tab=tenant&q=marker", HTTP_HX_REQUEST="true",
                        HTTP_HX_TARGET="memory-list").content.decode()
    assert not {m for m in ALL if m in search} - SEES[who]
    exported = client.get(reverse("memory_export", args=["acme", "json"])).json()
    assert {m for m in ALL if m in json.dumps(exported)} == SEES[who]
    for name, record in records.items():
        detail = client.get(reverse("memory_detail", args=["acme", record.pk]), HTTP_HX_REQUEST="true")
        marker = record.content.split()[0]
        assert detail.status_code == (200 if marker in SEES[who] else 404), name
    # The API, as the person who made the token.
    token = api_token_create(tenant=cast.acme, name="t", actor=cast.admin).secret
    if who != "admin":  # a token acts as its maker: make one per person
        from console.models import ApiToken

        ApiToken.objects.update(created_by=_user(cast, who))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    listed = client.get("/api/v1/memories", **auth).json()
    assert {m for m in ALL if m in json.dumps(listed)} == SEES[who]
    searched = client.get("/api/v1/memories/search?q=marker", **auth).json()
    assert not {m for m in ALL if m in json.dumps(searched)} - SEES[who]
    assert {m for m in ALL if m in json.dumps(client.get("/api/v1/memories/export", **auth).json())} == SEES[who]
    for record in records.values():
        marker = record.content.split()[0]
        assert client.get(f"/api/v1/memories/{record.pk}", **auth).status_code == (200 if marker in SEES[who] else 404)


def test_outsiders_get_404_on_every_memory_page_and_action(cast, client_for, records):
    client = client_for(cast.outsider)
    record = records["tenant"]
    for url in (reverse("memory", args=["acme"]), reverse("memory_badge", args=["acme"]),
                reverse("memory_export", args=["acme", "csv"]), reverse("memory_detail", args=["acme", record.pk]),
                reverse("memory_admin", args=["acme"])):
        response = client.get(url)
        assert response.status_code == 404 and b"Tenantmarker" not in response.content, url
    for action in ("correct", "pin", "delete", "confirm", "refuse"):
        assert client.post(reverse("memory_change", args=["acme", record.pk, action]),
                           {"content": "x", "confirm": "yes"}).status_code == 404
    assert client.post(reverse("memory_capture", args=["acme"])).status_code == 404
    # A record of Globex is not reachable through Acme, even for someone in both.
    both = client_for(cast.both)
    assert both.get(reverse("memory_detail", args=["acme", records["globex"].pk]), HTTP_HX_REQUEST="true").status_code == 404
    assert both.post(reverse("memory_change", args=["acme", records["globex"].pk, "delete"]),
                     {"confirm": "yes"}).status_code == 404
    assert MemoryRecord.objects.get(pk=records["globex"].pk).status == "active"


def test_someone_elses_memory_cannot_be_changed_but_an_admin_can(cast, client_for, records):
    rita = records["rita"]
    member = client_for(cast.member)
    assert member.post(reverse("memory_change", args=["acme", rita.pk, "delete"]), {"confirm": "yes"}).status_code == 404
    admin = client_for(cast.admin)
    assert admin.post(reverse("memory_change", args=["acme", rita.pk, "pin"]), HTTP_HX_REQUEST="true").status_code == 200
    assert client_for(cast.member).get(reverse("memory_admin", args=["acme"])).status_code == 403


def test_correct_pin_delete_through_the_page(cast, client_for, records):
    client = client_for(cast.member)
    record = records["max"]
    url = lambda action: reverse("memory_change", args=["acme", record.pk, action])
    page = client.post(url("correct"), {"content": "Maxmarker prefers numbered lists.", "reason": "clearer"},
                       HTTP_HX_REQUEST="true").content.decode()
    assert "Saved as version 2" in page and "<ins>numbered lists.</ins>" in page and "<del>bullets.</del>" in page
    assert "Pinned" in client.post(url("pin"), HTTP_HX_REQUEST="true").content.decode()
    refused = client.post(url("delete"), HTTP_HX_REQUEST="true")
    assert refused.status_code == 422 and "Yes, delete it everywhere" in refused.content.decode()
    assert client.post(url("delete"), {"confirm": "yes"}, HTTP_HX_REQUEST="true").status_code == 200
    record.refresh_from_db()
    assert record.status == "deleted" and record.content == ""
    assert "Maxmarker" not in client.get(reverse("memory", args=["acme"]) + "?status=deleted").content.decode()
    bad = client.post(url("frobnicate"))
    assert bad.status_code == 404


def test_the_api_creates_corrects_pins_confirms_and_deletes(cast, client, records):
    token = api_token_create(tenant=cast.acme, name="t", actor=cast.member).secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    made = client.post("/api/v1/memories", {"type": "preference", "content": "I prefer calls on Fridays.",
                                            "subject": "calls"}, content_type="application/json", **auth)
    assert made.status_code == 201, made.content
    memory_id = made.json()["id"]
    fixed = client.post(f"/api/v1/memories/{memory_id}/corrections", {"content": "I prefer calls on Thursdays."},
                        content_type="application/json", **auth)
    assert fixed.json()["version"] == 2
    versions = client.get(f"/api/v1/memories/{memory_id}/versions", **auth).json()
    assert [v["content"] for v in versions] == ["I prefer calls on Thursdays.", "I prefer calls on Fridays."]
    assert client.put(f"/api/v1/memories/{memory_id}/pin", {"pinned": True}, content_type="application/json",
                      **auth).json()["pinned"] is True
    secret = client.post("/api/v1/memories", {"type": "fact", "content": "my password is hunter22"},
                         content_type="application/json", **auth)
    assert secret.status_code == 422 and secret.json()["code"] == "invalid"
    assert client.post(f"/api/v1/memories/{memory_id}/confirmation", {}, content_type="application/json",
                       **auth).status_code == 422
    assert client.delete(f"/api/v1/memories/{memory_id}", **auth).status_code == 204
    assert client.get(f"/api/v1/memories/{memory_id}", **auth).json()["content"] == ""
    assert client.delete(f"/api/v1/memories/{records['rita'].pk}", **auth).status_code == 404


def test_filters_by_type_scope_agent_and_status(cast, client_for, records, renewals):
    client = client_for(cast.admin)
    url = reverse("memory", args=["acme"])
    agents_tab = client.get(url + f"?tab=agents&agent={renewals.pk}").content.decode()
    assert "Agentmarker" in agents_tab
    assert "Agentmarker" not in client.get(url + "?tab=agents&agent=999999").content.decode()
    people = client.get(url + "?tab=people&type=preference").content.decode()
    assert "Maxmarker" in people and "Ritamarker" not in people
    assert "Tenantmarker" not in client.get(url + "?tab=tenant&status=proposed").content.decode()


def test_the_csv_export_is_safe_in_a_spreadsheet(cast, client_for):
    services.memory_create(tenant=cast.acme, actor=None, scope="tenant", type="fact", content="=HYPERLINK(evil)")
    response = client_for(cast.member).get(reverse("memory_export", args=["acme", "csv"]))
    row = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))[0]
    assert row["content"].startswith("'=")


def test_admin_sets_the_policy_and_teams(cast, client_for, renewals):
    admin = client_for(cast.admin)
    url = reverse("memory_admin", args=["acme"])
    response = admin.post(url, {"form": "policy", "confirm_types": ["preference", "fact"], "confirm_scopes": ["tenant"],
                                "retention_episode": "30", "capture_off": [str(renewals.pk)]})
    assert response.status_code == 302
    from memory.selectors import policy_of

    policy = policy_of(cast.acme)
    assert policy.confirm_types == ["fact", "preference"] and policy.retention_days == {"episode": 30}
    assert policy.capture_off_agents == [renewals.pk]
    assert admin.post(url, {"form": "policy", "retention_fact": "soon"}).status_code == 422
    admin.post(url, {"form": "team", "name": "Support", "members": [str(cast.member.pk), str(cast.outsider.pk)]})
    team = Team.objects.get(tenant=cast.acme, name="Support")
    assert list(team.members.values_list("user__username", flat=True)) == ["max"]  # gus is not in Acme
    assert "Support" in admin.get(url).content.decode()
