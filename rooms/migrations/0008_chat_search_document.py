"""Full-text search of the public chat: a stored search document per message
and, on PostgreSQL, its GIN index; public messages by time, newest first;
messages stored before are indexed here."""

from typing import Any

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations, models


class AddIndexOnPostgres(migrations.AddIndex):
    """A GIN index exists on PostgreSQL only; the model state has it everywhere."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def index_stored_messages(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    from rooms.chat_search import chat_search_document

    messages = apps.get_model("rooms", "ChatMessage").objects.filter(recipients__isnull=True)
    for message in messages.only("pk", "text").iterator(chunk_size=2000):
        messages.filter(pk=message.pk).update(search_document=chat_search_document(message.text))


class Migration(migrations.Migration):

    dependencies = [
        ("rooms", "0007_stream_mute"),
    ]

    operations = [
        migrations.AddField(
            model_name="chatmessage",
            name="search_document",
            field=django.contrib.postgres.search.SearchVectorField(blank=True, editable=False, null=True),
        ),
        AddIndexOnPostgres(
            model_name="chatmessage",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search_document"], name="chat_search_document"),
        ),
        migrations.AddIndex(
            model_name="chatmessage",
            index=models.Index(
                condition=models.Q(recipients__isnull=True), fields=["-sent_at_ms", "-id"], name="chat_public_newest"
            ),
        ),
        migrations.RunPython(index_stored_messages, migrations.RunPython.noop),
    ]
