"""The rules of ``low_quality``: Gopher / C4 statistics of one text over their published thresholds.

Each rule is a pure function of one text's :class:`TextStats` and the thresholds that returns
``(statistic / published threshold, detail)``: a ratio above 1 breaks the rule. :func:`ratios` runs
the rules that apply to a text, :func:`ratios_many` to each text of a batch (its repetition
statistics and code points computed for all the documents at once); :func:`corpus_floors` is the corpus calibration that
:class:`~uimdata.detectors.low_quality.LowQualityDetector` applies on top. The rules, their sources
and the calibration: :mod:`uimdata.detectors.low_quality`.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import methodcaller

import numpy as np

from uimdata.detectors.lexicon import (
    BULLET_RE,
    COPYRIGHT_RE,
    ELLIPSES,
    GOPHER_STOPWORD_RES,
    GOPHER_STOPWORDS,
    boilerplate_phrases,
)
from uimdata.detectors.repetition import RepetitionStats
from uimdata.detectors.scoring import median_spread, per_100_words, snip
from uimdata.detectors.text_stats import (
    TextStats,
    batch_slices,
    boilerplate_for_all,
    codepoints_for_all,
    repetition_for_all,
    stats_of,
)

#: a rule's ``(statistic / published threshold, detail)``
Ratio = tuple[float, str]


@dataclass(frozen=True)
class LowQualityThresholds:
    """Published thresholds (Gopher, C4) and the corpus calibration; every field is a keyword."""

    max_chars: int = 100_000
    #: document rules apply from this many words (Gopher drops documents under 50 words; below 100
    #: words its ratios are too noisy on technical text: measured in docs/benchmarks.md)
    min_words: int = 100
    max_top_ngram_frac: tuple[float, float, float] = (0.20, 0.18, 0.16)
    max_dup_ngram_frac: tuple[float, ...] = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)
    max_dup_line_char_frac: float = 0.20
    max_dup_line_frac: float = 0.30
    min_mean_word_len: float = 3.0
    max_mean_word_len: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_line_frac: float = 0.9
    max_ellipsis_line_frac: float = 0.3
    min_alpha_word_frac: float = 0.8
    min_stop_words: int = 2
    #: C4-style boilerplate phrases (copyright notices excluded) per 100 words, texts under 100 words
    #: counted as 100
    max_boilerplate_per_100_words: float = 0.5
    #: corpus calibration: robust z of the statistic / threshold ratio above the corpus median;
    #: 0 disables it (published thresholds alone)
    z_threshold: float = 5.0
    #: documents needed to calibrate
    min_calibration_docs: int = 50


def ratios(text: str | None, t: LowQualityThresholds) -> dict[str, Ratio]:
    """Per rule: ``(statistic / published threshold, detail)``; a ratio above 1 breaks the rule.
    Rules that do not apply to the text (too short) are absent."""
    return _ratios(stats_of(text, t.max_chars), t)


def ratios_many(texts: list[str | None], t: LowQualityThresholds, cache: dict | None = None) -> list[dict[str, Ratio]]:
    """:func:`ratios` of each text; the documents' repetition statistics (and, for non-ASCII ones,
    code points) and the boilerplate candidates are computed for many texts at once. ``cache``: the
    texts' statistics shared with the other detectors of a pass
    (:func:`~uimdata.detectors.text_stats.stats_of`)."""
    out: list[dict[str, Ratio]] = []
    for part in batch_slices(texts, t.max_chars):
        stats = [stats_of(text, t.max_chars, cache) for text in texts[part]]
        boilerplate_for_all([st for st in stats if st is not None])
        documents = [st for st in stats if st is not None and st.n_tokens >= t.min_words]
        repetition_for_all(documents)
        codepoints_for_all([st for st in documents if not st.is_ascii])  # their words with a letter
        out.extend(_ratios(st, t) for st in stats)
    return out


def _ratios(st: TextStats | None, t: LowQualityThresholds) -> dict[str, Ratio]:
    """:func:`ratios` of a text's statistics (None when the text is empty)."""
    if st is None:
        return {}
    out: dict[str, Ratio] = {}
    r = boilerplate(st, t)
    if r is not None:
        out["boilerplate"] = r
    if st.n_tokens < t.min_words:
        return out
    out["repetition"] = repetition(st, t)
    out["word_length"] = word_length(st, t)
    out["symbol_ratio"] = symbol_ratio(st, t)
    r = lines(st, t)
    if r is not None:
        out["lines"] = r
    out["alpha_words"] = alpha_words(st, t)
    out["stop_words"] = stop_words(st, t)
    return out


def boilerplate(st: TextStats, t: LowQualityThresholds) -> Ratio | None:
    """C4: web boilerplate phrases (copyright notices excluded) per 100 words; None without any."""
    weight, _, phrases = boilerplate_phrases(st.low, exclude=COPYRIGHT_RE, matches=st.boilerplate_matches())
    if not weight:
        return None
    density = per_100_words(weight, st.n_tokens)
    return (density / t.max_boilerplate_per_100_words,
            f"web boilerplate {', '.join(repr(p) for p in phrases[:3])} "
            f"({density:.1f} per 100 words; C4 drops such lines)")


def repetition(st: TextStats, t: LowQualityThresholds) -> Ratio:
    """Gopher: the worst of the top 2/3/4-gram, repeated 5..10-gram and repeated-line fractions."""
    rs = st.repetition()
    ratios = ([rs.top_ngram_frac[k] / t.max_top_ngram_frac[k] for k in range(3)]
              + [rs.dup_ngram_frac[k] / t.max_dup_ngram_frac[k] for k in range(6)]
              + [rs.dup_line_char_frac / t.max_dup_line_char_frac, rs.dup_line_frac / t.max_dup_line_frac])
    worst = max(range(len(ratios)), key=ratios.__getitem__)  # the first of equal ones
    return ratios[worst], _repetition_detail(rs, t, worst)


def _repetition_detail(rs: RepetitionStats, t: LowQualityThresholds, which: int) -> str:
    """The detail of :func:`repetition`'s statistic ``which`` (0-2: top n-grams, 3-8: repeated
    n-grams, 9-10: repeated lines)."""
    if which < 3:
        gram, count = rs.top_ngram[which]
        return (f"the {which + 2}-gram {snip(gram, 30)!r} x{count} covers {rs.top_ngram_frac[which]:.0%} "
                f"of the text (Gopher: {t.max_top_ngram_frac[which]:.0%})")
    if which < 9:
        k = which - 3
        return (f"repeated {k + 5}-grams cover {rs.dup_ngram_frac[k]:.0%} of the text "
                f"(Gopher: {t.max_dup_ngram_frac[k]:.0%})")
    if which == 9:
        return (f"repeated lines hold {rs.dup_line_char_frac:.0%} of the characters (Gopher: "
                f"{t.max_dup_line_char_frac:.0%})")
    return f"{rs.dup_line_frac:.0%} of lines are repeats (Gopher: {t.max_dup_line_frac:.0%})"


def word_length(st: TextStats, t: LowQualityThresholds) -> Ratio:
    """Gopher: mean word length outside [min_mean_word_len, max_mean_word_len]."""
    mean_len = st.nonspace / st.n_tokens  # the words' characters
    ratio = (t.min_mean_word_len / max(mean_len, 1e-9) if mean_len < t.min_mean_word_len
             else mean_len / t.max_mean_word_len)
    return ratio, (f"mean word length {mean_len:.1f} outside [{t.min_mean_word_len:g}, "
                   f"{t.max_mean_word_len:g}] (Gopher)")


def symbol_ratio(st: TextStats, t: LowQualityThresholds) -> Ratio:
    """Gopher: "#" and ellipses per word."""
    low, n = st.low, st.n_tokens
    sym = low.count("#") + sum(map(low.count, ELLIPSES))  # = ELLIPSIS_RE's matches
    return (sym / n / t.max_symbol_word_ratio,
            f"{sym / n:.2f} '#' / ellipses per word (Gopher: {t.max_symbol_word_ratio:g})")


def lines(st: TextStats, t: LowQualityThresholds) -> Ratio | None:
    """Gopher: lines that start with a bullet, lines that end with an ellipsis; None without lines."""
    rows = list(filter(str.strip, st.text.splitlines()))
    if not rows:
        return None
    bullet = len(list(filter(None, map(BULLET_RE.match, rows)))) / len(rows)
    ellipsis = sum(map(methodcaller("endswith", ELLIPSES), map(str.rstrip, rows))) / len(rows)
    # the published figures are quoted as such, whatever the thresholds
    return max((bullet / t.max_bullet_line_frac, f"{bullet:.0%} of lines start with a bullet (Gopher: 90%)"),
               (ellipsis / t.max_ellipsis_line_frac, f"{ellipsis:.0%} of lines end with an ellipsis (Gopher: 30%)"),
               key=lambda c: c[0])


def alpha_words(st: TextStats, t: LowQualityThresholds) -> Ratio:
    """Gopher: words that contain an alphabetic character."""
    alpha = st.alpha_tokens / st.n_tokens
    return (t.min_alpha_word_frac / max(alpha, 1e-9),
            f"{alpha:.0%} of words have a letter (Gopher: {t.min_alpha_word_frac:.0%})")


def stop_words(st: TextStats, t: LowQualityThresholds) -> Ratio:
    """Gopher: how many of its stop words the text uses."""
    stops = sum(1 for rx in GOPHER_STOPWORD_RES if rx.search(st.low))  # of ASCII_WORD_RE's words
    return (t.min_stop_words / (stops + 0.5),  # > 1 exactly when stops < min_stop_words
            f"{stops} of Gopher's {len(GOPHER_STOPWORDS)} stop words (the, be, to, of, and, that, have, with)")


def corpus_floors(ratio: np.ndarray, t: LowQualityThresholds) -> np.ndarray:
    """Per rule (a row of ``ratio``, NaN where the rule does not apply): the corpus floor a ratio must
    also clear, median + ``z_threshold`` robust standard deviations of the rule's ratios, at least 1;
    1 for rules with fewer than ``min_calibration_docs`` ratios, or when ``z_threshold`` is 0."""
    floor = np.ones(ratio.shape[0])
    if t.z_threshold > 0:
        for j in range(ratio.shape[0]):
            x = ratio[j][~np.isnan(ratio[j])]
            if len(x) >= t.min_calibration_docs:
                med, spread = median_spread(x)
                floor[j] = max(1.0, med + t.z_threshold * spread)
    return floor
