"""A run counts its model calls without a known price as it records them, so the run card says so without a
query per render; existing runs are counted from their ModelCall rows."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("agents", "0012_tool_settings")]

    operations = [
        migrations.AddField(model_name="run", name="unpriced_calls", field=models.PositiveIntegerField(default=0)),
        migrations.RunSQL(
            "UPDATE agents_run r SET unpriced_calls = c.n FROM (SELECT run_id, count(*) AS n FROM agents_modelcall"
            " WHERE price @> '{\"unpriced\": true}' GROUP BY run_id) c WHERE c.run_id = r.id",
            migrations.RunSQL.noop),
    ]
