from celery import shared_task

from console.health import scheduler_canary_record


@shared_task(name="console.tasks.scheduler_canary", ignore_result=True)
def scheduler_canary() -> None:
    scheduler_canary_record()
