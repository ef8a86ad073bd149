"""Two lines of work met here: agents managed by admins (0010–0011) and the compact conversation rows (0010)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0010_conversation_message_compact"),
        ("agents", "0011_tool_settings"),
    ]

    operations = []
