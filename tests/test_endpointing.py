"""Reading a transcript as a finished turn (pure)."""

import pytest

from voice_agent.stages.endpointing import looks_complete


@pytest.mark.parametrize(
    "text, done",
    [
        ("Go forward 10 meters.", True),
        ("What time is it?", True),
        ("Stop!", True),
        ("29340.", True),
        ('He said "yes."', True),
        ("And so my fellow Americans,", False),
        ("I was thinking that...", False),
        ("Tell me about the", False),
        ("Tell me about the.", False),  # Whisper's full stop after a dangling word
        ("How much there might.", False),
        ("10 of clubs", False),  # no punctuation: Whisper was not sure either
        ("", False),
    ],
)
def test_looks_complete(text: str, done: bool) -> None:
    assert looks_complete(text) is done
