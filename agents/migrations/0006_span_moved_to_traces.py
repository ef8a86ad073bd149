# Span moved to the traces app (traces 0001 takes it over with its table and rows, traces 0002
# renames the table). Here it leaves agents' state only; nothing is dropped.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0005_demo_systems_moved_to_demo'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='Span'),
            ],
            database_operations=[],
        ),
    ]
