# Span, taken over from agents (agents 0005) with its existing table and rows: state only, on the
# table as it is (agents_span); 0002 renames it to traces_span.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('agents', '0006_span_moved_to_traces'),
        ('console', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Span',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('trace_id', models.CharField(max_length=32)),
                        ('span_id', models.CharField(max_length=16)),
                        ('parent_span_id', models.CharField(blank=True, max_length=16)),
                        ('name', models.CharField(max_length=200)),
                        ('kind', models.CharField(max_length=16)),
                        ('started_at', models.DateTimeField()),
                        ('ended_at', models.DateTimeField()),
                        ('status', models.CharField(default='unset', max_length=16)),
                        ('attributes', models.JSONField(default=dict)),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='spans', to='agents.run')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='console.tenant')),
                    ],
                    options={
                        'db_table': 'agents_span',
                        'indexes': [models.Index(fields=['run', 'started_at'], name='span_run_timeline')],
                        'constraints': [models.UniqueConstraint(fields=('trace_id', 'span_id'), name='span_unique')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
