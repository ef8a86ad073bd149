"""The runtime's own pseudo-tool: ``human.ask``. The engine turns a call of it into a question for a
person (AskQuestion); the answer is the call's result, so it is never run as code."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.tools.registry import ToolContext, ToolError, tool


class Question(BaseModel):
    question: str = Field(min_length=1, max_length=1000, description="The question, answerable by a person")
    options: list[str] = Field(default_factory=list, max_length=10, description="Suggested answers, if any")


@tool("human.ask", description="Ask a person a question and wait for the answer. Use it when the goal is "
      "ambiguous (e.g. several accounts match), not for permission.", risk=0, transactional=True)
def ask_human(context: ToolContext, args: Question) -> dict:
    # The engine turns this call into a question in the approval queue; the answer is its result.
    raise ToolError("human.ask is answered by a person through the approval queue, never run as code.")
