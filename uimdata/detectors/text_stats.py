"""One text's statistics, computed once and read by every rule of ``corrupted`` and ``low_quality``.

:class:`TextStats` holds the analysed prefix of a text (its first ``max_chars`` characters), its
lowercased form, its whitespace tokens, and the counts and character scans that several rules read
(letters, tokens with a letter, CJK/Thai characters, hex-like words, symbol-heavy and long tokens,
long runs, repeated letters, Gopher's repetition statistics), each computed on first use and kept.
A long text is scanned as code points (:mod:`uimdata.detectors.codepoints`), a short one with the
lexicon's patterns themselves: the answers are the same. For a batch, :func:`codepoints_for_all`
and :func:`repetition_for_all` compute the code points and the repetition statistics of many texts
in one vectorised pass, over parts of bounded size (:func:`batch_slices`).

Detectors that run in one pass over a batch (``detectors.base.SharedPass``) share the statistics of
each text through a cache (:func:`stats_of`): the text is lowercased, split, scanned as code points,
searched for boilerplate phrases and its repetition statistics computed once, whichever detector asks
first. A repetition request is served by statistics computed for a larger one (the top n-grams, more
n-gram sizes): the fractions they share are the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from uimdata.detectors.codepoints import (
    DIGIT,
    HARD,
    LETTER,
    LONG_TEXT_CHARS,
    NONHEX,
    NOSPACE,
    SPACE,
    CodePoints,
    codepoints_of,
)
from uimdata.detectors.lexicon import (
    ALPHA_TOKEN_RE,
    BOILERPLATE_ANY,
    CHAR_RUN_RE,
    CJK_RE,
    DEL_ASCII_LETTERS,
    DEL_ASCII_SPACES,
    DIGIT_RE,
    HARD_SYMBOL_RE,
    HEX_TOKEN_RE,
    HEX_WORD_RE,
    KEEP_ASCII_LETTERS_AND_SPACES,
    LETTER_RE,
    LONG_TOKEN_RE,
    boilerplate_matches,
    long_run_re,
)
from uimdata.detectors.repetition import RepetitionStats, repetition_stats, repetition_stats_many


@dataclass(eq=False, slots=True)
class TextStats:
    """The statistics of one text that the rules share; build it with :meth:`of`. The counts are
    computed on first use (``low_quality`` needs most of them on long texts only) and kept."""

    #: the analysed text: the first ``max_chars`` characters
    text: str
    #: ``text`` lowercased
    low: str
    #: whitespace tokens of ``text``
    tokens: list[str]
    #: ``text`` is pure ASCII (the letter counts take a fast path)
    is_ascii: bool
    _nonspace: int = field(default=-1, init=False, repr=False)
    _letters: int = field(default=-1, init=False, repr=False)
    _alpha_tokens: int = field(default=-1, init=False, repr=False)
    _cjk: int = field(default=-1, init=False, repr=False)
    _cp: CodePoints | None = field(default=None, init=False, repr=False)
    _repetition: dict[tuple[bool, int], RepetitionStats] | None = field(default=None, init=False, repr=False)
    _boilerplate: list[tuple[str, bool]] | None = field(default=None, init=False, repr=False)

    @classmethod
    def of(cls, text: str, max_chars: int) -> TextStats:
        s = text[:max_chars]
        return cls(s, s.lower(), s.split(), s.isascii())

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def nonspace(self) -> int:
        """Non-space characters."""
        if self._nonspace < 0:
            if self.is_ascii:
                self._nonspace = len(self.text.translate(DEL_ASCII_SPACES))
            else:
                cp = self.codepoints
                self._nonspace = (len(self.text) - cp.count(SPACE) if cp is not None
                                  else sum(map(len, self.tokens)))
        return self._nonspace

    @property
    def codepoints(self) -> CodePoints | None:
        """The text as code points, for a text of at least :data:`LONG_TEXT_CHARS` characters."""
        if self._cp is None and len(self.text) >= LONG_TEXT_CHARS:
            self._cp = CodePoints.of(self.text)
        return self._cp

    @property
    def letters(self) -> int:
        """Unicode letters and combining marks (LETTER_RE)."""
        if self._letters < 0:
            s = self.text
            if self.is_ascii:
                self._letters = len(s) - len(s.translate(DEL_ASCII_LETTERS))
            else:
                cp = self.codepoints
                self._letters = cp.count(LETTER) if cp is not None else len(LETTER_RE.findall(s))
        return self._letters

    @property
    def alpha_tokens(self) -> int:
        """Tokens that contain a letter (ALPHA_TOKEN_RE)."""
        if self._alpha_tokens < 0:
            if self.is_ascii and self._cp is None:
                # without the characters that are neither letters nor spaces, exactly the tokens
                # with a letter are left
                self._alpha_tokens = len(self.text.translate(KEEP_ASCII_LETTERS_AND_SPACES).split())
            else:
                cp = self.codepoints
                self._alpha_tokens = (cp.tokens_with(LETTER) if cp is not None
                                      else len(ALPHA_TOKEN_RE.findall(self.text)))
        return self._alpha_tokens

    @property
    def cjk(self) -> int:
        """Characters of scripts written without spaces (CJK, Thai, ...)."""
        if self._cjk < 0:
            cp = self.codepoints
            self._cjk = (0 if self.is_ascii else cp.count(NOSPACE) if cp is not None
                         else len(CJK_RE.findall(self.text)))
        return self._cjk

    @property
    def words(self) -> int:
        """Words that contain a letter, two CJK characters counting as one word."""
        cjk = self.cjk
        return self.alpha_tokens + (cjk - 1) // 2 if cjk > 1 else self.alpha_tokens

    def hex_words(self) -> int:
        """Hex-like words ("0x5c", "e580"): HEX_WORD_RE's matches."""
        cp = self.codepoints
        if cp is None:
            return len(HEX_WORD_RE.findall(self.text)) if DIGIT_RE.search(self.text) else 0
        tokens = self.tokens
        return sum(1 for i in cp.tokens_with_any(DIGIT, but=NONHEX) if HEX_TOKEN_RE.fullmatch(tokens[i]))

    def symbol_tokens(self, k: int) -> list[str]:
        """Tokens with at least ``k`` HARD_SYMBOL_RE characters, in order."""
        cp = self.codepoints
        if cp is not None:
            tokens = self.tokens
            return [tokens[i] for i in cp.tokens_with_at_least(HARD, k)]
        if len(HARD_SYMBOL_RE.findall(self.text)) < k:
            return []
        return [tok for tok in self.tokens if len(tok) >= k and len(HARD_SYMBOL_RE.findall(tok)) >= k]

    def long_tokens(self, min_len: int = 20, min_digits: int = 0) -> list[str]:
        """Tokens of at least ``min_len`` characters (LONG_TOKEN_RE's matches for 20) with at least
        ``min_digits`` ASCII digits, in order."""
        cp = self.codepoints
        if cp is not None:
            return cp.long_tokens(min_len, min_digits)
        if min_len == 20:
            found = [m.group(0) for m in LONG_TOKEN_RE.finditer(self.text)]
        else:
            found = [tok for tok in self.tokens if len(tok) >= min_len]
        return [tok for tok in found if len(DIGIT_RE.findall(tok)) >= min_digits] if min_digits > 0 else found

    def long_runs(self, max_run_chars: int) -> list[str]:
        """Runs of more than ``max_run_chars`` non-space characters outside CJK/Thai text
        (``long_run_re``'s matches), in order."""
        cp = self.codepoints
        if cp is None:
            return [m.group(0) for m in long_run_re(max_run_chars).finditer(self.text)]
        return cp.runs_outside(SPACE | NOSPACE, max_run_chars + 1)

    def search_nonascii(self, rx: re.Pattern[str], width: int | None) -> re.Match[str] | None:
        """``rx.search(text)`` for a pattern every match of which holds a non-ASCII character and is
        at most ``width`` long (None: not known, the whole text is searched)."""
        if self.is_ascii and width is not None:
            return None
        cp = self.codepoints
        if cp is None or width is None:
            return rx.search(self.text)
        return cp.search_nonascii(rx, width)

    def letter_runs(self) -> list[str]:
        """A letter repeated 4+ times (CHAR_RUN_RE's matches), in order."""
        cp = self.codepoints
        if cp is None:
            return [m.group(0) for m in CHAR_RUN_RE.finditer(self.text)]
        return cp.repeated_letter_runs(4)

    def repetition(self, top: bool = True, max_n: int = 10) -> RepetitionStats:
        """Gopher's repetition statistics of the text (:func:`~uimdata.detectors.repetition.repetition_stats`);
        computed once, or ahead for a batch by :func:`repetition_for_all`. Statistics computed for a
        larger request (``top`` as well, ``max_n`` or more) serve a smaller one: ``dup_ngram_frac`` may
        then hold more sizes than ``max_n`` asks for, the ones asked for the same."""
        found = self._covering_repetition(top, max_n)
        if found is None:
            found = repetition_stats(self.text, self.tokens, top, max_n)
            if self._repetition is None:
                self._repetition = {}
            self._repetition[(top, max_n)] = found
        return found

    def _covering_repetition(self, top: bool, max_n: int) -> RepetitionStats | None:
        """Repetition statistics computed so far that answer ``(top, max_n)``; None without any."""
        for (has_top, has_n), rs in (self._repetition or {}).items():
            if (has_top or not top) and has_n >= max_n:
                return rs
        return None

    def boilerplate_matches(self) -> list[tuple[str, bool]]:
        """``(phrase, strong)`` of each boilerplate phrase in the lowercased text
        (:func:`~uimdata.detectors.lexicon.boilerplate_matches`); computed once, or ruled out ahead
        for a batch by :func:`boilerplate_for_all`."""
        if self._boilerplate is None:
            self._boilerplate = boilerplate_matches(self.low)
        return self._boilerplate


#: a batch's texts are analysed together up to about this many characters (bounds the memory held)
BATCH_CHARS = 1 << 22


def batch_slices(texts: list[str | None], max_chars: int) -> Iterator[slice]:
    """Consecutive slices of ``texts`` of about :data:`BATCH_CHARS` characters (each text counted up
    to ``max_chars``), at least one text each."""
    return length_slices([min(len(text or ""), max_chars) for text in texts])


def length_slices(lengths: list[int]) -> Iterator[slice]:
    """:func:`batch_slices` of texts of ``lengths`` characters (as counted)."""
    start, size = 0, 0
    for i, n in enumerate(lengths):
        if size and size + n > BATCH_CHARS:
            yield slice(start, i)
            start, size = i, 0
        size += n
    if start < len(lengths):
        yield slice(start, len(lengths))


def stats_of(text: str | None, max_chars: int, cache: dict | None = None) -> TextStats | None:
    """The statistics of ``text`` (its first ``max_chars`` characters); None for an empty or
    whitespace-only text. With a ``cache`` (one per batch of a shared pass), detectors that analyse
    the same text with the same ``max_chars`` get the same :class:`TextStats`, and what one computed
    the next one reads."""
    if not text or text.isspace():
        return None
    if cache is None:
        return TextStats.of(text, max_chars)
    key = (max_chars, text)
    st = cache.get(key)
    if st is None:
        st = cache[key] = TextStats.of(text, max_chars)
    return st


def stats_cache(shared: dict | None) -> dict | None:
    """The :func:`stats_of` cache a shared pass's ``shared`` dict holds (made on first use); None
    outside a shared pass."""
    return None if shared is None else shared.setdefault("text_stats", {})


def boilerplate_for_all(stats: list[TextStats]) -> None:
    """Rule out, for many texts at once, those in which no boilerplate phrase can occur: one
    vectorised search (polars) for any of the phrases with the conditions around them left out
    (:data:`~uimdata.detectors.lexicon.BOILERPLATE_ANY`, which matches wherever a phrase does). The
    texts it finds are searched phrase by phrase when asked (:meth:`TextStats.boilerplate_matches`),
    the others have none."""
    todo = [st for st in stats if st._boilerplate is None]
    if len(todo) < 2:
        return
    import polars as pl

    maybe = pl.Series(values=[st.low for st in todo], dtype=pl.String).str.contains(BOILERPLATE_ANY).to_list()
    for st, hit in zip(todo, maybe):
        if not hit:
            st._boilerplate = []


def codepoints_for_all(stats: list[TextStats]) -> None:
    """Scan the long texts among ``stats`` as code points together (:meth:`TextStats.codepoints`)."""
    long = [st for st in stats if st._cp is None and len(st.text) >= LONG_TEXT_CHARS]
    for st, cp in zip(long, codepoints_of([st.text for st in long])):
        st._cp = cp


def repetition_for_all(stats: list[TextStats], top: bool = True, max_n: int = 10) -> None:
    """Compute :meth:`TextStats.repetition` of many texts in one vectorised pass (those that have
    statistics answering the request already are left as they are)."""
    stats = [st for st in stats if st._covering_repetition(top, max_n) is None]
    for st, rs in zip(stats, repetition_stats_many([(st.text, st.tokens) for st in stats], top, max_n)):
        if st._repetition is None:
            st._repetition = {}
        st._repetition[(top, max_n)] = rs
