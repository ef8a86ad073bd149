from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Run webhooks: a tenant's receivers hear when a run completes, fails or waits for a person. The runtime
    knows none of it: this app registers into agents.hooks' status changes."""

    name = "webhooks"

    def ready(self) -> None:
        from agents.hooks import register_status_change
        from webhooks.services import run_status_changed

        register_status_change(run_status_changed)
