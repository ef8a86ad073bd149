# The demo systems' models moved to the demo app (demo 0001 takes them over with their tables and
# rows, demo 0002 renames the tables). Here they leave agents' state only; nothing is dropped.
# Children go before the account they point to.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0004_conversation_messages'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='CrmNote'),
                migrations.DeleteModel(name='Invoice'),
                migrations.DeleteModel(name='EmailMessage'),
                migrations.DeleteModel(name='CalendarBooking'),
                migrations.DeleteModel(name='CrmAccount'),
            ],
            database_operations=[],
        ),
    ]
