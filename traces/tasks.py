"""Celery tasks: take ids, call one service."""

from celery import shared_task

from traces.replay import replay_batch_carry_out
from traces.selectors import skeleton_materialize


@shared_task(name="traces.replay_batch", ignore_result=True)
def replay_batch_run(batch_id: int) -> int:
    return replay_batch_carry_out(batch_id)


@shared_task(name="traces.skeleton_materialize", ignore_result=True)
def skeleton_materialize_later(run_id: int) -> None:
    from agents.models import Run

    run = Run.objects.select_related("agent", "tenant").filter(pk=run_id).first()
    if run is not None and run.is_terminal:
        skeleton_materialize(tenant=run.tenant, run=run)
