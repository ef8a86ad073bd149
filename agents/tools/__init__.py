"""The governed tool layer: registry, validation, execution with idempotency. Other apps register
their tools with ``tool`` (the demo app: demo.tools); the runtime's own is ``human.ask``."""

from agents.tools.registry import REGISTRY, Tool, ToolContext, ToolError, tool  # noqa: F401
from agents.tools import human  # noqa: F401  (registers human.ask)
