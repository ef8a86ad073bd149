"""The embedders: offline WordLlama from the files its wheel ships (no network), and an OpenAI-compatible
endpoint at the HTTP boundary."""

import json
import socket
import subprocess
import sys

import httpx
import pytest

from memory.embedders import EmbedderError, OpenAICompatibleEmbedder, WordLlamaEmbedder, cosine
from memory.models import DIMENSIONS


def test_wordllama_loads_and_embeds_with_every_socket_blocked():
    """In a fresh process (nothing cached) with socket connects refused: a download attempt would fail."""
    code = """
import socket
def refuse(*a, **k): raise OSError("network touched")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
import django
django.setup()
from memory.embedders import WordLlamaEmbedder
vectors = WordLlamaEmbedder().embed(["Max prefers a short bullet summary", "Max likes bullet summaries"])
print(len(vectors[0]), round(sum(a * b for a, b in zip(*vectors)), 3))
"""
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "0", "DJANGO_SETTINGS_MODULE": "console.settings"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                         cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.returncode == 0, out.stderr
    dims, similarity = out.stdout.split()
    assert int(dims) == DIMENSIONS
    assert float(similarity) > 0.6


def test_wordllama_vectors_are_unit_and_meaningful():
    embedder = WordLlamaEmbedder()
    a, b, c = embedder.embed(["The champion at ACME-042 is Dana (VP Ops)", "Champion for ACME-042: Dana, VP Ops",
                              "Invoices go out on the first of the month"])
    assert abs(cosine(a, a) - 1) < 1e-5
    assert cosine(a, b) > cosine(a, c) + 0.3


def _server(handler):
    return httpx.MockTransport(handler)


def test_openai_compatible_endpoint_is_asked_for_256_dimensions(monkeypatch):
    seen = {}

    def handler(request: httpx.Request):
        seen["url"], seen["auth"] = str(request.url), request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json={"data": [{"index": i, "embedding": [1.0] + [0.0] * (DIMENSIONS - 1)}
                                                  for i, _ in enumerate(seen["body"]["input"])]})

    real_post = httpx.post
    monkeypatch.setattr(httpx, "post", lambda url, **kw: httpx.Client(transport=_server(handler)).post(url, **kw))
    embedder = OpenAICompatibleEmbedder(url="https://embeddings.example/v1/", model="text-embedding-3-small", api_key="k")
    vectors = embedder.embed(["one", "two"])
    assert seen["url"] == "https://embeddings.example/v1/embeddings"
    assert seen["auth"] == "Bearer k"
    assert seen["body"]["dimensions"] == DIMENSIONS and seen["body"]["input"] == ["one", "two"]
    assert len(vectors) == 2 and vectors[0][0] == 1.0
    assert embedder.name == "openai-compatible:text-embedding-3-small"
    assert real_post is not httpx.post


@pytest.mark.parametrize("response", [httpx.Response(500, text="boom"), httpx.Response(200, json={"nope": 1}),
                                      httpx.Response(200, json={"data": [{"index": 0, "embedding": [0.1, 0.2]}]})])
def test_a_bad_endpoint_answer_is_an_error_in_words(monkeypatch, response):
    monkeypatch.setattr(httpx, "post", lambda url, **kw: httpx.Client(transport=_server(lambda r: response)).post(url, **kw))
    with pytest.raises(EmbedderError):
        OpenAICompatibleEmbedder(url="https://embeddings.example/v1", model="m").embed(["one"])


def test_the_reembed_command_embeds_what_another_embedder_made(cast):
    from io import StringIO

    from django.core.management import call_command

    from memory.models import MemoryRecord
    from memory.services import memory_create

    kept = memory_create(tenant=cast.acme, actor=None, scope="tenant", type="fact", content="Quotes go out early.")
    stale = memory_create(tenant=cast.acme, actor=None, scope="tenant", type="fact", content="Invoices go out monthly.")
    MemoryRecord.objects.filter(pk=stale.pk).update(embedder="openai-compatible:old", embedding=[0.0] * 255 + [1.0])
    out = StringIO()
    call_command("memory_reembed", stdout=out)
    assert "re-embedded 1 memories with wordllama" in out.getvalue()
    stale.refresh_from_db()
    assert stale.embedder == kept.embedder and abs(cosine(stale.embedding, WordLlamaEmbedder().embed(
        ["Invoices go out monthly."])[0]) - 1) < 1e-4
