"""Demo memories for a tenant (idempotent): one or two per demo member, the tenant's, a team's and the
renewals agents'. Max's preference for a short bullet summary shapes the demo agent's drafted email."""

from __future__ import annotations

from memory.models import MemoryRecord, Team, TeamMember
from memory.services import memory_create

USER_MEMORIES = {
    "max": [("preference", "email format", "Max prefers a short bullet summary at the top of renewal emails.")],
    "rita": [("preference", "meeting times", "Rita prefers review meetings in the morning.")],
    "ada": [("procedure", "discount approval", "Discounts above 15% need Ada's sign-off before a quote goes out.")],
    "gus": [("preference", "email format", "Gus prefers detailed prose emails with full context.")],
}
TENANT_MEMORIES = [("fact", "fiscal year", "{name}'s fiscal year ends on 31 January."),
                   ("procedure", "renewal quotes", "Renewal quotes go out two weeks before the renewal date.")]
AGENT_MEMORIES = [("procedure", "email sign-off", "Sign renewal emails as the Proctor demo agent.")]


def seed_demo_memories(tenant) -> None:
    if MemoryRecord.objects.for_tenant(tenant).exists():
        return
    from agents.models import Agent
    from console.models import Membership

    members = {m.user.username: m.user for m in Membership.objects.for_tenant(tenant).select_related("user")}
    for username, rows in USER_MEMORIES.items():
        if user := members.get(username):
            for type_, subject, content in rows:
                memory_create(tenant=tenant, actor=user, scope="user", user=user, type=type_, subject=subject,
                              content=content, confidence=0.9)
    for type_, subject, content in TENANT_MEMORIES:
        memory_create(tenant=tenant, actor=None, scope="tenant", type=type_, subject=subject,
                      content=content.format(name=tenant.name), confidence=0.9)
    for agent in Agent.objects.for_tenant(tenant).filter(slug__startswith="renewals"):
        for type_, subject, content in AGENT_MEMORIES:
            memory_create(tenant=tenant, actor=None, scope="agent", agent=agent, type=type_, subject=subject,
                          content=content, confidence=0.8)
    team, _ = Team.objects.get_or_create(tenant=tenant, name="Renewals")
    for username in ("max", "rita", "gus"):
        if user := members.get(username):
            TeamMember.objects.get_or_create(tenant=tenant, team=team, user=user)
    memory_create(tenant=tenant, actor=None, scope="team", team=team, type="fact", subject="team channel",
                  content="The renewals team coordinates in the #renewals channel.", confidence=0.8)


