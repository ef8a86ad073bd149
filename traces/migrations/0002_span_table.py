# The span table gets its own app's name (agents_span → traces_span): a rename, the rows stay.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('traces', '0001_initial'),
    ]

    operations = [
        migrations.AlterModelTable(
            name='span',
            table=None,
        ),
    ]
