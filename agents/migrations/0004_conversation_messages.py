"""The conversation leaves the checkpoint: a row per message, and the checkpoint keeps the small
state with a watermark (how many messages it has seen)."""

from django.db import migrations, models
import django.db.models.deletion


def conversation_to_rows(apps, schema_editor):
    Checkpoint = apps.get_model("agents", "Checkpoint")
    ConversationMessage = apps.get_model("agents", "ConversationMessage")
    latest_seen: set[int] = set()
    for checkpoint in Checkpoint.objects.order_by("run_id", "-step").iterator():
        state = checkpoint.state or {}
        conversation = state.get("conversation")
        if conversation is None:
            continue
        if checkpoint.run_id not in latest_seen:  # the latest checkpoint holds the whole conversation
            latest_seen.add(checkpoint.run_id)
            ConversationMessage.objects.bulk_create(
                ConversationMessage(run_id=checkpoint.run_id, seq=seq, step=checkpoint.step, message=message)
                for seq, message in enumerate(conversation, start=1))
        checkpoint.state = {"pending_call": state.get("pending_call"), "messages": len(conversation)}
        checkpoint.save(update_fields=["state"])


class Migration(migrations.Migration):
    dependencies = [("agents", "0003_plan_approval_questions_assignees")]

    operations = [
        migrations.CreateModel(
            name="ConversationMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.PositiveIntegerField()),
                ("step", models.PositiveIntegerField()),
                ("message", models.JSONField()),
                ("at", models.DateTimeField(auto_now_add=True)),
                ("run", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="messages",
                                          to="agents.run")),
            ],
            options={"ordering": ["run", "seq"]},
        ),
        migrations.AddConstraint(
            model_name="conversationmessage",
            constraint=models.UniqueConstraint(fields=("run", "seq"), name="dense_message_seq_per_run"),
        ),
        migrations.RunPython(conversation_to_rows, migrations.RunPython.noop),
    ]
