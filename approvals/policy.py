"""Approval policy, evaluated outside the model: pure functions over a tenant's rules.

A rule applies to a tool call when its agent and tool match (empty = any), the call's risk is at
least the rule's ``min_risk`` and its argument condition (if any) holds. Of the rules that apply,
the most specific wins (tool, then agent, then a condition make a rule more specific); among
equally specific rules the strictest (most approvals) wins. With no tenant rule, the built-in
default holds: risk ≥ 3 needs one approval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agents.engine import ASK_TOOL, PLAN_TOOL
from console.input import strict_number

EXPIRY_OUTCOMES = ("reject", "cancel_run")
BUDGET_TOOL = "budget.extend"  # the pseudo-tool a policy names to set who decides budget extensions and by when
# pseudo-tools a person answers (see human_step_rule)
HUMAN_STEPS = {PLAN_TOOL: "plans", ASK_TOOL: "questions", BUDGET_TOOL: "budget extensions"}
OPERATORS = {
    "gt": (">", lambda value, limit: _number(value) is not None and _number(value) > _number(limit)),
    "gte": ("≥", lambda value, limit: _number(value) is not None and _number(value) >= _number(limit)),
    "lt": ("<", lambda value, limit: _number(value) is not None and _number(value) < _number(limit)),
    "eq": ("=", lambda value, limit: value == limit),
    "domain_not_in": ("has a domain outside", lambda value, domains: _domains_outside(value, domains)),
}


@dataclass(frozen=True)
class Rule:
    required_approvals: int
    min_risk: int = 0
    agent_id: int | None = None
    tool: str = ""
    condition: dict = field(default_factory=dict)  # {"argument": "amount_usd", "op": "gt", "value": 1000}
    allow_self_approval: bool = False
    sla_minutes: int = 60
    expire_minutes: int = 24 * 60
    expiry_outcome: str = "reject"
    escalate_to_role: str = "admin"
    id: int | None = None
    name: str = ""

    @property
    def specificity(self) -> tuple[bool, bool, bool]:
        return bool(self.tool), self.agent_id is not None, bool(self.condition)

    def describe(self, tool: str = "") -> str:
        """The rule in words. ``tool``: the call it is described for; a plan or a question (plan.propose,
        human.ask) is described as what applies to it (who decides, by when), not as a tool rule."""
        label = self.name or ("default policy" if self.id is None else f"policy #{self.id}")
        human_step = HUMAN_STEPS.get(tool or self.tool)
        if human_step:
            scope = {"questions": "questions the agent asks"}.get(human_step, human_step) + (
                " of this agent" if self.agent_id is not None else "")
            if human_step == "questions":
                need = "answered by one reviewer"
            elif human_step == "budget extensions":
                need = "approved by one reviewer"  # one decision grants the extension (human_step_requirement)
            else:
                need = ("approved by one reviewer" if self.required_approvals <= 1
                        else f"approved by {self.required_approvals} distinct reviewers")
            requester = "" if self.allow_self_approval else ", not by the run's requester"
            return f"{scope}: {need}{requester}, due within {self.sla_minutes} min ({label})"
        scope = " and ".join(filter(None, [f"tool {self.tool}" if self.tool else "",
                                           "this agent" if self.agent_id is not None else ""])) or "every tool"
        when = f"risk ≥ {self.min_risk}" + (f", {describe_condition(self.condition)}" if self.condition else "")
        need = ("no approval" if self.required_approvals == 0 else
                "one approval" if self.required_approvals == 1 else f"{self.required_approvals} distinct reviewers")
        return f"{scope}, {when}: {need} ({label})"


# Without tenant rules: risk ≥ 3 needs one approval, from anyone who may review (the requester
# too; a tenant rule can forbid that).
DEFAULT_RULE = Rule(required_approvals=1, min_risk=3, allow_self_approval=True, name="default policy")


@dataclass(frozen=True)
class Requirement:
    """What one tool call needs before it may run."""

    required_approvals: int
    rule: Rule

    @property
    def needs_approval(self) -> bool:
        return self.required_approvals > 0


def requirement(rules: list[Rule], *, agent_id: int, tool: str, risk: int, arguments: dict) -> Requirement:
    applicable = [r for r in rules if _applies(r, agent_id=agent_id, tool=tool, risk=risk, arguments=arguments)]
    if not applicable:
        applies = risk >= DEFAULT_RULE.min_risk
        return Requirement(DEFAULT_RULE.required_approvals if applies else 0, DEFAULT_RULE)
    best = _most_specific(applicable)
    return Requirement(best.required_approvals, best)


def human_step_rule(rules: list[Rule], *, agent_id: int, tool: str) -> Rule:
    """The rule for a plan approval, a question or a budget extension (pseudo-tools plan.propose, human.ask,
    budget.extend): the most specific tenant rule scoped to that tool (its risk and condition do not apply),
    else the default.
    It sets who may decide, the due and expiry times and the escalation; how many approve a plan."""
    scoped = [r for r in rules if r.tool == tool and (r.agent_id is None or r.agent_id == agent_id)]
    return _most_specific(scoped) if scoped else DEFAULT_RULE


def _most_specific(rules: list[Rule]) -> Rule:
    """The most specific rule; among equally specific ones, the strictest."""
    return max(rules, key=lambda r: (r.specificity, r.required_approvals))


def _applies(rule: Rule, *, agent_id: int, tool: str, risk: int, arguments: dict) -> bool:
    return ((rule.agent_id is None or rule.agent_id == agent_id) and (not rule.tool or rule.tool == tool)
            and risk >= rule.min_risk and (not rule.condition or condition_holds(rule.condition, arguments)))


def condition_holds(condition: dict, arguments: dict) -> bool:
    operator = OPERATORS.get(condition.get("op", ""))
    if operator is None or not isinstance(arguments, dict):
        return False
    return bool(operator[1](arguments.get(condition.get("argument", "")), condition.get("value")))


def condition_problem(condition: dict) -> str:
    """Why a condition is unusable, or "" (for the policy form)."""
    if not condition:
        return ""
    if condition.get("op") not in OPERATORS:
        return f"Unknown condition '{condition.get('op')}'; use one of {', '.join(OPERATORS)}."
    if not condition.get("argument"):
        return "Name the argument the condition looks at."
    if condition["op"] in {"gt", "gte", "lt"} and condition_number(condition.get("value")) is None:
        return "Compare with a number."
    if condition["op"] == "domain_not_in" and not _domain_list(condition.get("value")):
        return "List the allowed domains, e.g. acme.example."
    return ""


def describe_condition(condition: dict) -> str:
    symbol = OPERATORS.get(condition.get("op", ""), ("?",))[0]
    value = condition.get("value")
    if condition.get("op") == "domain_not_in":
        value = ", ".join(_domain_list(value))
    return f"{condition.get('argument')} {symbol} {value}"


def condition_number(value) -> float | None:
    """The number a condition compares with, as the policy form takes and stores it: finite, written plainly
    (console.input.strict_number), or None. NaN and Infinity are refused: PostgreSQL's JSON cannot store them,
    and every comparison with NaN is false."""
    if isinstance(value, str):
        return strict_number(value.strip())
    number = _number(value)
    return number if number is not None and math.isfinite(number) else None


def _number(value) -> float | None:
    """A call's argument as a number, as leniently as Python reads one (a model may send "1200" or 1e400)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _domain_list(value) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [str(d).strip().lower().lstrip("@") for d in items if str(d).strip()]


def _domains_outside(value, domains) -> bool:
    allowed = set(_domain_list(domains))
    addresses = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    found = [a.rsplit("@", 1)[-1].strip().lower() for a in addresses if isinstance(a, str) and "@" in a]
    return any(d not in allowed for d in found)
