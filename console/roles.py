"""Which role may open which part of the console. The one table the access helper reads."""

from console.models import Role

EVERYONE = frozenset(Role)

SECTION_ROLES: dict[str, frozenset[Role]] = {
    "runs": EVERYONE,
    "agents": EVERYONE,  # read-only for all; creating and changing agents is "admin"
    "approvals": frozenset({Role.ADMIN, Role.REVIEWER}),
    "memory": EVERYONE,
    "traces": EVERYONE,
    "costs": frozenset({Role.ADMIN, Role.FINANCE}),
    "admin": frozenset({Role.ADMIN}),
}

NAVIGATION = [
    # (section, label, url name, keyboard shortcut after "g")
    ("runs", "Runs", "runs", "r"),
    ("agents", "Agents", "agents", "e"),
    ("approvals", "Approvals", "approvals", "a"),
    ("memory", "Memory", "memory", "m"),
    ("traces", "Traces", "traces", "t"),
    ("costs", "Costs", "costs", "c"),
    ("admin", "Admin", "admin_members", "s"),
]


def can_open(role: str, section: str) -> bool:
    return role in SECTION_ROLES[section]
