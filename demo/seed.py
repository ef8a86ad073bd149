"""Demo agents and demo-system records for a tenant (idempotent)."""

from __future__ import annotations

from datetime import date, timedelta

from agents.models import Agent
from demo.models import CrmAccount, CrmNote

RENEWAL_INSTRUCTIONS = (
    "You prepare account renewals. Plan first, read the account and its notes, draft the email, "
    "then send it to the account's success manager. Never invent account data."
)
RENEWAL_TOOLS = ["crm.search_accounts", "crm.get_account", "notes.write", "email.draft", "email.send", "calendar.book",
                 "human.ask"]
ACCOUNTS = [
    ("042", "{name} Rocket Supply", 182_000, 45, "good", ["Champion: Dana (VP Ops).", "Asked about SSO pricing in May."]),
    ("017", "{name} Anvil Works", 64_000, 20, "at risk", ["Usage down 30% this quarter."]),
    ("105", "{name} Road Runner Logistics", 250_000, 90, "good", []),
]


def seed_demo_systems(tenant) -> None:
    prefix = tenant.slug.upper()[:6]
    Agent.objects.get_or_create(tenant=tenant, slug="renewals", defaults={
        "name": "Renewals assistant", "description": "Prepares renewal plans and emails them (offline demo model).",
        "instructions": RENEWAL_INSTRUCTIONS, "model": "demo:planner", "plan_mode": True,
        "tools": RENEWAL_TOOLS,
    })
    Agent.objects.get_or_create(tenant=tenant, slug="renewals-reviewed", defaults={
        "name": "Renewals assistant (plan reviewed)",
        "description": "The same assistant; a person approves or edits its plan before it acts (offline demo model).",
        "instructions": RENEWAL_INSTRUCTIONS, "model": "demo:planner", "plan_mode": True, "plan_approval": True,
        "tools": RENEWAL_TOOLS,
    })
    Agent.objects.get_or_create(tenant=tenant, slug="renewals-memory", defaults={
        "name": "Renewals assistant (remembers)",
        "description": "The same assistant; it also proposes what it learns (the account's champion) as memories "
                       "(offline demo model).",
        "instructions": RENEWAL_INSTRUCTIONS + " Propose what is worth remembering with memory.remember.",
        "model": "demo:planner", "plan_mode": True, "tools": [*RENEWAL_TOOLS, "memory.remember"],
    })
    for number, name, arr, days, health, notes in ACCOUNTS:
        account, created = CrmAccount.objects.get_or_create(tenant=tenant, key=f"{prefix}-{number}", defaults={
            "name": name.format(name=tenant.name), "success_manager": f"csm-{number}@{tenant.slug}.example",
            "arr_usd": arr, "renewal_date": date.today() + timedelta(days=days), "health": health,
        })
        if created:
            CrmNote.objects.bulk_create(CrmNote(tenant=tenant, account=account, body=b, author="seed") for b in notes)
