"""Tasks for the bench's worker only (it starts with ``--include bench.tasks``)."""

from celery import shared_task


@shared_task(name="bench.echo", ignore_result=True)
def echo(channel: str) -> None:
    """The Celery hop's floor: an empty task that only says it ran, with a Redis PUBLISH."""
    from console.health import redis_client

    redis_client().publish(channel, b"ran")
