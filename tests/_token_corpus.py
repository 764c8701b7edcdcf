"""A seeded, offline text corpus for the tokenizer agreement proof: many scripts, code, whitespace.

``corpus()`` returns about 1.2 million characters as documents of up to a few thousand
characters each: English-like prose with contractions and numbers, CJK (Han, kana, Hangul),
Arabic with diacritics, Hebrew, Cyrillic, Greek, Devanagari, Thai, Ethiopic, Georgian, emoji
(ZWJ sequences, skin tones, flags, keycaps), source code (Python, JSON, HTML, shell), runs of
mixed whitespace, and random code points from every plane (no lone surrogates: they have no
UTF-8 form and no request can carry them). The same seed always gives the same corpus.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "han": ((0x4E00, 0x9FFF), (0x3400, 0x4DBF)),
    "kana": ((0x3041, 0x3096), (0x30A1, 0x30FA)),
    "hangul": ((0xAC00, 0xD7A3),),
    "arabic": ((0x0621, 0x064A), (0x064B, 0x0652), (0x0660, 0x0669)),
    "hebrew": ((0x05D0, 0x05EA), (0x05B0, 0x05BC)),
    "cyrillic": ((0x0410, 0x044F),),
    "greek": ((0x0391, 0x03A9), (0x03B1, 0x03C9), (0x0386, 0x038F)),
    "devanagari": ((0x0905, 0x0939), (0x093E, 0x094D)),
    "thai": ((0x0E01, 0x0E3A), (0x0E40, 0x0E4E)),
    "ethiopic": ((0x1200, 0x135A),),
    "georgian": ((0x10D0, 0x10FA),),
    "latin_ext": ((0x00C0, 0x024F),),
}
"""Alphabets by code point ranges, for words of random letters."""

_SYLLABLES = "ka to re mi an ing the tion pro sub ver ly ex pre con un dis er est ous ment".split()  # noqa: SIM905
_PUNCT = list(
    ".,;:!?-()[]{}\"'/\\@#$%^&*_+=<>|~`\u2026\u2014\u2013\u00ab\u00bb\u201c\u201d\u2018\u2019\u3001\u3002\uff0c\uff01\uff1f"
)
_CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'LL"]
_SPACES = [" ", " ", " ", "\t", "\n", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", "\x0b", "\x0c"]
_EMOJI_RANGES = ((0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF))
_ZWJ, _VS16 = "\u200d", "\ufe0f"


def _char(rng: random.Random, ranges: tuple[tuple[int, int], ...]) -> str:
    low, high = rng.choice(ranges)
    return chr(rng.randint(low, high))


def _spaces(rng: random.Random) -> str:
    return "".join(rng.choice(_SPACES) for _ in range(rng.choice((1, 1, 1, 2, 3, 7, 20, 41))))


def _number(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 14)))
    return rng.choice((digits, f"{digits}.{rng.randint(0, 999)}", f"-{digits}", f"{digits}%"))


def _prose(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(40, 300)):
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))
        roll = rng.random()
        if roll < 0.1:
            word = word.capitalize() + rng.choice(_CONTRACTIONS)
        elif roll < 0.18:
            word = _number(rng)
        elif roll < 0.22:
            word = word.upper()
        out.append(word + (rng.choice(_PUNCT) if rng.random() < 0.15 else ""))
        out.append(_spaces(rng) if rng.random() < 0.1 else " ")
    return "".join(out)


def _script(rng: random.Random, name: str) -> str:
    ranges = SCRIPTS[name]
    spaced = name not in {"han", "kana", "thai"}
    out = []
    for _ in range(rng.randint(30, 400)):
        out.append("".join(_char(rng, ranges) for _ in range(rng.randint(1, 9))))
        if rng.random() < 0.1:
            out.append(rng.choice(_PUNCT))
        if spaced or rng.random() < 0.1:
            out.append(_spaces(rng) if rng.random() < 0.1 else " ")
        if rng.random() < 0.03:
            out.append(_number(rng))
    return "".join(out)


def _emoji(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(20, 200)):
        roll = rng.random()
        base = _char(rng, _EMOJI_RANGES)
        if roll < 0.2:
            base += chr(rng.randint(0x1F3FB, 0x1F3FF))  # skin tone
        elif roll < 0.35:
            base += _ZWJ + _char(rng, _EMOJI_RANGES) + (_VS16 if rng.random() < 0.5 else "")
        elif roll < 0.45:
            base = chr(rng.randint(0x1F1E6, 0x1F1FF)) + chr(rng.randint(0x1F1E6, 0x1F1FF))
        elif roll < 0.5:
            base = rng.choice("0123456789#*") + _VS16 + "\u20e3"  # keycap
        out.append(base)
        out.append(rng.choice(("", "", " ", _spaces(rng), rng.choice(_SYLLABLES))))
    return "".join(out)


_CODE = (
    'def {a}({b}, {c}=None):\n    """{d}."""\n    if {b} is None:\n        return {n}\n'
    "    for {c} in range({n}):\n\t\t{a}_{c} = {b}[{c}] ** 2  # {d}\n    return {b}\n\n",
    '{{"{a}": {n}, "{b}": [{n}, {n}.5, null, true], "{c}": {{"{d}": "{b}\\n{c}"}}}}\n',
    '<div class="{a}-{b}" id="{c}">\n  <p>{d} &amp; {b}</p>\n  <!-- {c} -->\n</div>\n',
    "for {a} in $(ls /tmp/{b}); do\n  echo \"${{{a}}}\" | grep -E '^{c}[0-9]+$' >> {d}.log\ndone\n",
    "const {a} = async ({b}) => {{\n    await fetch(`/api/{c}/${{{b}}}`);\n}};\r\n",
    "SELECT {a}.{b}, COUNT(*) FROM {c} WHERE {d} >= {n} GROUP BY 1;\n",
)


def _code(rng: random.Random) -> str:
    def name() -> str:
        return "_".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3)))

    out = []
    for _ in range(rng.randint(5, 40)):
        template = rng.choice(_CODE)
        text = template.format(a=name(), b=name(), c=name(), d=name(), n=rng.randint(0, 10**6))
        out.append(text.replace("    ", " " * rng.choice((2, 4, 8))))
    return "".join(out)


def _whitespace(rng: random.Random) -> str:
    return "".join(_spaces(rng) + rng.choice(_SYLLABLES) for _ in range(rng.randint(20, 200)))


def _any_code_points(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(50, 500)):
        point = rng.choice((rng.randint(0x20, 0xD7FF), rng.randint(0xE000, 0x10FFFF)))
        out.append(chr(point))
    return "".join(out)


def _script_kinds() -> list[Callable[[random.Random], str]]:
    return [functools.partial(_script, name=name) for name in SCRIPTS]


def _mixed(rng: random.Random) -> str:
    parts: list[Callable[[random.Random], str]] = [_prose, _emoji, _code, _whitespace]
    scripts = _script_kinds()
    return "".join(rng.choice(parts + scripts)(rng)[: rng.randint(10, 400)] for _ in range(8))


def corpus(min_chars: int = 1_200_000, seed: int = 14) -> list[str]:
    """Documents totalling at least ``min_chars`` characters, the same for the same seed."""
    rng = random.Random(seed)
    kinds: list[Callable[[random.Random], str]] = [
        _prose,
        _emoji,
        _code,
        _whitespace,
        _any_code_points,
        _mixed,
        *_script_kinds(),
    ]
    documents: list[str] = []
    total = 0
    while total < min_chars:
        document = rng.choice(kinds)(rng)
        documents.append(document)
        total += len(document)
    return documents
