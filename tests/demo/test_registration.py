"""The demo app registers its tools and its offline model into the runtime; the runtime names neither."""

import pytest
from pydantic_ai.models.function import FunctionModel

from agents.gateway import resolve_model
from agents.tools import REGISTRY
from demo.tools import search_accounts

DEMO_TOOLS = {"crm.search_accounts", "crm.get_account", "notes.write", "email.draft", "email.send", "calendar.book",
              "billing.create_invoice", "noop"}


def test_the_demo_tools_are_in_the_runtimes_registry_beside_human_ask():
    assert DEMO_TOOLS | {"human.ask"} <= set(REGISTRY)
    assert REGISTRY["crm.search_accounts"].function is search_accounts
    assert REGISTRY["human.ask"].function.__module__ == "agents.tools.human"


def test_demo_models_resolve_through_the_registered_provider():
    model = resolve_model("demo:planner")
    assert isinstance(model, FunctionModel) and model.model_name == "demo-planner"


def test_an_unknown_provider_is_still_a_clear_error():
    with pytest.raises(ValueError, match="unknown model provider 'nope' in 'nope:model'"):
        resolve_model("nope:model")
