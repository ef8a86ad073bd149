"""The governed tool layer: registry, validation, execution with idempotency. Other apps register
their tools with ``tool`` (the demo app: demo.tools); the runtime's own is ``human.ask``."""

from agents.tools.registry import (  # noqa: F401
    REGISTRY,
    Tool,
    ToolContext,
    ToolError,
    register_tool_source,
    tenant_tools,
    tool,
    tool_for,
)
from agents.tools import human  # noqa: F401  (registers human.ask)
