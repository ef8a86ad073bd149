from django.apps import AppConfig


class MemoryConfig(AppConfig):
    """What agents remember. The runtime knows none of it: the memory.remember tool registers into its
    tool registry, and retrieval and the record of what a step used into its context and decision hooks."""

    name = "memory"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from agents.hooks import register_context, register_decision
        from memory import tools  # noqa: F401  (registers memory.remember)
        from memory.context import memory_context, memory_uses
        from memory.selectors import hnsw_session_settings

        register_context(memory_context)
        register_decision(memory_uses)
        connection_created.connect(hnsw_session_settings, dispatch_uid="memory.hnsw_session_settings")
