"""``memory.remember``: an agent proposes a memory during a run. The proposal is stored with the step and
processed after commit by the write pipeline (memory.services.proposal_process); the run page shows what
became of it. Registered into the runtime's tool registry when the memory app is ready."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agents.tools.registry import ToolContext, tool
from memory.models import MAX_CONTENT_CHARS


class Remember(BaseModel):
    type: Literal["preference", "fact", "episode", "procedure"] = Field(description="What kind of memory it is")
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS,
                         description="One self-contained statement, e.g. 'The champion at ACME-042 is Dana (VP Ops).'")
    subject: str = Field(default="", max_length=200,
                         description="What it is about, e.g. 'champion of ACME-042' (the same subject again "
                                     "updates the memory instead of adding one)")
    scope: Literal["user", "tenant", "agent"] = Field(
        default="user", description="user: about the person who started this run; tenant: shared with everyone "
                                    "in the tenant; agent: this agent's own know-how")
    confidence: float = Field(default=0.7, ge=0, le=1, description="How sure you are, 0 to 1")


@tool("memory.remember", description="Propose something worth remembering for later runs. It is checked, "
      "deduplicated and may wait for the person's confirmation; it is never remembered at once.", risk=1,
      transactional=True)
def remember(context: ToolContext, args: Remember) -> dict:
    from memory.services import proposal_create

    _, step, call_id = context.idempotency_key.split(":", 2)
    proposal = proposal_create(tenant=context.tenant, run=context.run, step=int(step), call_id=call_id,
                               scope=args.scope, type=args.type, content=args.content, subject=args.subject,
                               confidence=args.confidence)
    return {"proposal": proposal.pk, "status": "received",
            "note": "The memory pipeline decides after this step (stored, merged, superseding, to confirm or refused)."}
