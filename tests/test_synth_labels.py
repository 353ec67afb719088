"""uimdata.synth.labels: planted label noise and OOD rows are what the truth table says they are."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from uimdata.synth import labels as sl

OOD_FILE = Path(__file__).resolve().parents[1] / "uimdata" / "data" / "ood" / "ood.parquet"
CLASSES = ("noun.animal", "noun.plant", "noun.artifact", "verb.motion", "adj.all")


def make_corpus(n: int, seed: int = 0, prefix: str = "doc-", n_classes: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    labels = [CLASSES[i] for i in rng.integers(0, n_classes, size=n)]
    return pl.DataFrame({
        "id": [f"{prefix}{i:05d}" for i in range(1, n + 1)],
        "text": [f"text number {i} about {lab}" for i, lab in enumerate(labels)],
        "label": labels,
        "extra": np.arange(n),
    })


def make_ood(n: int = 40) -> pl.DataFrame:
    kinds = ["other_language", "other_domain"]
    return pl.DataFrame({
        "text": [f"ood text {i} ist nicht englisch" for i in range(n)],
        "kind": [kinds[i % 2] for i in range(n)],
        "lang": ["de" if i % 2 == 0 else "en" for i in range(n)],
    })


def check_noise(df: pl.DataFrame, out: pl.DataFrame, truth: pl.DataFrame) -> None:
    """Only labels changed, exactly on the truth rows, never to the same label."""
    assert out.columns == df.columns and out.height == df.height
    assert out.schema == df.schema
    assert out.drop("label").equals(df.drop("label"))
    changed = df.with_row_index("i").filter(pl.col("label") != out["label"])
    assert changed["id"].to_list() == truth["id"].to_list()  # truth in frame order
    assert set(truth["defect"].to_list()) <= {"label_noise"}
    assert (truth["given_label"] != truth["true_label"]).all()
    joined = truth.join(df.select("id", pl.col("label").alias("orig")), on="id").join(
        out.select("id", pl.col("label").alias("now")), on="id")
    assert (joined["orig"] == joined["true_label"]).all()
    assert (joined["now"] == joined["given_label"]).all()


# ----------------------------------------------------------------------------------------- label noise

@pytest.mark.parametrize("frac,n_rows", [(0.1, 1000), (0.05, 333), (0.5, 41), (0.0, 50)])
def test_uniform_flips_exact_count(frac, n_rows):
    df = make_corpus(n_rows, seed=1)
    out, truth = sl.plant_label_noise(df, frac, rng=7)
    assert truth.height == round(frac * n_rows)
    assert truth.schema == sl.truth_schema()
    check_noise(df, out, truth)
    assert set(truth["kind"].to_list()) <= {"uniform"}


def test_uniform_reaches_every_other_class():
    df = make_corpus(5000, seed=2)
    out, truth = sl.plant_label_noise(df, 0.2, rng=3)
    pairs = set(zip(truth["true_label"].to_list(), truth["given_label"].to_list()))
    assert len(pairs) == len(CLASSES) * (len(CLASSES) - 1)  # every ordered pair of distinct classes
    check_noise(df, out, truth)


def test_confusable_flips_go_to_listed_classes():
    df = make_corpus(2000, seed=4)
    confusable = {
        "noun.animal": [("noun.plant", 0.7), ("verb.motion", 0.3), ("noun.animal", 5.0)],  # self: ignored
        "noun.plant": [("noun.animal", 1.0), ("adj.all", 0.0)],  # weight 0: never used
        "verb.motion": ["noun.artifact"],  # a bare label: weight 1
    }
    out, truth = sl.plant_label_noise(df, 0.25, rng=5, mode="confusable", confusable=confusable)
    assert truth.height == 500
    check_noise(df, out, truth)
    assert set(truth["kind"].to_list()) == {"confusable"}
    allowed = {"noun.animal": {"noun.plant", "verb.motion"}, "noun.plant": {"noun.animal"},
               "verb.motion": {"noun.artifact"}}
    for true, given in zip(truth["true_label"].to_list(), truth["given_label"].to_list()):
        assert given in allowed[true]
    # the weights are followed: noun.animal goes to noun.plant about 70% of the time
    animal = truth.filter(pl.col("true_label") == "noun.animal")
    share = (animal["given_label"] == "noun.plant").mean()
    assert 0.55 < share < 0.85


def test_mixed_is_half_each_on_distinct_rows():
    df = make_corpus(1000, seed=6)
    confusable = {c: [(CLASSES[(i + 1) % len(CLASSES)], 1.0)] for i, c in enumerate(CLASSES)}
    out, truth = sl.plant_label_noise(df, 0.15, rng=8, mode="mixed", confusable=confusable)
    assert truth.height == 150
    assert truth["id"].n_unique() == 150
    counts = dict(truth.group_by("kind").len().iter_rows())
    assert counts == {"confusable": 75, "uniform": 75}
    check_noise(df, out, truth)
    conf = truth.filter(pl.col("kind") == "confusable")
    nxt = {c: CLASSES[(i + 1) % len(CLASSES)] for i, c in enumerate(CLASSES)}
    assert all(nxt[t] == g for t, g in zip(conf["true_label"].to_list(), conf["given_label"].to_list()))


def test_null_labels_never_flipped_and_dtypes_kept():
    df = make_corpus(300, seed=9).with_columns(
        pl.when(pl.col("extra") % 3 == 0).then(None).otherwise(pl.col("label")).alias("label"))
    out, truth = sl.plant_label_noise(df, 0.5, rng=1)  # 150 flips, 200 labelled rows
    assert truth.height == 150
    assert truth["true_label"].null_count() == 0
    check_noise(df, out, truth)
    assert out["label"].null_count() == df["label"].null_count()
    # integer and categorical labels keep their dtype
    ints = make_corpus(200, seed=2).with_columns(pl.col("label").rank("dense").cast(pl.Int32))
    out, truth = sl.plant_label_noise(ints, 0.1, rng=2)
    assert out.schema == ints.schema and truth.schema["given_label"] == pl.Int32
    check_noise(ints, out, truth)
    cats = make_corpus(200, seed=3).with_columns(pl.col("label").cast(pl.Categorical))
    out, truth = sl.plant_label_noise(cats, 0.1, rng=2)
    assert out.schema == cats.schema
    assert (out["label"].cast(pl.Utf8) != cats["label"].cast(pl.Utf8)).sum() == 20


def test_label_noise_errors():
    df = make_corpus(100)
    with pytest.raises(ValueError, match="mode"):
        sl.plant_label_noise(df, 0.1, mode="nope")
    with pytest.raises(ValueError, match="confusable"):
        sl.plant_label_noise(df, 0.1, mode="confusable")
    with pytest.raises(ValueError, match="frac"):
        sl.plant_label_noise(df, 1.5)
    with pytest.raises(ValueError, match="only"):  # only one class has confusable classes
        sl.plant_label_noise(df, 0.9, rng=0, mode="confusable", confusable={"adj.all": ["noun.plant"]})
    with pytest.raises(ValueError, match="two classes"):
        sl.plant_label_noise(make_corpus(50, n_classes=1), 0.1, rng=0)
    with pytest.raises(ValueError, match="label"):
        sl.plant_label_noise(df.drop("label"), 0.1)


def test_label_noise_is_deterministic():
    df = make_corpus(800, seed=11)
    conf = {c: [(d, 1.0) for d in CLASSES if d != c][:2] for c in CLASSES}
    a = sl.plant_label_noise(df, 0.2, rng=42, mode="mixed", confusable=conf)
    b = sl.plant_label_noise(df, 0.2, rng=np.random.default_rng(42), mode="mixed", confusable=conf)
    c = sl.plant_label_noise(df, 0.2, rng=43, mode="mixed", confusable=conf)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[1].equals(c[1])


# ----------------------------------------------------------------------------------------- confusable_classes

def test_confusable_classes_nearest_centroids():
    rng = np.random.default_rng(0)
    # four classes in 3-d: A and B close (x axis), C and D close (y axis), E on z, a bit nearer to A/B
    centres = {"A": [1, 0.1, 0], "B": [1, -0.1, 0], "C": [0.1, 1, 0], "D": [-0.1, 1, 0], "E": [0.5, 0, 1]}
    labels, rows = [], []
    for lab, c in centres.items():
        for _ in range(30):
            labels.append(lab)
            rows.append(np.asarray(c) * rng.uniform(0.5, 3) + rng.normal(0, 0.01, 3))
    labels.append(None)  # ignored
    rows.append(np.array([0.0, 0.0, -1.0]))
    emb = np.vstack(rows)
    near = sl.confusable_classes(labels, emb, top=1)
    assert list(near) == ["A", "B", "C", "D", "E"]
    assert {k: v[0][0] for k, v in near.items() if k != "E"} == {"A": "B", "B": "A", "C": "D", "D": "C"}
    assert near["E"][0][0] in {"A", "B"}
    two = sl.confusable_classes(pl.Series(labels), emb, top=2)
    assert two["E"][0][0] in {"A", "B"} and two["E"][1][0] in {"A", "B"}
    for k, v in two.items():
        assert len(v) == 2 and k not in [o for o, _ in v]
        assert abs(sum(w for _, w in v) - 1) < 1e-9 and all(w >= 0 for _, w in v)
        assert v[0][1] >= v[1][1]
    many = sl.confusable_classes(labels, emb, top=10)  # at most the other classes
    assert all(len(v) == 4 for v in many.values())
    # feeds plant_label_noise directly
    df = pl.DataFrame({"id": range(len(labels) - 1), "text": [f"t{i}" for i in range(len(labels) - 1)],
                       "label": labels[:-1]})
    out, truth = sl.plant_label_noise(df, 0.3, rng=1, mode="confusable", confusable=near)
    assert all(near[t][0][0] == g for t, g in zip(truth["true_label"], truth["given_label"]))
    with pytest.raises(ValueError):
        sl.confusable_classes(labels, emb[:-1])


# ----------------------------------------------------------------------------------------- OOD rows

def test_plant_ood_appends_rows_with_fresh_ids_and_kinds():
    df = make_corpus(500, seed=12)
    ood = make_ood(40)
    out, truth = sl.plant_ood(df, ood, 25, rng=3)
    assert out.height == 525 and out.schema == df.schema
    assert truth.height == 25 and truth.schema == sl.truth_schema()
    assert out["id"].n_unique() == 525
    assert not set(truth["id"].to_list()) & set(df["id"].to_list())
    assert all(re.fullmatch(r"doc-\d{5}", i) for i in truth["id"].to_list())
    assert sorted(int(i[4:]) for i in truth["id"].to_list()) == list(range(501, 526))  # continues the numbering
    # original rows: all there, same relative order; planted rows: truth in frame order
    assert out.filter(~pl.col("id").is_in(truth["id"].implode())).equals(df)
    planted = out.filter(pl.col("id").is_in(truth["id"].implode()))
    assert planted["id"].to_list() == truth["id"].to_list()
    assert planted["extra"].null_count() == 25
    # texts, kinds and labels
    kind_of = dict(zip(ood["text"].to_list(), ood["kind"].to_list()))
    assert planted["text"].n_unique() == 25
    assert [kind_of[t] for t in planted["text"].to_list()] == truth["kind"].to_list()
    assert set(truth["kind"].to_list()) == {"other_language", "other_domain"}
    assert (truth["defect"] == "ood").all() and truth["true_label"].null_count() == 25
    assert planted["label"].to_list() == truth["given_label"].to_list()
    assert set(truth["given_label"].to_list()) <= set(CLASSES)
    # not all stuck at one end
    pos = out.with_row_index("i").filter(pl.col("id").is_in(truth["id"].implode()))["i"]
    assert pos.min() < 250 < pos.max()


def test_plant_ood_id_styles():
    ood = make_ood(10)
    ints = pl.DataFrame({"id": [10, 11, 15], "text": ["a", "b", "c"], "label": [1, 2, 1]})
    out, truth = sl.plant_ood(ints, ood, 3, rng=0)
    assert truth["id"].to_list() == [16, 17, 18] and out.schema == ints.schema
    assert set(truth["given_label"].to_list()) <= {1, 2} and truth.schema["given_label"] == pl.Int64
    numeric_str = pl.DataFrame({"id": ["7", "8", "9"], "text": ["a", "b", "c"], "label": ["x", "y", "x"]})
    _, truth = sl.plant_ood(numeric_str, ood, 2, rng=0)
    assert sorted(truth["id"].to_list()) == ["10", "11"]
    odd = pl.DataFrame({"id": ["alpha", "beta-x", "gamma"], "text": ["a", "b", "c"], "label": ["x", "y", "x"]})
    out, truth = sl.plant_ood(odd, ood, 4, rng=0)
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in truth["id"].to_list())
    assert out["id"].n_unique() == 7


def test_plant_ood_label_strategies_and_errors():
    df = make_corpus(2000, seed=13)
    # "random" follows the corpus's label distribution: make one class dominant
    skewed = df.with_columns(pl.when(pl.col("extra") < 1800).then(pl.lit("noun.animal"))
                             .otherwise(pl.col("label")).alias("label"))
    ood = make_ood(400)
    _, truth = sl.plant_ood(skewed, ood, 300, rng=1, label_strategy="random")
    assert (truth["given_label"] == "noun.animal").mean() > 0.8
    _, truth = sl.plant_ood(skewed, ood, 300, rng=1, label_strategy="uniform")
    assert (truth["given_label"] == "noun.animal").mean() < 0.4
    out, truth = sl.plant_ood(skewed, ood, 30, rng=1, label_strategy="null")
    assert truth["given_label"].null_count() == 30 and out["label"].null_count() == 30
    # texts already in the corpus are not planted again
    dup = pl.concat([ood.head(5), pl.DataFrame({"text": df["text"].head(50), "kind": ["other_domain"] * 50,
                                                "lang": ["en"] * 50})])
    _, truth = sl.plant_ood(df, dup, 5, rng=2)
    with pytest.raises(ValueError, match="usable"):
        sl.plant_ood(df, dup, 6, rng=2)
    with pytest.raises(ValueError, match="label_strategy"):
        sl.plant_ood(df, ood, 3, label_strategy="nope")
    with pytest.raises(ValueError, match="kind"):
        sl.plant_ood(df, ood.drop("kind"), 3)
    out, truth = sl.plant_ood(df, ood, 0, rng=0)
    assert out.equals(df) and truth.height == 0


def test_plant_ood_is_deterministic():
    df = make_corpus(400, seed=14)
    ood = make_ood(100)
    a = sl.plant_ood(df, ood, 30, rng=5)
    b = sl.plant_ood(df, ood, 30, rng=np.random.default_rng(5))
    c = sl.plant_ood(df, ood, 30, rng=6)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[0].equals(c[0])


def test_noise_then_ood_truths_combine():
    df = make_corpus(1000, seed=15)
    noisy, t1 = sl.plant_label_noise(df, 0.1, rng=1)
    out, t2 = sl.plant_ood(noisy, make_ood(60), 50, rng=2)
    truth = pl.concat([t1, t2])
    assert truth["id"].n_unique() == 150
    joined = truth.join(out.select("id", "label"), on="id")
    assert joined.height == 150 and (joined["label"] == joined["given_label"]).all()


def test_planting_at_55k_rows():
    df = make_corpus(55_000, seed=16)
    conf = {c: [(d, 1.0) for d in CLASSES if d != c][:3] for c in CLASSES}
    ood = make_ood(3000)
    noisy, truth = sl.plant_label_noise(df, 0.1, rng=1, mode="mixed", confusable=conf)
    mixed, ood_truth = sl.plant_ood(noisy, ood, 2000, rng=2)
    assert noisy.height == df.height and truth.height > 0
    assert mixed.height >= noisy.height and ood_truth.height > 0


# ----------------------------------------------------------------------------------------- shipped data

def test_shipped_ood_data():
    ood = pl.read_parquet(OOD_FILE)
    assert ood.columns == ["text", "source", "kind", "lang"]
    assert set(ood["kind"].unique().to_list()) == {"other_language", "other_domain"}
    assert set(zip(*[ood[c].to_list() for c in ("source", "lang", "kind")])) == {
        ("fortunes", "en", "other_domain"), ("fortunes-de", "de", "other_language"),
        ("fortunes-es", "es", "other_language"), ("fortunes-it", "it", "other_language")}
    assert ood.group_by("source").len()["len"].max() <= 1500
    lens = ood["text"].str.len_chars()
    assert lens.min() >= 20 and lens.max() <= 300
    assert ood["text"].n_unique() == ood.height
    assert not ood["text"].str.contains(r"\s\s|\n").any()
    assert (OOD_FILE.parent / "COPYRIGHT").exists() and (OOD_FILE.parent / "README.md").exists()
    df = make_corpus(1000, seed=17)
    out, truth = sl.plant_ood(df, ood, 100, rng=0)
    assert out.height == 1100 and set(truth["kind"].to_list()) <= {"other_language", "other_domain"}
