from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo systems (CRM, email, calendar, billing on local tables), their tools and the offline
    demo model. The runtime knows none of it: the tools and the model register into it here."""

    name = "demo"

    def ready(self) -> None:
        from agents.gateway import register_model_pricing, register_model_provider
        from demo import tools  # noqa: F401  (registers the demo tools)
        from demo.model import DEMO_MODELS, demo_model
        from demo.pricing import demo_price

        register_model_provider("demo", demo_model, models=tuple(DEMO_MODELS))
        register_model_pricing("demo", demo_price)
