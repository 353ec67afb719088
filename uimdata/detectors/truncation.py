"""The ``truncated`` rule of ``corrupted``: rows cut to a few characters, judged against the corpus.

Unlike the per-text rules (:mod:`uimdata.detectors.corrupted_rules`) it needs every text of the
corpus: a row is short only next to the corpus's other rows, and "stops inside a word" only against
the words the corpus uses. :class:`~uimdata.detectors.corrupted.CorruptedDetector` runs it in
``finish``, after every batch.
"""

from __future__ import annotations

import bisect
from collections import Counter

import numpy as np

from uimdata.detectors.corrupted_rules import CorruptedThresholds
from uimdata.detectors.lexicon import TRIM_RE
from uimdata.detectors.scoring import median_spread, snip


def truncated_rows(texts: list[str | None], t: CorruptedThresholds,
                   flagged: np.ndarray | None = None) -> dict[int, tuple[str, str]]:
    """Rows cut to a few characters, found against the corpus itself: ``{row: (rule, reason)}``, the rule
    ``truncated`` or ``stub``; rows already
    ``flagged`` are skipped.

    A row is truncated when it is far shorter than the corpus's rows (its log length at least
    ``truncated_min_z`` robust standard deviations below the median), has at most
    ``truncated_max_chars`` characters and ``truncated_max_words`` words, and its last word stops
    inside a word: it is a proper prefix of a word that two or more rows of the corpus use, and no
    other row uses it as a word ("syste", "golan", "r-cra", "librec-d"). In a corpus of long documents
    (median >= ``truncated_long_median`` characters) a row under ``truncated_max_frac`` of the median
    length is truncated whatever its last word, and where at most ``one_word_max_share`` of the rows are
    one word, a short one-word row is a stub ("Java" among package descriptions). Corpora under
    ``truncated_min_rows`` non-empty rows are not judged.
    """
    n = len(texts)
    lens = np.array([len(x.strip()) if x else 0 for x in texts], dtype=np.float64)
    ok = lens > 0
    if ok.sum() < t.truncated_min_rows:
        return {}
    logl = np.log(lens[ok])
    med, spread = median_spread(logl)
    spread = spread or 1e-9
    median_len = float(np.exp(med))
    z = np.zeros(n)
    z[ok] = (logl - med) / spread
    done = np.zeros(n, bool) if flagged is None else np.asarray(flagged, bool)
    cand = [i for i in np.flatnonzero(ok & ~done & (z <= -t.truncated_min_z))
            if lens[i] <= t.truncated_max_chars and len(texts[i].split()) <= t.truncated_max_words]
    out: dict[int, tuple[str, str]] = {}
    if median_len >= t.truncated_long_median:
        short = ok & ~done & (lens < t.truncated_max_frac * median_len) & (lens <= t.truncated_max_chars)
        for i in np.flatnonzero(short):
            out[int(i)] = ("truncated", f"truncated: {int(lens[i])} character(s) {snip(texts[i], 20)!r} "
                                        f"where the corpus's median row has {median_len:,.0f}")
    cand = [i for i in cand if i not in out]
    if cand:
        out.update(_cut_words(texts, lens, cand, median_len, t.truncated_vocab_chars))
    cand = [i for i in cand if i not in out and len(texts[i].split()) == 1]
    if cand:
        one_share = sum(1 for x in texts if x and len(x.split()) == 1) / int(ok.sum())
        if one_share <= t.one_word_max_share:
            for i in cand:
                out[int(i)] = ("stub", f"stub: the single word {snip(texts[i], 20)!r} where {one_share:.1%} of "
                                       f"the corpus's rows are one word (its median row has {median_len:,.0f} "
                                       "characters)")
    return out


def _cut_words(texts: list[str | None], lens: np.ndarray, cand: list[int], median_len: float,
               vocab_chars: int) -> dict[int, tuple[str, str]]:
    """The candidates whose last word is a proper prefix of a corpus word and no word itself."""
    last = {i: TRIM_RE.sub("", texts[i].split()[-1].lower()) for i in cand}
    wanted = {w for w in last.values() if w}
    # document frequency of the corpus's words (first ``vocab_chars`` characters of each row)
    df: Counter[str] = Counter()
    for x in texts:
        if x:
            df.update({TRIM_RE.sub("", w.lower()) for w in x[:vocab_chars].split()})
    vocab = sorted(df)
    out: dict[int, tuple[str, str]] = {}
    for i in cand:
        w = last[i]
        if w not in wanted or df.get(w, 0) > 1:  # a word of the corpus (this row is one use)
            continue
        j = bisect.bisect_right(vocab, w)
        if j < len(vocab) and vocab[j].startswith(w) and len(vocab[j]) > len(w):
            out[int(i)] = ("truncated", f"truncated: {snip(texts[i], 20)!r} ({int(lens[i])} characters; the "
                                        f"corpus's median row has {median_len:,.0f}) stops inside a word "
                                        f"({vocab[j]!r}...)")
    return out
