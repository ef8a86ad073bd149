"""Runs numbered per tenant (#1, #2 …): a new tenant's first run is #1, not a number that says how many
runs other tenants have. Existing runs are numbered in the order they were created, per tenant."""

from django.db import migrations, models

BACKFILL = """
UPDATE agents_run r SET number = numbered.n
  FROM (SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY created_at, id) AS n FROM agents_run) numbered
 WHERE r.id = numbered.id
"""


class Migration(migrations.Migration):
    # Another branch adds 0007 in parallel: the merge makes this one depend on it.
    dependencies = [("agents", "0007_step_writes_lighter")]

    operations = [
        migrations.AddField(model_name="run", name="number", field=models.PositiveIntegerField(null=True)),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AlterField(model_name="run", name="number", field=models.PositiveIntegerField()),
        migrations.AddConstraint(model_name="run", constraint=models.UniqueConstraint(
            fields=("tenant", "number"), name="run_number_per_tenant")),
    ]
