"""Chat search benchmark: full-text search over 1,000,000 stored messages on PostgreSQL.

What it measures
----------------
A database of its own (``--database``, dropped and made again, migrated)
gets ``--messages`` chat messages (default 1,000,000) in ``--rooms``
finalized rooms, as the server stores them: each public message with its
search document (``rooms.chat_search``: lowercased words, CJK runs cut into
character pairs, ``to_tsvector('simple', ...)``), one in ten private
(recipients, no document). Texts are 3 to 15 words drawn from a vocabulary
of 30,000 made-up words, Latin, Cyrillic and CJK (two to four characters,
written without spaces between them as Chinese and Japanese are), with
Zipf-distributed frequencies, so a few words are in many messages and most
in few.

Then ``--queries`` searches through the code the records page runs
(``recording.chat_search.chat_search_messages``: the newest 50 public
messages of finalized rooms, with the ORM), each timed with
``perf_counter`` and reported as p50 / p95 / max in ms:

- **every room**: a viewer with the view permission;
- **one link's rooms**: a viewer holding grants of 3 rooms.

Query words are drawn uniformly from the vocabulary (so mostly rare words,
as people search for names and topics) and, as a separate row, from its 100
most frequent words (each in 1 to 30 % of messages).

Anchor
------
The same searches without the document and its index: a case-insensitive
substring match over the text (``text ILIKE '%word%'``, what SQLite runs),
interleaved query by query with ours in the same run (the machine is shared
and noisy); fewer of them, as each reads the whole table.

Run from the project root (PostgreSQL at 127.0.0.1:5432)::

    .venv/bin/python tests/bench/chat_search.py
    .venv/bin/python tests/bench/chat_search.py --messages 100000 --queries 200

Prints Markdown on stdout (progress on stderr), ends with a Targets section
and exits 1 if the p95 of "every room" is 100 ms or more.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make rooms and tests importable
    sys.path.insert(0, str(ROOT))

from tests.bench.report import Target, exit_status, fmt, log, percentile, targets_markdown  # noqa: E402

VOCABULARY = 30_000
LATIN = "bdfgklmnprstvz"
LATIN_VOWELS = "aeiou"
CYRILLIC = "бвгдклмнпрстфх"
CYRILLIC_VOWELS = "аеиоуыя"
# Common kanji and kana: words of 2 to 4 of them, written together.
CJK = "会議時間明日今週予定資料確認報告問題対応顧客営業開発設計品質価格契約東京大阪中国日本電話連絡"


def _word(rng: random.Random, script: int) -> str:
    if script == 2:
        return "".join(rng.choice(CJK) for _ in range(rng.randint(2, 4)))
    consonants, vowels = (LATIN, LATIN_VOWELS) if script == 0 else (CYRILLIC, CYRILLIC_VOWELS)
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))


def vocabulary(rng: random.Random) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        words.setdefault(_word(rng, len(words) % 3))
    return list(words)


def message_text(rng: random.Random, words: list[str], weights: list[float]) -> str:
    chosen = rng.choices(words, cum_weights=weights, k=rng.randint(3, 15))
    # CJK words are written without a space between them, as in a sentence.
    text = ""
    for word in chosen:
        cjk = "\u3040" <= word[0] <= "\u9fff"
        text += word if cjk and text and "\u3040" <= text[-1] <= "\u9fff" else (" " if text else "") + word
    return text


def database_url(name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def database_create(name: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")


def messages_store(*, rooms: int, messages: int, seed: int) -> list[str]:
    """Rooms and messages, as the server stores them; returns the vocabulary, most frequent first."""
    from django.db import connection

    from rooms.chat_search import chat_search_text
    from rooms.models import Room

    rng = random.Random(seed)
    words = vocabulary(rng)
    cumulative, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1 / rank
        cumulative.append(total)
    start_ms = int(time.time() * 1000) - 30 * 86_400_000
    Room.objects.bulk_create(
        Room(name=f"room-{i}", live_id=f"bench{i:06d}", status=Room.Status.FINALIZED) for i in range(rooms)
    )
    room_ids = list(Room.objects.order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        # Loaded through a staging table, then documents made by the same
        # to_tsvector('simple', ...) the server runs when it stores a message;
        # the GIN index is built once at the end, as a restore would.
        cursor.execute("DROP INDEX IF EXISTS chat_search_document")
        cursor.execute(
            "CREATE UNLOGGED TABLE staging (room_id bigint, public_id text, seq bigint, sender text,"
            " recipients jsonb, text text, sent_at_ms bigint, document text)"
        )
        batch = 100_000
        for first in range(0, messages, batch):
            buffer = io.StringIO()
            for n in range(first, min(messages, first + batch)):
                text = message_text(rng, words, cumulative)
                private = rng.random() < 0.1
                recipients = json.dumps(["bob"]) if private else "\\N"
                document = "\\N" if private else chat_search_text(text)
                row = (str(room_ids[n % rooms]), f"m{n:08d}", str(n), f"user{n % 97}", recipients, text,
                       str(start_ms + n * 2_000), document)
                buffer.write("\t".join(field.replace("\\", "\\\\") if field != "\\N" else field
                                       for field in row) + "\n")
            buffer.seek(0)
            with cursor.copy("COPY staging FROM STDIN") as copy:
                copy.write(buffer.read())
            log(f"  generated {min(messages, first + batch):,} messages")
        started = time.perf_counter()
        cursor.execute(
            "INSERT INTO rooms_chatmessage (room_id, public_id, seq, sender, recipients, text, sent_at_ms,"
            " search_document) SELECT room_id, public_id, seq, sender, recipients, text, sent_at_ms,"
            " CASE WHEN document IS NULL THEN NULL ELSE to_tsvector('simple'::regconfig, document) END"
            " FROM staging"
        )
        cursor.execute("DROP TABLE staging")
        log(f"  stored with their documents in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        cursor.execute("CREATE INDEX chat_search_document ON rooms_chatmessage USING gin (search_document)")
        cursor.execute("ANALYZE")  # as autovacuum would have, for the planner
        log(f"  GIN index built in {time.perf_counter() - started:.1f} s")
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('chat_search_document'))")
        log(f"  index size {cursor.fetchone()[0]}")
    return words


def timed(function: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    function(*args)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="bench_chat_search")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--anchor-queries", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database (default: drop it at the end)")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()

    database_create(args.database)
    os.environ["DATABASE_URL"] = database_url(args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from recording.access import RecordsViewer
    from recording.chat_search import chat_search_messages
    from recording.links import RecordsGrant
    from rooms.models import ChatMessage, Room

    try:
        call_command("migrate", verbosity=0)
        log(f"storing {args.messages:,} messages in {args.rooms:,} rooms")
        words = messages_store(rooms=args.rooms, messages=args.messages, seed=args.seed)
        rng = random.Random(args.seed + 1)
        every_room = RecordsViewer(username="bench")
        live_ids = list(Room.objects.order_by("?").values_list("live_id", flat=True)[:3])
        one_link = RecordsViewer(grants=tuple(RecordsGrant(room_live_id=live_id, identity="alice", issued_us=0)
                                              for live_id in live_ids))

        def anchor(word: str) -> list[ChatMessage]:
            rows = ChatMessage.objects.filter(recipients__isnull=True, room__status=Room.Status.FINALIZED,
                                              text__icontains=word).order_by("-sent_at_ms", "-pk")
            return list(rows.defer("search_document")[:50])

        chat_search_messages(every_room, words[5])  # the connection and the plan cache warm
        rows: dict[str, list[float]] = {"every room": [], "one link's rooms": [], "frequent words": [],
                                        "anchor (ILIKE), every room": []}
        hit_counts: list[int] = []
        for n in range(args.queries):
            word = rng.choice(words)
            started = time.perf_counter()
            hit_counts.append(len(chat_search_messages(every_room, word)))
            rows["every room"].append((time.perf_counter() - started) * 1000)
            rows["one link's rooms"].append(timed(chat_search_messages, one_link, word))
            rows["frequent words"].append(timed(chat_search_messages, every_room, rng.choice(words[:100])))
            if n < args.anchor_queries:
                rows["anchor (ILIKE), every room"].append(timed(anchor, word))
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*), count(search_document) FROM rooms_chatmessage")
            stored, indexed = cursor.fetchone()
    finally:
        connection.close()
        if not args.keep:
            import psycopg

            with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")

    print(f"# Chat search over {stored:,} stored messages ({indexed:,} public, indexed)\n")
    print(f"{args.queries} searches per row (anchor: {args.anchor_queries}), interleaved; "
          f"median hits per search {percentile(hit_counts, 50):.0f} (at most 50).\n")
    print("| searches | p50 ms | p95 ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in rows.items():
        print(f"| {name} | {fmt(percentile(values, 50), 1)} | {fmt(percentile(values, 95), 1)} "
              f"| {fmt(max(values, default=0), 1)} |")
    ours, anchor_row = rows["every room"], rows["anchor (ILIKE), every room"]
    if anchor_row:
        print(f"\nAnchor / ours at p50: {percentile(anchor_row, 50) / max(percentile(ours, 50), 1e-9):.0f}x\n")
    p95 = percentile(ours, 95)
    results = [Target("p95 of a search over every room < 100 ms", f"{p95:.1f} ms", p95 < 100)]
    print("\n".join(targets_markdown(results)))
    return exit_status(run_failed=False, results=results)


if __name__ == "__main__":
    sys.exit(main())
