# The demo systems' models, taken over from agents (agents 0004) with their existing tables and rows:
# state only, on the tables as they are (agents_*); 0002 renames them to demo_*.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('agents', '0005_demo_systems_moved_to_demo'),
        ('console', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='CalendarBooking',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('title', models.CharField(max_length=200)),
                        ('attendees', models.JSONField(default=list)),
                        ('starts_at', models.DateTimeField()),
                        ('minutes', models.PositiveIntegerField(default=30)),
                        ('idempotency_key', models.CharField(max_length=200, unique=True)),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='agents.run')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='console.tenant')),
                    ],
                    options={
                        'db_table': 'agents_calendarbooking',
                    },
                ),
                migrations.CreateModel(
                    name='CrmAccount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=20)),
                        ('name', models.CharField(max_length=200)),
                        ('success_manager', models.EmailField(max_length=254)),
                        ('arr_usd', models.PositiveIntegerField(default=0)),
                        ('renewal_date', models.DateField(blank=True, null=True)),
                        ('health', models.CharField(default='good', max_length=20)),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='console.tenant')),
                    ],
                    options={
                        'db_table': 'agents_crmaccount',
                        'ordering': ['key'],
                    },
                ),
                migrations.CreateModel(
                    name='CrmNote',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('body', models.TextField()),
                        ('author', models.CharField(max_length=100)),
                        ('at', models.DateTimeField(auto_now_add=True)),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notes', to='demo.crmaccount')),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='agents.run')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='console.tenant')),
                    ],
                    options={
                        'db_table': 'agents_crmnote',
                    },
                ),
                migrations.CreateModel(
                    name='EmailMessage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('to', models.EmailField(max_length=254)),
                        ('subject', models.CharField(max_length=300)),
                        ('body', models.TextField()),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('idempotency_key', models.CharField(blank=True, max_length=200, null=True, unique=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='agents.run')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='console.tenant')),
                    ],
                    options={
                        'db_table': 'agents_emailmessage',
                    },
                ),
                migrations.CreateModel(
                    name='Invoice',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('amount_usd', models.DecimalField(decimal_places=2, max_digits=12)),
                        ('memo', models.CharField(blank=True, max_length=300)),
                        ('idempotency_key', models.CharField(max_length=200, unique=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='demo.crmaccount')),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='agents.run')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='console.tenant')),
                    ],
                    options={
                        'db_table': 'agents_invoice',
                    },
                ),
                migrations.AddConstraint(
                    model_name='crmaccount',
                    constraint=models.UniqueConstraint(fields=('tenant', 'key'), name='crm_key_per_tenant'),
                ),
            ],
            database_operations=[],
        ),
    ]
