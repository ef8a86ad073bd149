"""A run row's version, raised by each write of it, and the error a step's unlocked write raises when the row
is no longer the version it read (agents/run_store.py)."""

from django.db import migrations, models

RUN_CHANGED = """
CREATE FUNCTION proctor_run_changed(run_id bigint) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'run % changed since the step read it', run_id USING ERRCODE = 'PRCHG';
END $$
"""


class Migration(migrations.Migration):
    dependencies = [("agents", "0013_run_unpriced_calls")]

    operations = [
        migrations.AddField(model_name="run", name="version", field=models.PositiveBigIntegerField(default=0)),
        migrations.RunSQL(RUN_CHANGED, "DROP FUNCTION proctor_run_changed(bigint)"),
    ]
