from django.apps import AppConfig


class McpServersConfig(AppConfig):
    """MCP servers as tool sources: their tools enter the tool registry of the tenant that connected them, as
    ``mcp:<server>.<tool>``, and are governed like built-in tools. The runtime knows none of it: this app
    registers a tool source (agents.tools.register_tool_source)."""

    name = "mcp_servers"

    def ready(self) -> None:
        from agents.tools import register_tool_source
        from mcp_servers.tools import tenant_mcp_tools

        register_tool_source(tenant_mcp_tools)
