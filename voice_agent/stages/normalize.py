"""Validation and normalization: a sentence chunk as a voice should say it.

Sits between the sentence buffer and TTS. An LLM writes "$3.50", "45%",
"3:30 pm", "2024-03-15", "5 km", "Dr. Lee" and emoji; a text-to-speech
voice reads those badly or not at all. `normalize` rewrites them as words;
`validate` also drops chunks with nothing speakable and caps their length.

Pure functions, table-tested (tests/test_normalize.py). Each rule is one
regex and one function, applied in the order below: money before plain
numbers, dates before fractions, and so on.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace

from ..core.events import SentenceChunk
from .numbers import cardinal, decimal, digits, ordinal, year

log = logging.getLogger(__name__)

MAX_CHUNK_CHARS = 400
NUM = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?"

MONTHS = "January February March April May June July August September October November December".split()

_CURRENCIES = {"$": ("dollar", "cent"), "€": ("euro", "cent"), "£": ("pound", "penny"), "¥": ("yen", "")}
_SCALE_WORDS = {"k": "thousand", "K": "thousand", "m": "million", "M": "million", "bn": "billion", "B": "billion"}

# unit: (singular, plural)
UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "m/s": ("meter per second", "meters per second"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "l": ("liter", "liters"),
    "L": ("liter", "liters"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"),
    "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "ms": ("millisecond", "milliseconds"),
    "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
}

ABBREVIATIONS = {
    "Dr.": "Doctor",
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Ms.": "Miz",
    "Prof.": "Professor",
    "Jr.": "Junior",
    "Sr.": "Senior",
    "e.g.": "for example",
    "i.e.": "that is",
    "etc.": "et cetera",
    "vs.": "versus",
    "approx.": "approximately",
    "Ave.": "Avenue",
    "Mt.": "Mount",
    "No.": "number",
}

SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "×": " times ", "÷": " divided by "}
_FRACTIONS = {(1, 2): "one half", (1, 3): "one third", (2, 3): "two thirds", (1, 4): "one quarter", (3, 4): "three quarters"}


def _money(m: re.Match[str]) -> str:
    unit, sub = _CURRENCIES[m["cur"]]
    amount, scale = m["amount"].replace(",", ""), m["scale"] or m["word"]  # "$2.5M", "$2.5 million"
    if scale:
        return f"{decimal(amount)} {_SCALE_WORDS.get(scale, scale)} {unit}s"
    whole, _, frac = amount.partition(".")
    n = int(whole)
    words = f"{cardinal(n)} {unit}{'' if n == 1 or unit == 'yen' else 's'}"
    cents = int((frac + "00")[:2]) if frac else 0
    if cents and sub:
        plural = "pence" if sub == "penny" else sub + "s"
        words += f" and {cardinal(cents)} {sub if cents == 1 else plural}"
    return words


def _unit(m: re.Match[str]) -> str:
    singular, plural = UNITS[m["unit"]]
    return f"{decimal(m['n'])} {singular if m['n'] in ('1', '-1') else plural}"


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m["h"]), int(m["min"])
    suffix = (m["ampm"] or "").lower().replace(".", "").replace(" ", "")
    spoken_suffix = {"am": " A M", "pm": " P M"}.get(suffix, "") + _kept_stop(m)
    if minute == 0:
        words = cardinal(hour) + (spoken_suffix or (" o'clock" if hour <= 12 else " hundred"))
        return words.strip()
    mins = f"oh {cardinal(minute)}" if minute < 10 else cardinal(minute)
    return f"{cardinal(hour)} {mins}{spoken_suffix}"


def _kept_stop(m: re.Match[str]) -> str:
    """ "p.m." may also end the sentence: keep its full stop as one."""
    return "." if m[0].endswith(".") else ""


def _iso_date(m: re.Match[str]) -> str:
    y, mo, d = int(m["y"]), int(m["mo"]), int(m["d"])
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m[0]
    return f"{MONTHS[mo - 1]} {ordinal(d)}, {year(y)}"


def _us_date(m: re.Match[str]) -> str:
    mo, d, y = int(m["mo"]), int(m["d"]), int(m["y"])
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m[0]
    y = y + 2000 if y < 100 else y
    return f"{MONTHS[mo - 1]} {ordinal(d)}, {year(y)}"


def _month_day(m: re.Match[str]) -> str:
    return f"{m['month']} {ordinal(int(m['d']))}"


def _day_month(m: re.Match[str]) -> str:
    return f"the {ordinal(int(m['d']))} of {m['month']}"


def _fraction(m: re.Match[str]) -> str:
    a, b = int(m["a"]), int(m["b"])
    if (a, b) in _FRACTIONS:
        return _FRACTIONS[(a, b)]
    return f"{cardinal(a)} over {cardinal(b)}"


def _number(m: re.Match[str]) -> str:
    text = m[0]
    if re.fullmatch(r"1\d{3}|20\d{2}", text):
        return year(int(text))
    return decimal(text)


def _url(m: re.Match[str]) -> str:
    host = m["host"].removeprefix("www.")
    return " dot ".join(host.split("."))


_MONTH_RE = "|".join(MONTHS) + "|" + "|".join(mo[:3] for mo in MONTHS)
_UNIT_RE = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_ABBR_RE = "|".join(re.escape(a) for a in ABBREVIATIONS)

Rule = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]
RULES: list[Rule] = [
    (re.compile(r"https?://(?P<host>[\w.-]+)\S*"), _url),
    (re.compile(r"(?<!\w)(?:" + _ABBR_RE + r")(?=\s|$)"), lambda m: ABBREVIATIONS[m[0]]),
    (re.compile(r"\bSt\.(?=\s+[A-Z])"), "Saint"),
    (re.compile(r"\bSt\.(?=\s|$)"), "Street"),
    (re.compile(r"(?P<cur>[$€£¥])\s?(?P<amount>\d[\d,]*(?:\.\d+)?)(?:\s?(?P<scale>bn|[kKmMB])\b|\s(?P<word>million|billion|thousand)\b)?"), _money),
    (re.compile(r"(?P<n>" + NUM + r")\s?%"), lambda m: f"{decimal(m['n'])} percent"),
    (re.compile(r"\b(?P<h>[01]?\d|2[0-3]):(?P<min>[0-5]\d)(?:\s?(?P<ampm>[AaPp]\.?\s?[Mm]\.?)(?!\w))?"), _time),
    (re.compile(r"\b(?P<h>1[0-2]|[1-9])\s?(?P<ampm>[AaPp]\.?[Mm]\.?)(?!\w)"), lambda m: f"{cardinal(int(m['h']))} {m['ampm'][0].upper()} M{_kept_stop(m)}"),
    (re.compile(r"\b(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})\b"), _iso_date),
    (re.compile(r"\b(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}|\d{2})\b"), _us_date),
    (re.compile(r"\b(?P<month>" + _MONTH_RE + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b"), _month_day),
    (re.compile(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?P<month>" + "|".join(MONTHS) + r")\b"), _day_month),
    (re.compile(r"\b(?P<n>\d+)(?:st|nd|rd|th)\b"), lambda m: ordinal(int(m["n"]))),
    (re.compile(r"(?<![\w.])(?P<n>" + NUM + r")\s?(?P<unit>" + _UNIT_RE + r")(?![\w])"), _unit),
    (re.compile(r"(?<![\w/])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?![\w/])"), _fraction),
    (re.compile(r"(?<![\w.])" + NUM + r"(?![\w])"), _number),
    (re.compile(r"\band/or\b"), "and or"),
    (re.compile(r"(?<=\w)/(?=\w)"), " or "),
    (re.compile("[" + re.escape("".join(SYMBOLS)) + "]"), lambda m: SYMBOLS[m[0]]),
    (re.compile(r"#(?=\w)"), "number "),
    # Digits still glued to letters ("mp3", "3D", "B2B"): said as a number, or digit by digit if long.
    (re.compile(r"\d+"), lambda m: f" {cardinal(int(m[0])) if len(m[0]) <= 4 else digits(m[0])} "),
]

# Marks that carry no sound and break some voices: code brackets, stray markup.
_SILENT = re.compile(r"[{}\[\]<>|\\^`_~*#]")


def _sayable(ch: str) -> bool:
    """Characters an English voice can say: Latin letters, digits, punctuation, spaces."""
    if ch.isascii():
        return True
    cat = unicodedata.category(ch)
    if cat.startswith("L"):
        return unicodedata.name(ch, "").startswith("LATIN")
    return cat.startswith(("P", "Z")) or ch in "°€£¥×÷"


def normalize(text: str) -> str:
    """`text` with numbers, money, dates, units, abbreviations and symbols as words; emoji and other scripts dropped."""
    text = "".join(ch if _sayable(ch) else " " for ch in unicodedata.normalize("NFC", text))
    for pattern, repl in RULES:
        text = pattern.sub(repl, text)
    text = _SILENT.sub(" ", text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    return " ".join(text.split()).lstrip(",;: ")


def validate(text: str, max_chars: int = MAX_CHUNK_CHARS) -> str | None:
    """A chunk ready for TTS, or None when nothing in it can be said."""
    spoken = normalize(text)
    if not any(ch.isalnum() for ch in spoken):
        return None
    if len(spoken) > max_chars:
        cut = spoken.rfind(" ", 0, max_chars)
        log.warning("chunk of %d characters capped at %d", len(spoken), max_chars)
        spoken = spoken[: cut if cut > 0 else max_chars]
    return spoken


def validate_sentence(sentence: SentenceChunk) -> SentenceChunk | None:
    """The sentence made speakable (numbers, money, dates as words), or None to drop it."""
    text = validate(sentence.text)
    if text is None:
        log.info("nothing speakable in %r: dropped", sentence.text)
        return None
    return replace(sentence, text=text)
