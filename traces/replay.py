"""Replay and compare. A replay is a new run of the original's goal with another model, agent version or
instructions; the runtime is told through its run-overrides hook (agents.hooks): the agent as changed,
nobody asked to approve, and every tool answered by ``recorded_result`` — from the original's recorded
ToolInvocation results for a tool with a side effect (risk ≥ 1), always; for a read-only tool when the
user chose the recording. A call the original never made gets a "no recorded result" error, never a
real effect."""

from __future__ import annotations

import json
from functools import partial

from django.db import transaction

from agents.hooks import RunOverrides
from agents.engine import ASK_TOOL
from agents.models import Agent, AgentVersion, Run, RunEvent, ToolInvocation
from agents.services import RunError, run_start
from console.models import TenantConfigCache, tenant_config_changed
from traces.models import ReadOnlyTools, Replay, ReplayBatch

MAX_MODEL_CHARS = 100
MAX_INSTRUCTIONS_CHARS = 20_000


def _canonical(arguments) -> str:
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)


def no_recorded_result(tool: str) -> dict:
    return {"status": "error", "error_type": "no_recorded_result", "retryable": False,
            "message": f"No recorded result for {tool} with these arguments: the original run never made this call, "
                       "and a replay never runs a tool with side effects for real. Finish with what you have."}


def _recorded_answer(replay: Replay, run, arguments: dict) -> dict:
    """A question (human.ask) in a replay never waits for a person: the original's answer to the same question
    and options (its "tool.result" event: an answer, or the refusal or expiry it got), the k-th such question
    of the replay getting the k-th recorded answer; a question the original never asked: no recorded result."""
    key = _canonical(arguments)

    def answers(run_id: int) -> list[dict]:
        events = RunEvent.objects.filter(run_id=run_id, type="tool.result", payload__tool=ASK_TOOL).order_by("seq")
        return [payload["result"] for payload in events.values_list("payload", flat=True)
                if _canonical(payload.get("arguments")) == key]
    recorded, answered = answers(replay.original_id), len(answers(run.pk))
    return recorded[answered] if answered < len(recorded) else no_recorded_result(ASK_TOOL)


def recorded_result(replay: Replay, run, spec, arguments: dict) -> dict | None:
    """The tool's answer in a replay: None to run it live (a read-only tool, when so chosen); otherwise the
    original's result for the same tool and arguments — the k-th such call of the replay gets the k-th
    recorded one — or the "no recorded result" error. A question is answered from the original's answers."""
    if spec.name == ASK_TOOL:
        return _recorded_answer(replay, run, arguments)
    if spec.risk == 0 and replay.read_only == ReadOnlyTools.LIVE:
        return None
    key = _canonical(arguments)
    recorded = [invocation.result for invocation in ToolInvocation.objects.filter(
        run_id=replay.original_id, tool=spec.name).exclude(result=None).order_by("step", "id")
        if _canonical(invocation.arguments) == key]
    answered = sum(1 for arguments_then in ToolInvocation.objects.filter(run_id=run.pk, tool=spec.name).values_list(
        "arguments", flat=True) if _canonical(arguments_then) == key)
    if answered < len(recorded):
        return recorded[answered]
    return no_recorded_result(spec.name)


# Whether the tenant has a replay at all, until its configuration version rises: replay_start raises it in the
# transaction that makes the replay's run, so that run's claim (which reads the version) reads it afresh.
_any_replay = TenantConfigCache(lambda tenant_id: Replay.objects.filter(tenant_id=tenant_id).exists())


def replay_overrides(run) -> RunOverrides | None:
    """The run-overrides hook: for a replay's run, what it changes (one indexed read per turn; none in a tenant
    that never replayed a run)."""
    version = run.tenant.config_version if Run.tenant.is_cached(run) else None
    if not _any_replay.get(run.tenant_id, version):
        return None
    replay = Replay.objects.filter(tenant_id=run.tenant_id, run_id=run.pk).first()
    if replay is None:
        return None
    # The agent version asked for is the run's own (run_start pinned it, tools and settings included); a
    # replay changes only the model (run without fallbacks, so the compare is of that model) and instructions.
    return RunOverrides(model=replay.model, instructions=replay.instructions,
                        fallback_models=() if replay.model else None,
                        tool_runner=partial(recorded_result, replay), skip_review=True)


def agent_versions(agent: Agent) -> list[int]:
    """The versions a replay may use: every one with a snapshot, and the current one."""
    return sorted({*AgentVersion.objects.filter(agent=agent).values_list("version", flat=True), agent.version})


def _checked(*, agent: Agent, model: str, agent_version: int | None, instructions: str | None, read_only: str) -> str:
    """What a replay is asked to change, checked (RunError says what to fix); the model name, trimmed."""
    model = (model or "").strip()
    if len(model) > MAX_MODEL_CHARS or (model and ":" not in model):
        raise RunError('Name the model as "<provider>:<model>", e.g. demo:planner, in under 100 characters.')
    if instructions is not None and len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise RunError(f"The instructions are {len(instructions)} characters; keep them under {MAX_INSTRUCTIONS_CHARS}.")
    if read_only not in ReadOnlyTools.values:
        raise RunError("Choose whether read-only tools run live or from the recording.")
    if agent_version is not None and agent_version not in agent_versions(agent):
        raise RunError(f"{agent.name} has no version {agent_version}.")
    return model


def replay_start(*, original: Run, actor, model: str = "", agent_version: int | None = None,
                 instructions: str | None = None, read_only: str = ReadOnlyTools.RECORDED,
                 batch: ReplayBatch | None = None) -> Run:
    """A new run of the original's goal, marked as its replay. Raises RunError with what to fix."""
    model = _checked(agent=original.agent, model=model, agent_version=agent_version, instructions=instructions,
                     read_only=read_only)
    if not original.is_terminal:
        raise RunError("Replay a run once it has ended: its recording is not complete yet.")
    with transaction.atomic():  # the replay row commits with the run, before its first step is taken
        run = run_start(tenant=original.tenant, agent=original.agent, goal=original.goal, requested_by=actor,
                        version=agent_version)
        Replay.objects.create(tenant=original.tenant, original=original, run=run, model=model,
                              agent_version=agent_version, instructions=instructions, read_only=read_only, batch=batch,
                              created_by=actor)
        tenant_config_changed(original.tenant_id)  # its claims read whether the tenant replays afresh
    return run


def replay_batch_create(*, tenant, agent: Agent, runs: int, actor, model: str = "", agent_version: int | None = None,
                        instructions: str | None = None, read_only: str = ReadOnlyTools.RECORDED) -> ReplayBatch:
    """A batch replay of the agent's last ``runs`` ended runs (not replays themselves); its Celery job starts
    them, counting its progress. Raises RunError with what to fix."""
    if not 1 <= runs <= 100:
        raise RunError("Replay from 1 to 100 runs at once.")
    model = _checked(agent=agent, model=model, agent_version=agent_version, instructions=instructions,
                     read_only=read_only)
    with transaction.atomic():
        batch = ReplayBatch.objects.create(tenant=tenant, agent=agent, runs_wanted=runs, model=model,
                                           agent_version=agent_version, instructions=instructions, read_only=read_only,
                                           created_by=actor)
        from traces.tasks import replay_batch_run

        transaction.on_commit(lambda: replay_batch_run.delay(batch.pk))
    return batch


def replay_batch_carry_out(batch_id: int) -> int:
    """The batch's job: start a replay of each of the agent's last N ended runs, counting as it goes."""
    batch = ReplayBatch.objects.select_related("agent", "tenant", "created_by").get(pk=batch_id)
    originals = list(Run.objects.for_tenant(batch.tenant).filter(agent=batch.agent, status__in=["completed", "failed"],
                                                                 replay_of__isnull=True).order_by("-number")[:batch.runs_wanted])
    for original in originals[batch.runs_started:]:
        try:
            replay_start(original=original, actor=batch.created_by, model=batch.model, agent_version=batch.agent_version,
                         instructions=batch.instructions, read_only=batch.read_only, batch=batch)
        except RunError as refused:
            ReplayBatch.objects.filter(pk=batch.pk).update(error=str(refused)[:300])
            return batch.runs_started
        batch.runs_started += 1
        ReplayBatch.objects.filter(pk=batch.pk).update(runs_started=batch.runs_started)
    if len(originals) < batch.runs_wanted:
        ReplayBatch.objects.filter(pk=batch.pk).update(runs_wanted=len(originals))
    return batch.runs_started


def _calls(run: Run) -> list[dict]:
    return [{"step": step, "tool": tool, "arguments": arguments or {}, "status": status, "result": result}
            for step, tool, arguments, status, result in ToolInvocation.objects.filter(run=run).order_by("step", "id")
            .values_list("step", "tool", "arguments", "status", "result")]


def _argument_diff(before: dict, after: dict) -> list[dict]:
    """Each argument that differs: {name, original, replay} (missing on one side: null)."""
    return [{"name": name, "original": before.get(name), "replay": after.get(name)}
            for name in sorted({*before, *after}) if before.get(name) != after.get(name)]


def _side(run: Run) -> dict:
    duration = (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
    return {"number": run.number, "status": run.status, "steps": run.step, "answer": run.answer,
            "tokens": run.input_tokens + run.output_tokens, "cost_usd": run.cost_usd, "duration_s": duration,
            "terminal_reason": run.terminal_reason}


def replay_compare(*, replay: Replay) -> dict:
    """The original and its replay side by side: each side's steps, tokens, cost, duration and answer; the
    tool calls paired in order with their argument diffs; and where they first diverged (the first call
    that differs in tool, arguments or outcome; else a different number of calls; else the answers)."""
    original, again = replay.original, replay.run
    before, after = _calls(original), _calls(again)
    pairs, divergence = [], None
    for index in range(max(len(before), len(after))):
        a = before[index] if index < len(before) else None
        b = after[index] if index < len(after) else None
        diff = _argument_diff(a["arguments"], b["arguments"]) if a and b and a["tool"] == b["tool"] else []
        same = bool(a and b and a["tool"] == b["tool"] and not diff and a["status"] == b["status"])
        pairs.append({"original": a, "replay": b, "argument_diff": diff, "same": same})
        if not same and divergence is None:
            if a and b and a["tool"] != b["tool"]:
                what = f"the original called {a['tool']}, the replay {b['tool']}"
            elif a and b and diff:
                what = f"{a['tool']} was called with other arguments ({', '.join(d['name'] for d in diff)})"
            elif a and b:
                what = f"{a['tool']} {a['status']} in the original, {b['status']} in the replay"
            elif a:
                what = f"the replay stopped calling tools; the original went on with {a['tool']}"
            else:
                what = f"the replay made a call the original did not: {b['tool']}"
            divergence = {"call": index + 1, "step": (b or a)["step"], "what": what}
    if divergence is None and original.answer != again.answer and again.is_terminal:
        divergence = {"call": None, "step": again.step, "what": "the same calls, but the final answers differ"}
    return {"original": _side(original), "replay": _side(again), "pairs": pairs, "divergence": divergence,
            "finished": again.is_terminal, "model": replay.model, "agent_version": replay.agent_version,
            "instructions_edited": replay.instructions is not None, "read_only": replay.read_only}


def replay_of(*, tenant, run: Run) -> Replay | None:
    return Replay.objects.for_tenant(tenant).filter(run=run).select_related(
        "original__agent", "run__agent", "created_by").first()


def batch_get(*, tenant, batch_id: int) -> ReplayBatch | None:
    return ReplayBatch.objects.for_tenant(tenant).filter(pk=batch_id).select_related("agent").first()


def batch_rows(*, batch: ReplayBatch) -> list[dict]:
    """Each replay of the batch with its original and where they diverged (once the replay has ended)."""
    replays = Replay.objects.filter(batch=batch).select_related("original__agent", "run__agent").order_by("original__number")
    return [{"replay": replay, "compare": replay_compare(replay=replay) if replay.run.is_terminal else None}
            for replay in replays]
