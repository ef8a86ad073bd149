"""Which of a run's controls apply in its state, and a refusal said as a sentence (the run page's buttons
and the control view read the same table)."""

from __future__ import annotations

from agents.models import Run, RunStatus


def run_actions(run: Run) -> set[str]:
    """The controls a person may use on the run as it is: none on an ended run, no Pause on a paused one."""
    if run.is_terminal or run.cancel_requested:
        return set()
    if run.status == RunStatus.PAUSED:
        return {"resume", "cancel", "instruct"}
    if run.pause_requested:  # it pauses after this step; taking that back is a resume
        return {"resume", "cancel", "instruct"}
    return {"pause", "cancel", "instruct"}


STATE_WORDS = {
    RunStatus.COMPLETED: "has completed", RunStatus.FAILED: "has failed", RunStatus.CANCELLED: "was cancelled",
    RunStatus.PAUSED: "is paused", RunStatus.WAITING_FOR_HUMAN: "is waiting for a reviewer",
    RunStatus.QUEUED: "is queued", RunStatus.CREATED: "is being created",
}
ACTION_WORDS = {"pause": "pause it", "resume": "resume it", "cancel": "cancel it", "instruct": "add an instruction"}


def control_refusal(action: str, run: Run) -> str:
    """Why ``action`` does not apply to the run now, as a sentence a person can act on."""
    state = STATE_WORDS.get(run.status, "is running")
    if run.is_terminal:
        return f"This run {state}; there is nothing left to {action if action != 'instruct' else 'instruct'}."
    if run.cancel_requested:
        return "This run is being cancelled; it stops at the end of its current step."
    if action == "pause" and run.status == RunStatus.PAUSED:
        return "This run is already paused; resume it to let it go on."
    if action == "pause" and run.pause_requested:
        return "A pause was already asked for; the run pauses at the end of its current step."
    if action == "resume":
        return f"This run {state}, not paused; there is nothing to resume."
    return f"This run {state}; you cannot {ACTION_WORDS.get(action, action)} now."
