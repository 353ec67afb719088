"""uimdata.detectors.low_quality: Gopher / C4 heuristics, calibrated on the corpus, apart from corrupted."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from uimdata.detectors import REGISTRY
from uimdata.detectors.base import is_col, reason_col
from uimdata.detectors.low_quality import RULE_COL, RULES, LowQualityDetector
from uimdata.errors import UimError

WORDS = ("river stone market winter garden silver island forest engine letter mirror candle harbor meadow "
         "castle violin pepper ladder").split()


def _prose(rng: random.Random, n: int = 120) -> str:
    out = []
    for i in range(n):
        out.append(rng.choice(WORDS))
        if i % 9 == 4:
            out.append(rng.choice(("the", "of", "and", "with", "to")))
    return " ".join(out) + "."


def run(det: LowQualityDetector, texts: list[str | None]) -> pa.Table:
    batch = pa.table({"id": pa.array([f"r{i}" for i in range(len(texts))]), "text": pa.array(texts, pa.string())})
    return det.finish(det.process(batch), texts)


@pytest.fixture(scope="module")
def det() -> LowQualityDetector:
    return LowQualityDetector()


def test_registered_and_default():
    from uimdata.scan import DEFAULT_DETECTORS

    assert REGISTRY["low_quality"] is LowQualityDetector and "low_quality" in DEFAULT_DETECTORS


def test_gopher_rules_fire_with_the_published_thresholds(det):
    rng = random.Random(0)
    rep = "The hotel is close to the beach and the rooms are clean. " * 3 + _prose(rng, 100)
    assert det.check(rep)[0] == "repetition"
    assert "Gopher" in det.check(rep)[2]
    assert det.check(" ".join(["supercalifragilistic"] * 3 + [f"extraordinarily{i}" for i in range(110)]))[0] in (
        "word_length", "stop_words")
    assert det.check("\n".join(f"\u2022 item {w} {i}" for i, w in enumerate(WORDS * 4)))[0] in ("lines", "stop_words")
    assert det.check(_prose(rng))[0] is None
    assert det.check("a short gloss")[0] is None  # short texts are not documents


def test_boilerplate_phrases_but_not_copyright(det):
    text = _prose(random.Random(1), 100) + " Click here to subscribe to our newsletter. Privacy policy."
    assert det.check(text)[0] == "boilerplate"
    notice = _prose(random.Random(2), 100) + " Copyright \u00a9 2019 Free Software Foundation. All rights reserved."
    assert det.check(notice)[0] is None


def test_calibrated_on_the_corpus(det):
    """In a corpus of option lists, every document repeats its option names: only the outliers are flagged."""
    rng = random.Random(3)

    def manual(reps: int) -> str:
        opts = [f"--{rng.choice(WORDS)}-{rng.choice(WORDS)}" for _ in range(10)]
        lines = [f"{o} set the {rng.choice(WORDS)} of the {rng.choice(WORDS)} with the given value" for o in opts]
        lines += [f"{opts[0]} {opts[1]} and the {rng.choice(WORDS)} of the {rng.choice(WORDS)}"] * reps
        return "\n".join(lines)

    corpus = [manual(2) for _ in range(80)] + [manual(40)]
    alone = [det.check(t)[0] for t in corpus[:80]]
    out = run(det, corpus)
    flags = out.column(is_col("low_quality")).to_pylist()
    assert sum(r is not None for r in alone) > 40  # the published thresholds alone flag most manuals
    n_alone = sum(r is not None for r in alone)
    assert sum(flags[:80]) < n_alone / 2 and flags[80]  # calibrated: far fewer, and the spam one
    assert "far beyond this corpus" in out.column(reason_col("low_quality")).to_pylist()[80]
    # z_threshold=0: the published thresholds alone
    plain = run(LowQualityDetector(z_threshold=0), corpus).column(is_col("low_quality")).to_pylist()
    assert sum(plain[:80]) > 40


def test_contract_and_summary(det):
    texts = [None, "", "short", _prose(random.Random(5))] * 5
    out = run(det, texts)
    assert out.column_names == ["id", "is_low_quality_issue", "low_quality_score", "low_quality_reason", RULE_COL]
    s = det.summarize(out)
    assert s["n_rows"] == 20 and set(f"n_{r}" for r in RULES) <= set(s)
    with pytest.raises(UimError):
        LowQualityDetector(no_such=1)


def test_technical_documents_not_flagged(det):
    from tests.test_corrupted import TECHNICAL

    doc = "\n".join(TECHNICAL)
    assert det.check(doc)[0] is None, det.check(doc)


def test_scores_of_many_statistics_at_once_are_the_scores_of_each():
    """``above_many`` (the corpus calibration's scores, vectorised) gives exactly ``above``'s numbers."""
    import numpy as np

    from uimdata.detectors.scoring import above, above_many

    x = np.concatenate([[0.0, 1.0, 1.0 + 1e-12, 1.0 - 1e-12, 1e-300, 1e300, 2.0],
                        np.random.default_rng(0).exponential(1.0, 10_000)])
    for t in (1.0, 0.0, 0.37, 3.0):
        assert np.array_equal(above_many(x, t), np.array([above(float(v), t) for v in x]))
