# The demo tables get their own app's names (agents_* → demo_*): a rename, the rows stay.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('demo', '0001_initial'),
    ]

    operations = [
        migrations.AlterModelTable(
            name='calendarbooking',
            table=None,
        ),
        migrations.AlterModelTable(
            name='crmaccount',
            table=None,
        ),
        migrations.AlterModelTable(
            name='crmnote',
            table=None,
        ),
        migrations.AlterModelTable(
            name='emailmessage',
            table=None,
        ),
        migrations.AlterModelTable(
            name='invoice',
            table=None,
        ),
    ]
