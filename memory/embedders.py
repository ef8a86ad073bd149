"""Embedders: text → unit vectors of DIMENSIONS floats, behind one small interface.

- ``wordllama`` (the default, offline): WordLlama's 256-dimension weights and its tokenizer file,
  both shipped in its wheel. ``WordLlama.load()`` looks for the tokenizer under a folder name the
  wheel does not have and then downloads it, so the inference object is built here from the two
  shipped files directly; nothing touches the network (tests/memory/test_embedders.py blocks sockets).
- ``openai-compatible:<model>``: POST {MEMORY_EMBEDDINGS_URL}/embeddings asking for 256 dimensions,
  used when MEMORY_EMBEDDINGS_URL is set.

Each record keeps the name of the embedder that made its vector (``MemoryRecord.embedder``);
``manage.py memory_reembed`` embeds again whatever another embedder made.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Protocol

import httpx
from django.conf import settings

from memory.models import DIMENSIONS


class EmbedderError(Exception):
    """The embedder could not embed (an endpoint down, a wrong answer): said in words."""


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def _unit(vector) -> list[float]:
    values = [float(v) for v in vector]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class WordLlamaEmbedder:
    name = "wordllama:l2_supercat_256"

    def __init__(self):
        import wordllama
        from safetensors import safe_open
        from tokenizers import Tokenizer
        from wordllama.inference import WordLlamaInference

        root = Path(wordllama.__file__).parent
        tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
        with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np", device="cpu") as weights:
            embedding = weights.get_tensor("embedding.weight")
        if embedding.shape[1] != DIMENSIONS:
            raise EmbedderError(f"WordLlama's shipped weights have {embedding.shape[1]} dimensions, not {DIMENSIONS}.")
        self._model = WordLlamaInference(embedding, tokenizer)

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return [_unit(row) for row in self._model.embed(list(texts), norm=True)]


class OpenAICompatibleEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint, asked for DIMENSIONS dimensions."""

    def __init__(self, *, url: str, model: str, api_key: str = "", timeout: float = 20.0):
        self.url, self.model, self.api_key, self.timeout = url.rstrip("/"), model, api_key, timeout
        self.name = f"openai-compatible:{model}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(f"{self.url}/embeddings", headers=headers, timeout=self.timeout,
                                  json={"model": self.model, "input": list(texts), "dimensions": DIMENSIONS,
                                        "encoding_format": "float"})
        except httpx.HTTPError as exc:
            raise EmbedderError(f"The embeddings endpoint could not be reached ({type(exc).__name__}).") from exc
        if response.status_code != 200:
            raise EmbedderError(f"The embeddings endpoint answered {response.status_code}.")
        try:
            rows = sorted(response.json()["data"], key=lambda row: row["index"])
            vectors = [row["embedding"] for row in rows]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbedderError("The embeddings endpoint's answer is not an embeddings list.") from exc
        if len(vectors) != len(texts) or any(len(v) != DIMENSIONS for v in vectors):
            raise EmbedderError(f"The embeddings endpoint did not return {len(texts)} vectors of {DIMENSIONS} dimensions.")
        return [_unit(v) for v in vectors]


@cache
def _wordllama() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()  # ~0.2 s and 32 MB once per process


def current_embedder() -> Embedder:
    if settings.MEMORY_EMBEDDINGS_URL:
        return OpenAICompatibleEmbedder(url=settings.MEMORY_EMBEDDINGS_URL, model=settings.MEMORY_EMBEDDINGS_MODEL,
                                        api_key=settings.MEMORY_EMBEDDINGS_API_KEY)
    return _wordllama()


def embed_one(text: str, embedder: Embedder | None = None) -> tuple[list[float], str]:
    embedder = embedder or current_embedder()
    return embedder.embed([text])[0], embedder.name


def cosine(a, b) -> float:
    """Of two unit vectors."""
    return float(sum(x * y for x, y in zip(a, b)))
