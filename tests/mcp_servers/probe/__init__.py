"""A test app for processes started by the MCP browser test (``PROCTOR_EXTRA_APPS=tests.mcp_servers.probe``): it
registers the model provider ``mcpprobe``, whose one model calls the first MCP tool its agent may use and then
answers with what the tool said."""
