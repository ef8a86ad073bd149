"""What a model call cost, told to the usage hooks (costs' ledger) and added to the run's totals: a step's
attempts, and model calls made for a run outside its steps (memory's classifier asking about a proposal),
priced, gated and counted alike."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from agents.events import emit
from agents.gateway import Attempt
from agents.hooks import GateAsk, ModelCallEstimate, Usage, gate_stops, usage_recorded
from agents.models import Run
from agents.run_store import run_lock_in_tenant, run_write
from agents.services.transitions import step_info


def attempt_usage(attempt: Attempt, number: int, *, kind: str = "model", call_id: str = "") -> Usage:
    """One gateway attempt as the usage hooks hear it, with the price snapshot the gateway took."""
    return Usage(kind=kind, name=attempt.model, status=attempt.status, provider=attempt.provider, attempt=number,
                 input_tokens=attempt.input_tokens, output_tokens=attempt.output_tokens,
                 cached_tokens=attempt.cached_tokens, cost_usd=attempt.cost_usd, price=attempt.price,
                 latency_ms=attempt.latency_ms, cache_write_tokens=attempt.cache_write_tokens,
                 reasoning_tokens=attempt.reasoning_tokens, call_id=call_id)


def run_charge(run: Run, attempt: Attempt) -> None:
    """An attempt's tokens and price added to the run's totals (the run locked: written by its run_write). What
    the run page, run list, API and the engine's per-run budget read; an unpriced call is counted, not $0."""
    run.input_tokens += attempt.input_tokens
    run.output_tokens += attempt.output_tokens
    run.cost_usd += attempt.cost_usd
    run.unpriced_calls += bool(attempt.price.get("unpriced"))


def call_estimate(*, models: Iterable[str], prompt_characters: int) -> ModelCallEstimate:
    """A model call as the gates see it before it is made: the prompt's tokens estimated from its text (about
    four characters a token), and the most output a call may ask for."""
    return ModelCallEstimate(models=tuple(models), input_tokens=prompt_characters // 4 + 1,
                             max_output_tokens=settings.MODEL_MAX_OUTPUT_TOKENS)


def run_call_stopped(*, run: Run, step: int, models: Iterable[str], prompt_characters: int) -> str | None:
    """Before a model call made for ``run`` outside its steps: the reason a gate stops it (a stopping budget,
    ``budget_exhausted: <budget>``), or None to make it. The gates are asked as before a step's call, with the
    same estimate; a gate that would ask a person to continue stops it instead (its ``stop_reason``): such a
    call never opens a request, and the run's own next step asks. Nothing is locked or written."""
    verdict = gate_stops(step_info(run, step), call_estimate(models=models, prompt_characters=prompt_characters))
    if isinstance(verdict, GateAsk):
        return (verdict.stop_reason or verdict.reason)[:300]
    return verdict[:300] if verdict else None


def run_usage_record(*, run: Run, step: int, attempts: list[Attempt], kind: str, call_id: str,
                     label: str = "") -> None:
    """Model attempts made for ``run`` outside its steps, in a transaction of their own holding the run's row
    lock, as a step's are: each is added to the run's totals (so its cost is the costs pages' total for it,
    and its per-run budget counts it), told to the usage hooks with the run's write set (costs: the ledger
    row and its rollup, written with the run's statement; the budgets' alerts), and shown on the run's
    timeline (``usage.charged``, ``label`` saying what the call was for). The lock comes first, as in a
    step's locked transaction; a step's unlocked reply (which locks the run last, at its write) that meets
    this in a deadlock is rolled back and applied again, locked (agents.run_store.RunChanged). ``call_id`` names what the call
    was made for (a ledger row's key)."""
    if not attempts:
        return
    info = step_info(run, step)
    with transaction.atomic():
        locked = run_lock_in_tenant(run_id=run.pk, tenant_id=run.tenant_id)
        if locked is None:  # the run was deleted meanwhile: nobody to charge
            return
        for number, attempt in enumerate(attempts, start=1):
            run_charge(locked, attempt)
            emit(locked, "usage.charged", {"step": step, "kind": kind, "label": label or kind, "attempt": number,
                                           "provider": attempt.provider, "model": attempt.model,
                                           "status": attempt.status, "input_tokens": attempt.input_tokens,
                                           "output_tokens": attempt.output_tokens,
                                           "cost_usd": str(attempt.cost_usd)})
            usage_recorded(info, attempt_usage(attempt, number, kind=kind, call_id=call_id), locked.writes)
        run_write(locked)
