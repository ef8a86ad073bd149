"""Celery tasks: take ids, call one service."""

from celery import shared_task


@shared_task(name="costs.reprice", ignore_result=True)
def reprice(job_id: int) -> None:
    from costs.repricing import repricing_run

    repricing_run(job_id)


@shared_task(name="costs.repricing_sweep", ignore_result=True)
def repricing_sweep() -> int:
    from costs.services import repricing_resume_stalled

    return repricing_resume_stalled()


@shared_task(name="costs.budget_alert_email", ignore_result=True)
def budget_alert_email(alert_id: int) -> None:
    from costs.notifications import budget_alert_email_send

    budget_alert_email_send(alert_id=alert_id)
