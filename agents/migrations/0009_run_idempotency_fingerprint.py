# A run started with an Idempotency-Key keeps a hash of what defined it (agent, goal), so the key sent again
# with another body is refused (422 idempotency_mismatch) instead of answering with the first run. Runs made
# before keep an empty fingerprint and are returned as before.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0008_run_number_per_tenant'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='idempotency_fingerprint',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
    ]
