"""The governed tool layer: registry, validation, execution with idempotency."""

from agents.tools.registry import REGISTRY, Tool, ToolContext, ToolError, tool  # noqa: F401
from agents.tools import builtin  # noqa: F401  (registers the demo tools)
