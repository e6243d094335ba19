"""Plain-text views of records and the text checks a report needs (no tokenizer).

`record_text` flattens any record (prompt/completion, chat, preference, text, or an
evaluation item) into one string so that duplicates and contamination can be measured
the same way for every format. The checks here are cheap, per-record and deterministic.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from typing import Any

_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
# Mojibake: UTF-8 bytes decoded as Latin-1/cp1252 ("Ã©" for "é", "â€™" for "’").
_MOJIBAKE = re.compile(r"(?:Ã[\u0080-\u00bf]|Â[\u0080-\u00bf\s]|â€[\u0080-\u00bf\u2018-\u203a])")


def strings_of(value: Any) -> list[str]:
    """Every string inside a JSON-like value, in a stable order (dict keys sorted)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        out: list[str] = []
        for key in sorted(value):
            if key != "role":  # roles are structure, not content
                out += strings_of(value[key])
        return out
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings_of(v)]
    return []


def record_text(record: dict[str, Any]) -> str:
    """All text of a record joined by newlines (roles left out)."""
    return "\n".join(strings_of(record))


def normalise(text: str) -> str:
    """Case-folded, NFKC, whitespace-collapsed text: what "exact duplicate" compares."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def text_hash(text: str) -> str:
    return hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()


def text_problems(record: dict[str, Any]) -> list[str]:
    """Problems of one record: empty/whitespace-only fields, replacement chars, mojibake, control chars."""
    problems = []
    for s in strings_of(record):
        if not s:
            problems.append("empty field")
        elif not s.strip():
            problems.append("whitespace-only field")
        elif s != s.strip():
            problems.append("leading/trailing whitespace")
        if "\ufffd" in s:
            problems.append("U+FFFD replacement character (bad decoding)")
        if _MOJIBAKE.search(s):
            problems.append("mojibake (UTF-8 read as Latin-1)")
        if any(unicodedata.category(c) == "Cc" and c not in "\n\t\r" for c in s):
            problems.append("control character")
    return sorted(set(problems))


def script_of(char: str) -> str | None:
    """Coarse writing system of a letter (from its Unicode name), None for non-letters."""
    if not char.isalpha():
        return None
    if char.isascii():
        return "Latin (ASCII)"
    name = unicodedata.name(char, "")
    for script in ("LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "HANGUL", "HIRAGANA",
                   "KATAKANA", "CJK", "THAI"):
        if name.startswith(script) or f" {script} " in f" {name} ":
            return {"LATIN": "Latin (accented)", "CJK": "CJK ideographs"}.get(script, script.title())
    return "other"


def charset_summary(texts: list[str]) -> dict[str, Any]:
    """Share of letters per writing system and of records that are pure ASCII.

    This is a script summary, not language identification: it tells English from
    Russian or Chinese, not English from German.
    """
    scripts: Counter[str] = Counter()
    ascii_records = 0
    for t in texts:
        ascii_records += t.isascii()
        scripts.update(s for s in map(script_of, t) if s)
    total = sum(scripts.values()) or 1
    return {
        "ascii_records": ascii_records,
        "letters_by_script": {k: round(v / total, 4) for k, v in scripts.most_common()},
        "dominant_script": scripts.most_common(1)[0][0] if scripts else None,
    }
