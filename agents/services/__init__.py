"""The runtime's writes, a module a job:

- ``agent_versions``: agent_create, agent_update, agent_set_enabled, agent_version_snapshot (every change a new
  version), agent_version_diff
- ``runs``: run_start, run_start_once (an idempotency key again with another agent or goal: IdempotencyMismatch)
- ``step``: run_advance — a turn of steps (boundary → model call → the engine's action → tool call)
- ``actions``: the engine's action carried out in the step's transaction
- ``tool_calls``: a pending call run (or its decision applied) and its result recorded
- ``control``: run_locked and people's changes (cancel, pause, resume, instructions, a decision's outcome)
- ``plans``: run_plan_edit
- ``sweeps``: runs_sweep
- ``usage``: what a model call cost, told to the usage hooks and added to the run's totals (a step's attempts;
  run_call_stopped and run_usage_record: the gates before, and the charge after, a call made for a run outside
  its steps, memory's classifier)
- ``transitions``: what they share (status changes and the lease, the checkpoint, refusals)

Callers import from here.
"""

from agents.services.agent_versions import (  # noqa: F401
    VERSIONED_FIELDS,
    AgentRefused,
    agent_config_problems,
    agent_create,
    agent_set_enabled,
    agent_update,
    agent_version_diff,
    agent_version_snapshot,
)
from agents.services.control import (  # noqa: F401
    run_add_instruction,
    run_cancel,
    run_continue_after_decision,
    run_locked,
    run_pause,
    run_resume,
)
from agents.services.plans import plan_editable_steps, run_plan_edit  # noqa: F401
from agents.services.runs import MAX_GOAL_CHARS, MAX_INSTRUCTION_CHARS, run_start, run_start_once  # noqa: F401
from agents.services.runs import IdempotencyMismatch  # noqa: F401
from agents.services.step import Turn, run_advance  # noqa: F401
from agents.services.sweeps import runs_sweep  # noqa: F401
from agents.services.transitions import LeaseLost, RunError  # noqa: F401
from agents.services.usage import run_call_stopped, run_usage_record  # noqa: F401
