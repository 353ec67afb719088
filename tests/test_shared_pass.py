"""The batch detectors run in one pass that analyses each text once (SharedPass): the same results as
each detector on its own, fewer analyses, and the vectorised boilerplate search never rules out a text
that has a phrase."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from uimdata.detectors import text_stats
from uimdata.detectors.base import BatchDetector, SharedPass, result_table
from uimdata.detectors.corrupted import CorruptedDetector
from uimdata.detectors.lexicon import BOILERPLATE_ANY, BOILERPLATE_RE, boilerplate_matches
from uimdata.detectors.low_quality import LowQualityDetector
from uimdata.detectors.text_stats import TextStats, boilerplate_for_all, repetition_for_all

OPTIONS = " ".join(f"--option-{i} VALUE sets the {i}th setting of the tool" for i in range(30))


def _texts() -> list[str | None]:
    prose = ("The configuration file is read at start-up; each section names a service and the "
             "options it takes, and a missing section falls back to the defaults described below. ")
    clean = " ".join([
        prose, "Services started by the supervisor inherit its environment unless a section overrides it.",
        "Logs go to the journal by default; a path in the log option sends them to a file instead.",
        "When a service fails three times within a minute, it is marked as broken and left stopped.",
        "The reload command rereads the file and restarts only the services whose sections changed.",
        "Ports below 1024 need the bind capability, which the packaged unit grants to the daemon.",
        "A dry run prints the plan without touching any process, which helps when editing by hand.",
        "Each option may also be given on the command line, where it takes precedence over the file.",
    ])
    return [
        clean,                                                        # a clean long document
        "spam spam spam buy now " * 60,                               # token spam (corrupted)
        "Home | About us | Contact us\nClick here to subscribe\n" + prose,  # page chrome
        "Ã©tÃ© cafÃ© naÃ¯ve " * 5,                                   # mojibake
        ("see also\n" * 40) + prose * 3,                              # repeated lines (low_quality)
        OPTIONS,                                                      # an option list: repeated n-grams
        "copyright \u00a9 2024 the authors. " + prose * 4,
        None, "", "   ",
        "lib64ubsan1-i386-cross",
        "\u0661\u0662 comments (\u0663) " + prose,                   # Arabic-Indic digits in a phrase
    ]


def _table(texts: list[str | None]) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())})


def _rows(table: pa.Table) -> list[dict]:
    """The rows with NaN as None (NaN is not equal to itself)."""
    return [{k: None if v != v else v for k, v in row.items()} for row in table.to_pylist()]


def test_a_shared_pass_gives_each_detector_its_own_result():
    table = _table(_texts() * 3)
    dets = [CorruptedDetector(), LowQualityDetector()]
    alone = [det.process(table) for det in dets]
    stage = SharedPass(dets)
    assert stage.name == "low_quality+corrupted"  # low_quality's statistics hold corrupted's: it goes first
    split = stage.split(stage.process(table))
    for own, (shared, seconds) in zip(alone, split):
        assert shared.schema.equals(own.schema) and _rows(shared) == _rows(own)
        assert seconds > 0
    flagged = {r: set(t.filter(t.column(f"is_{d.issue}_issue")).column("id").to_pylist())
               for r, d, t in zip("cl", dets, alone)}
    assert {"r1", "r3"} <= flagged["c"] and "r0" not in flagged["c"] | flagged["l"]


class _Shouting(BatchDetector):
    """A detector written before the shared pass: ``process(batch)`` without ``shared``."""

    issue = "shouting"
    adds = ("is_shouting_issue", "shouting_score", "shouting_reason")

    def process(self, batch: pa.Table) -> pa.Table:
        texts = batch.column("text").to_pylist()
        loud = np.array([bool(t) and t.isupper() for t in texts])
        return result_table(self.issue, batch.column("id").combine_chunks(), loud, np.where(loud, 0.0, 1.0),
                            ["all capitals"] * len(texts))


def test_a_detector_without_the_shared_argument_runs_in_the_pass():
    table = _table(["QUIET PLEASE", "a calm sentence", None])
    stage = SharedPass([CorruptedDetector(), _Shouting()])
    (_, _), (shouting, _) = stage.split(stage.process(table))
    assert shouting.column("is_shouting_issue").to_pylist() == [True, False, False]


def test_a_shared_pass_analyses_each_text_once(monkeypatch):
    made = []
    real = TextStats.of.__func__

    def counting(cls, text, max_chars):
        made.append(text)
        return real(cls, text, max_chars)

    monkeypatch.setattr(TextStats, "of", classmethod(counting))
    texts = [t for t in _texts() if t and not t.isspace()]
    SharedPass([CorruptedDetector(), LowQualityDetector()]).process(_table(texts))
    assert sorted(made) == sorted(texts)
    made.clear()
    for det in (CorruptedDetector(), LowQualityDetector()):
        det.process(_table(texts))
    assert len(made) == 2 * len(texts)


def test_larger_repetition_statistics_answer_a_smaller_request():
    docs = [TextStats.of(t, 100_000) for t in (OPTIONS, "a b c d e " * 40, "one two three four five six")]
    fresh = [TextStats.of(t.text, 100_000) for t in docs]
    repetition_for_all(docs)  # top n-grams and 5..10-grams
    repetition_for_all(docs, top=False, max_n=5)  # answered by the above: nothing computed
    assert all(list(d._repetition) == [(True, 10)] for d in docs)
    for d, f in zip(docs, fresh):
        small, big = f.repetition(top=False, max_n=5), d.repetition(top=False, max_n=5)
        assert big.dup_ngram_frac[0] == small.dup_ngram_frac[0]
        assert (big.dup_line_char_frac, big.dup_line_frac) == (small.dup_line_char_frac, small.dup_line_frac)
    assert docs[1].repetition(top=False, max_n=5).dup_ngram_frac[0] > 0.9


@settings(max_examples=300, deadline=None)
@given(st.from_regex(BOILERPLATE_RE), st.text(max_size=20))
def test_the_vectorised_search_finds_every_text_with_a_phrase(text, more):
    low = (text + more).lower()
    if boilerplate_matches(low):
        assert pl.Series([low]).str.contains(BOILERPLATE_ANY).item(), repr(low)


def test_texts_ruled_out_have_no_phrase_and_the_others_are_searched():
    texts = ["nothing to see here", "please click here now", "\u00a9 2023 acme", "an ordinary sentence",
             "registered users only", "comments (12)"]
    stats = [TextStats.of(t, 1000) for t in texts]
    boilerplate_for_all(stats)
    ruled_out = [st._boilerplate == [] for st in stats]
    assert ruled_out == [True, False, False, True, False, False]
    assert [st.boilerplate_matches() for st in stats] == [boilerplate_matches(t) for t in texts]


def test_the_scan_times_each_detector_of_the_pass(tmp_path, clean_df):
    from uimdata.executors.local import LocalExecutor
    from uimdata.scan import ScanConfig, scan

    corpus = tmp_path / "c.parquet"
    pl.concat([clean_df, pl.DataFrame({"id": ["x"], "text": ["Ã©tÃ© cafÃ© naÃ¯ve " * 5], "label": ["food"]})]
              ).write_parquet(corpus)
    res = scan(ScanConfig(corpus=str(corpus), out=str(tmp_path / "run"), detectors=("corrupted", "low_quality")),
               LocalExecutor(progress=False))
    timings = json.loads((tmp_path / "run" / "run.json").read_text())["timings"]
    assert "low_quality+corrupted" not in timings
    for issue in ("corrupted", "low_quality"):
        assert timings[issue]["rows"] == clean_df.height + 1 and timings[issue]["seconds"] > 0
    assert pl.read_parquet(res.run.flags).filter(pl.col("is_corrupted_issue"))["id"].to_list() == ["x"]
    assert text_stats.stats_cache(None) is None
