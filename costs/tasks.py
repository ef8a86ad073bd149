"""Celery tasks: take ids, call one service."""

from celery import shared_task


@shared_task(name="costs.reprice", ignore_result=True)
def reprice(job_id: int) -> None:
    from costs.repricing import repricing_run

    repricing_run(job_id)
