"""The model gateway: one call that turns the run's conversation into a ModelReply.

Built on pydantic-ai's direct model-request API. The step hands it the model's
messages, built incrementally from the run's conversation (agents.conversation); tool definitions
come from the registry.
Transient failures (timeouts, 429, 5xx) are retried with exponential backoff
and jitter; then the agent's fallback models are tried in order. A circuit
breaker per provider lives in Redis so every worker shares it. Every attempt is
reported (for ModelCall rows), priced with genai-prices at call time.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic_ai.direct import model_request
from pydantic_ai.exceptions import (
    ModelConnectionError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelRequestTimeout,
    ModelServerError,
    ModelUnavailableError,
    UnexpectedModelBehavior,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from agents.engine import PLAN_TOOL, ModelReply, ToolCall
from agents.tools.registry import Tool
from agents.tracing import model_call_finished, model_call_span, span_failed
from console import aio

PLAN_TOOL_DEFINITION = ToolDefinition(
    name=PLAN_TOOL,
    description="Propose the plan for this run before acting: a short list of steps.",
    parameters_json_schema={"type": "object", "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
                            "required": ["steps"]},
)


@dataclass
class GatewayPolicy:
    max_attempts_per_model: int = 3
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    repair_attempts: int = 2
    breaker_failures: int = 5
    breaker_window_seconds: int = 60
    breaker_open_seconds: int = 30
    timeout_seconds: float = 60.0


@dataclass
class Attempt:
    provider: str
    model: str
    status: str  # ok, error, skipped
    error: str = ""
    latency_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    price: dict = field(default_factory=dict)
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class GatewayResult:
    reply: ModelReply | None
    attempts: list[Attempt]
    error: str = ""


# --- Conversation ↔ pydantic-ai messages -----------------------------------------------------


def to_messages(instructions: str, conversation: list[dict]) -> list[ModelMessage]:
    """A stored conversation (plain JSON messages) as pydantic-ai messages, built as the step builds them."""
    from agents.conversation import Conversation

    return Conversation(instructions=instructions, messages=conversation).model_messages()


def tool_definitions(tools: list[Tool], *, plan_mode: bool) -> list[ToolDefinition]:
    definitions = [ToolDefinition(name=t.name, description=t.description, parameters_json_schema=t.json_schema())
                   for t in tools]
    return ([PLAN_TOOL_DEFINITION] if plan_mode else []) + definitions


def to_reply(response: ModelResponse) -> ModelReply:
    """Raises ValueError when a tool call's arguments are not a JSON object (the repair loop catches it)."""
    text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
    calls = []
    for part in response.parts:
        if not isinstance(part, ToolCallPart):
            continue
        args = part.args
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"{part.tool_name}: arguments are not valid JSON ({exc.msg})") from None
        if not isinstance(args, dict):
            raise ValueError(f"{part.tool_name}: arguments must be a JSON object")
        args = dict(args)
        reason = str(args.pop("_reason", ""))[:1000]
        plan_step = args.pop("_plan_step", None)
        calls.append(ToolCall(call_id=part.tool_call_id or f"call_{len(calls) + 1}", tool=part.tool_name,
                              arguments=args, reason=reason,
                              plan_step=plan_step if isinstance(plan_step, int) else None))
    usage = response.usage
    return ModelReply(text=text, tool_calls=tuple(calls), input_tokens=usage.input_tokens or 0,
                      output_tokens=usage.output_tokens or 0)


# --- Models, prices, breaker -------------------------------------------------------------------


MODEL_PROVIDERS: dict[str, Callable[[str], Any]] = {}
PROVIDER_MODELS: dict[str, tuple[str, ...]] = {}  # a registered provider's models, when it names them


def register_model_provider(prefix: str, factory: Callable[[str], Any], *, models: tuple[str, ...] = ()) -> None:
    """Another app's models: ``factory(name)`` returns the pydantic-ai model for '<prefix>:<name>'
    (the demo app registers its offline 'demo' model this way). ``models``: the names it serves, offered
    when an admin picks a model (and the only ones accepted, when given)."""
    MODEL_PROVIDERS[prefix] = factory
    PROVIDER_MODELS[prefix] = tuple(models)


def configured_providers() -> list[str]:
    """The providers a model may come from here: the registered ones, and the built-in ones whose key or
    endpoint is configured."""
    from django.conf import settings

    built_in = [name for name, configured in (("openai", settings.OPENAI_API_KEY),
                                              ("anthropic", settings.ANTHROPIC_API_KEY),
                                              ("openai-compatible", settings.OPENAI_BASE_URL)) if configured]
    return [*MODEL_PROVIDERS, *built_in]


def model_suggestions() -> list[str]:
    """Models to offer by name: every registered provider's named models."""
    return [f"{prefix}:{name}" for prefix, names in PROVIDER_MODELS.items() for name in names]


def model_problem(name: str) -> str:
    """Why ``name`` cannot be an agent's model here, or ""."""
    provider, _, model = (name or "").partition(":")
    if not provider or not model:
        return f"Write the model as <provider>:<model>, e.g. {(model_suggestions() or ['openai:gpt-4o-mini'])[0]}."
    providers = configured_providers()
    if provider not in providers:
        return f"The provider '{provider}' is not configured here; configured: {', '.join(providers)}."
    if PROVIDER_MODELS.get(provider) and model not in PROVIDER_MODELS[provider]:
        return f"'{provider}' has no model '{model}'; it has: {', '.join(PROVIDER_MODELS[provider])}."
    return ""


def resolve_model(name: str):
    """'openai:gpt-4o-mini', 'anthropic:claude-…', 'openai-compatible:<model>', or a registered
    provider's model ('demo:planner')."""
    from django.conf import settings

    provider, _, model = name.partition(":")
    if provider in MODEL_PROVIDERS:
        return MODEL_PROVIDERS[provider](model)
    if provider == "openai-compatible":
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        return OpenAIChatModel(model, provider=OpenAIProvider(base_url=settings.OPENAI_BASE_URL,
                                                              api_key=settings.OPENAI_API_KEY or "none"))
    if provider == "openai":
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        return OpenAIChatModel(model, provider=OpenAIProvider(api_key=settings.OPENAI_API_KEY,
                                                              base_url=settings.OPENAI_BASE_URL or None))
    if provider == "anthropic":
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        return AnthropicModel(model, provider=AnthropicProvider(api_key=settings.ANTHROPIC_API_KEY))
    raise ValueError(f"unknown model provider '{provider}' in '{name}'")


@dataclass(frozen=True)
class Tokens:
    """A call's tokens, split as providers bill them. ``input`` includes cache reads and writes;
    ``output`` includes reasoning."""

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0


Pricer = Callable[[str, Tokens, datetime], tuple[Decimal, dict]]
MODEL_PRICING: dict[str, Pricer] = {}


def register_model_pricing(prefix: str, pricer: Pricer) -> None:
    """How another app's models are priced: ``pricer(model, tokens, at)`` returns the amount and the
    price snapshot (the demo app prices its offline model at a real model's list price, marked simulated)."""
    MODEL_PRICING[prefix] = pricer


def price(provider: str, model: str, tokens: Tokens, at: datetime | None = None) -> tuple[Decimal, dict]:
    """The amount and the price snapshot kept with the call: where the price came from, the
    genai-prices version, the rates used and the tier. An unknown model is marked unpriced
    (amount 0, ``"unpriced": True``, the reason), never a silent $0."""
    at = at or datetime.now(UTC)
    if provider in MODEL_PRICING:
        return MODEL_PRICING[provider](model, tokens, at)
    return list_price(provider.replace("openai-compatible", "openai"), model, tokens, at)


def list_price(provider_id: str, model: str, tokens: Tokens, at: datetime) -> tuple[Decimal, dict]:
    """genai-prices' list price for the call at its time (historic prices are kept by the package)."""
    from genai_prices import Usage as PricedUsage
    from genai_prices import calc_price

    snapshot = {"source": "genai-prices", "version": GENAI_PRICES_VERSION, "provider": provider_id, "model": model}
    try:
        calc = calc_price(PricedUsage(input_tokens=tokens.input, cache_read_tokens=tokens.cache_read,
                                      cache_write_tokens=tokens.cache_write, output_tokens=tokens.output),
                          model, provider_id=provider_id, genai_request_timestamp=at)
    except Exception as exc:  # LookupError for an unknown model, ValueError for usage it cannot price
        return Decimal("0"), {**snapshot, "unpriced": True, "reason": str(exc)[:200]}
    rates, tier = {}, "base"
    for unit, rate in vars(calc.model_price).items():
        if rate is None or unit.startswith("_"):
            continue
        if hasattr(rate, "tiers"):  # TieredPrices: the whole call pays the highest tier its input reached
            reached = [t for t in rate.tiers if tokens.input >= t.start]
            rates[unit] = str(reached[-1].price if reached else rate.base)
            if reached:
                tier = f"{unit} from {reached[-1].start} tokens"
        else:
            rates[unit] = str(rate)
    return Decimal(str(calc.total_price)), {**snapshot, "provider": calc.provider.id, "model": calc.model.id,
                                            "rates_per_mtok": rates, "tier": tier}


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


GENAI_PRICES_VERSION = _package_version("genai-prices")


# Providers this process saw healthy (no failures, circuit closed) in Redis, until when (monotonic):
# within that time a call skips the shared read. A circuit another process opens is seen here within
# BREAKER_FRESH_SECONDS; a failure here is recorded at once and ends the provider's clean time.
BREAKER_FRESH_SECONDS = 1.0
_clean_until: dict[str, float] = {}


class Breaker:
    """Per-provider circuit breaker in Redis: closed → open after N failures in a window →
    half-open after a cool-down (one trial call) → closed on success."""

    def __init__(self, client, policy: GatewayPolicy):
        self.redis, self.policy = client, policy

    def _key(self, provider: str, what: str) -> str:
        return f"proctor:breaker:{provider}:{what}"

    def _known_clean(self, provider: str) -> bool:
        return _clean_until.get(provider, 0.0) > time.monotonic()

    def allows(self, provider: str) -> bool:
        if self._known_clean(provider):
            return True
        open_until, failures = self.redis.mget(self._key(provider, "open_until"), self._key(provider, "failures"))
        if open_until is None and failures is None:
            _clean_until[provider] = time.monotonic() + BREAKER_FRESH_SECONDS  # nothing for a success to reset
        if open_until is None or float(open_until) <= time.time():
            if open_until is not None:  # half-open: exactly one caller gets the trial
                return bool(self.redis.set(self._key(provider, "trial"), "1", nx=True, ex=self.policy.breaker_open_seconds))
            return True
        return False

    def state(self, provider: str) -> str:
        open_until = self.redis.get(self._key(provider, "open_until"))
        if open_until is None:
            return "closed"
        return "open" if float(open_until) > time.time() else "half_open"

    def record_success(self, provider: str) -> None:
        if self._known_clean(provider):
            return
        self.redis.delete(self._key(provider, "open_until"), self._key(provider, "failures"), self._key(provider, "trial"))

    def record_failure(self, provider: str) -> None:
        _clean_until.pop(provider, None)
        key = self._key(provider, "failures")
        failures = self.redis.incr(key)
        self.redis.expire(key, self.policy.breaker_window_seconds)
        if failures >= self.policy.breaker_failures or self.state(provider) == "half_open":
            self.redis.set(self._key(provider, "open_until"), str(time.time() + self.policy.breaker_open_seconds))
            self.redis.delete(key, self._key(provider, "trial"))


def tokens_of(usage) -> Tokens:
    """pydantic-ai's usage of one response, split."""
    details = getattr(usage, "details", None) or {}
    return Tokens(input=usage.input_tokens or 0, cache_read=getattr(usage, "cache_read_tokens", 0) or 0,
                  cache_write=getattr(usage, "cache_write_tokens", 0) or 0, output=usage.output_tokens or 0,
                  reasoning=(getattr(usage, "output_reasoning_tokens", 0) or details.get("reasoning_tokens", 0) or 0))


def _transient(exc: Exception) -> bool:
    if isinstance(exc, ModelHTTPError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, (ModelConnectionError, ModelRequestTimeout, ModelRateLimitError, ModelServerError,
                            ModelUnavailableError, asyncio.TimeoutError, TimeoutError))


_models_lock = threading.Lock()


def _model(name: str):
    """The model for ``name`` on the loop this thread's requests run on (console.aio.run_here), made
    again when the provider settings change. Its HTTP client belongs to that loop, so the provider
    connection stays alive between calls."""
    from django.conf import settings

    key = (os.getpid(), name, settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY, settings.ANTHROPIC_API_KEY)
    models = aio.bound_here()
    with _models_lock:  # the background loop's models are shared by every thread that runs a loop
        if key not in models:
            models[key] = resolve_model(name)
        return models[key]


async def _request(model, messages: list[ModelMessage], parameters: ModelRequestParameters, timeout: float) -> ModelResponse:
    # max_retries=0: the SDK's own silent retries would multiply ours and hide attempts from the record and the breaker.
    return await asyncio.wait_for(model_request(model, messages, model_settings={"max_retries": 0},
                                                model_request_parameters=parameters), timeout=timeout)


def _attempt(model, messages: list[ModelMessage], parameters: ModelRequestParameters, timeout: float, *,
             provider: str, model_name: str) -> tuple[ModelResponse, Tokens, Decimal, dict]:
    """One attempt at one model, in its own GenAI span (with its usage and its price at call time).
    Returns the response, its tokens, its cost and the price used."""
    with model_call_span(provider=provider, model=model_name) as span:
        try:
            response = aio.run_here(_request(model, messages, parameters, timeout))
        except Exception as exc:
            span_failed(span, type(exc).__name__, str(exc))
            raise
        tokens, answered_by = tokens_of(response.usage), response.model_name or model_name
        cost, price_used = price(provider, answered_by, tokens)
        model_call_finished(span, response_model=answered_by, input_tokens=tokens.input, output_tokens=tokens.output,
                            cached_tokens=tokens.cache_read, cache_write_tokens=tokens.cache_write,
                            reasoning_tokens=tokens.reasoning, cost_usd=float(cost),
                            finish=str(getattr(response, "finish_reason", None) or "stop"))
        return response, tokens, cost, price_used


def complete(*, models: list[str], tools: list[Tool], plan_mode: bool, messages: list[ModelMessage] | None = None,
             instructions: str = "", conversation: list[dict] | None = None,
             breaker: Breaker | None = None, policy: GatewayPolicy | None = None) -> GatewayResult:
    """``messages``: the model's messages as built by the step; or ``instructions`` and a stored
    ``conversation`` to build them from."""
    policy = policy or GatewayPolicy()
    attempts: list[Attempt] = []
    parameters = ModelRequestParameters(function_tools=tool_definitions(tools, plan_mode=plan_mode), allow_text_output=True)
    last_error = ""
    conversation_messages = messages if messages is not None else to_messages(instructions, conversation or [])
    for name in models:
        provider, _, model_name = name.partition(":")
        if breaker and not breaker.allows(provider):
            attempts.append(Attempt(provider, model_name, "skipped", f"circuit open for {provider}"))
            last_error = f"circuit open for {provider}"
            continue
        try:
            model = _model(name)
        except Exception as exc:
            attempts.append(Attempt(provider, model_name, "error", f"cannot use model: {exc}"[:500]))
            last_error = str(exc)
            continue
        messages = conversation_messages  # each model starts from the conversation; repairs extend a copy
        repairs = 0
        for attempt_number in range(1, policy.max_attempts_per_model + policy.repair_attempts + 1):
            started = time.perf_counter()
            try:
                response, tokens, cost, price_used = _attempt(model, messages, parameters, policy.timeout_seconds,
                                                              provider=provider, model_name=model_name)
            except Exception as exc:
                latency = int((time.perf_counter() - started) * 1000)
                transient = _transient(exc)
                message = f"{type(exc).__name__}: {exc}"[:500]
                attempts.append(Attempt(provider, model_name, "error", message, latency))
                last_error = message
                if breaker and (transient or isinstance(exc, UnexpectedModelBehavior)):
                    breaker.record_failure(provider)
                if not transient or attempt_number >= policy.max_attempts_per_model:
                    break
                if breaker and breaker.state(provider) == "open":
                    break  # this failure opened the circuit (or re-opened it after the half-open trial)
                delay = min(policy.backoff_max_seconds, policy.backoff_base_seconds * 2 ** (attempt_number - 1))
                time.sleep(delay * random.uniform(0.5, 1.0))  # jitter: workers do not retry in lockstep
                continue
            latency = int((time.perf_counter() - started) * 1000)
            record = Attempt(provider, response.model_name or model_name, "ok", "", latency, tokens.input,
                             tokens.output, tokens.cache_read, cost, price_used, tokens.cache_write, tokens.reasoning)
            attempts.append(record)
            if breaker:
                breaker.record_success(provider)
            try:
                return GatewayResult(reply=to_reply(response), attempts=attempts)
            except ValueError as exc:
                # Malformed output: tell the model what was wrong and ask again (bounded).
                record.status, record.error = "invalid", str(exc)
                last_error = str(exc)
                repairs += 1
                if repairs > policy.repair_attempts:
                    break
                # Each of its tool calls gets the feedback as its result: chat APIs reject a call left unanswered.
                feedback = f"Your last reply was not usable: {exc}. Reply again with valid JSON arguments."
                messages = [*messages, response, ModelRequest(parts=[
                    ToolReturnPart(tool_name=part.tool_name, content=feedback, tool_call_id=part.tool_call_id,
                                   outcome="retried")
                    for part in response.parts if isinstance(part, ToolCallPart)])]
    return GatewayResult(reply=None, attempts=attempts, error=last_error or "no model available")
