from django.apps import AppConfig

_failed_once: set = set()  # (the run's goal, the conversation's length): failed once already in this process


def flaky_model(name: str):
    from pydantic_ai.exceptions import ModelHTTPError
    from pydantic_ai.models.function import FunctionModel

    from demo.model import noop_looper

    def reply(messages, info):
        # Every other step's first attempt fails (then the retry answers): retries without ever failing twice
        # in a row, which would open the provider's circuit breaker and stall the runs.
        key = (str(messages[0].parts[-1].content), len(messages))
        if len(messages) % 2 == 1 and key not in _failed_once:
            _failed_once.add(key)
            raise ModelHTTPError(503, name, "overloaded (flaky test provider)")
        return noop_looper(messages, info)

    return FunctionModel(reply, model_name=name)


def openai_price(model, tokens, at):
    from agents.gateway import list_price

    return list_price("openai", model, tokens, at)


class CostsProbeConfig(AppConfig):
    name = "tests.costs_probe"
    label = "costs_probe"

    def ready(self) -> None:
        from agents.gateway import register_model_pricing, register_model_provider

        register_model_provider("flaky", flaky_model)
        register_model_pricing("flaky", openai_price)
