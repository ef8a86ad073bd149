from django.apps import AppConfig


class TracesConfig(AppConfig):
    """The runs' spans as stored, their exporter and reads, and the engine's decision records. The
    runtime produces spans and decisions and knows none of this: the exporter is registered into its
    span sinks here, and the decision records into its decision hooks."""

    name = "traces"

    def ready(self) -> None:
        from agents.hooks import register_decision, register_run_overrides, register_span_sink
        from console.health import register_check
        from traces.exporter import DatabaseSpanExporter
        from traces.otlp import outbox_status, relaying
        from traces.replay import replay_overrides
        from traces.services import decision_recorded

        register_span_sink("database", DatabaseSpanExporter)
        if relaying():
            register_check("otlp", outbox_status)  # the outbox's backlog and the relay's last delivery
        register_decision(decision_recorded)
        register_run_overrides(replay_overrides)  # a replay's run: its model, instructions, recorded tools
