"""Gopher's repetition statistics (repeated n-grams and lines), for many texts in one vectorised pass.

Both detectors read them, with different thresholds: ``low_quality`` the top 2/3/4-grams and the
repeated 5..10-grams and lines, ``corrupted`` (token spam) the repeated 5-grams and lines.
:func:`repetition_stats_many` computes them for a batch of texts with a fixed number of array
operations (so a short text costs little more than its share of the batch); :func:`repetition_stats`
is the same for one text.

An n-gram is a 64-bit polynomial hash of its words' ids (a word's id: the number of distinct words
of the text before its first occurrence), as in the one-text loop these statistics were first
written as. The occurrences of each are found by sorting the hashes of all the texts together, each
text's own salt mixed in (two texts' n-grams that still share a key are told apart by text). Only
positions that can start a repeated k-gram are hashed and sorted: those where the (k-1)-grams at the
position and at the next one both repeat (for ``corrupted``, which skips the 2..4-grams, where all 5
words do), which leaves every repeated n-gram, its count and first occurrence unchanged. A tie
between equally frequent top n-grams goes to the smallest hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

#: the n-gram hash: ``h(w1..wk) = h(w1..wk-1) * _MULT + id(wk) + 1`` (mod 2**64)
_MULT = 0x9E3779B97F4A7C15
#: mixed into the hashes to sort all texts together (a collision between texts is split again)
_TEXT_SALT = np.uint64(0xD6E8FEB86659FD93)


@dataclass
class RepetitionStats:
    """Gopher's repetition statistics of one text (Rae et al. 2021, table A1)."""

    #: character fraction covered by the most frequent 2-, 3-, 4-gram (all its occurrences)
    top_ngram_frac: list[float]
    #: the most frequent 2-, 3-, 4-gram and its count
    top_ngram: list[tuple[str, int]]
    #: character fraction covered by the repeats of duplicated 5..10-grams (fewer when ``max_n`` < 10)
    dup_ngram_frac: list[float]
    #: characters in duplicated lines / all line characters (0 below 3 lines)
    dup_line_char_frac: float
    #: duplicated lines / lines
    dup_line_frac: float


def repetition_stats(s: str, words: list[str], top: bool = True, max_n: int = 10) -> RepetitionStats:
    """Gopher's repetition statistics of one text over its whitespace ``words``: see
    :func:`repetition_stats_many`."""
    return repetition_stats_many([(s, words)], top, max_n)[0]


def repetition_stats_many(texts: Sequence[tuple[str, list[str]]], top: bool = True,
                          max_n: int = 10) -> list[RepetitionStats]:
    """Gopher's repetition statistics of each ``(text, whitespace words)`` (as in datatrove's
    GopherRepetitionFilter): the top 2/3/4-gram counts all its occurrences (``top=False`` skips
    them); duplicated 5..``max_n``-grams and duplicated lines count only the repeats (not the first
    occurrence), without double-counting overlaps."""
    docs = [i for i, (_, words) in enumerate(texts) if len(words) >= 2]
    top_frac, top_gram, dup = _ngram_stats([texts[i][1] for i in docs], top, max_n)
    out = []
    j = 0
    for i, (s, _) in enumerate(texts):
        if j < len(docs) and docs[j] == i:
            fracs, grams, dups = top_frac[j], top_gram[j], dup[j]
            j += 1
        else:
            fracs, grams, dups = [0.0, 0.0, 0.0], [("", 0)] * 3, [0.0] * (max_n - 4)
        out.append(RepetitionStats(fracs, grams, dups, *_line_stats(s)))
    return out


def _line_stats(s: str) -> tuple[float, float]:
    """``(characters in duplicated lines / line characters, duplicated lines / lines)``; stripped,
    non-empty lines; 0 below 3 lines."""
    lines = list(filter(None, map(str.strip, s.splitlines())))
    dup_chars = dup_lines = 0
    if len(lines) >= 3:
        distinct = set(lines)
        dup_lines = len(lines) - len(distinct)
        dup_chars = sum(map(len, lines)) - sum(map(len, distinct))
    return dup_chars / max(1, sum(map(len, lines))), dup_lines / max(1, len(lines))


class _Words:
    """The words of several texts end to end, with their ids; the hashes of their n-grams."""

    def __init__(self, docs: list[list[str]]) -> None:
        n_doc = len(docs)
        self.n = n = np.fromiter(map(len, docs), dtype=np.intp, count=n_doc)
        self.start = start = np.concatenate(([0], np.cumsum(n)[:-1])).astype(np.intp)
        total = int(n.sum())
        self.doc = doc = np.repeat(np.arange(n_doc, dtype=np.intp), n)
        self.docs = docs
        self.lens = np.fromiter(map(len, chain.from_iterable(docs)), dtype=np.int64, count=total)
        self.csum = np.concatenate(([0], np.cumsum(self.lens)))  # characters before each word
        # each word's first occurrence in its text, then its id (distinct words before that)
        first = np.fromiter(chain.from_iterable(map({}.setdefault, w, range(a, a + len(w)))
                                                for w, a in zip(docs, start.tolist())),
                            dtype=np.intp, count=total)
        rank = np.cumsum(first == np.arange(total))
        self.ids = (rank[first] - rank[start][doc]).astype(np.uint64) + np.uint64(1)  # id + 1
        self.repeated = np.bincount(first, minlength=total)[first] > 1  # the word occurs again
        self.next_same_text = np.zeros(total, dtype=bool)  # the next word is of the same text
        self.next_same_text[:-1] = doc[1:] == doc[:-1]
        self._k, self._h = 0, np.zeros(total + 1, dtype=np.uint64)  # the k-gram hash at each position

    def hashes(self, k: int, pos: np.ndarray) -> np.ndarray:
        """The hash of the k-gram at each of ``pos`` (all within their text); k never decreases from
        one call to the next (the hashes at every position are extended one word at a time)."""
        while self._k < k:
            self._h = self._h[:-1] * np.uint64(_MULT) + self.ids[self._k:]
            self._k += 1
        return self._h[pos]

    def groups(self, k: int, cand: np.ndarray) -> _Groups:
        """The positions ``cand`` grouped by text and k-gram."""
        h = self.hashes(k, cand)
        one_text = len(self.n) == 1
        key = h if one_text else h ^ ((self.doc[cand].astype(np.uint64) + np.uint64(1)) * _TEXT_SALT)
        order = np.argsort(key)
        pos, key = cand[order], key[order]
        new = np.ones(len(pos), dtype=bool)
        new[1:] = key[1:] != key[:-1]
        if one_text:
            return _Groups(pos, new, len(self.doc))
        doc = self.doc[pos]
        if (~new[1:] & (doc[1:] != doc[:-1])).any():  # two texts' k-grams share a key: sort by text too
            order = np.lexsort((h, self.doc[cand]))
            pos, h = cand[order], h[order]
            doc = self.doc[pos]
            new[1:] = (h[1:] != h[:-1]) | (doc[1:] != doc[:-1])
        return _Groups(pos, new, len(self.doc))

    def both(self, repeated: np.ndarray, mask: bool = False) -> np.ndarray:
        """The positions p where the (k-1)-grams at p and at p + 1 (of the same text) both repeat
        (``repeated``: a mask over the positions): only there can a k-gram repeat. As positions, or
        as a mask."""
        both = repeated & self.next_same_text
        both[:-1] &= repeated[1:]
        return both if mask else np.flatnonzero(both)


class _Groups:
    """Positions grouped by k-gram (and text): ``pos`` with the groups one after another, each
    group's start, size and first occurrence (its smallest position)."""

    def __init__(self, pos: np.ndarray, new: np.ndarray, n_words: int) -> None:
        self.pos = pos
        self.n_words = n_words
        self.gid = np.cumsum(new) - 1  # each position's group
        self.starts = np.flatnonzero(new)
        self.size = np.diff(np.append(self.starts, len(pos)))
        self.first = np.minimum.reduceat(pos, self.starts) if len(pos) else pos

    def repeats(self) -> np.ndarray:
        """The positions whose k-gram occurred before (in their text)."""
        return self.pos[self.pos != self.first[self.gid]]

    def repeated(self) -> np.ndarray:
        """Mask over all positions: the k-gram occurs more than once (in its text)."""
        mask = np.zeros(self.n_words, dtype=bool)
        mask[self.pos[self.size[self.gid] >= 2]] = True
        return mask


def _ngram_stats(docs: list[list[str]], top: bool, max_n: int) -> tuple[list, list, list]:
    """Per text (each of at least 2 words): the top 2/3/4-gram fractions and n-grams, and the
    repeated 5..``max_n``-gram fractions."""
    n_doc = len(docs)
    top_frac = [[0.0, 0.0, 0.0] for _ in range(n_doc)]
    top_gram = [[("", 0)] * 3 for _ in range(n_doc)]
    if not n_doc:
        return top_frac, top_gram, []
    w = _Words(docs)
    totals = np.maximum(1, np.add.reduceat(w.lens, w.start)).astype(np.float64)
    repeated = w.repeated  # positions whose (k-1)-gram occurs more than once; so far k = 2
    if top:
        for k in range(2, min(4, max_n) + 1):
            g = w.groups(k, w.both(repeated))
            _top_ngrams(w, k, g, totals, top_frac, top_gram)
            repeated = g.repeated()
    else:  # the 2..4-grams skipped: the words of a repeated 5-gram repeat
        for _ in range(3):
            repeated = w.both(repeated, mask=True)
    dup = np.zeros((n_doc, max(0, max_n - 4)), dtype=np.int64)
    for k in range(5, max_n + 1):
        g = w.groups(k, w.both(repeated))
        rep = g.repeats()
        if not len(rep):
            break  # no k-gram repeats, so no longer one does either
        dup[:, k - 5] = _covered_chars(w, np.sort(rep), k)
        repeated = g.repeated()
    dup_frac = [[float(x) / total for x in row] for row, total in zip(dup.tolist(), totals.tolist())]
    return top_frac, top_gram, dup_frac


def _covered_chars(w: _Words, starts: np.ndarray, k: int) -> np.ndarray:
    """Per text: the characters of the words in the k-grams at ``starts`` (ascending), each word
    once. Each k-gram adds its words past the end of the one before it (as long as it), which is
    in the same text or an earlier one."""
    csum = w.csum
    ends = starts + k
    from_ = np.maximum(starts, np.concatenate(([0], ends[:-1])))
    chars = csum[ends] - csum[np.minimum(from_, ends)]
    return np.bincount(w.doc[starts], weights=chars, minlength=len(w.n)).astype(np.int64)


def _top_ngrams(w: _Words, k: int, g: _Groups, totals: np.ndarray, top_frac: list, top_gram: list) -> None:
    """Per text, the most frequent k-gram (of those seen twice or more; the smallest hash among
    equally frequent ones) and the character fraction its occurrences cover."""
    keep = g.size >= 2
    first, cnt = g.first[keep], g.size[keep]
    if not len(first):
        return
    doc = w.doc[first]
    most = np.zeros(len(w.n), dtype=np.intp)
    np.maximum.at(most, doc, cnt)
    top = cnt == most[doc]
    first, doc, cnt = first[top], doc[top], cnt[top]
    h = w.hashes(k, first)
    least = np.full(len(w.n), np.iinfo(np.uint64).max, dtype=np.uint64)
    np.minimum.at(least, doc, h)
    pick = h == least[doc]
    doc, first, cnt = doc[pick], first[pick], cnt[pick]
    # the count times the k-gram's characters, over the text's (float64, as one text at a time)
    frac = cnt * (w.csum[first + k] - w.csum[first]).astype(np.float64) / totals[doc]
    for d, p, c, f in zip(doc.tolist(), (first - w.start[doc]).tolist(), cnt.tolist(), frac):
        top_frac[d][k - 2] = min(1.0, f)
        top_gram[d][k - 2] = (" ".join(w.docs[d][p:p + k]), c)
