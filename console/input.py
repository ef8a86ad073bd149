"""What any input may hold, for every way in (HTML forms, query strings, the API's JSON, form fields that carry
JSON): no NUL character (PostgreSQL refuses it in text), JSON of bounded depth with finite numbers only, numbers
written plainly in ASCII digits (``"²".isdigit()`` is true and ``int("²")`` fails; ``float("nan")`` and
``float("１２")`` succeed). Pure functions; ``console.middleware.InputCleaningMiddleware`` applies them to every
request, and views parse the JSON of a form field with ``json_load``.
"""

from __future__ import annotations

import json
import math
import re
from urllib.parse import parse_qs

MAX_JSON_DEPTH = 32  # tool arguments and plans are a few levels deep; thousands crash the parser
NUL = "\x00"
CLOSE_BAD_REQUEST = 4400  # a websocket refused for its input (cf. console.access: 4404, 4403)

_INT = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only; 18 of them fit in a bigint
_NUMBER = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?")


class InputRefused(ValueError):
    """Input no part of Proctor accepts. ``status``: 400, or 413 for a body over the size limit."""

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request", position: str = ""):
        super().__init__(message)
        self.status, self.code = status, code
        self.position = position  # for JSON that does not parse: "Line 3, column 5: Expecting ',' delimiter"


def nul_refusal(where: str) -> InputRefused:
    return InputRefused(f"{where} contains a NUL character (\\0), which text in Proctor may not contain. "
                        f"Remove it and send again.")


def check_text(value: str, where: str) -> None:
    if NUL in value:
        raise nul_refusal(where)


def query_values(query_string: bytes) -> dict[str, str]:
    """A websocket's query parameters (no middleware sees a socket's request): the first value of each,
    bytes that are not UTF-8 replaced. Raises InputRefused for a NUL character."""
    values = {key: found[0] for key, found in parse_qs(query_string.decode("utf-8", "replace")).items()}
    for key, value in values.items():
        check_text(key + value, f"The query parameter “{key[:60]}”")
    return values


def strict_int(text, default: int | None = None) -> int | None:
    """An integer written in ASCII digits (an optional minus sign), or ``default``. Unicode digits, signs
    of plus, spaces, underscores and numbers beyond 18 digits are not integers here."""
    if isinstance(text, str) and _INT.fullmatch(text):
        return int(text)
    return default


def strict_number(text) -> float | None:
    """A finite number written plainly (ASCII digits, an optional fraction and exponent), or None.
    Not NaN, not Infinity, not ``1e999``, not ``"1_000"`` or fullwidth digits."""
    if not isinstance(text, str) or not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InputRefused(f"The number {text[:40]} is too large: numbers must be finite.")
    return number


def _no_constant(name: str):
    raise InputRefused(f"{name} is not a number JSON allows; send a finite number.")


def json_load(raw: bytes | str, *, where: str = "The JSON") -> object:
    """Parse JSON strictly: NaN, Infinity and numbers too large for a float refused, nesting deeper than
    MAX_JSON_DEPTH refused, no NUL character in any string or key. Raises InputRefused saying what is wrong."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except InputRefused:
        raise
    except RecursionError:
        raise InputRefused(f"{where} is nested too deeply (at most {MAX_JSON_DEPTH} levels).") from None
    except UnicodeDecodeError:
        raise InputRefused(f"{where} is not UTF-8.") from None
    except json.JSONDecodeError as error:
        raise InputRefused(f"{where} is not valid JSON ({str(error)[:120]}).",
                           position=f"Line {error.lineno}, column {error.colno}: {error.msg}") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise InputRefused(f"{where} is not valid JSON ({str(error)[:120]}).") from None
    check_json(data, where=where)
    return data


def check_json(data, *, where: str = "The JSON") -> None:
    """Depth and NUL characters of parsed JSON, walked without recursion."""
    stack = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                raise nul_refusal(f"{where} at {_shown(path)}")
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise InputRefused(f"{where} is nested too deeply (at most {MAX_JSON_DEPTH} levels).")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and NUL in key:
                    raise nul_refusal(f"A key in {where[:1].lower() + where[1:]} at {_shown(path)}")
                stack.append((item, depth + 1, (f"{path}.{key}" if path else str(key)) if isinstance(value, dict)
                              else f"{path}[{key}]"))


def _shown(path: str) -> str:
    return (path[:80] + "…" if len(path) > 80 else path) or "its top level"
