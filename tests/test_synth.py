"""uimdata.synth: planted defects are what the truth table says they are."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from uimdata import synth

try:
    from rapidfuzz import fuzz

    def ratio(a: str, b: str) -> float:
        return fuzz.ratio(a, b) / 100
except ImportError:  # pragma: no cover
    import difflib

    def ratio(a: str, b: str) -> float:
        return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


DATA = Path(__file__).resolve().parents[1] / "uimdata" / "data"

_VOCAB = ("a", "the", "of", "or", "and", "small", "large", "plant", "animal", "water", "used", "having",
          "especially", "person", "genus", "family", "tree", "body", "part", "state", "act", "relating",
          "tropical", "European", "river", "city", "instrument", "device", "member", "group", "process",
          "quality", "feeling", "food", "substance", "motion", "change", "that", "which", "with", "into")
_LABELS = ("noun.plant", "noun.animal", "verb.motion", "adj.all", "noun.artifact")


def make_corpus(n: int, seed: int = 0, prefix: str = "doc-") -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < n:
        lemma = "".join(rng.choice(list("bcdfghklmnprstvz"), 2)) + rng.choice(["ola", "ina", "ex", "um"])
        words = rng.choice(_VOCAB, size=int(rng.integers(5, 16)))
        t = f"{lemma}{len(texts)}: " + " ".join(words)
        if t not in seen:
            seen.add(t)
            texts.append(t)
    return pl.DataFrame({
        "id": [f"{prefix}{i:05d}" for i in range(n)],
        "text": texts,
        "label": [_LABELS[i] for i in rng.integers(0, len(_LABELS), size=n)],
    })


@pytest.fixture(scope="module")
def corpus() -> pl.DataFrame:
    return make_corpus(600)


@pytest.fixture(scope="module")
def planted(corpus: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    return synth.plant_all(corpus, n_exact=40, n_near=80, n_corrupted=70, rng=7)


def _joined(df: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    src = df.select(pl.col("id").alias("source_id"), pl.col("text").alias("source_text"),
                    pl.col("label").alias("source_label"))
    return truth.join(df, on="id", how="left").join(src, on="source_id", how="left")


# ------------------------------------------------------------------------------------------- structure

def test_counts_and_ids(corpus, planted):
    df, truth = planted
    assert df.height == corpus.height + 190
    assert truth.height == 190
    assert truth["defect"].value_counts().sort("defect").rows() == [
        ("corrupted", 70), ("exact_duplicate", 40), ("near_duplicate", 80)]
    assert df["id"].n_unique() == df.height
    assert truth["id"].n_unique() == truth.height
    assert truth["id"].is_in(df["id"].implode()).all()
    assert not truth["id"].is_in(corpus["id"].implode()).any()
    assert truth.columns == ["id", "defect", "kind", "source_id"]
    assert set(truth["defect"]) <= set(synth.DEFECTS)


def test_originals_stay_in_order(corpus, planted):
    df, truth = planted
    kept = df.filter(~pl.col("id").is_in(truth["id"].implode()))
    assert kept.equals(corpus)
    # the copies are spread over the corpus, not appended at the end
    pos = np.flatnonzero(df["id"].is_in(truth["id"].implode()).to_numpy())
    assert pos.min() < df.height // 4 and pos.max() > 3 * df.height // 4
    # and the truth is in corpus order
    assert truth["id"].to_list() == df.filter(pl.col("id").is_in(truth["id"].implode()))["id"].to_list()


def test_new_ids_follow_the_pattern(planted):
    df, _ = planted
    assert df["id"].str.contains(r"^doc-\d{5}$").all()


def test_exact_duplicates_equal_their_source(corpus, planted):
    j = _joined(*planted).filter(pl.col("defect") == "exact_duplicate")
    assert j["source_id"].is_in(corpus["id"].implode()).all()
    assert (j["text"] == j["source_text"]).all()
    assert (j["label"] == j["source_label"]).all()
    assert set(j["kind"]) == {synth.EXACT_KIND}


def test_near_duplicates_are_near_not_equal(corpus, planted):
    df, truth = planted
    j = _joined(df, truth).filter(pl.col("defect") == "near_duplicate")
    assert j["source_id"].is_in(corpus["id"].implode()).all()
    assert (j["label"] == j["source_label"]).all()
    for text, src, kind in j.select("text", "source_text", "kind").iter_rows():
        assert text != src
        assert ratio(text, src) >= 0.8, (text, src, kind)
        assert synth.similarity(text, src) >= synth.MIN_NEAR_SIMILARITY
        edits = kind.split("+")
        assert 1 <= len(edits) <= 3 and set(edits) <= set(synth.NEAR_EDITS)
    # a near copy equals no other text in the corpus
    near_texts = j["text"]
    assert df.filter(pl.col("text").is_in(near_texts.implode())).height == j.height
    # sources of exact and near duplicates are disjoint
    exact_src = truth.filter(pl.col("defect") == "exact_duplicate")["source_id"]
    assert not j["source_id"].is_in(exact_src.implode()).any()


def test_near_edit_kinds_all_occur():
    df, truth = synth.plant_near_duplicates(make_corpus(800, seed=3), 400, rng=3)
    used = set("+".join(truth["kind"].to_list()).split("+"))
    assert used == set(synth.NEAR_EDITS)
    assert set(truth["kind"].str.split("+").list.len().to_list()) == {1, 2, 3}


def test_corrupted_rows(planted):
    df, truth = planted
    j = _joined(df, truth).filter(pl.col("defect") == "corrupted")
    assert j["source_id"].null_count() == j.height
    assert j["label"].is_in(list(_LABELS)).all()
    # spread evenly over all kinds
    counts = j["kind"].value_counts()
    assert set(counts["kind"]) == set(synth.CORRUPTION_KINDS)
    assert counts["count"].min() == counts["count"].max() == 10
    # unique in the corpus
    assert not df.filter(pl.col("text").is_in(j["text"].implode()))["text"].is_duplicated().any()
    for text, kind in j.select("text", "kind").iter_rows():
        assert SIGNATURES[kind](text), (kind, text)


# ------------------------------------------------------------------------------------------- corruption

def _repetitive(t: str) -> bool:
    if re.search(r"(.)\1{19,}", t):
        return True
    tokens = re.findall(r"\w+", t.lower())
    return len(tokens) >= 6 and len(set(tokens)) / len(tokens) <= 0.5


SIGNATURES = {
    "mojibake": lambda t: "Ã" in t or "â€" in t,
    "markup": lambda t: re.search(r"<[a-zA-Z!/][^>]*>", t) is not None,
    "boilerplate": lambda t: re.search(
        r"(?i)rights reserved|privacy|newsletter|cookie|terms|subscribe|copyright|©", t) is not None,
    "stub": lambda t: len(t.strip()) <= 25 and len(t.split()) <= 3,
    "repetition": _repetitive,
    "symbols": lambda t: re.search(r"[^\w\s]{4,}|[A-Za-z0-9+/=]{24,}", t) is not None,
    "replacement_chars": lambda t: "\ufffd" in t,
}


def test_mojibake_examples():
    assert synth.mojibake("café") == "cafÃ©"
    assert synth.mojibake("don’t") == "donâ€™t"
    assert synth.mojibake("plain ascii") == "plain ascii"


@pytest.mark.parametrize("kind", synth.CORRUPTION_KINDS)
def test_every_corruption_has_its_signature_and_varies(kind):
    sources = make_corpus(50, seed=11)["text"].to_list() + ["x", "ok: fine"]
    outs = [synth.corrupt_text(sources[s % len(sources)], kind, rng=s) for s in range(300)]
    for out in outs:
        assert SIGNATURES[kind](out), out
    assert len(set(outs)) > 40  # not one fixed string
    if kind == "mojibake":  # plain-ASCII sources get something to garble first
        assert all(re.search(r"[^\x00-\x7f]", o) for o in outs)


def test_unknown_corruption_kind_raises(corpus):
    with pytest.raises(ValueError):
        synth.corrupt_text("abc", "nonsense")
    with pytest.raises(ValueError):
        synth.plant_corrupted(corpus, 3, rng=0, kinds=("nonsense",))


def test_corruption_kinds_subset(corpus):
    _, truth = synth.plant_corrupted(corpus, 12, rng=1, kinds=("stub", "markup"))
    assert truth["kind"].value_counts().sort("kind").rows() == [("markup", 6), ("stub", 6)]


def test_donors_supply_text_and_label(corpus):
    donors = pl.DataFrame({"text": [f"donor number {i}: a held out definition of things" for i in range(30)],
                           "label": ["donor.label"] * 30})
    df, truth = synth.plant_corrupted(corpus, 20, rng=2, kinds=("markup",), donors=donors)
    rows = df.filter(pl.col("id").is_in(truth["id"].implode()))
    assert (rows["label"] == "donor.label").all()
    assert rows["text"].str.contains("donor").all()


# ------------------------------------------------------------------------------------------- misc

def test_determinism(corpus):
    a = synth.plant_all(corpus, 10, 20, 14, rng=123)
    b = synth.plant_all(corpus, 10, 20, 14, rng=np.random.default_rng(123))
    c = synth.plant_all(corpus, 10, 20, 14, rng=124)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[0].equals(c[0])


def test_single_defect_functions(corpus):
    for fn, defect in ((synth.plant_exact_duplicates, "exact_duplicate"),
                       (synth.plant_near_duplicates, "near_duplicate"),
                       (synth.plant_corrupted, "corrupted")):
        df, truth = fn(corpus, 9, rng=5)
        assert df.height == corpus.height + 9
        assert truth.height == 9 and (truth["defect"] == defect).all()


def test_zero_and_empty(corpus):
    df, truth = synth.plant_all(corpus, rng=0)
    assert df.equals(corpus) and truth.height == 0
    assert truth.columns == list(synth.TRUTH_SCHEMA)


def test_integer_and_irregular_ids(corpus):
    ints = corpus.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("id") * 3)
    df, truth = synth.plant_all(ints, 5, 5, 7, rng=0)
    assert df["id"].dtype == pl.Int64 and truth["id"].dtype == pl.Int64
    assert df["id"].n_unique() == df.height
    assert truth.filter(pl.col("defect") != "corrupted")["source_id"].is_in(ints["id"].implode()).all()

    odd = corpus.with_columns(pl.format("{}-{}", pl.col("label"), pl.col("id")).alias("id"))
    odd = odd.with_columns(pl.col("id").str.replace(r"\d+$", "x"))
    odd = odd.with_columns(pl.format("{}{}", pl.col("id"), pl.int_range(pl.len()).cast(pl.Utf8) + "a"))
    df, truth = synth.plant_all(odd, 5, 5, 7, rng=0)
    assert df["id"].n_unique() == df.height


def test_renumber_ids(planted):
    df, truth = planted
    rng = np.random.default_rng(0)
    shuffled = df[rng.permutation(df.height)]
    new_df, new_truth = synth.renumber_ids(shuffled, truth, prefix="x-", width=4)
    assert new_df["id"].to_list() == [f"x-{k:04d}" for k in range(1, df.height + 1)]
    old = _joined(shuffled, truth).sort("text", "source_text", "kind")
    new = _joined(new_df, new_truth).sort("text", "source_text", "kind")
    assert old.select("text", "source_text", "defect", "kind").equals(
        new.select("text", "source_text", "defect", "kind"))


def test_planting_at_55k_rows():
    """Planting works at benchmark scale (its speed is measured in `make bench`, not asserted here)."""
    big = make_corpus(55_000, seed=1)
    df, truth = synth.plant_all(big, 500, 1000, 700, rng=0)
    assert df.height == 57_200 and df["id"].n_unique() == df.height


# ------------------------------------------------------------------------------------------- shipped data

def test_demo_corpus_matches_its_truth():
    df = pl.read_parquet(DATA / "demo" / "corpus.parquet")
    truth = pl.read_parquet(DATA / "demo" / "truth.parquet")
    assert df.columns == ["id", "text", "label"] and truth.columns == ["id", "defect", "kind", "source_id"]
    assert df.height <= 3000 and df["id"].n_unique() == df.height
    counts = df["label"].value_counts()
    assert counts.height == 45 and counts["count"].min() >= 3
    assert truth["id"].is_in(df["id"].implode()).all()
    j = _joined(df, truth)
    dup = j.filter(pl.col("defect") != "corrupted")
    assert dup["source_id"].is_in(df["id"].implode()).all()
    assert not dup["source_id"].is_in(truth["id"].implode()).any()  # sources are clean rows
    assert (dup["label"] == dup["source_label"]).all()
    exact = dup.filter(pl.col("defect") == "exact_duplicate")
    assert exact.height > 0 and (exact["text"] == exact["source_text"]).all()
    near = dup.filter(pl.col("defect") == "near_duplicate")
    assert near.height > 0 and all(a != b and ratio(a, b) >= 0.8 for a, b in near.select(
        "text", "source_text").iter_rows())
    bad = j.filter(pl.col("defect") == "corrupted")
    assert set(bad["kind"]) == set(synth.CORRUPTION_KINDS)
    for text, kind in bad.select("text", "kind").iter_rows():
        assert SIGNATURES[kind](text), (kind, text)
    # nothing but the planted rows repeats a text
    assert df.filter(pl.col("text").is_duplicated())["id"].is_in(
        pl.concat([exact["id"], exact["source_id"]]).implode()).all()
