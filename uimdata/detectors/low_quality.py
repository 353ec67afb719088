"""low_quality: the Gopher / C4 document-quality heuristics, kept apart from ``corrupted``.

``corrupted`` flags text that cannot be read as intended (mojibake, markup or page chrome around a
fragment, truncation, encoded blobs, symbol noise, token spam). The heuristics here are a different
kind of evidence: statistics that web-scale filters use to drop *low-quality* documents, and that
legitimately fire on some clean documents (a manual repeats its option names; a table has few stop
words). Curation policies can therefore treat the two issues differently.

Rules (``low_quality_rule`` names the worst one), with the published thresholds:

``repetition``
    Gopher (Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training
    Gopher", appendix A.1.1, table A1): the most frequent 2/3/4-gram covers more than 20 / 18 / 16 %
    of the characters; repeated 5..10-grams cover more than 15 / 14 / 13 / 12 / 11 / 10 %; duplicated
    lines hold more than 20 % of the characters or are more than 30 % of the lines.
``word_length``
    Gopher: mean word length outside [3, 10] characters.
``symbol_ratio``
    Gopher: "#" and ellipses ("...", "…") per word above 0.1.
``lines``
    Gopher: more than 90 % of lines start with a bullet, or more than 30 % end with an ellipsis.
``alpha_words``
    Gopher: fewer than 80 % of words contain an alphabetic character.
``stop_words``
    Gopher: fewer than 2 of the stop words "the, be, to, of, and, that, have, with".
``boilerplate``
    C4 (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
    Transformer", section 2.2): web boilerplate (cookie / privacy-policy / terms-of-use lines, "lorem
    ipsum", share / subscribe prompts) at more than 0.5 phrases per 100 words. Copyright notices are
    not counted: they are normal in documentation, code and books. Text that is *mostly* chrome is
    ``corrupted`` (rule ``boilerplate``).

The document rules (all but ``boilerplate``) apply to texts of at least ``min_words`` (100) words
(Gopher's own minimum is 50); short texts (glosses, package descriptions, titles) are not documents in Gopher's sense.

**Calibrated on the corpus.** A published threshold alone flags whole genres: most option lists
break a repetition threshold somewhere. So a row is flagged when its statistic is beyond the
published threshold *and* a robust outlier of the corpus: its ratio to the threshold is more than
``z_threshold`` (3.5) robust standard deviations (median / 1.4826 MAD over the corpus's documents)
above the corpus median. On a web-like corpus whose documents sit well inside the thresholds this is
the published rule; on a corpus of manuals only the manuals that repeat far more than manuals do are
flagged. The calibration needs 50 documents; smaller corpora use the published thresholds alone.

Per row: ``is_low_quality_issue``, ``low_quality_score`` (lower = worse; the published threshold
maps to 0.5), ``low_quality_reason`` and ``low_quality_rule``. Linear in the text length; only the
first ``max_chars`` characters are analysed.

Where the parts live: the thresholds and the rules in :mod:`uimdata.detectors.low_quality_rules`,
over one text's :class:`~uimdata.detectors.text_stats.TextStats`, with the phrase lists and patterns
of :mod:`uimdata.detectors.lexicon`; this module is the detector that runs them over batches and
calibrates them on the corpus.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from uimdata.detectors import register
from uimdata.detectors.base import BatchDetector, is_col, reason_col, result_table, score_col, thresholds_with
from uimdata.detectors.low_quality_rules import (
    LowQualityThresholds,
    Ratio,
    corpus_floors,
    ratios,
    ratios_many,
)
from uimdata.detectors.scoring import above, above_many
from uimdata.detectors.text_stats import stats_cache
from uimdata.errors import UimError

ISSUE = "low_quality"
RULE_COL = "low_quality_rule"
RULES = ("repetition", "word_length", "symbol_ratio", "lines", "alpha_words", "stop_words", "boilerplate")
#: per-rule statistic / threshold ratios between ``process`` and ``finish`` (dropped by ``finish``)
_RATIO_COLS = tuple(f"_low_quality_{r}" for r in RULES)
#: per-row details of every rule (``repr`` of a dict) between ``process`` and ``finish``
_DETAIL_COL = "_low_quality_detail"


class _Details(Sequence):
    """The per-row rule details kept as text between ``process`` and ``finish``, parsed when a row is
    read (``ast.literal_eval`` on every row of 10^6 took longer than the rules themselves)."""

    def __init__(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.column = column

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i):  # noqa: ANN001, ANN204 - Sequence's signature
        return ast.literal_eval(self.column[int(i)].as_py())


@register
class LowQualityDetector(BatchDetector):
    """Gopher / C4 quality heuristics, calibrated on the corpus; see the module docstring."""

    issue: ClassVar[str] = ISSUE
    parallel: ClassVar[bool] = True  # rule checks in Python, row by row
    #: first in a shared pass: its repetition statistics (top n-grams, 5..10-grams) hold corrupted's
    pass_order: ClassVar[int] = -1
    name: ClassVar[str] = ISSUE
    description: ClassVar[str] = (
        "Documents that web-scale quality filters (Gopher, C4) would drop - heavy repetition, odd word "
        "lengths, few stop words, bullet or ellipsis lines, web boilerplate - judged against the corpus's "
        "own documents; readable text, so curation may keep it."
    )
    extra_columns: ClassVar[dict[str, pa.DataType]] = {RULE_COL: pa.string()}
    adds: ClassVar[tuple[str, ...]] = (is_col(ISSUE), score_col(ISSUE), reason_col(ISSUE), RULE_COL)
    rules: ClassVar[tuple[str, ...]] = RULES
    #: readable text: on the multi-domain benchmark 0-2.8 % of clean rows and 21-29 % of planted corrupted
    #: ones, which corrupted flags anyway (docs/benchmarks.md#multi-domain-benchmark): kept by default,
    #: dropped by `aggressive`
    curate_rule: ClassVar[dict[str, Any]] = {"action": "keep"}
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {"aggressive": {"action": "drop"}}

    def __init__(self, thresholds: LowQualityThresholds | None = None, **overrides: Any) -> None:
        self.t = thresholds_with(LowQualityThresholds, thresholds, overrides, ISSUE)
        if len(self.t.max_top_ngram_frac) != 3 or len(self.t.max_dup_ngram_frac) != 6:
            raise UimError(f"bad thresholds for detector '{ISSUE}'",
                           expected="3 top-n-gram fractions (n=2..4) and 6 duplicate ones (n=5..10)",
                           got=f"{len(self.t.max_top_ngram_frac)} and {len(self.t.max_dup_ngram_frac)}")

    @property
    def thresholds(self) -> dict[str, Any]:
        return asdict(self.t)

    # -- one text --------------------------------------------------------------------------------

    def ratios(self, text: str | None) -> dict[str, Ratio]:
        """Per rule: ``(statistic / published threshold, detail)``; a ratio above 1 breaks the rule.
        Rules that do not apply to the text (too short) are absent."""
        return ratios(text, self.t)

    def check(self, text: str | None) -> tuple[str | None, float, str | None]:
        """``(rule, score, reason)`` with the published thresholds alone (no corpus calibration)."""
        r = ratios(text, self.t)
        if not r:
            return None, 1.0, None
        rule, (ratio, detail) = max(r.items(), key=lambda kv: kv[1][0])
        score = above(ratio, 1.0)
        return (rule, score, f"{rule}: {detail}") if score < 0.5 else (None, score, None)

    # -- the stage -------------------------------------------------------------------------------

    def process(self, batch: pa.Table, shared: dict | None = None) -> pa.Table:
        ids = batch.column("id")
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        texts = batch.column("text").to_pylist()
        n = len(texts)
        ratio = np.full((len(RULES), n), np.nan)
        details: list[dict[str, str]] = []
        for i, r in enumerate(ratios_many(texts, self.t, stats_cache(shared))):
            details.append({k: v[1] for k, v in r.items()})
            for j, rule in enumerate(RULES):
                if rule in r:
                    ratio[j, i] = r[rule][0]
        flagged, score, reasons, rules = self._decide(ratio, details, None)
        extras = {RULE_COL: pa.array(rules, pa.string())}
        extras.update({c: pa.array(ratio[j], pa.float64()) for j, c in enumerate(_RATIO_COLS)})
        extras[_DETAIL_COL] = pa.array([repr(d) for d in details], pa.string())
        return result_table(ISSUE, ids, flagged, score, reasons, extras=extras)

    def _decide(self, ratio: np.ndarray, details: Sequence[dict[str, str]],
                floor: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, list, list]:
        """Flag where a ratio is above 1 and above the rule's corpus floor (``floor[j]``). ``details`` is
        only read at the flagged rows."""
        n = ratio.shape[1]
        eff = np.where(np.isnan(ratio), 0.0, ratio)
        if floor is not None:  # the corpus calibration: the ratio must also clear the corpus floor
            eff = eff / np.maximum(floor[:, None], 1.0)
        worst = eff.argmax(axis=0) if n else np.zeros(0, int)
        best = eff[worst, np.arange(n)] if n else np.zeros(0)
        score = above_many(best, 1.0)
        flagged = score < 0.5
        reasons: list[str | None] = [None] * n
        rules: list[str | None] = [None] * n
        for i in np.flatnonzero(flagged):
            rule = RULES[worst[i]]
            rules[i] = rule
            extra = ""
            if floor is not None and floor[worst[i]] > 1.0:
                extra = "; far beyond this corpus's own documents"
            reasons[i] = f"{rule}: {details[i].get(rule, '')}{extra}"
        return flagged, score, reasons, rules

    def finish(self, table: pa.Table, texts: list[str | None]) -> pa.Table:  # noqa: ARG002
        """Calibrate on the corpus: per rule, a floor = median + z_threshold x 1.4826 MAD of the
        ratio over the corpus's rows it applies to; flag only ratios above both 1 and the floor."""
        if _RATIO_COLS[0] not in table.column_names:
            return table
        ratio = np.vstack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                           for c in _RATIO_COLS])
        details = _Details(table.column(_DETAIL_COL))  # parsed at the flagged rows only (a few %)
        flagged, score, reasons, rules = self._decide(ratio, details, corpus_floors(ratio, self.t))
        return result_table(ISSUE, table.column("id"), flagged, score, reasons,
                            extras={RULE_COL: pa.array(rules, pa.string())})

    def summarize(self, table: pa.Table) -> dict[str, Any]:
        n = table.num_rows
        counts = Counter(r for r in table.column(RULE_COL).to_pylist() if r is not None)
        flagged = sum(counts.values())
        out: dict[str, Any] = {"n_rows": n, "n_flagged": flagged, "flag_rate": (flagged / n) if n else 0.0}
        out.update({f"n_{rule}": int(counts.get(rule, 0)) for rule in RULES})
        return out
