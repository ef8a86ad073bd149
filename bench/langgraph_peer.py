"""LG, the fair peer: LangGraph + its Postgres checkpointer doing the same unit of work as our step.

The graph is the usual agent loop: an ``agent`` node makes the same pydantic-ai call our gateway
makes (``pydantic_ai.direct`` model request, the demo ``noop`` FunctionModel, the same tool
definition built by ``agents.gateway.tool_definitions`` from the registry's ``noop``, no SDK
retries), a ``tool`` node validates the arguments and runs the registry's ``noop`` function as our
step does (``parse_arguments`` + ``run_tool``), and a conditional edge loops back to ``agent`` until
the model answers. ``PostgresSaver`` on the bench Postgres, ``durability="sync"`` (each
checkpoint is written before the next node starts, as our step commits before the next one).

Two forms of the conversation in the graph state, both an ``operator.add`` list (LangGraph's
idiom: the node returns the new messages, the reducer appends them):

- ``json`` (**LG**, the peer to beat): plain JSON dicts, the very dicts our runtime stores
  (``engine.assistant_message`` / ``engine.tool_message``); before each model call they are
  converted to pydantic-ai messages with ``agents.gateway.to_messages``, as our gateway does
  for a stored conversation;
- ``msgs`` (**LG-msgs**): pydantic-ai ``ModelRequest``/``ModelResponse`` objects, given to the
  model as they are, serialized by LangGraph's own serializer into its checkpoints.

One sample = one step = one ``agent`` node + one ``tool`` node: the time from an ``agent`` node's
start to the next ``agent`` node's start (timestamps taken inside the node), so it covers the model
call, the tool, both checkpoints and LangGraph's scheduling. The final answer (an ``agent`` node
and no tool) is not a sample.

``lg_steps(ctx, steps=, runs=, form=)`` is what other benchmarks compare with (memoised on ctx).
"""

from __future__ import annotations

import contextlib
import json
import operator
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypedDict

from bench.agent_loop import _django
from bench.harness import Context, Row, summary, table

INSTRUCTIONS = "Call noop as often as the goal says."  # bench.agent_loop's looper agent
FORMS = {"json": "LG (JSON dicts in the state)", "msgs": "LG-msgs (pydantic-ai messages in the state)"}


class JsonState(TypedDict):
    messages: Annotated[list[dict], operator.add]


class MsgsState(TypedDict):
    messages: Annotated[list, operator.add]


@dataclass
class Probe:
    """Called at an ``agent`` node's start with the step it starts (1-based; the answer is steps + 1),
    after its timestamp: P8 reads the WAL position there."""

    at: Callable[[int], None] | None = None
    stamps: list[float] = field(default_factory=list)
    model: list[float] = field(default_factory=list)  # each model call's seconds (the pydantic-ai request alone)


def _parts():
    """The same model, tool definition, request parameters and tool as our step uses."""
    from pydantic_ai.models import ModelRequestParameters

    from agents.gateway import tool_definitions
    from agents.tools import REGISTRY
    from demo.model import demo_model

    noop = REGISTRY["noop"]
    parameters = ModelRequestParameters(function_tools=tool_definitions([noop], plan_mode=False), allow_text_output=True)
    return demo_model("noop"), parameters, noop


def build_graph(checkpointer, form: str, probe: Probe):
    """The compiled agent ⇄ tool loop for ``form`` ("json" or "msgs")."""
    from langgraph.graph import END, START, StateGraph
    from pydantic_ai.direct import model_request_sync
    from pydantic_ai.messages import ModelRequest, ModelResponse, ToolCallPart, ToolReturnPart

    from agents import engine
    from agents.gateway import to_messages, to_reply
    from agents.tools.registry import ToolContext, parse_arguments, run_tool

    model, parameters, noop = _parts()
    clock = time.perf_counter
    settings = {"max_retries": 0}  # as the gateway asks

    def call_model(messages):
        started = clock()
        response = model_request_sync(model, messages, model_settings=settings, model_request_parameters=parameters)
        probe.model.append(clock() - started)
        return response

    def run_noop(arguments) -> dict:
        parsed = parse_arguments(noop, arguments)
        return parsed if isinstance(parsed, dict) else run_tool(noop, ToolContext(tenant=None, run=None,
                                                                                  idempotency_key=""), parsed)

    def stamp() -> None:
        probe.stamps.append(clock())
        if probe.at is not None:
            probe.at(len(probe.stamps))

    if form == "json":
        def agent(state: JsonState) -> dict:
            stamp()
            reply = to_reply(call_model(to_messages(INSTRUCTIONS, state["messages"])))
            call = reply.tool_calls[0] if reply.tool_calls else None
            return {"messages": [engine.assistant_message(reply.text, call)]}

        def tool(state: JsonState) -> dict:
            call = state["messages"][-1]["tool_call"]
            return {"messages": [engine.tool_message(call["id"], call["tool"], run_noop(call["arguments"]))]}

        def route(state: JsonState) -> Literal["tool", "__end__"]:
            return "tool" if state["messages"][-1].get("tool_call") else END

        graph = StateGraph(JsonState)
    elif form == "msgs":
        def agent(state: MsgsState) -> dict:
            stamp()
            return {"messages": [call_model(state["messages"])]}

        def tool(state: MsgsState) -> dict:
            calls = [p for p in state["messages"][-1].parts if isinstance(p, ToolCallPart)]
            return {"messages": [ModelRequest(parts=[
                ToolReturnPart(tool_name=c.tool_name, tool_call_id=c.tool_call_id,
                               content=json.dumps(run_noop(c.args_as_dict()), sort_keys=True)) for c in calls])]}

        def route(state: MsgsState) -> Literal["tool", "__end__"]:
            last = state["messages"][-1]
            return "tool" if isinstance(last, ModelResponse) and any(
                isinstance(p, ToolCallPart) for p in last.parts) else END

        graph = StateGraph(MsgsState)
    else:
        raise ValueError(f"unknown LG form {form!r}")
    graph.add_node("agent", agent)
    graph.add_node("tool", tool)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route)
    graph.add_edge("tool", "agent")
    return graph.compile(checkpointer=checkpointer)


def initial_state(form: str, steps: int) -> dict:
    from pydantic_ai.messages import ModelRequest, SystemPromptPart, UserPromptPart

    from agents import engine

    goal = f"Call noop {steps} times"
    if form == "json":
        return {"messages": [engine.user_message(goal)]}
    return {"messages": [ModelRequest(parts=[SystemPromptPart(content=INSTRUCTIONS), UserPromptPart(content=goal)])]}


def run_once(app, form: str, steps: int, probe: Probe) -> tuple[list[float], str]:
    """One run of ``steps`` tool calls and the answer: (per-step seconds, its thread id)."""
    probe.stamps.clear()
    probe.model.clear()
    thread_id = f"bench-lg-{form}-{uuid.uuid4()}"
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 2 * steps + 10}
    final = app.invoke(initial_state(form, steps), config, durability="sync")
    if len(probe.stamps) != steps + 1 or len(final["messages"]) != 2 * steps + 2:
        raise RuntimeError(f"the LG {form} loop made {len(probe.stamps)} model calls and "
                           f"{len(final['messages'])} messages; expected {steps + 1} and {2 * steps + 2}")
    return [b - a for a, b in zip(probe.stamps, probe.stamps[1:], strict=False)], thread_id


def saver(ctx: Context):
    """PostgresSaver on the bench Postgres (one psycopg connection, autocommit), its tables set up."""
    from langgraph.checkpoint.postgres import PostgresSaver

    return PostgresSaver.from_conn_string(ctx.database_url)


@contextlib.contextmanager
def lg_runner(ctx: Context, *, steps: int = 50, form: str = "json") -> Iterator[Callable[[], list[float]]]:
    """A function that makes one LG run of ``steps`` tool calls and returns its per-step seconds: for a
    measurement that takes turns with another (bench/agent_loop.py's P1 headline)."""
    _django(ctx)
    probe = Probe()
    with saver(ctx) as checkpointer:
        checkpointer.setup()
        app = build_graph(checkpointer, form, probe)
        yield lambda: run_once(app, form, steps, probe)[0]


def lg_steps(ctx: Context, *, steps: int = 50, runs: int = 40, form: str = "json", warmup_runs: int = 3) -> list[float]:
    """Per-step seconds of the LG peer (``form`` "json" = LG, "msgs" = LG-msgs): ``runs`` runs of ``steps``
    tool calls after ``warmup_runs``; measured once per bench run and shared."""
    def measure() -> list[float]:
        _django(ctx)
        print(f"  {FORMS[form]}: {runs} runs × {steps} steps, durability=sync ...", flush=True)
        samples: list[float] = []
        probe = Probe()
        with saver(ctx) as checkpointer:
            checkpointer.setup()
            app = build_graph(checkpointer, form, probe)
            for i in range(warmup_runs + runs):
                run_samples, _ = run_once(app, form, steps, probe)
                if i >= warmup_runs:
                    samples.extend(run_samples)
        return samples

    return ctx.once(f"lg {form} {steps} {runs} {warmup_runs}", measure)


def run(ctx: Context, steps: int = 50, runs: int = 40) -> str:
    from importlib.metadata import version

    b1 = ctx.baseline("B1")
    lg = {form: summary(lg_steps(ctx, steps=steps, runs=runs, form=form)) for form in FORMS}
    rows = [
        Row("LG per step (JSON dicts in the state)", lg["json"], "B1", b1, note="the peer to beat"),
        Row("LG-msgs per step (pydantic-ai messages)", lg["msgs"], "B1", b1),
        Row("LG-msgs vs LG", lg["msgs"], "LG", lg["json"]),
        Row("B1 (same run)", b1, "B1", b1),
    ]
    notes = (
        f"langgraph {version('langgraph')}, langgraph-checkpoint-postgres {version('langgraph-checkpoint-postgres')}, "
        f"pydantic-ai {version('pydantic-ai-slim')}. StateGraph agent ⇄ tool, PostgresSaver (one psycopg connection, "
        f"autocommit) on the bench Postgres, `durability=\"sync\"`, a new thread per run; {runs} timed runs of {steps} "
        f"tool calls and the answer, after 3 warm-up runs. The agent node makes the same call as our gateway: "
        f"`pydantic_ai.direct.model_request_sync` to the demo `noop` FunctionModel with the tool definition from "
        f"`agents.gateway.tool_definitions` (the registry's `noop`), `max_retries=0`; the tool node validates the "
        f"arguments with the registry's `parse_arguments` and runs `noop` through `run_tool`. The conversation is an "
        f"`operator.add` list in the state: LG keeps the dicts our runtime stores and converts them with "
        f"`agents.gateway.to_messages` before each call (so its model call grows with the conversation, as "
        f"LangGraph keeps the whole list and nothing incremental); LG-msgs keeps pydantic-ai message objects. "
        f"LangGraph writes the whole list as a new blob in each checkpoint that changes it (two per step). "
        f"One sample = one step = an agent node's start → the next agent node's start (agent node, tool node, "
        f"two checkpoints, LangGraph's scheduling); the final answer is not a sample."
    )
    return table(rows) + "\n\n" + notes
