"""The pipeline's offline rules on the labelled set (tests/memory/labelled_pairs.py): precision and recall
of merge and supersede, printed, and held to the targets (precision ≥ 0.9 on each)."""

from memory import rules
from memory.embedders import WordLlamaEmbedder
from tests.memory.labelled_pairs import HELD_OUT, PAIRS


def _verdicts(pairs=PAIRS):
    embedder = WordLlamaEmbedder()
    out = []
    for old_subject, old, new_subject, new, expected in pairs:
        old_vector, new_vector = embedder.embed([old, new])
        verdict = rules.classify(subject=new_subject, content=new, embedding=new_vector,
                                 candidates=[rules.Candidate(1, old_subject, old, old_vector)])
        out.append((expected, verdict.action, new))
    return out


def test_the_labelled_set_is_big_enough_and_balanced():
    kinds = [pair[-1] for pair in PAIRS]
    assert len(PAIRS) >= 40
    assert {kind: kinds.count(kind) >= 10 for kind in ("merge", "supersede", "add")} == \
        {"merge": True, "supersede": True, "add": True}


def _report(verdicts) -> dict[str, tuple[float, float]]:
    report = {}
    for kind in ("merge", "supersede", "add"):
        said = [v for v in verdicts if v[1] == kind]
        truly = [v for v in verdicts if v[0] == kind]
        right = [v for v in said if v[0] == kind]
        report[kind] = (len(right) / len(said) if said else 1.0, len(right) / len(truly) if truly else 1.0)
    return report


def _summary(verdicts, report) -> str:
    asked = sum(1 for v in verdicts if v[1] == "ask")
    return "; ".join(f"{kind} precision {p:.2f} recall {r:.2f}" for kind, (p, r) in report.items()) + \
        f"; left to a person: {asked}"


def test_precision_on_merge_and_supersede_meets_the_target(capsys):
    verdicts = _verdicts()
    report = _report(verdicts)
    wrong = [(expected, got, text) for expected, got, text in verdicts if expected != got]
    with capsys.disabled():
        print(f"\nlabelled pairs: {len(verdicts)}; " + _summary(verdicts, report))
        for item in wrong:
            print("  wrong:", item)
    assert report["merge"][0] >= 0.9
    assert report["supersede"][0] >= 0.9


def test_the_rules_never_take_a_rewording_or_an_addition_for_a_replacement():
    """Superseding takes a memory out of use with no one asked: on both sets, never a pair that is not a change
    (the precision floors above would let one through)."""
    replaced = [(expected, text) for pairs in (PAIRS, HELD_OUT) for expected, got, text in _verdicts(pairs)
                if got == "supersede" and expected != "supersede"]
    assert replaced == []


def test_precision_on_pairs_written_independently_of_the_rules(capsys):
    """The held-out pairs (paraphrases, reworded facts), printed for the issue's note. Word embeddings cannot
    tell a paraphrase on the same subject from a changed fact, so the offline rules supersede only on a visible
    sign of change and leave the rest to a person ("ask"): what they do on their own stays right, and a
    paraphrase waits for a confirmation instead of replacing the memory it repeats. Merging paraphrases is what
    a model-based classifier adds."""
    verdicts = _verdicts(HELD_OUT)
    report = _report(verdicts)
    with capsys.disabled():
        print(f"\nheld-out pairs: {len(verdicts)}; " + _summary(verdicts, report))
        for expected, got, text in verdicts:
            if expected != got:
                print("  wrong:", (expected, got, text))
    assert len(HELD_OUT) >= 30
    # Measured 2026-11-28: merge precision 1.00 (recall 0.00), supersede 1.00 (recall 0.60), add 0.71; 10 asked.
    assert report["merge"][0] >= 0.9  # never merges two different memories, even when it misses paraphrases
    assert report["supersede"][0] >= 0.9  # never replaces a memory by one saying the same in other words
