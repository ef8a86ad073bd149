from django.apps import AppConfig


def first_mcp_tool(messages, info):
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart

    returns = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    if returns:
        return ModelResponse(parts=[TextPart(f"The tool said: {returns[-1].content}")])
    tool = next(t.name for t in info.function_tools if t.name.startswith("mcp:"))
    return ModelResponse(parts=[ToolCallPart(tool_name=tool, args={"key": "ACME-042"}, tool_call_id="call_1")])


class ProbeConfig(AppConfig):
    name = "tests.mcp_servers.probe"
    label = "mcp_probe"

    def ready(self) -> None:
        from pydantic_ai.models.function import FunctionModel

        from agents.gateway import register_model_provider

        register_model_provider("mcpprobe", lambda name: FunctionModel(first_mcp_tool, model_name="mcp-probe"),
                                models=("first-tool",))
