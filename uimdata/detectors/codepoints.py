"""Long texts as numpy arrays of code points, each with its lexicon classes: the per-character scans of
the text rules (letters, tokens, runs) as array operations instead of regular expressions.

A character's classes are bits of one lookup table over code points. Each bit is the set of characters
that a single-character pattern of :mod:`uimdata.detectors.lexicon` matches, found by running that
pattern over every BMP character (once, on first use; characters above the BMP are classified one by
one, with the same patterns), so a table lookup agrees with the pattern by construction. Tokens are
maximal runs of non-space characters, exactly the words of ``str.split()``.

The texts of a batch are scanned together, end to end with a space between two texts (so that no
token or run crosses from one to the next): every question (the tokens with a class, the long runs,
...) is answered for the whole batch with a few array operations, then read per text. Per text,
:class:`CodePoints` answers what the rules ask; :class:`~uimdata.detectors.text_stats.TextStats`
uses it above :data:`LONG_TEXT_CHARS` characters and the patterns themselves below: both give the
same answers.
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache

import numpy as np

from uimdata.detectors.lexicon import CJK_RE, DIGIT_RE, HARD_SYMBOL_RE, LETTER_RE, WORD_LETTER_RE

#: texts from this many characters are scanned as code points
LONG_TEXT_CHARS = 1000
#: texts are scanned together up to about this many characters (bounds the arrays' memory)
BATCH_CHARS = 1 << 21

# the class bits
LETTER = 1  # LETTER_RE: a letter or combining mark
WORD_LETTER = 2  # WORD_LETTER_RE: a letter that CHAR_RUN_RE repeats
SPACE = 4  # str.isspace(): what separates tokens
NOSPACE = 8  # CJK_RE: a script written without spaces
HARD = 16  # HARD_SYMBOL_RE
DIGIT = 32  # DIGIT_RE: an ASCII digit
NONHEX = 64  # neither a space nor a character a hex-like word holds (HEX_WORD_RE)

_CLASS_RES = ((LETTER, LETTER_RE), (WORD_LETTER, WORD_LETTER_RE), (SPACE, re.compile(r"\s")),
              (NOSPACE, CJK_RE), (HARD, HARD_SYMBOL_RE), (DIGIT, DIGIT_RE),
              (NONHEX, re.compile(r"[^\s0-9a-fA-FxX,;.]")))
_BMP = 0x10000
#: spans of characters, each in its text: ``(starts, lengths, per-text bounds)``
Spans = tuple[list[int], list[int], list[int]]


@lru_cache(maxsize=1)
def _bmp_table() -> np.ndarray:
    """The classes of every BMP code point, from the patterns themselves."""
    chars = "".join(map(chr, range(_BMP)))
    table = np.zeros(_BMP, dtype=np.uint8)
    for bit, rx in _CLASS_RES:
        table[[m.start() for m in rx.finditer(chars)]] |= bit
    return table


@lru_cache(maxsize=4096)
def _astral_class(cp: int) -> int:
    c = chr(cp)
    return sum(bit for bit, rx in _CLASS_RES if rx.fullmatch(c))


def _runs(mask: np.ndarray, min_len: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` of the maximal runs of True in ``mask`` at least ``min_len`` long."""
    padded = np.zeros(len(mask) + 2, dtype=bool)
    padded[1:-1] = mask
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    if min_len > 1:
        keep = ends - starts >= min_len
        starts, ends = starts[keep], ends[keep]
    return starts, ends


def codepoints_of(texts: list[str]) -> list[CodePoints]:
    """Each text's :class:`CodePoints`, the texts scanned together (about :data:`BATCH_CHARS` at a time)."""
    out: list[CodePoints] = []
    i = 0
    while i < len(texts):
        j, size = i, 0
        while j < len(texts) and (j == i or size + len(texts[j]) <= BATCH_CHARS):
            size += len(texts[j]) + 1
            j += 1
        batch = _Batch(texts[i:j])
        out.extend(CodePoints(batch, k) for k in range(j - i))
        i = j
    return out


class _Batch:
    """Texts end to end, a space between two, as code points and classes; the answers of
    :class:`CodePoints` for all of them at once (each computed on first use, then read per text)."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        joined = " ".join(texts)
        lens = np.fromiter(map(len, texts), dtype=np.intp, count=len(texts))
        self.starts = np.concatenate(([0], np.cumsum(lens + 1)[:-1]))
        self.ends = self.starts + lens
        if joined.isascii():
            cp = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            cls = _bmp_table()[cp]
        else:
            cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            if cp.max() < _BMP:
                cls = _bmp_table()[cp]
            else:
                astral = cp >= _BMP
                cls = _bmp_table()[np.where(astral, 0, cp)]
                cls[astral] = [_astral_class(int(c)) for c in cp[astral]]
        self.cp, self.cls = cp, cls
        self._cache: dict[tuple, object] = {}

    def _in_texts(self, where: np.ndarray) -> tuple[list[int], list[int]]:
        """Sorted character positions as ``(positions in their text, per-text bounds)``."""
        bounds = np.searchsorted(where, self.starts)
        text = np.searchsorted(self.starts, where, side="right") - 1
        return (where - self.starts[text]).tolist(), [*bounds.tolist(), len(where)]

    def _tokens_in_texts(self, tokens: np.ndarray) -> tuple[list[int], list[int]]:
        """Sorted token indices as ``(indices in their text, per-text bounds)``."""
        first = self.first_token
        bounds = np.searchsorted(tokens, first)
        text = np.searchsorted(first, tokens, side="right") - 1
        return (tokens - first[text]).tolist(), [*bounds.tolist(), len(tokens)]

    @cached_property
    def tokens(self) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, ends)`` of the tokens (maximal runs of non-space characters)."""
        return _runs((self.cls & SPACE) == 0)

    @cached_property
    def first_token(self) -> np.ndarray:
        """Each text's first token."""
        return np.searchsorted(self.tokens[0], self.starts)

    @cached_property
    def token_classes(self) -> np.ndarray:
        """Per token: the classes of its characters (with SPACE for the spaces after it)."""
        starts = self.tokens[0]
        return np.bitwise_or.reduceat(self.cls, starts) if len(starts) else np.zeros(0, dtype=np.uint8)

    def class_counts(self, bit: int) -> list[int]:
        """Per text: its characters of a class."""
        key = ("count", bit)
        if key not in self._cache:
            where = np.flatnonzero(self.cls & bit)
            self._cache[key] = (np.searchsorted(where, self.ends) - np.searchsorted(where, self.starts)).tolist()
        return self._cache[key]  # type: ignore[return-value]

    def _counts_in(self, bit: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """How many characters of a class each span ``[starts, ends)`` holds."""
        where = np.flatnonzero(self.cls & bit)
        return np.searchsorted(where, ends) - np.searchsorted(where, starts)

    def tokens_with(self, bit: int, but: int = 0) -> tuple[list[int], list[int]]:
        """The tokens that hold a character of a class and none of ``but``."""
        key = ("with", bit, but)
        if key not in self._cache:
            self._cache[key] = self._tokens_in_texts(np.flatnonzero((self.token_classes & (bit | but)) == bit))
        return self._cache[key]  # type: ignore[return-value]

    def tokens_with_at_least(self, bit: int, k: int) -> tuple[list[int], list[int]]:
        """The tokens that hold at least ``k`` characters of a class."""
        key = ("at least", bit, k)
        if key not in self._cache:
            starts, ends = self.tokens
            self._cache[key] = self._tokens_in_texts(np.flatnonzero(self._counts_in(bit, starts, ends) >= k))
        return self._cache[key]  # type: ignore[return-value]

    def _spans_in_texts(self, key: tuple, starts: np.ndarray, ends: np.ndarray) -> Spans:
        local, bounds = self._in_texts(starts)
        self._cache[key] = found = (local, (ends - starts).tolist(), bounds)
        return found

    def long_tokens(self, min_len: int, min_digits: int) -> Spans:
        """The tokens of at least ``min_len`` characters and ``min_digits`` DIGIT ones."""
        key = ("long tokens", min_len, min_digits)
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]
        starts, ends = self.tokens
        keep = np.flatnonzero(ends - starts >= min_len)
        starts, ends = starts[keep], ends[keep]
        if min_digits > 0 and len(keep):
            keep = self._counts_in(DIGIT, starts, ends) >= min_digits
            starts, ends = starts[keep], ends[keep]
        return self._spans_in_texts(key, starts, ends)

    def runs_outside(self, bits: int, min_len: int) -> Spans:
        """The maximal runs of characters of none of the classes ``bits`` (SPACE among them, so a run
        lies within a token) at least ``min_len`` long."""
        key = ("runs", bits, min_len)
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]
        starts, ends = self.tokens
        if len(starts) and int((ends - starts).max()) >= min_len:
            starts, ends = _runs((self.cls & bits) == 0, min_len)
        else:
            starts = ends = np.zeros(0, dtype=np.intp)
        return self._spans_in_texts(key, starts, ends)

    def letter_runs(self, min_len: int) -> Spans:
        """The maximal runs of one WORD_LETTER character repeated at least ``min_len`` times."""
        key = ("letter runs", min_len)
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]
        cp = self.cp
        # character i + 1 continues a run when it repeats the one before it, a letter
        cont = (cp[1:] == cp[:-1]) & ((self.cls[1:] & WORD_LETTER) != 0)
        starts, ends = _runs(cont, min_len - 1)
        return self._spans_in_texts(key, starts, ends + 1)

    @cached_property
    def nonascii(self) -> tuple[list[int], list[int]]:
        """The characters above U+007F."""
        return self._in_texts(np.flatnonzero(self.cp > 0x7F))


class CodePoints:
    """One text of a batch scanned as code points; every answer equals the named pattern's on the text."""

    __slots__ = ("batch", "i", "text")

    def __init__(self, batch: _Batch, i: int) -> None:
        self.batch, self.i, self.text = batch, i, batch.texts[i]

    @classmethod
    def of(cls, text: str) -> CodePoints:
        return cls(_Batch([text]), 0)

    def _part(self, found: tuple[list[int], list[int]]) -> list[int]:
        items, bounds = found
        return items[bounds[self.i]:bounds[self.i + 1]]

    def _strings(self, spans: Spans) -> list[str]:
        starts, lens, bounds = spans
        a, b, s = bounds[self.i], bounds[self.i + 1], self.text
        return [s[x:x + n] for x, n in zip(starts[a:b], lens[a:b])]

    def count(self, bit: int) -> int:
        """Characters of a class."""
        return self.batch.class_counts(bit)[self.i]

    def tokens_with(self, bit: int) -> int:
        """Tokens that hold a character of a class (not SPACE; ALPHA_TOKEN_RE for LETTER)."""
        _, bounds = self.batch.tokens_with(bit)
        return bounds[self.i + 1] - bounds[self.i]

    def tokens_with_any(self, bit: int, but: int = 0) -> list[int]:
        """Indices of the tokens that hold a character of a class (not SPACE) and none of ``but``."""
        return self._part(self.batch.tokens_with(bit, but))

    def tokens_with_at_least(self, bit: int, k: int) -> list[int]:
        """Indices of the tokens that hold at least ``k`` characters of a class (not SPACE)."""
        return self._part(self.batch.tokens_with_at_least(bit, k))

    def long_tokens(self, min_len: int, min_digits: int = 0) -> list[str]:
        """Tokens of at least ``min_len`` characters and ``min_digits`` DIGIT characters, in order."""
        return self._strings(self.batch.long_tokens(min_len, min_digits))

    def runs_outside(self, bits: int, min_len: int) -> list[str]:
        """Maximal runs of characters of none of the classes ``bits`` (SPACE among them), at least
        ``min_len`` long, in order."""
        return self._strings(self.batch.runs_outside(bits | SPACE, min_len))

    def repeated_letter_runs(self, min_len: int) -> list[str]:
        """Maximal runs of one WORD_LETTER character repeated at least ``min_len`` times, in order."""
        return self._strings(self.batch.letter_runs(min_len))

    def search_nonascii(self, rx: re.Pattern[str], width: int) -> re.Match[str] | None:
        """``rx.search(text)`` for a pattern that looks at no character outside its match, every
        match of which holds a non-ASCII character and is at most ``width`` long: searched only
        around the non-ASCII characters. A match holding one of a cluster of them (gaps under
        ``width``) starts at most ``width - 1`` before its first and ends at most ``width`` after its
        last, so the cluster's window holds it whole (and no other non-ASCII character)."""
        where = self._part(self.batch.nonascii)
        a = 0
        for j in range(1, len(where) + 1):
            if j == len(where) or where[j] - where[j - 1] >= width:  # the cluster where[a:j]
                m = rx.search(self.text, max(0, where[a] - width + 1), where[j - 1] + width)
                if m is not None:
                    return m
                a = j
        return None
