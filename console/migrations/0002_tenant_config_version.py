from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("console", "0001_initial")]

    operations = [
        migrations.AddField(model_name="tenant", name="config_version",
                            field=models.PositiveBigIntegerField(default=0)),
    ]
