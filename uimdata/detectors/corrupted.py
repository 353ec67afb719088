"""Corrupted text: text that cannot be read as intended, one row at a time (plus one corpus pass).

Each row gets the rule that fired (``corrupted_rule``), a short human reason and a score in
[0, 1] (lower = worse). Every rule turns its statistic into a sub-score through its threshold so
that the threshold lands exactly on 0.5; the row's score is the minimum over the rules, so a row is
flagged exactly when ``score < 0.5`` and the reason names the worst rule. Technical text is not
noise: command-line synopses (``[--region=REGION]``), identifiers (``lib64ubsan1-i386-cross``),
paths, version strings, code, tables and option lists are normal in documentation corpora. The
Gopher / C4 low-quality heuristics (repetition ratios, word length, stop words, boilerplate phrases
at low density) are the ``low_quality`` detector's. The rules, cheapest first:

``empty``
    null, empty or whitespace-only text.
``mojibake``
    text decoded with the wrong codec (UTF-8 read as cp1252 / latin-1 and the like, found and
    confirmed by ``ftfy``), U+FFFD replacement characters and C0/C1 control characters other than
    tab, newline and carriage return.
``markup``
    HTML/XML elements (a bare ``<label>`` only when ``</label>`` is there too: synopses use such
    placeholders), HTML entities, comments / CDATA / doctype, wiki links and templates, BBCode; at
    least ``min_markup_hits`` fragments. Code, CSS and templates such as ``{{.Name}}`` are not markup.
``boilerplate``
    page chrome around a fragment: navigation, share, cookie, policy and copyright phrases at more
    than ``max_chrome_per_100_words`` per 100 actual words (one copyright line in a manual is 0.2).
``symbols``
    symbol / digit noise: few alphabetic characters, many words without any letter (numbers, hex
    codes), unbroken runs of non-space characters that are not synopses or code, noise words (mixed
    symbols with few letters such as "#$%@!&*", base64 / hex blobs; in longer texts only when they
    hold 5 % of the characters, so a quoted digest is not noise).
``stub``
    too short to carry meaning: very few letters ("ok", "n/a", "???"), no word at all, a
    placeholder value ("null", "TODO", "[deleted]"), a bare URL or a one-word keyboard mash ("asdf").
    One real word ("goldfish") is kept by default (``min_words=1``): about 0.7 % of WordNet's
    clean glosses are a single word; ``min_words=2`` flags every one-word text.
``repetition``
    token spam: letter runs ("aaaaaaaa"); few unique words on short texts; on texts of 30 words and
    more, repeated 5-grams or repeated lines covering more than half of the text.
``truncated``
    calibrated on the corpus (:meth:`CorruptedDetector.finish`, after every batch): a text of a few
    characters far shorter than the corpus's texts whose last word stops inside a word of the corpus
    ("syste", "golan", "r-cra", "librec-d"), or any text of a few characters in a corpus of documents.

Letters are Unicode letters (and combining marks), so German, Spanish, Cyrillic, Chinese or Hindi
text is not symbol noise, and non-ASCII letters are never mojibake unless ``ftfy`` can repair them.
Only the first ``max_chars`` characters of a text are analysed, so every rule is linear and a 1 MB
text costs milliseconds.

Where the parts live: the word lists and patterns in :mod:`uimdata.detectors.lexicon`, one text's
statistics in :mod:`uimdata.detectors.text_stats`, the thresholds and the per-text rules in
:mod:`uimdata.detectors.corrupted_rules`, the corpus pass in :mod:`uimdata.detectors.truncation`;
this module is the detector that runs them over batches.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from uimdata.detectors import register
from uimdata.detectors.base import BatchDetector, is_col, reason_col, result_table, score_col, thresholds_with
from uimdata.detectors.corrupted_rules import PATTERN_SCORE, CorruptedThresholds, check_text, check_texts
from uimdata.detectors.text_stats import stats_cache
from uimdata.detectors.truncation import truncated_rows
from uimdata.errors import UimError

ISSUE = "corrupted"
RULE_COL = "corrupted_rule"
#: the rules, in the order that breaks ties between equal scores
RULES = ("empty", "mojibake", "markup", "boilerplate", "symbols", "stub", "repetition", "truncated")


@register
class CorruptedDetector(BatchDetector):
    """Flag text that cannot be read as intended; see the module docstring."""

    issue: ClassVar[str] = ISSUE
    parallel: ClassVar[bool] = True  # rule checks in Python, row by row
    name: ClassVar[str] = ISSUE
    description: ClassVar[str] = (
        "Broken text - empty rows, mojibake, HTML markup or page chrome around a fragment, symbol "
        "noise and encoded blobs, stubs, truncation and token spam - that wastes tokens and teaches "
        "the model junk."
    )
    extra_columns: ClassVar[dict[str, pa.DataType]] = {RULE_COL: pa.string()}
    adds: ClassVar[tuple[str, ...]] = (is_col(ISSUE), score_col(ISSUE), reason_col(ISSUE), RULE_COL)
    rules: ClassVar[tuple[str, ...]] = RULES
    curate_rule: ClassVar[dict[str, Any]] = {"action": "drop"}
    example_columns: ClassVar[tuple[tuple[str, str], ...]] = (("rule", RULE_COL),)

    def __init__(self, thresholds: CorruptedThresholds | None = None, **overrides: Any) -> None:
        self.t = thresholds_with(CorruptedThresholds, thresholds, overrides, ISSUE)
        t = self.t
        if t.max_chars < 1 or t.max_run_chars < 1:
            raise UimError(f"bad thresholds for detector '{ISSUE}'",
                           expected="max_chars >= 1 and max_run_chars >= 1",
                           got=f"max_chars={t.max_chars}, max_run_chars={t.max_run_chars}")

    @property
    def thresholds(self) -> dict[str, Any]:
        return asdict(self.t)

    def check(self, text: str | None) -> tuple[str | None, float, str | None]:
        """``(rule, score, reason)`` of one text; ``rule`` and ``reason`` are None when clean."""
        return check_text(text, self.t)

    def truncated(self, texts: list[str | None], flagged: np.ndarray | None = None) -> dict[int, tuple[str, str]]:
        """Rows cut to a few characters, found against the corpus: ``{row: (rule, reason)}`` (see
        :func:`uimdata.detectors.truncation.truncated_rows`)."""
        return truncated_rows(texts, self.t, flagged)

    # -- the stage -------------------------------------------------------------------------------

    def process(self, batch: pa.Table, shared: dict | None = None) -> pa.Table:
        ids = batch.column("id")
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        texts = batch.column("text").to_pylist()
        n = len(texts)
        scores = np.ones(n, dtype=np.float64)
        reasons: list[str | None] = [None] * n
        rules: list[str | None] = [None] * n
        t = self.t
        for i, (rule, score, reason) in enumerate(check_texts(texts, t, stats_cache(shared))):
            scores[i] = score
            if rule is not None:
                rules[i] = rule
                reasons[i] = reason
        flagged = scores < 0.5
        return result_table(ISSUE, ids, flagged, scores, reasons,
                            extras={RULE_COL: pa.array(rules, pa.string())})

    def finish(self, table: pa.Table, texts: list[str | None]) -> pa.Table:
        """The ``truncated`` rule, calibrated on the corpus: see :meth:`truncated`."""
        if table.num_rows != len(texts) or not len(texts):
            return table
        flagged = table.column(is_col(ISSUE)).to_numpy(zero_copy_only=False)
        hits = self.truncated(texts, flagged)
        if not hits:
            return table
        score = table.column(score_col(ISSUE)).to_numpy(zero_copy_only=False).copy()
        reasons = table.column(reason_col(ISSUE)).to_pylist()
        rules = table.column(RULE_COL).to_pylist()
        flagged = flagged.copy()
        for i, (rule, reason) in hits.items():
            flagged[i], score[i], reasons[i], rules[i] = True, min(score[i], PATTERN_SCORE), reason, rule
        return result_table(ISSUE, table.column("id"), flagged, score, reasons,
                            extras={RULE_COL: pa.array(rules, pa.string())})

    def summarize(self, table: pa.Table) -> dict[str, Any]:
        """Rows, flagged rows and the count per rule (``n_<rule>``, every rule present)."""
        n = table.num_rows
        counts = Counter(r for r in table.column(RULE_COL).to_pylist() if r is not None)
        flagged = sum(counts.values())
        out: dict[str, Any] = {"n_rows": n, "n_flagged": flagged,
                               "flag_rate": (flagged / n) if n else 0.0}
        out.update({f"n_{rule}": int(counts.get(rule, 0)) for rule in RULES})
        return out
