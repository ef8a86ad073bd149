"""Celery tasks: take ids, call one service."""

from celery import shared_task

from traces.replay import replay_batch_carry_out


@shared_task(name="traces.replay_batch", ignore_result=True)
def replay_batch_run(batch_id: int) -> int:
    return replay_batch_carry_out(batch_id)
