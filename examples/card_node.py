"""A node with no LLM: it looks up the playing cards you name and answers in pieces.

    voice-agent demo --node examples.card_node:card_facts --input tests/speech/ps_cards_003.wav
    python examples/card_node.py --input tests/speech/ps_cards_005.wav

Each piece it yields flows on at once: the first card is being spoken while
the next is looked up. No LLM is called, so the answer is instant and exact.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator

from voice_agent import Turn

RANKS = {"ace": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
         "jack": 11, "queen": 12, "king": 13}  # fmt: skip
NAMES = {value: name for name, value in RANKS.items()}
SUITS = {"clubs": "black", "spades": "black", "hearts": "red", "diamonds": "red"}
CARD = re.compile(r"\b(\w+) of (clubs|spades|hearts|diamonds)\b")


def cards_in(text: str) -> list[tuple[str, str]]:
    """The cards named in `text` ("7 of clubs" or "seven of clubs"), as (rank name, suit)."""
    found = []
    for rank, suit in CARD.findall(text.lower()):
        name = NAMES.get(int(rank)) if rank.isdigit() else rank
        if name in RANKS:
            found.append((name, suit))
    return found


async def card_facts(turn: Turn) -> AsyncIterator[str]:
    cards = cards_in(turn.user_text)
    if not cards:
        yield "I only know playing cards. Name one, like the seven of clubs."
        return
    for rank, suit in cards:
        yield f"The {rank} of {suit} "
        yield f"is a {SUITS[suit]} card worth {RANKS[rank]} points. "
    if len(cards) > 1:
        yield f"Together they are worth {sum(RANKS[rank] for rank, _ in cards)} points."


if __name__ == "__main__":
    from voice_agent.app.cli import main

    sys.exit(main(["demo", "--node", "__main__:card_facts", *sys.argv[1:]]))
