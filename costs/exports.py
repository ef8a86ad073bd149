"""The costs pages as CSV: each view's rows with a totals line equal to the page's (amounts at the
page's four decimals, rounded once), and the ledger itself with every snapshot column; sent by
console.exports.csv_response."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from costs.selectors import rounded

LEDGER_COLUMNS = ["id", "at", "kind", "status", "simulated", "priced", "amount_usd", "tenant_id", "user_id", "run_id",
                  "step", "attempt", "agent_id", "agent_version", "provider", "model", "tool", "input_tokens",
                  "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cache_savings_usd",
                  "price_source", "price_source_version", "rates", "tier", "price_version", "source_key", "price"]


def amount(value) -> str:
    return f"{rounded(value):.4f}"


def simulated_label(calls: int, simulated_calls: int) -> str:
    if not simulated_calls:
        return "no"
    return "simulated" if simulated_calls >= calls else "partly simulated"


def group_rows(board: dict, grouping_label: str) -> Iterator[list]:
    yield [grouping_label, "amount_usd", "share_percent", "calls", "unpriced_calls", "input_tokens", "output_tokens",
           "retry_amount_usd", "cache_savings_usd", "simulated"]
    for row in board["groups"]:
        yield [row["label"], amount(row["amount_usd"]), f"{row['share']:.1f}", row["calls"], row["unpriced_calls"],
               row["input_tokens"], row["output_tokens"], amount(row["retry_amount_usd"]),
               amount(row["cache_savings_usd"]), simulated_label(row["calls"], row["simulated_calls"])]
    totals = board["totals"]
    yield ["Total", amount(totals["amount_usd"]), "100.0" if board["groups"] else "0.0", totals["calls"],
           totals["unpriced_calls"], totals["input_tokens"], totals["output_tokens"],
           amount(totals["retry_amount_usd"]), amount(totals["cache_savings_usd"]),
           simulated_label(totals["calls"], totals["simulated_calls"])]


def series_rows(board: dict) -> Iterator[list]:
    chart = board["series"]
    labels = [dataset["label"] for dataset in chart["datasets"]]
    yield ["bucket", *labels, "total_usd"]
    for position, bucket in enumerate(chart["buckets"]):
        values = [dataset["values"][position] for dataset in chart["datasets"]]
        yield [bucket, *(f"{v:.4f}" for v in values), amount(sum(values))]
    yield ["Total", *(amount(dataset["total"]) for dataset in chart["datasets"]), amount(board["totals"]["amount_usd"])]


def run_rows(page: list[dict]) -> Iterator[list]:
    yield ["run", "agent", "status", "amount_usd", "input_tokens", "output_tokens"]
    for row in page:
        run = row["run"]
        yield [run.number if run else row["run_id"], run.agent.name if run else "", run.status if run else "",
               amount(row["amount_usd"]), row["input_tokens"], row["output_tokens"]]
    yield ["Total", "", "", amount(sum((r["amount_usd"] or 0) for r in page)), sum(r["input_tokens"] for r in page),
           sum(r["output_tokens"] for r in page)]


def ledger_rows(entries: Iterable) -> Iterator[list]:
    yield LEDGER_COLUMNS
    for entry in entries:
        yield [entry.id, entry.at.isoformat(), entry.kind, entry.status, "simulated" if entry.simulated else "no",
               "yes" if entry.priced else "unpriced", "" if entry.amount_usd is None else f"{entry.amount_usd:f}",
               entry.tenant_id, entry.user_id or "", entry.run_id or "", entry.step, entry.attempt, entry.agent_id or "",
               entry.agent_version, entry.provider, entry.model, entry.tool, entry.input_tokens,
               entry.cache_read_tokens, entry.cache_write_tokens, entry.output_tokens, entry.reasoning_tokens,
               f"{entry.cache_savings_usd:f}", entry.price_source, entry.price_source_version,
               json.dumps(entry.rates, sort_keys=True), entry.tier, entry.price_version, entry.source_key,
               json.dumps(entry.price, sort_keys=True)]


def diff_rows(diff: list[dict]) -> Iterator[list]:
    yield ["day", "model", "old_usd", "new_usd", "difference_usd"]
    for line in diff:
        yield [line["day"], line["model"], line["old_usd"], line["new_usd"], line["difference_usd"]]


def reconciliation_rows(lines: list[dict]) -> Iterator[list]:
    yield ["day", "model", "ours_usd", "theirs_usd", "difference_usd", "difference_percent", "flagged"]
    for line in lines:
        yield [line["day"], line["model"], line["ours_usd"], line["theirs_usd"], line["difference_usd"],
               line["percent"], "over 1%" if line["flagged"] else ""]
