"""The model gateway against a model provider faked at its HTTP boundary.

A real local HTTP server speaks the OpenAI chat-completions API; the gateway reaches
it through the real `openai-compatible:<model>` path (pydantic-ai, the openai SDK,
HTTP/1.1 keep-alive). Each test scripts the server's answers and checks what a user
would see: the reply, the recorded attempts, and the requests the provider got.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents import gateway
from agents.gateway import Breaker, GatewayPolicy, complete
from agents.tools import REGISTRY
from console.health import redis_client
from tests.conftest import wait_for

MODEL = "openai-compatible:fake-model"
GOAL = [{"role": "user", "text": "Prepare the renewal plan for ACME-042"}]


@dataclass
class Canned:
    """One scripted answer: HTTP status, JSON body, seconds to wait before answering."""

    status: int = 200
    body: dict | None = None
    delay: float = 0.0


def error_body(message: str, kind: str = "server_error") -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def completion(*, text: str | None = None, tool_calls: list[tuple[str, str]] = (), prompt_tokens: int = 11,
               completion_tokens: int = 5) -> dict:
    """A chat.completion body; tool_calls are (name, arguments exactly as the model wrote them)."""
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
             for i, (name, arguments) in enumerate(tool_calls, 1)]
    message = {"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def unanswered_tool_calls(body: dict) -> list[str]:
    """The request rule of the real API the repair loop depends on: every tool call of an
    assistant message is answered by a `tool` message right after it."""
    messages, missing = body.get("messages") or [], []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant" or not message.get("tool_calls"):
            continue
        answered = set()
        for later in messages[index + 1:]:
            if later.get("role") != "tool":
                break
            answered.add(later.get("tool_call_id"))
        missing += [call["id"] for call in message["tool_calls"] if call["id"] not in answered]
    return missing


class FakeProvider:
    """Answers each request with the next Canned reply (then `otherwise`, if set) and records it."""

    def __init__(self):
        self.script: deque[Canned] = deque()
        self.otherwise: Canned | None = None
        self.requests: list[dict] = []  # {"path", "authorization", "body"}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def queue(self, *replies: Canned) -> None:
        self.script.extend(replies)

    @property
    def bodies(self) -> list[dict]:
        return [request["body"] for request in self.requests]

    def _next(self, body: dict) -> Canned:
        if missing := unanswered_tool_calls(body):
            return Canned(400, error_body("An assistant message with 'tool_calls' must be followed by tool messages "
                                          "responding to each 'tool_call_id'. The following tool_call_ids did not "
                                          f"have response messages: {', '.join(missing)}", "invalid_request_error"))
        if self.script:
            return self.script.popleft()
        return self.otherwise or Canned(500, error_body("the test's script has no reply left"))

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real providers do

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with fake.lock:
                    fake.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                          "body": body, "peer": self.client_address})
                    canned = fake._next(body)
                if canned.delay and fake.stopping.wait(canned.delay):
                    return
                payload = json.dumps(canned.body or {}).encode()
                try:
                    self.send_response(canned.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client stopped waiting (the timeout test)
                    pass

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def provider(settings):
    """The fake provider, running, with the gateway's openai-compatible settings pointed at it."""
    fake = FakeProvider()
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = fake.url, "test-key"
    yield fake
    fake.stopping.set()
    fake.server.shutdown()
    fake.server.server_close()
    thread.join(5)


@pytest.fixture
def breaker_keys():
    """Real Redis, with the openai-compatible breaker state cleared before and after the test."""
    client = redis_client()

    def clear():
        for key in client.scan_iter("proctor:breaker:openai-compatible:*"):
            client.delete(key)
        gateway._clean_until.clear()  # what this process last saw

    clear()
    yield client
    clear()


def fast(**overrides) -> GatewayPolicy:
    return GatewayPolicy(**{"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05, **overrides})


def ask(models=(MODEL,), *, policy=None, breaker=None, tools=("crm.get_account",)):
    return complete(models=list(models), instructions="You help with renewals.", conversation=GOAL,
                    tools=[REGISTRY[name] for name in tools], plan_mode=False, breaker=breaker,
                    policy=policy or fast())


def statuses(result) -> list[tuple[str, str]]:
    return [(attempt.provider, attempt.status) for attempt in result.attempts]


# --- Replies ---------------------------------------------------------------------------------


def test_a_threads_calls_keep_one_connection_and_another_thread_opens_its_own(provider):
    """Model calls run on the calling thread's own loop, with a client of that loop's: a worker's next
    call reuses its kept-alive connection; a call from code that runs a loop already still gets its reply."""
    provider.otherwise = Canned(body=completion(text="Done."))
    assert ask().reply.text == ask().reply.text == "Done."
    first, second = (request["peer"] for request in provider.requests)
    assert first == second

    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(ask().reply.text))
    thread.start()
    thread.join(10)
    assert elsewhere == ["Done."] and provider.requests[-1]["peer"] != first

    async def from_async_code():
        return ask().reply.text

    assert asyncio.run(from_async_code()) == "Done."
    assert len(provider.requests) == 4


def test_tool_call_reply_carries_tool_arguments_reason_and_token_usage(provider):
    provider.queue(Canned(200, completion(
        text="Reading the account first.", prompt_tokens=42, completion_tokens=7,
        tool_calls=[("crm.get_account", '{"key": "ACME-042", "_reason": "need the renewal date"}')])))

    result = ask()

    assert result.error == ""
    assert result.reply.text == "Reading the account first."
    [call] = result.reply.tool_calls
    assert (call.call_id, call.tool, call.arguments, call.reason) == (
        "call_1", "crm.get_account", {"key": "ACME-042"}, "need the renewal date")
    [attempt] = result.attempts
    assert (attempt.provider, attempt.model, attempt.status) == ("openai-compatible", "fake-model", "ok")
    assert (attempt.input_tokens, attempt.output_tokens) == (42, 7)
    assert (result.reply.input_tokens, result.reply.output_tokens) == (42, 7)

    [request] = provider.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == "Bearer test-key"
    body = request["body"]
    assert body["model"] == "fake-model"
    assert body["messages"] == [{"role": "system", "content": "You help with renewals."},
                                {"role": "user", "content": GOAL[0]["text"]}]
    [offered] = body["tools"]
    assert offered["function"]["name"] == "crm.get_account"
    assert offered["function"]["parameters"]["required"] == ["key"]


# --- Transient failures and retries ----------------------------------------------------------


def test_slow_provider_times_out_and_the_retry_gets_the_reply(provider):
    provider.queue(Canned(200, completion(text="too late"), delay=5), Canned(200, completion(text="on time")))

    result = ask(policy=fast(timeout_seconds=0.5))

    assert result.reply.text == "on time"
    assert [a.status for a in result.attempts] == ["error", "ok"]
    assert "TimeoutError" in result.attempts[0].error
    assert result.attempts[0].latency_ms < 4000  # gave up on the slow answer instead of waiting for it
    assert len(provider.requests) == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_http_error_is_retried_and_recorded(provider, status):
    """Each try is one recorded attempt: the SDK's own silent retries are off, the gateway's policy rules."""
    provider.queue(Canned(status, error_body("try again later")), Canned(200, completion(text="recovered")))

    result = ask()

    assert result.reply.text == "recovered"
    assert [a.status for a in result.attempts] == ["error", "ok"]
    assert str(status) in result.attempts[0].error
    assert len(provider.requests) == 2


def test_transient_errors_stop_after_max_attempts_per_model(provider):
    provider.otherwise = Canned(500, error_body("down"))

    result = ask(policy=fast(max_attempts_per_model=3))

    assert result.reply is None
    assert [a.status for a in result.attempts] == ["error"] * 3
    assert "500" in result.error
    assert len(provider.requests) == 3


def test_rejected_request_is_not_retried(provider):
    provider.queue(Canned(400, error_body("unsupported parameter", "invalid_request_error")),
                   Canned(200, completion(text="never asked for")))

    result = ask()

    assert result.reply is None
    assert [a.status for a in result.attempts] == ["error"]
    assert "400" in result.error and "unsupported parameter" in result.error
    assert len(provider.requests) == 1


# --- Malformed output and repair -------------------------------------------------------------


def test_malformed_tool_arguments_are_repaired_by_asking_the_model_again(provider):
    provider.queue(Canned(200, completion(tool_calls=[("crm.get_account", '{"key": "ACME-042"')])),
                   Canned(200, completion(tool_calls=[("crm.get_account", '{"key": "ACME-042"}')])))

    result = ask()

    assert [a.status for a in result.attempts] == ["invalid", "ok"]
    assert "not valid JSON" in result.attempts[0].error
    assert [(c.tool, c.arguments) for c in result.reply.tool_calls] == [("crm.get_account", {"key": "ACME-042"})]
    # The repair request answers the bad call with what was wrong, so the model (and the API) can use it.
    assert len(provider.requests) == 2
    repair = provider.bodies[1]["messages"]
    assert [m["role"] for m in repair[:3]] == ["system", "user", "assistant"]
    feedback = [m for m in repair[3:] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in feedback] == ["call_1"]
    assert "Your last reply was not usable" in feedback[0]["content"]
    assert "not valid JSON" in feedback[0]["content"]


def test_always_malformed_output_gives_up_after_the_repair_budget(provider):
    provider.otherwise = Canned(200, completion(tool_calls=[("crm.get_account", "{key: ACME-042}")]))

    result = ask(policy=fast(repair_attempts=2))

    assert result.reply is None
    assert [a.status for a in result.attempts] == ["invalid"] * 3
    assert "crm.get_account: arguments are not valid JSON" in result.error
    assert len(provider.requests) == 3
    assert all(not unanswered_tool_calls(body) for body in provider.bodies)


# --- Fallback ------------------------------------------------------------------------------------


def test_fallback_model_answers_when_the_provider_keeps_failing(provider):
    provider.otherwise = Canned(500, error_body("down"))

    result = ask(models=["openai-compatible:broken", "demo:planner"], policy=fast(max_attempts_per_model=2))

    assert statuses(result) == [("openai-compatible", "error"), ("openai-compatible", "error"), ("demo", "ok")]
    assert [(c.tool, c.arguments) for c in result.reply.tool_calls] == [("crm.get_account", {"key": "ACME-042"})]
    assert result.error == ""
    assert [body["model"] for body in provider.bodies] == ["broken", "broken"]


def test_rejected_request_falls_to_the_next_model_at_once(provider):
    provider.otherwise = Canned(400, error_body("bad request", "invalid_request_error"))

    result = ask(models=[MODEL, "demo:planner"])

    assert statuses(result) == [("openai-compatible", "error"), ("demo", "ok")]
    assert result.reply.tool_calls[0].tool == "crm.get_account"
    assert len(provider.requests) == 1


# --- Circuit breaker (real Redis) ----------------------------------------------------------------


def open_breaker(provider, breaker: Breaker) -> None:
    """Two failing requests: with breaker_failures=2 the circuit opens."""
    provider.queue(Canned(500, error_body("down")), Canned(500, error_body("down")))
    result = ask(breaker=breaker, policy=breaker.policy)
    assert [a.status for a in result.attempts] == ["error", "error"]
    assert breaker.state("openai-compatible") == "open"


def test_open_breaker_skips_the_provider_without_a_request(provider, breaker_keys):
    breaker = Breaker(breaker_keys, fast(breaker_failures=2, max_attempts_per_model=3, breaker_open_seconds=30))
    open_breaker(provider, breaker)
    assert len(provider.requests) == 2  # the failure that opened the circuit was not retried

    result = ask(models=[MODEL, "demo:planner"], breaker=breaker, policy=breaker.policy)

    assert statuses(result) == [("openai-compatible", "skipped"), ("demo", "ok")]
    assert result.attempts[0].error == "circuit open for openai-compatible"
    assert len(provider.requests) == 2

    alone = ask(breaker=breaker, policy=breaker.policy)
    assert alone.reply is None and alone.error == "circuit open for openai-compatible"
    assert len(provider.requests) == 2


def test_half_open_breaker_lets_one_trial_through_and_its_success_closes_it(provider, breaker_keys):
    # A 2 s cool-down: the trial lock lives as long, longer than the slow trial below.
    breaker = Breaker(breaker_keys, fast(breaker_failures=2, breaker_open_seconds=2))
    open_breaker(provider, breaker)
    wait_for(lambda: breaker.state("openai-compatible") == "half_open", 10, 0.05, "the cool-down")

    provider.queue(Canned(200, completion(text="back"), delay=1.0))
    trial: dict = {}
    caller = threading.Thread(target=lambda: trial.update(result=ask(breaker=breaker, policy=breaker.policy)))
    caller.start()
    wait_for(lambda: len(provider.requests) == 3, 10, 0.01, "the trial request")

    during = ask(breaker=breaker, policy=breaker.policy)  # a second caller while the trial is in flight
    caller.join(10)

    assert statuses(during) == [("openai-compatible", "skipped")]
    assert trial["result"].reply.text == "back"
    assert breaker.state("openai-compatible") == "closed"
    assert len(provider.requests) == 3

    provider.queue(Canned(200, completion(text="closed again")))
    assert ask(breaker=breaker, policy=breaker.policy).reply.text == "closed again"
    assert len(provider.requests) == 4


def test_failed_trial_reopens_the_breaker(provider, breaker_keys):
    breaker = Breaker(breaker_keys, fast(breaker_failures=2, max_attempts_per_model=3, breaker_open_seconds=1))
    open_breaker(provider, breaker)
    wait_for(lambda: breaker.state("openai-compatible") == "half_open", 10, 0.05, "the cool-down")
    provider.otherwise = Canned(503, error_body("still down"))

    trial = ask(breaker=breaker, policy=breaker.policy)

    assert [a.status for a in trial.attempts] == ["error"]  # one trial request, not max_attempts_per_model
    assert len(provider.requests) == 3
    assert breaker.state("openai-compatible") == "open"
    assert [a.status for a in ask(breaker=breaker, policy=breaker.policy).attempts] == ["skipped"]
    assert len(provider.requests) == 3


def test_a_circuit_another_process_opens_is_seen_here_within_a_second(breaker_keys, monkeypatch):
    """A healthy provider costs no shared read per call; another process's open circuit still stops
    this one's calls once the short freshness window is over."""
    import time

    monkeypatch.setattr(gateway, "BREAKER_FRESH_SECONDS", 0.3)
    breaker = Breaker(breaker_keys, fast(breaker_open_seconds=30))
    assert breaker.allows("openai-compatible")
    breaker_keys.set("proctor:breaker:openai-compatible:open_until", str(time.time() + 30))  # another worker
    assert breaker.allows("openai-compatible")  # within the window: not read again
    time.sleep(0.35)
    assert not breaker.allows("openai-compatible")
