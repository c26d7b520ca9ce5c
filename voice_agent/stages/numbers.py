"""Numbers as English words: cardinals, ordinals, years, decimals. Pure functions.

    cardinal(1234)   -> "one thousand two hundred thirty-four"
    ordinal(22)      -> "twenty-second"
    year(2024)       -> "twenty twenty-four"
    decimal("3.14")  -> "three point one four"
"""

from __future__ import annotations

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _below_100(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest or not hundreds:
        words.append(_below_100(rest))
    return " ".join(words)


def cardinal(n: int) -> str:
    if n < 0:
        return "minus " + cardinal(-n)
    if n >= 10**15:
        return digits(str(n))  # nobody says a number this long as a number
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            count, n = divmod(n, value)
            words.append(f"{cardinal(count)} {name}")
    if n or not words:
        words.append(_below_1000(n))
    return " ".join(words)


def ordinal(n: int) -> str:
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    pre, dash, unit = last.rpartition("-")
    if unit in _ORDINAL_WORDS:
        unit = _ORDINAL_WORDS[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return head + sep + pre + dash + unit


def year(n: int) -> str:
    """How a year is read: 1999 nineteen ninety-nine, 2005 two thousand five, 1900 nineteen hundred."""
    if not 1000 <= n <= 2099:
        return cardinal(n)
    century, rest = divmod(n, 100)
    if 2000 <= n < 2010:
        return cardinal(n)
    if rest == 0:
        return f"{cardinal(century)} hundred" if century % 10 else cardinal(n)
    if rest < 10:
        return f"{cardinal(century)} oh {_ONES[rest]}"
    return f"{cardinal(century)} {_below_100(rest)}"


def digits(text: str) -> str:
    return " ".join(_ONES[int(d)] for d in text if d.isdigit())


def decimal(text: str) -> str:
    """A number as written ("1,234.5", "-0.25") in words."""
    text = text.replace(",", "")
    sign = ""
    if text.startswith("-"):
        sign, text = "minus ", text[1:]
    whole, _, frac = text.partition(".")
    words = cardinal(int(whole or "0"))
    if frac:
        words += " point " + digits(frac)
    return sign + words
