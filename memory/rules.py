"""The write pipeline's rules, pure (no database): is a proposal acceptable, what is it about, and is it
the same as, or a contradiction of, a record already there.

- **Merge**: the same topic and the same meaning: near-identical embeddings (cosine ≥ MERGE_COSINE),
  or the same words once case, punctuation and stop words are set aside; never when the numbers, dates
  or keys in them differ.
- **Supersede**: the same topic (scope, owner, type and subject), not the same meaning, and a sign that
  the fact changed: its numbers, dates or keys differ (not merely written another way: 9:00 and 9); it
  says so ("now", "no longer", "left", "moved", "instead", ...); or it gives the same head, the topic,
  another value ("The champion at ACME-042 is Lee" after "... is Dana"). The new content replaces the old record,
  which stays, marked superseded and linked.
- **Ask**: the same topic, not the same words, and none of those signs: a paraphrase and a changed fact
  look alike to word embeddings ("Sam writes in French" after "... in German"; "Rita would rather meet
  before noon" after "Rita prefers mornings"). The rules do not guess: the new record waits for a person,
  who confirms it (it replaces the old one) or refuses it (the old one stays).
- Anything else is a new record.

The topic is the proposal's ``subject`` when given, otherwise the content's head: the words before
its first ":" or before its first " is " / " are " ("The champion of ACME-042 is Dana" is about
"champion of acme-042"). A content with neither has no topic and only merges, never supersedes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MERGE_COSINE = 0.9
MIN_CHARS = 3

SECRET_PATTERNS = [
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"), "an API key"),
    (re.compile(r"\bprt_[A-Za-z0-9_-]{16,}"), "a Proctor API token"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "an AWS access key"),
    (re.compile(r"\b(?:ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "a signed token (JWT)"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b(?:password|passwd|passphrase|pwd|secret|api[ _-]?key|access[ _-]?token)\b\s*(?:is|=|:)\s*\S+",
                re.IGNORECASE), "a password or secret"),
    (re.compile(r"\b(?:\d[ -]?){13,16}\b"), "a card number"),
]

STOP_WORDS = frozenset("a an the of to for in on at by with and or is are was were be it its this that their his her "
                       "our my your as from into about".split())
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_HEAD = re.compile(r"^(.{2,120}?)(?::|\s+(?:is|are|was|were)\s+)", re.IGNORECASE)
# Words that say a fact changed. Not "no", "not", "only", "until" or "longer" alone: a rewording says them as
# often ("no more than a page", "German only", "not in the afternoon"); "no longer" but not "no longer than";
# "new" but not as a name's first word ("New Zealand").
CHANGE_WORDS = frozenset("now anymore instead new left moved changed switched replaced stopped".split())
_NEW = re.compile(r"\b(?i:new)\b(?!\s+[A-Z])")
_NO_LONGER = re.compile(r"\bno longer\b(?!\s+than\b)", re.IGNORECASE)


class Refused(Exception):
    """A proposal or an edit the pipeline refuses; the message says why, in words."""


def secret_in(text: str) -> str | None:
    """What kind of secret the text holds, if any."""
    for pattern, kind in SECRET_PATTERNS:
        if pattern.search(text):
            return kind
    return None


def clean_content(content: str, *, max_chars: int) -> str:
    """The content as stored, or Refused: empty, too short, too long, or holding a secret."""
    text = " ".join((content or "").split())
    if not text:
        raise Refused("The memory is empty.")
    if len(text) < MIN_CHARS:
        raise Refused(f"The memory is {len(text)} characters; say at least {MIN_CHARS}.")
    if len(text) > max_chars:
        raise Refused(f"The memory is {len(text)} characters; the limit is {max_chars}.")
    if kind := secret_in(text):
        raise Refused(f"The memory looks like it holds {kind}; secrets are never remembered.")
    return text


def words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)


def topic(subject: str, content: str) -> str:
    """What a record is about, normalized ("" when neither the subject nor the content says)."""
    source = subject.strip()
    if not source:
        match = _HEAD.match(content.strip())
        source = match.group(1) if match else ""
    return " ".join(sorted(words(source)))


@dataclass(frozen=True)
class Candidate:
    id: int
    subject: str
    content: str
    embedding: list[float] | None
    waiting: bool = False  # proposed, waiting for a person: the same again merges into it, nothing replaces it


@dataclass(frozen=True)
class Verdict:
    action: str  # "add", "merge", "supersede", "ask" (may supersede record_id; a person decides)
    record_id: int | None = None
    similarity: float = 0.0


def figures(text: str) -> frozenset[str]:
    """The words with a digit in them: numbers, dates, amounts, keys (ACME-042)."""
    return frozenset(w for w in words(text) if any(ch.isdigit() for ch in w))


def same_meaning(a_content: str, b_content: str, similarity: float) -> bool:
    """Near-identical meaning, or the same words; never when their numbers, dates or keys differ (embeddings
    barely tell 15% from 20%)."""
    if figures(a_content) != figures(b_content):
        return False
    return similarity >= MERGE_COSINE or words(a_content) == words(b_content)


def classify(*, subject: str, content: str, embedding: list[float], candidates: list[Candidate]) -> Verdict:
    """What to do with a proposal, given the live records of the same scope, owner and type."""
    from memory.embedders import cosine

    new_topic = topic(subject, content)
    scored = [(cosine(embedding, c.embedding) if c.embedding is not None else 0.0, c) for c in candidates]
    scored.sort(key=lambda pair: -pair[0])
    for similarity, candidate in scored:
        same_topic = bool(new_topic) and topic(candidate.subject, candidate.content) == new_topic
        if same_meaning(content, candidate.content, similarity) and (same_topic or not new_topic
                                                                     or not topic(candidate.subject, candidate.content)):
            return Verdict("merge", candidate.id, similarity)
    for similarity, candidate in scored:
        if new_topic and not candidate.waiting and topic(candidate.subject, candidate.content) == new_topic:
            changed = fact_changed(candidate.content, content, about=new_topic)
            return Verdict("supersede" if changed else "ask", candidate.id, similarity)
    return Verdict("add")


def head_and_value(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The words before a content's first ":" or " is " and the words after it (empty when it has neither)."""
    match = _HEAD.match(text.strip())
    if not match:
        return frozenset(), frozenset()
    return words(match.group(1)), words(text.strip()[match.end():])


# The same figure written another way is not a change: 100,000 and 100000; 9:00 and 9 (and $40.00 and $40);
# 9 am and 9am; v2.3 and version 2.3. Only for telling a change: a merge still needs the figures as written.
_SAME_FIGURE = ((re.compile(r"(?<=\d),(?=\d{3}\b)"), ""), (re.compile(r"(?<=\d)[:.]00\b"), ""),
                (re.compile(r"(?<=\d)\s+(am|pm)\b", re.IGNORECASE), r"\1"),
                (re.compile(r"\bv(?=\d)", re.IGNORECASE), ""))


def figures_as_meant(text: str) -> frozenset[str]:
    """The content's figures, each written one way."""
    for pattern, replacement in _SAME_FIGURE:
        text = pattern.sub(replacement, text)
    return figures(text)


def change_words(text: str) -> frozenset[str]:
    """The words of change a content says."""
    said = CHANGE_WORDS & words(text)
    if "new" in said and not _NEW.search(text):
        said -= {"new"}
    return said | {"no longer"} if _NO_LONGER.search(text) else said


def fact_changed(old: str, new: str, *, about: str) -> bool:
    """Whether a content on the topic ``about`` visibly says something else: other numbers, dates or keys (not
    the same ones written another way); words of change the old one did not have; or the same head, naming the
    topic, with a value sharing no word with the old value. A head that is not the topic ("Max is ..." on the
    subject "time zone") says what it is about, not which value the topic has: "Max is based in Berlin" after
    "Max is on Central European Time" is no sign of change."""
    if figures_as_meant(old) != figures_as_meant(new):
        return True
    if change_words(new) - change_words(old):
        return True
    old_head, old_value = head_and_value(old)
    new_head, new_value = head_and_value(new)
    return bool(old_head) and old_head == new_head and " ".join(sorted(new_head)) == about \
        and bool(old_value) and bool(new_value) and not (old_value & new_value)
