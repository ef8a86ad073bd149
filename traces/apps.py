from django.apps import AppConfig


class TracesConfig(AppConfig):
    """The runs' spans as stored, their exporter and reads. The runtime produces spans and knows none
    of this: the exporter is registered into its span sinks here."""

    name = "traces"

    def ready(self) -> None:
        from agents.hooks import register_span_sink
        from traces.exporter import DatabaseSpanExporter

        register_span_sink("database", DatabaseSpanExporter)
