"""A CSV download, the one way every page and endpoint sends one: streamed (under ASGI an async iterator
taking the rows a batch at a time in the request's thread, since Django would read a sync iterator whole
into memory first), and safe to open in a spreadsheet: a text cell that would start a formula is written
with a leading apostrophe (numbers, negative ones included, are left as they are)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from itertools import islice

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse

BATCH = 500  # rows per piece sent
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def csv_safe(value):
    """The cell as a spreadsheet should show it: text that would start a formula gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in FORMULA_START and not NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Line:
    """csv.writer's file: hands back each line it is given."""

    def write(self, value: str) -> str:
        return value


def csv_response(request, filename: str, rows: Iterable[list]) -> StreamingHttpResponse:
    """The rows (the first one the header) as a CSV download named ``filename``."""
    writer = csv.writer(_Line())
    lines = (writer.writerow([csv_safe(cell) for cell in row]) for row in rows)
    content = _batches_async(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _next_batch(lines: Iterator[str]) -> str:
    return "".join(islice(lines, BATCH))


async def _batches_async(lines: Iterator[str]):
    take = sync_to_async(_next_batch, thread_sensitive=True)  # the ORM's reads stay on the request's connection
    while piece := await take(lines):
        yield piece
