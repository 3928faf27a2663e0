"""Chat cues: their times, their WebVTT, their mov_text samples; text in any script round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recording.subtitles import (
    CUE_SHOW_MS,
    ChatCue,
    ChatLine,
    chat_cues,
    mov_text_sample,
    webvtt_document,
    webvtt_timestamp,
)
from tests.recording.vtt import VttError, vtt_parse

ORIGIN = 1_795_000_000_000.0
HARD_TEXTS = [
    "Привет, как дела?",
    "你好，世界。日本語も、한국어도",  # noqa: RUF001 (the fullwidth comma is the point)
    "👋🏽 family: 👨‍👩‍👧‍👦 flags: 🇺🇦🇯🇵",
    "a --> b",
    "<b>not bold</b> & <i>not italic</i> &amp; stays &amp;",
    "first line\nsecond line",
    "-->",
    "WEBVTT",
    "00:00:01.000 --> 00:00:02.000",
    "NOTE this is not a comment",
    "{\\b1}\\N not ASS either",
    "مرحبا بالعالم",
    "  leading and trailing spaces  ",
]


def line(text: str, at_ms: float, sender: str = "alice", message_id: str = "m") -> ChatLine:
    return ChatLine(message_id=message_id, sender=sender, text=text, sent_at_ms=round(ORIGIN + at_ms))


def test_a_cue_shows_for_a_few_seconds_or_until_the_next_message() -> None:
    cues = chat_cues(
        [line("one", 1000, message_id="1"), line("two", 2500, "bob", "2"), line("three", 10_000, message_id="3")],
        origin_ms=ORIGIN,
    )
    assert cues == [
        ChatCue("1", 1000, 2500, "alice: one"),
        ChatCue("2", 2500, 2500 + CUE_SHOW_MS, "bob: two"),
        ChatCue("3", 10_000, 10_000 + CUE_SHOW_MS, "alice: three"),
    ]


def test_cues_keep_to_the_recording() -> None:
    cues = chat_cues(
        [
            line("long before", -9000, message_id="early"),
            line("just before", -1500, message_id="before"),
            line("near the end", 5000, message_id="late"),
            line("after the end", 7000, message_id="after"),
        ],
        origin_ms=ORIGIN,
        duration_ms=6200,
    )
    # Before the start: shown from 0 for what is left of its time; after the end: not at all.
    assert [(cue.message_id, cue.start_ms, cue.end_ms) for cue in cues] == [
        ("before", 0, 2500),
        ("late", 5000, 6200),
    ]


def test_messages_of_one_millisecond_get_cues_of_their_own_in_order() -> None:
    cues = chat_cues([line("a", 1000, message_id="a"), line("b", 1000, message_id="b")], origin_ms=ORIGIN)
    assert [(cue.message_id, cue.start_ms, cue.end_ms) for cue in cues] == [("a", 1000, 1001), ("b", 1001, 5000)]


def test_timestamps_have_hours_and_milliseconds() -> None:
    assert webvtt_timestamp(0) == "00:00:00.000"
    assert webvtt_timestamp(3_723_045) == "01:02:03.045"
    assert webvtt_timestamp(100 * 3_600_000) == "100:00:00.000"


def test_the_webvtt_file_is_exactly_this() -> None:
    cues = [ChatCue("ab12", 1000, 2500, "alice: <b>hi</b> -->\nyou"), ChatCue("cd34", 2500, 6500, "bob: a\n\nb")]
    assert webvtt_document(cues) == (
        "WEBVTT\n"
        "\n"
        "ab12\n"
        "00:00:01.000 --> 00:00:02.500\n"
        "alice: &lt;b&gt;hi&lt;/b&gt; --&gt;\n"
        "you\n"
        "\n"
        "cd34\n"
        "00:00:02.500 --> 00:00:06.500\n"
        "bob: a\n"
        "&nbsp;\n"
        "b\n"
    )
    assert webvtt_document([]) == "WEBVTT\n"


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_hard_texts_round_trip_through_webvtt(text: str) -> None:
    cues = chat_cues([line(text, 500, sender="Ёжик 🦔")], origin_ms=ORIGIN)
    parsed = vtt_parse(webvtt_document(cues))
    assert [(cue.start_ms, cue.end_ms, cue.text) for cue in parsed] == [(500, 4500, f"Ёжик 🦔: {text}")]


def test_the_strict_reader_refuses_what_a_naive_writer_makes() -> None:
    with pytest.raises(VttError):
        vtt_parse("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nalice: a --> b\n")
    with pytest.raises(VttError):
        vtt_parse("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nalice: a\n\nb\n")
    with pytest.raises(VttError):
        vtt_parse("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nalice: <b>x</b>\n")


# Any text the protocol accepts: no NUL, no lone surrogates.
chat_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=60)


@given(text=chat_text, sender=st.from_regex(r"[\w.-]{1,20}", fullmatch=True))
def test_any_text_round_trips_through_webvtt(text: str, sender: str) -> None:
    cue_text = chat_cues([line(text, 0, sender=sender)], origin_ms=ORIGIN)[0].text
    [parsed] = vtt_parse(webvtt_document([ChatCue("id", 0, 1000, cue_text)]))
    # What WebVTT forces: a line break is a line break however it was typed,
    # and an empty line holds a no-break space.
    typed = f"{sender}: {text}".replace("\r\n", "\n").replace("\r", "\n")
    expected = "\n".join(part or "\u00a0" for part in typed.split("\n"))
    assert parsed.text == expected


@given(text=chat_text)
def test_any_text_round_trips_through_mov_text(text: str) -> None:
    sample = mov_text_sample(text)
    assert int.from_bytes(sample[:2], "big") == len(sample) - 2
    assert sample[2:].decode("utf-8") == text


def test_a_mov_text_sample_never_cuts_a_character() -> None:
    sample = mov_text_sample("ж" * 40_000)  # 80,000 bytes: more than a sample holds
    length = int.from_bytes(sample[:2], "big")
    assert length == len(sample) - 2 <= 0xFFFF
    assert sample[2:].decode("utf-8") == "ж" * (length // 2)
