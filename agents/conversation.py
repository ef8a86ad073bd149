"""The run's conversation: append-only rows (ConversationMessage), and the model's message list
built from them incrementally.

A turn loads the conversation once (with its claim, ``run_store.run_claim``) and then each step appends only its new
messages: one row each, written with the step's transaction, and one more part on the model's
message list. Neither the bytes a step writes nor the work to build the model's messages grows with
the run's length.
"""

from __future__ import annotations

import json

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from agents.models import ConversationMessage, Run


class Conversation:
    def __init__(self, *, instructions: str, messages: list[dict]):
        self.length = 0
        self.latest: dict[str, dict] = {}  # the latest person's message ("user") and tool result ("tool")
        self.characters = len(instructions)  # the prompt's size so far, for estimates made before a model call
        self._done: list[ModelMessage] = []  # requests and responses closed by a later response
        self._parts: list = [SystemPromptPart(content=instructions)] if instructions else []  # the open request
        for message in messages:
            self._add(message)

    def _add(self, message: dict) -> None:
        self.length += 1
        self.characters += len(json.dumps(message))
        role = message["role"]
        if role in ("user", "tool"):
            self.latest[role] = message
        if role == "user":
            self._parts.append(UserPromptPart(content=message["text"]))
        elif role == "tool":
            # Keys sorted: the JSON column does not keep their order, and the model must see the same
            # bytes after a resume as before it (determinism, and provider-side prompt caching).
            self._parts.append(ToolReturnPart(tool_name=message["tool"], content=json.dumps(message["result"], sort_keys=True),
                                              tool_call_id=message["call_id"]))
        elif role == "assistant":
            if self._parts:
                self._done.append(ModelRequest(parts=self._parts))
                self._parts = []
            parts = [TextPart(content=message["text"])] if message.get("text") else []
            if call := message.get("tool_call"):
                parts.append(ToolCallPart(tool_name=call["tool"], args=call["arguments"], tool_call_id=call["id"]))
            self._done.append(ModelResponse(parts=parts))

    def append(self, run: Run, message: dict) -> None:
        """A new message, written with the run's transaction (``run.writes``)."""
        self._add(message)
        run.writes.message(ConversationMessage(run=run, seq=self.length, step=run.step, message=message))

    def mark(self) -> tuple:
        """Where the conversation is now, for ``rewind``."""
        return self.length, self.characters, dict(self.latest), len(self._done), list(self._parts)

    def rewind(self, mark: tuple) -> None:
        """Back to ``mark``: the messages appended since (by a transaction that kept nothing) are gone."""
        self.length, self.characters, latest, done, parts = mark
        self.latest = dict(latest)
        del self._done[done:]
        self._parts = list(parts)

    def open_tool_results(self) -> list[str]:
        """The call ids of the tool results the model has not answered yet (what its next reply refers to)."""
        return [part.tool_call_id for part in self._parts if isinstance(part, ToolReturnPart)]

    def model_messages(self, context: str = "") -> list[ModelMessage]:
        """The messages for the next model call; ``context`` (delimited blocks for this step only) joins
        the open request, and is not kept in the conversation."""
        parts = [*self._parts, UserPromptPart(content=context)] if context else self._parts
        return [*self._done, ModelRequest(parts=list(parts))] if parts else list(self._done)
