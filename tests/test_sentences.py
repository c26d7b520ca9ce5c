"""Sentence buffer: boundaries, markdown, early first clause, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voice_agent.stages.sentences import SentenceBuffer, speakable


def chunks_of(text: str, step: int = 3, **kw: int) -> list[str]:
    """Feed `text` in `step`-character deltas, as an LLM stream would."""
    kw.setdefault("first_words", 0)
    buf = SentenceBuffer(first_clause_min_chars=0, **kw) if "first_clause_min_chars" not in kw else SentenceBuffer(**kw)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += buf.push(text[i : i + step])
    return out + buf.flush()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
        ("Dr. Smith is in. He left.", ["Dr. Smith is in.", "He left."]),
        ("Use tools, e.g. a hammer. Done.", ["Use tools, e.g. a hammer.", "Done."]),
        ("He moved to the U.S. Army base. Then home.", ["He moved to the U.S. Army base.", "Then home."]),
        ("Pi is 3.14 roughly. Next.", ["Pi is 3.14 roughly.", "Next."]),
        ("Upgrade to v1.2.3 now. It is out.", ["Upgrade to v1.2.3 now.", "It is out."]),
        ("Well... I guess. Maybe... Yes.", ["Well... I guess.", "Maybe...", "Yes."]),
        ("See https://example.com/a.b?c=1 for more. Thanks.", ["See https://example.com/a.b?c=1 for more.", "Thanks."]),
        ("Mail jane.doe@mail.example.org today. Bye.", ["Mail jane.doe@mail.example.org today.", "Bye."]),
        ("Steps:\n1. Open it.\n2. Close it.", ["Steps:", "1. Open it.", "2. Close it."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("(This is an aside.) Back to it.", ["(This is an aside.)", "Back to it."]),
        ('"Really?" she asked.', ['"Really?" she asked.']),
        ("J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it.", "Yes."]),
        ("It costs $5.99 at 10 a.m. today. Ok.", ["It costs $5.99 at 10 a.m. today.", "Ok."]),
        ("no punctuation at all here", ["no punctuation at all here"]),
        ("", []),
        ("   ", []),
    ],
)
def test_boundaries(text: str, expected: list[str]) -> None:
    assert chunks_of(text) == expected
    assert chunks_of(text, step=1) == expected
    assert chunks_of(text, step=1000) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("# Title\nSome **bold** and `code`.", ["Title", "Some bold and code."]),
        ("- apples\n- pears\n* plums", ["apples", "pears", "plums"]),
        ("## Part two\n__Note__: *this* matters.", ["Part two", "Note: this matters."]),
        ("2*3 is 6.", ["2*3 is 6."]),
        ("A - dash in text stays.", ["A - dash in text stays."]),
    ],
)
def test_markdown_is_not_spoken(text: str, expected: list[str]) -> None:
    assert chunks_of(text) == expected


def test_first_chunk_may_end_at_a_clause() -> None:
    text = "The capital of France, as you may know, is Paris. It is large, old and lovely."
    chunks = chunks_of(text, first_clause_min_chars=12)
    assert chunks == ["The capital of France,", "as you may know, is Paris.", "It is large, old and lovely."]


def test_short_first_clause_is_not_cut() -> None:
    assert chunks_of("Sure, I can help.", first_clause_min_chars=12) == ["Sure, I can help."]


def test_first_words_are_released_before_a_phrase_opener() -> None:
    text = "Sure I heard you clearly and I can help with that right away. It is a simple question to answer."
    chunks = chunks_of(text, step=4, first_words=5)
    assert chunks == ["Sure I heard you clearly", "and I can help with that right away.", "It is a simple question to answer."]


def test_first_words_wait_for_the_opener_to_be_a_whole_word() -> None:
    buf = SentenceBuffer(first_words=3)
    assert buf.push("We can go see a") == []  # "a" may be the start of "about" or "ant"
    assert buf.push("nt hunt with") == []  # "with" may be "withering"
    assert buf.push(" me") == ["We can go see ant hunt"]
    assert buf.flush() == ["with me"]


def test_first_words_without_an_opener_stop_at_the_most() -> None:
    text = "Seven red apples sat there quietly yesterday evening beside nine green pears."
    assert chunks_of(text, first_words=5, first_words_max=7)[0] == "Seven red apples sat there quietly yesterday"


def test_unpunctuated_text_flushes_at_a_word_boundary() -> None:
    words = ["word%d" % i for i in range(100)]
    text = " ".join(words)
    chunks = chunks_of(text, max_chars=50)
    assert all(len(c) <= 50 for c in chunks)
    assert len(chunks) > 5
    assert " ".join(chunks).split() == words


def test_sentence_is_released_as_soon_as_the_next_word_starts() -> None:
    buf = SentenceBuffer(first_clause_min_chars=0)
    assert buf.push("Hello there.") == []
    assert buf.push(" H") == ["Hello there."]
    assert buf.push("ow are you?") == []
    assert buf.flush() == ["How are you?"]


def test_buffer_is_reusable_after_flush() -> None:
    buf = SentenceBuffer()
    buf.push("One. Two")
    buf.flush()
    assert buf.push("Three. F") == ["Three."]


# --- properties ----------------------------------------------------------------

_words = st.sampled_from(
    "hello the U.S. Dr. e.g. 3.14 v1.2.3 ... ok, yes! why? (aside) \"quoted.\" "
    "a.m. **bold** `code` - # 1. x@y.com http://a.b/c. word Then And".split(" ")
)
_seps = st.sampled_from([" ", " ", " ", "\n", "  ", "\n\n"])
_texts = st.lists(st.tuples(_words, _seps), max_size=40).map(lambda xs: "".join(w + s for w, s in xs))


@settings(max_examples=300, deadline=None)
@given(text=_texts, cuts=st.lists(st.integers(1, 7), min_size=1, max_size=50), first=st.sampled_from([0, 5, 12]))
def test_chunks_join_back_to_the_speakable_text(text: str, cuts: list[int], first: int) -> None:
    buf = SentenceBuffer(max_chars=40, first_clause_min_chars=first)
    chunks: list[str] = []
    i = 0
    for n in cuts * 20:
        if i >= len(text):
            break
        chunks += buf.push(text[i : i + n])
        i += n
    chunks += buf.push(text[i:])
    chunks += buf.flush()
    assert all(c.strip() for c in chunks), "no empty chunk"
    assert " ".join(chunks) == speakable(text), "nothing lost, nothing split"
