from django.apps import AppConfig


class CostsConfig(AppConfig):
    """What runs cost: the priced ledger, hourly rollups, budgets. The runtime knows none of it: the
    ledger is written by a usage hook and budgets stop runs through a gate (agents.hooks)."""

    name = "costs"

    def ready(self) -> None:
        from agents.hooks import register_gate, register_usage
        from costs.budgets import budget_gate
        from costs.ledger import usage_to_ledger

        register_usage(usage_to_ledger)
        register_gate(budget_gate)
