"""The write pipeline's model-based classifier, used when ``MEMORY_CLASSIFIER_MODEL`` names a real model: the
gateway is asked whether a proposal adds a memory, merges into one already there, supersedes one, or is not
worth keeping. Anything but a clear, valid answer (no reply, not JSON, a record it was not shown) gives None,
and the offline rules decide as they do without a model. The call is made before the pipeline locks anything,
and only when no stopping budget is used up (the pipeline asks the runtime's gates first, with the estimate
made from ``prompt_characters``). Every attempt the gateway made is handed back, answer or not: the pipeline has
it priced into the ledger and the run's cost."""

from __future__ import annotations

import json
import re

from django.conf import settings

from agents.gateway import Attempt, GatewayPolicy, complete
from memory.rules import Candidate, Verdict

ACTIONS = ("add", "merge", "supersede", "ignore")
SHOWN = 12  # the nearest records shown to the model, at most
INSTRUCTIONS = (
    "You keep an assistant's long-term memory tidy. Given a proposed memory and the records already kept on the same "
    "scope and type, decide one action: \"merge\" (it says the same thing as one record, in any words), "
    "\"supersede\" (same topic as one record, but the fact changed: the old one is replaced), \"add\" (a different "
    "memory) or \"ignore\" (nothing worth remembering). Answer with JSON only: "
    '{"action": "add|merge|supersede|ignore", "record": <the record id for merge or supersede, else null>, '
    '"why": "<one short sentence>"}'
)
_JSON = re.compile(r"\{.*\}", re.DOTALL)


def question(*, subject: str, content: str, type_: str, nearest: list[tuple[float, Candidate]]) -> str:
    """What the model is asked about a proposal: it and the nearest records kept (ids and content)."""
    records = "\n".join(f"- record {c.id}{f' (about {c.subject})' if c.subject else ''}: {c.content}"
                        for _, c in nearest[:SHOWN])
    return (f"Proposed {type_}{f' about {subject}' if subject else ''}: {content}\n\n"
            f"Records already kept:\n{records or '(none)'}")


def prompt_characters(prompt: str) -> int:
    """The length of everything the model is sent for ``prompt`` (the budgets' estimate is made from it)."""
    return len(INSTRUCTIONS) + len(prompt)


def model_verdict(*, model: str, prompt: str, nearest: list[tuple[float, Candidate]]
                  ) -> tuple[tuple[Verdict, str] | None, list[Attempt]]:
    """(verdict, the model's reason) on ``prompt`` (see question), or None when the model gave no usable answer;
    with the gateway's attempts (their tokens and price snapshots)."""
    shown = nearest[:SHOWN]
    result = complete(models=[model], tools=[], plan_mode=False, instructions=INSTRUCTIONS,
                      conversation=[{"role": "user", "text": prompt}],
                      policy=GatewayPolicy(timeout_seconds=settings.MODEL_TIMEOUT_SECONDS, max_attempts_per_model=2))
    return (_verdict(result.reply.text or "", shown) if result.reply else None), result.attempts


def _verdict(reply: str, shown: list[tuple[float, Candidate]]) -> tuple[Verdict, str] | None:
    if not (found := _JSON.search(reply)):
        return None
    try:
        answer = json.loads(found.group(0))
    except ValueError:
        return None
    action, record = answer.get("action"), answer.get("record")
    similarity = {c.id: s for s, c in shown}
    if action not in ACTIONS or (action in ("merge", "supersede") and record not in similarity):
        return None
    why = str(answer.get("why", ""))[:200]
    if action in ("merge", "supersede"):
        return Verdict(action, record, similarity[record]), why
    return Verdict(action), why
