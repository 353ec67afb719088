"""Near-duplicate edits: typos, dropped or added words, synonyms, casing, punctuation, suffixes."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from uimdata.stages.ingest import normalize
from uimdata.synth.common import (
    MIN_NEAR_SIMILARITY,
    NEAR_EDITS,
    RngLike,
    pick,
    rng_of,
    similarity,
)

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD_ROWS):
    for _c, _ch in enumerate(_row):
        near = {_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)}
        for _rr in (_r - 1, _r + 1):
            if 0 <= _rr < len(_KEYBOARD_ROWS):
                other = _KEYBOARD_ROWS[_rr]
                near.update(other[j] for j in (_c - 1, _c, _c + 1) if 0 <= j < len(other))
        _NEIGHBOURS[_ch] = "".join(sorted(near))

# "synonym-like" substitutes: close enough that the copy still says the same thing
_SYNONYMS = {
    "large": "big", "big": "large", "small": "little", "little": "small", "person": "individual",
    "people": "persons", "used": "utilized", "use": "usage", "having": "with", "make": "create",
    "made": "created", "usually": "typically", "especially": "particularly", "often": "frequently",
    "very": "highly", "quickly": "rapidly", "begin": "start", "start": "begin", "end": "finish",
    "that": "which", "which": "that", "or": "and/or", "and": "&", "something": "sth",
    "someone": "somebody", "somebody": "someone", "relating": "pertaining", "related": "connected",
    "containing": "including", "part": "portion", "act": "action", "state": "condition",
    "quality": "property", "kind": "type", "type": "kind", "sort": "kind", "area": "region",
    "region": "area", "become": "get", "cause": "make", "give": "provide", "move": "shift",
    "place": "put", "show": "display", "tiny": "small", "tall": "high", "high": "tall",
    "group": "set", "various": "several", "several": "various", "found": "located", "native": "indigenous",
    "genus": "group", "family": "clan", "plant": "herb", "tree": "shrub", "water": "H2O",
    "body": "frame", "also": "too", "about": "around", "around": "about", "before": "prior to",
    "without": "w/o", "with": "w/", "between": "among", "among": "between", "into": "in",
    "having a": "with a", "especially of": "particularly of", "one": "1", "two": "2", "three": "3",
    "characterized": "marked", "marked": "characterized", "usual": "typical", "typical": "usual",
}
_SYNONYM_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SYNONYMS), key=len, reverse=True))
                         + r")\b", re.IGNORECASE)
_FILLERS = ("the", "a", "very", "also", "really", "just", "an")
_SUFFIXES = (" (see also)", ".", " etc.", " [1]", " ...", " (rare)", " (informal)", " (n.)", "!")


def _edit_typo(t: str, rng: np.random.Generator) -> str | None:
    words = list(re.finditer(r"[A-Za-z]{3,}", t))
    if not words:
        return None
    m = pick(rng, words)
    i = int(rng.integers(m.start(), m.end() - 1))
    op = int(rng.integers(4))
    ch = t[i]
    nb = _NEIGHBOURS.get(ch.lower(), "e")
    sub = pick(rng, nb)
    sub = sub.upper() if ch.isupper() else sub
    if op == 0:  # swap adjacent
        if t[i] == t[i + 1]:
            return None
        return t[:i] + t[i + 1] + t[i] + t[i + 2:]
    if op == 1:  # delete
        return t[:i] + t[i + 1:]
    if op == 2:  # insert a neighbouring key (or double the letter)
        ins = ch if rng.random() < 0.3 else sub
        return t[:i + 1] + ins + t[i + 1:]
    return t[:i] + sub + t[i + 1:]  # substitute


def _edit_word_deletion(t: str, rng: np.random.Generator) -> str | None:
    words = list(re.finditer(r"\S+", t))
    if len(words) < 5:
        return None
    j = int(rng.integers(2, len(words)))
    return t[:words[j - 1].end()] + t[words[j].end():]


def _edit_word_insertion(t: str, rng: np.random.Generator) -> str | None:
    words = list(re.finditer(r"\S+", t))
    if len(words) < 2:
        return None
    j = int(rng.integers(1, len(words)))
    m = words[j]
    if rng.random() < 0.5:  # duplicate a word: "of the the"
        return t[:m.end()] + " " + m.group() + t[m.end():]
    return t[:m.start()] + pick(rng, _FILLERS) + " " + t[m.start():]


def _edit_synonym(t: str, rng: np.random.Generator) -> str | None:
    hits = list(_SYNONYM_RE.finditer(t))
    if not hits:
        return None
    m = pick(rng, hits)
    word = m.group()
    sub = _SYNONYMS[word.lower()]
    if word[0].isupper():
        sub = sub[0].upper() + sub[1:]
    return t[:m.start()] + sub + t[m.end():]


def _edit_casing(t: str, rng: np.random.Generator) -> str | None:
    if rng.random() < 0.5 and t[:1].isalpha():
        first = t[0].lower() if t[0].isupper() else t[0].upper()
        return first + t[1:]
    words = list(re.finditer(r"[A-Za-z]{2,}", t))
    if not words:
        return None
    m = pick(rng, words)
    w = m.group()
    new = pick(rng, (w.capitalize(), w.upper(), w.lower()))
    if new == w:
        new = w.upper() if w != w.upper() else w.lower()
    return t[:m.start()] + new + t[m.end():]


def _edit_punctuation(t: str, rng: np.random.Generator) -> str | None:
    options: list[Callable[[], str]] = []
    if t[-1:].isalnum() or t[-1:] == ")":
        options.append(lambda: t + pick(rng, (".", ";", "!")))
    if t[-1:] in ".;,!":
        options.append(lambda: t[:-1])
    colon = t.find(": ")
    if colon > 0:
        options.append(lambda: t[:colon] + pick(rng, (" -", " :", ";", " --", ",")) + t[colon + 1:])
    commas = [m.start() for m in re.finditer(r",", t)]
    if commas:
        c = pick(rng, commas)
        options.append(lambda: t[:c] + t[c + 1:])
    spaces = [m.start() for m in re.finditer(r"(?<=[a-z]) (?=[a-z])", t)]
    if spaces:
        s = pick(rng, spaces)
        options.append(lambda: t[:s] + "," + t[s:])
    if not options:
        return None
    return pick(rng, options)()


def _edit_whitespace(t: str, rng: np.random.Generator) -> str | None:
    spaces = [m.start() for m in re.finditer(" ", t)]
    if not spaces or rng.random() < 0.15:
        return t + " " if rng.random() < 0.5 else " " + t
    s = pick(rng, spaces)
    return t[:s] + pick(rng, ("  ", "   ", " \t")) + t[s + 1:]


def _edit_suffix(t: str, rng: np.random.Generator) -> str | None:
    return t + pick(rng, _SUFFIXES)


_EDIT_FUNCS: dict[str, Callable[[str, np.random.Generator], str | None]] = {
    "typo": _edit_typo, "word_deletion": _edit_word_deletion, "word_insertion": _edit_word_insertion,
    "synonym": _edit_synonym, "casing": _edit_casing, "punctuation": _edit_punctuation,
    "whitespace": _edit_whitespace, "suffix": _edit_suffix,
}
_EDIT_WEIGHTS = np.array([1.5, 1.5, 1.5, 3.0, 1.0, 1.0, 0.8, 0.8])  # in NEAR_EDITS order
_EDIT_WEIGHTS /= _EDIT_WEIGHTS.sum()
_N_EDITS_P = np.array([0.45, 0.35, 0.20])


def _apply_edits(text: str, names: Sequence[str], rng: np.random.Generator) -> str | None:
    """Apply the edits in :data:`NEAR_EDITS` order (deletion before insertion, punctuation before suffix),
    so that no edit can undo another; None when one of them is not applicable."""
    new, seen = text, [text]
    for name in sorted(names, key=NEAR_EDITS.index):
        out = _EDIT_FUNCS[name](new, rng)
        if out is None or out in seen:
            return None
        new = out
        seen.append(out)
    return new


def near_duplicate_text(text: str, rng: RngLike = None, n_edits: int | None = None) -> tuple[str, str] | None:
    """One near-duplicate of ``text``: 1-3 small edits; returns ``(new_text, kind)`` or None on failure.

    The copy differs from ``text`` after normalisation (see :func:`uimdata.stages.ingest.normalize`),
    so it is never an exact duplicate. ``kind`` names the edits applied, in :data:`NEAR_EDITS` order, joined by "+"; the result differs from
    ``text`` and keeps an Indel similarity >= :data:`MIN_NEAR_SIMILARITY` to it.
    """
    rng = rng_of(rng)
    k = int(n_edits or rng.choice(3, p=_N_EDITS_P) + 1)
    order = rng.choice(len(NEAR_EDITS), size=len(NEAR_EDITS), replace=False, p=_EDIT_WEIGHTS)
    chosen: list[str] = []
    result = None
    for e in order:
        if len(chosen) == k:
            break
        trial = [*chosen, NEAR_EDITS[int(e)]]
        out = _apply_edits(text, trial, rng)
        # an edit that only changes case or whitespace makes an exact duplicate (same normalised text)
        if out is None or normalize(out) == normalize(text) or similarity(text, out) < MIN_NEAR_SIMILARITY:
            continue
        chosen, result = trial, out
    if result is None:
        return None
    return result, "+".join(sorted(chosen, key=NEAR_EDITS.index))

