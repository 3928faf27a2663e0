"""Full-text search over the public chat archive.

On PostgreSQL each public message carries a stored ``tsvector``
(``ChatMessage.search_document``, GIN-indexed), made when it is stored.
The ``simple`` configuration keeps every word as it is written (no
stemming, so any language is found by its exact word), but PostgreSQL's
parser takes a run of Chinese or Japanese characters for one long word:
"会議は明日" would only be found by the whole run. So before it reaches
PostgreSQL the text is lowercased here and every such run is cut into
overlapping character pairs ("会議 議は は明 明日"), the way CJK search
engines index without a dictionary; the query goes through the same cut,
so a word of two or more characters is found wherever it stands.
Lowercasing here, not in PostgreSQL, keeps Cyrillic and Greek case-blind
whatever the database's locale.

On SQLite there is no index: a case-insensitive substring match (SQLite
folds ASCII case only).

Private messages (those with recipients) have no document and are never
matched by either.
"""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import QuerySet, Value

from rooms.models import ChatMessage

SEARCH_CONFIG = "simple"
# Han (with extension A and compatibility ideographs), hiragana, katakana
# (with the half-width forms and the prolonged sound mark), hangul.
CJK_RUN = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af]+"
)


def _pairs(run: str) -> str:
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i:i + 2] for i in range(len(run) - 1)) + " "


def chat_search_text(text: str) -> str:
    """``text`` as it is indexed and queried: lowercased, CJK runs cut into character pairs."""
    return CJK_RUN.sub(lambda match: _pairs(match.group()), text.lower())


def chat_search_document(text: str) -> SearchVector:
    """The stored search document of a public message with ``text`` (PostgreSQL only)."""
    return SearchVector(Value(chat_search_text(text)), config=SEARCH_CONFIG)


def chat_search_enabled() -> bool:
    """Whether messages get a stored document: only PostgreSQL has ``tsvector``."""
    return connection.vendor == "postgresql"


def chat_messages_matching(messages: QuerySet[ChatMessage], query: str) -> QuerySet[ChatMessage]:
    """The public messages among ``messages`` whose text has every word of ``query``."""
    public = messages.filter(recipients__isnull=True)
    if chat_search_enabled():
        return public.filter(
            search_document=SearchQuery(chat_search_text(query), config=SEARCH_CONFIG, search_type="plain")
        )
    return public.filter(text__icontains=query.strip())
