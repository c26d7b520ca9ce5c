"""Normalization between the sentence buffer and TTS: table-driven, pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voice_agent.stages.normalize import MAX_CHUNK_CHARS, normalize, validate
from voice_agent.stages.numbers import cardinal, decimal, ordinal, year

NUMBERS = [
    (0, "zero"),
    (7, "seven"),
    (13, "thirteen"),
    (40, "forty"),
    (42, "forty-two"),
    (100, "one hundred"),
    (101, "one hundred one"),
    (999, "nine hundred ninety-nine"),
    (1000, "one thousand"),
    (1234, "one thousand two hundred thirty-four"),
    (20_000, "twenty thousand"),
    (1_000_001, "one million one"),
    (-8, "minus eight"),
]


@pytest.mark.parametrize(("n", "words"), NUMBERS)
def test_cardinal(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (8, "eighth"), (9, "ninth"), (12, "twelfth"),
     (20, "twentieth"), (21, "twenty-first"), (22, "twenty-second"), (100, "one hundredth"), (103, "one hundred third")],
)
def test_ordinal(n: int, words: str) -> None:
    assert ordinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [(1999, "nineteen ninety-nine"), (2000, "two thousand"), (2005, "two thousand five"), (2010, "twenty ten"),
     (2024, "twenty twenty-four"), (1900, "nineteen hundred"), (1905, "nineteen oh five"), (1066, "ten sixty-six")],
)
def test_year(n: int, words: str) -> None:
    assert year(n) == words


def test_decimal() -> None:
    assert decimal("3.14") == "three point one four"
    assert decimal("1,250.5") == "one thousand two hundred fifty point five"
    assert decimal("-0.25") == "minus zero point two five"


# What an LLM writes -> what the voice should say. Real shapes of LLM replies.
EXAMPLES = [
    # money
    ("It costs $3.50 today.", "It costs three dollars and fifty cents today."),
    ("That's $1 each.", "That's one dollar each."),
    ("The total is $1,200.", "The total is one thousand two hundred dollars."),
    ("Revenue was $2.5 million.", "Revenue was two point five million dollars."),
    ("About $40k a year.", "About forty thousand dollars a year."),
    ("A coffee is €4.20 there.", "A coffee is four euros and twenty cents there."),
    ("It was £1.01.", "It was one pound and one penny."),
    ("Around ¥500.", "Around five hundred yen."),
    # percentages
    ("Up 45% this year.", "Up forty-five percent this year."),
    ("A 2.5 % rise.", "A two point five percent rise."),
    ("Battery at 100%.", "Battery at one hundred percent."),
    # times
    ("Meet at 3:30 pm.", "Meet at three thirty P M."),
    ("The train leaves at 14:05 sharp.", "The train leaves at fourteen oh five sharp."),
    ("Wake me at 7:00.", "Wake me at seven o'clock."),
    ("Open from 9am to 5pm daily.", "Open from nine A M to five P M daily."),
    ("It starts at 8:15 a.m. tomorrow.", "It starts at eight fifteen A M. tomorrow."),
    # dates
    ("Due on 2024-03-15.", "Due on March fifteenth, twenty twenty-four."),
    ("Born 7/4/1999.", "Born July fourth, nineteen ninety-nine."),
    ("See you March 15th.", "See you March fifteenth."),
    ("Fireworks on 4 July.", "Fireworks on the fourth of July."),
    ("It ended in 1945.", "It ended in nineteen forty-five."),
    ("Back in 2008 it rained.", "Back in two thousand eight it rained."),
    # ordinals and plain numbers
    ("This is the 22nd try.", "This is the twenty-second try."),
    ("I have 3 cats.", "I have three cats."),
    ("About 1,234,567 people live there.", "About one million two hundred thirty-four thousand five hundred sixty-seven people live there."),
    ("Pi is roughly 3.14.", "Pi is roughly three point one four."),
    ("It was -3 outside.", "It was minus three outside."),
    ("Add 1/2 a cup.", "Add one half a cup."),
    ("Room 101 is free.", "Room one hundred one is free."),
    # units
    ("Drive 5 km north.", "Drive five kilometers north."),
    ("It weighs 1 kg.", "It weighs one kilogram."),
    ("It was -5°C last night.", "It was minus five degrees Celsius last night."),
    ("Set the oven to 350°F.", "Set the oven to three hundred fifty degrees Fahrenheit."),
    ("The limit is 65 mph.", "The limit is sixty-five miles per hour."),
    ("You need 16 GB of memory.", "You need sixteen gigabytes of memory."),
    ("Add 250 ml of water.", "Add two hundred fifty milliliters of water."),
    ("A 6 ft fence.", "A six feet fence."),
    ("It took 300 ms.", "It took three hundred milliseconds."),
    # abbreviations
    ("Dr. Smith will see you.", "Doctor Smith will see you."),
    ("Mr. and Mrs. Jones", "Mister and Missus Jones"),
    ("Fruit, e.g. apples.", "Fruit, for example apples."),
    ("Pens, paper, etc. are there.", "Pens, paper, et cetera are there."),
    ("It's cats vs. dogs.", "It's cats versus dogs."),
    ("He lives on Main St. now.", "He lives on Main Street now."),
    ("We visited St. Louis.", "We visited Saint Louis."),
    # symbols
    ("Rock & roll.", "Rock and roll."),
    ("2 + 2 = 4.", "two plus two equals four."),
    ("Email me @ home.", "Email me at home."),
    ("Yes/no questions.", "Yes or no questions."),
    ("We're #1!", "We're number one!"),
    ("Visit https://www.example.com/docs for more.", "Visit example dot com for more."),
    # emoji, other scripts, code
    ("Great job! 🎉👍", "Great job!"),
    ("I ❤️ it.", "I it."),
    ("你好, hello there.", "hello there."),
    ("Call `foo[0]` now.", "Call foo zero now."),
    # left alone
    ("Nothing to change here.", "Nothing to change here."),
    ("Café au lait, naïve.", "Café au lait, naïve."),
]


@pytest.mark.parametrize(("written", "spoken"), EXAMPLES)
def test_normalize(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


@pytest.mark.parametrize("text", ["🎉", "🎉 👍 🙂", "---", "...", "```", "  ", "你好世界", "* * *"])
def test_chunks_with_nothing_speakable_are_dropped(text: str) -> None:
    assert validate(text) is None


def test_long_chunks_are_capped_at_a_word() -> None:
    text = "word " * 200
    out = validate(text, max_chars=100)
    assert out is not None and len(out) <= 100 and out.endswith("word")
    assert validate("x" * 1000) is not None and len(validate("x" * 1000) or "") == MAX_CHUNK_CHARS


@given(st.text(max_size=200))
def test_validate_never_fails_and_leaves_no_digits_or_emoji(text: str) -> None:
    out = validate(text)
    if out is not None:
        assert len(out) <= MAX_CHUNK_CHARS
        assert not any(ch.isdigit() for ch in out if ch.isascii()), out
        assert any(ch.isalnum() for ch in out)
