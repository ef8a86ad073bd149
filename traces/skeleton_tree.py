"""A trace's spans as a tree whose subtree rollups stay current as spans are added, in any order: adding a
span costs its ancestors' rollups (and hanging on it the children that came before it), never a pass over
the whole trace. The skeleton of an ended run is built with it in one go; a running run's is kept and fed
only the spans stored since (traces.selectors). Pure: rows in, rows out, no database."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict
from datetime import datetime

# A span as read from the database, in this order (traces.selectors.SPAN_COLUMNS).
ID, SPAN_ID, PARENT_SPAN_ID, KIND, NAME, START, END, STATUS, TOKENS, COST = range(10)


def _us(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() * 1_000_000)


class SkeletonTree:
    """Nodes by span id, each with its parent, its children in start order and its subtree's tokens, cost,
    error spans and last end. A span whose parent has not come yet is a root until it does."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.index: dict[str, int] = {}
        self.parent: list[int] = []
        self.children: list[list[tuple]] = []  # (start, id, node) in start order
        self.roots: list[tuple] = []  # (start, id, node) of the nodes with no parent here (yet)
        self.waiting: dict[str, list[int]] = defaultdict(list)  # a missing parent's span id → its children here
        self.tokens: list[int] = []
        self.cost: list[float] = []
        self.errors: list[int] = []
        self.last_end: list[datetime] = []
        self.last_id = 0
        self.total_tokens, self.total_cost, self.total_errors = 0, 0.0, 0

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, rows) -> None:
        for row in rows:
            if row[SPAN_ID] not in self.index:
                self._add(row)

    def _add(self, row: tuple) -> None:
        node = len(self.rows)
        self.rows.append(row)
        self.index[row[SPAN_ID]] = node
        self.last_id = max(self.last_id, row[ID])
        errors = int(row[STATUS] == "error")
        self.tokens.append(row[TOKENS])
        self.cost.append(float(row[COST]))
        self.errors.append(errors)
        self.last_end.append(row[END])
        self.children.append([])
        self.parent.append(-1)
        self.total_tokens += row[TOKENS]
        self.total_cost += float(row[COST])
        self.total_errors += errors
        for child in self.waiting.pop(row[SPAN_ID], ()):  # its children came first: they hang on it now
            entry = (self.rows[child][START], self.rows[child][ID], child)
            del self.roots[bisect_left(self.roots, entry)]
            self.parent[child] = node
            insort(self.children[node], entry)
            self._roll(node, child)
        entry = (row[START], row[ID], node)
        parent = self.index.get(row[PARENT_SPAN_ID]) if row[PARENT_SPAN_ID] else None
        if parent is None:
            insort(self.roots, entry)
            if row[PARENT_SPAN_ID]:
                self.waiting[row[PARENT_SPAN_ID]].append(node)
            return
        self.parent[node] = parent
        insort(self.children[parent], entry)
        ancestor = parent
        while ancestor >= 0:  # the new subtree's totals into each ancestor's
            self._roll(ancestor, node)
            ancestor = self.parent[ancestor]

    def _roll(self, into: int, subtree: int) -> None:
        self.tokens[into] += self.tokens[subtree]
        self.cost[into] += self.cost[subtree]
        self.errors[into] += self.errors[subtree]
        if self.last_end[subtree] > self.last_end[into]:
            self.last_end[into] = self.last_end[subtree]

    def run_span(self) -> int | None:
        """The run's own span, when stored (a root of kind run)."""
        return next((node for _, _, node in self.roots if self.rows[node][KIND] == "run"), None)

    def skeleton_rows(self, *, stand_in: tuple | None, extra: list[tuple] = (), kinds: tuple, statuses: tuple,
                      name_chars: int) -> tuple[datetime | None, list[list]]:
        """The trace's start and its rows in tree order (a parent before its children, siblings by start):
        id, parent (row index), depth, kind, name, start_us, duration_us, status, tokens, cost_usd, and the
        subtree's tokens, cost, errors and duration. ``stand_in``: a row for the run so far, over every root
        (the run's own span is stored when it ends); ``extra``: rows under it that are not spans (an approval
        still open), with nothing to roll up."""
        if stand_in:
            roots = sorted([*self.roots, *((row[START], row[ID], -1 - n) for n, row in enumerate(extra))])
            start = stand_in[START]
        else:
            roots = self.roots
            start = min((row[START] for row in (self.rows[node] for _, _, node in roots)), default=None)
            if start is None:
                return None, []
        out: list[list] = []
        kind_index, status_index, other = {kind: n for n, kind in enumerate(kinds)}, {s: n for n, s in enumerate(statuses)}, len(kinds) - 1

        def emit(row, parent, depth, tokens, cost, errors, last_end):
            out.append([row[ID], parent, depth, kind_index.get(row[KIND], other), row[NAME][:name_chars],
                        _us(start, row[START]), max(0, _us(row[START], row[END])), status_index.get(row[STATUS], 0),
                        row[TOKENS], round(float(row[COST]), 6), tokens, round(cost, 6), errors,
                        max(0, _us(row[START], last_end))])

        if stand_in:
            last_end = max([stand_in[END], *(self.last_end[node] for _, _, node in self.roots)])
            emit(stand_in, -1, 0, self.total_tokens, self.total_cost, self.total_errors, last_end)
            stack = [(node, 0, 1) for _, _, node in reversed(roots)]
        else:
            stack = [(node, -1, 0) for _, _, node in reversed(roots)]
        while stack:  # without recursion: a trace may be deep
            node, parent, depth = stack.pop()
            position = len(out)
            if node < 0:
                row = extra[-1 - node]
                emit(row, parent, depth, 0, 0.0, 0, row[END])
                continue
            emit(self.rows[node], parent, depth, self.tokens[node], self.cost[node], self.errors[node], self.last_end[node])
            stack.extend((child, position, depth + 1) for _, _, child in reversed(self.children[node]))
        return start, out
