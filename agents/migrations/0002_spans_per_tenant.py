# Spans belong to a tenant and a run. No span was stored before this migration (nothing wrote
# the table), so the delete only guarantees the NOT NULL columns can be added.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0001_initial'),
        ('console', '0001_initial'),
    ]

    operations = [
        migrations.RunSQL("DELETE FROM agents_span", reverse_sql=migrations.RunSQL.noop),
        migrations.AddField(
            model_name='span',
            name='kind',
            field=models.CharField(default='other', max_length=16),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='span',
            name='tenant',
            field=models.ForeignKey(default=None, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='console.tenant'),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name='run',
            name='trace_id',
            field=models.CharField(blank=True, db_index=True, max_length=32),
        ),
        migrations.AlterField(
            model_name='span',
            name='run',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='spans', to='agents.run'),
        ),
        migrations.AlterField(
            model_name='span',
            name='trace_id',
            field=models.CharField(max_length=32),
        ),
        migrations.AddIndex(
            model_name='span',
            index=models.Index(fields=['run', 'started_at'], name='span_run_timeline'),
        ),
    ]
