"""label, outlier, long_tail and off_target detectors: planted defects found, clean data spared."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from uimdata.cli import app
from uimdata.executors.local import LocalExecutor
from uimdata.scan import ScanConfig, scan

DATA = "uimdata/data"
runner = CliRunner()


def blobs(n_per: list[int], dim: int = 32, spread: float = 0.35, seed: int = 0,
          noise_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated classes: one random centre each, rows = centre + noise, L2-normalised."""
    centres = np.random.default_rng(seed).normal(size=(len(n_per), dim))
    rng = np.random.default_rng(seed if noise_seed is None else noise_seed)
    if noise_seed is None:
        rng.normal(size=(len(n_per), dim))
    y = np.repeat(np.arange(len(n_per)), n_per)
    x = centres[y] + spread * rng.normal(size=(len(y), dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def glosses(n: int, seed: int = 0) -> list[str]:
    return pl.read_parquet(f"{DATA}/wordnet/glosses.parquet", columns=["text"]).sample(n, seed=seed)["text"].to_list()


def run(tmp_path, df: pl.DataFrame, **cfg) -> tuple[pl.DataFrame, duckdb.DuckDBPyConnection]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    corpus = tmp_path / "c.parquet"
    df.write_parquet(corpus)
    scan(ScanConfig(corpus=str(corpus), out=str(tmp_path / "run"), **cfg), LocalExecutor(progress=False))
    con = duckdb.connect(str(tmp_path / "run" / "uim.duckdb"), read_only=True)
    return con.sql("SELECT * FROM flags").pl(), con


def labelled(x: np.ndarray, y: np.ndarray, texts: list[str] | None = None) -> pl.DataFrame:
    names = np.array([f"class{c}" for c in range(y.max() + 1)])
    return pl.DataFrame({"id": [f"r{i}" for i in range(len(y))],
                         "text": texts or [f"row {i}" for i in range(len(y))],  # no word of its label
                         "label": names[y].tolist(), "embedding": x.tolist()})


@pytest.mark.parametrize("minibatch", [False, True])
def test_planted_label_flips_found_with_suggested_label(tmp_path, monkeypatch, minibatch):
    """Full-batch L-BFGS fold models, and the mini-batch Adam ones large corpora get."""
    if minibatch:
        import uimdata.label_model

        monkeypatch.setattr(uimdata.label_model, "MINIBATCH_ABOVE", 0)
    x, y = blobs([80] * 5)
    rng = np.random.default_rng(1)
    flip = rng.choice(len(y), 20, replace=False)
    given = y.copy()
    given[flip] = (y[flip] + rng.integers(1, 5, len(flip))) % 5
    f, con = run(tmp_path, labelled(x, given), detectors=("label",))
    flagged = set(f.filter(pl.col("is_label_issue"))["id"])
    planted = {f"r{i}" for i in flip}
    assert len(flagged & planted) >= 17, (len(flagged & planted), len(flagged))
    assert len(flagged - planted) <= 2
    sugg = dict(f.filter(pl.col("is_label_issue")).select("id", "suggested_label").rows())
    right = sum(sugg[f"r{i}"] == f"class{y[i]}" for i in flip if f"r{i}" in sugg)
    assert right >= len(flagged & planted) - 1
    noise = con.sql("SELECT * FROM label_noise_matrix").pl()
    assert set(noise.columns) == {"given_label", "suggested_label", "count", "fraction_of_given"}
    assert noise["count"].sum() >= 15
    assert (tmp_path / "run" / "pred_probs.parquet").exists()


def test_clean_well_separated_corpus_gets_no_label_flags(tmp_path):
    x, y = blobs([60, 60, 60, 60])
    f, _ = run(tmp_path, labelled(x, y), detectors=("label",))
    assert f["is_label_issue"].sum() <= 1


def test_corpus_without_labels_skips_label_with_a_note(tmp_path):
    x, _ = blobs([40, 40])
    df = pl.DataFrame({"text": [f"text {i}" for i in range(80)], "embedding": x.tolist()})
    corpus = tmp_path / "c.parquet"
    df.write_parquet(corpus)
    res = runner.invoke(app, ["scan", str(corpus), "-o", str(tmp_path / "run"), "--detectors",
                              "label,exact_duplicate"])
    assert res.exit_code == 0, res.output
    assert "label: skipped, the corpus has no label column" in res.output
    con = duckdb.connect(str(tmp_path / "run" / "uim.duckdb"), read_only=True)
    (summary,) = con.execute("SELECT summary::VARCHAR FROM detectors WHERE issue = 'label'").fetchall()[0]
    assert "no label column" in json.loads(summary)["skipped"]
    assert "is_label_issue" not in [r[0] for r in con.execute("DESCRIBE flags").fetchall()]
    # piped output is laid out wide: a long run path stays on one line
    deep = tmp_path / "a-rather-long-directory-name-for-runs" / "run"
    res = runner.invoke(app, ["scan", str(corpus), "-o", str(deep), "--detectors", "exact_duplicate"])
    assert res.exit_code == 0, res.output
    assert f"rows scanned -> {deep}" in res.output
    assert any(ln.startswith("ingest") and "80/80" in ln for ln in res.output.splitlines())  # parquet: a total


@pytest.fixture(scope="module")
def mixed_language_corpus():
    """2,000 real dictionary glosses + 40 German/Spanish/Italian sentences. The embeddings are random
    on purpose: the text itself must give the other languages away."""
    from tests.conftest import random_embeddings

    ood = pl.read_parquet(f"{DATA}/ood/ood.parquet").filter(pl.col("kind") == "other_language").sample(40, seed=0)
    texts = glosses(2000) + ood["text"].to_list()
    return texts, random_embeddings(len(texts), dim=32)


def test_other_language_rows_are_outliers(tmp_path, mixed_language_corpus):
    texts, emb = mixed_language_corpus
    df = pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts, "embedding": emb.tolist()})
    f, _ = run(tmp_path, df, detectors=("outlier",))
    flagged = set(f.filter(pl.col("is_outlier_issue"))["id"])
    planted = {f"r{i}" for i in range(2000, 2040)}
    assert len(flagged & planted) >= 28, len(flagged & planted)
    assert len(flagged - planted) <= 20  # <= 1 % of the clean rows
    reasons = f.filter(pl.col("is_outlier_issue") & pl.col("id").is_in(list(planted)))["outlier_reason"]
    assert sum("another language" in r for r in reasons) >= 25


def test_clean_corpus_has_few_outliers(tmp_path, mixed_language_corpus):
    texts, emb = mixed_language_corpus
    df = pl.DataFrame({"text": texts[:2000], "embedding": emb[:2000].tolist()})
    f, _ = run(tmp_path, df, detectors=("outlier",))
    assert f["is_outlier_issue"].sum() <= 20


@pytest.fixture(scope="module")
def genre_mix() -> pl.DataFrame:
    """5,000 real glosses + 100 English jokes and quotations, with their real all-MiniLM-L6-v2
    embeddings (int8 in the fixture: pipelines/build_test_data.py)."""
    df = pl.read_parquet("tests/data/genre_mix.parquet")
    emb = df["embedding_i8"].to_numpy().astype(np.float32) / 127.0
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return df.drop("embedding_i8").with_columns(pl.Series("embedding", emb.tolist()))


def test_other_genre_rows_are_outliers(tmp_path, genre_mix):
    """Jokes and quotations in a dictionary: English, so the character statistics barely move; the
    genre signal (a held-out word model of the most isolated rows) must find them as a group."""
    f, con = run(tmp_path, genre_mix.drop("planted"), detectors=("outlier",))
    planted = set(genre_mix.filter(pl.col("planted"))["id"])
    flagged = set(f.filter(pl.col("is_outlier_issue"))["id"])
    assert len(flagged & planted) >= 88, len(flagged & planted)  # recall >= 0.88 (0.85 without genre_isolated_z)
    assert len(flagged - planted) <= 50, len(flagged - planted)  # <= 1 % of the clean rows
    assert f.filter(pl.col("id").is_in(list(planted)) & (pl.col("outlier_signal") == "genre")).height >= 50
    (summary,) = con.execute("SELECT summary::VARCHAR FROM detectors WHERE issue = 'outlier'").fetchall()[0]
    assert json.loads(summary)["genre_signal"] == "on"


def test_genre_signal_spares_a_clean_corpus(tmp_path, genre_mix):
    f, _ = run(tmp_path, genre_mix.filter(~pl.col("planted")).drop("planted"), detectors=("outlier",))
    assert f["is_outlier_issue"].sum() <= 50  # <= 1 %
    assert (f["outlier_signal"] == "genre").sum() <= 15


def test_genre_z_learns_a_group_not_isolated_rows():
    """Unit level: pseudo-positives that share their wording are recognised out of fold; random ones
    are not."""
    from uimdata.detectors.outlier import genre_z

    rng = np.random.default_rng(0)
    texts = glosses(3000, seed=1)
    group = [f"Q: why did the {w} cross the road? A: to get to the other side. -- {a}"
             for w, a in zip(rng.choice(["chicken", "duck", "goat", "cow"], 60), rng.choice(["Anon", "Twain"], 60))]
    mixed = texts + group
    seed = np.zeros(len(mixed))
    seed[rng.choice(np.arange(3000, 3060), 40, replace=False)] = 1.0  # 2/3 of the group are seeds
    z = genre_z(mixed, seed + 1e-3 * rng.random(len(mixed)))
    assert (z[3000:] > 5).mean() >= 0.9  # the unseeded third too
    assert (z[:3000] > 5).sum() <= 30  # <= 1 %
    # seeds with nothing in common: the score's floor (z = 5 is about its 99.9th percentile)
    z_random = genre_z(texts, rng.random(3000))
    assert (z_random > 5).sum() <= 30


def test_outlier_needs_enough_rows_to_calibrate(tmp_path):
    x, _ = blobs([10, 10])
    f, con = run(tmp_path, pl.DataFrame({"text": [f"t {i}" for i in range(20)], "embedding": x.tolist()}),
                 detectors=("outlier", "exact_duplicate"))
    assert "is_outlier_issue" not in f.columns
    (summary,) = con.execute("SELECT summary::VARCHAR FROM detectors WHERE issue = 'outlier'").fetchall()[0]
    assert "at least 50 rows" in json.loads(summary)["skipped"]


def test_long_tail_rare_class_and_clusters_table(tmp_path):
    x, y = blobs([120, 120, 120, 120, 6])
    f, con = run(tmp_path, labelled(x, y), detectors=("long_tail",))
    tail = f.filter(pl.col("is_long_tail_issue"))
    assert set(tail["id"]) >= {f"r{i}" for i in range(480, 486)}
    assert tail.height <= 12
    assert all(r.startswith("under-represented: rare class 'class4'") for r in
               tail.filter(pl.col("id").is_in([f"r{i}" for i in range(480, 486)]))["long_tail_reason"])
    clusters = con.sql("SELECT * FROM clusters").pl()
    assert {"cluster_id", "size", "density", "top_label", "top_label_share", "is_rare"} <= set(clusters.columns)
    assert clusters["size"].sum() == f.height
    assert (f["cluster_size"] > 0).all()
    (summary,) = con.execute("SELECT summary::VARCHAR FROM detectors WHERE issue = 'long_tail'").fetchall()[0]
    assert json.loads(summary)["tail_classes"] == ["class4"]


def test_off_target_with_reference(tmp_path):
    x, y = blobs([100, 100], seed=3)
    corpus = pl.DataFrame({"id": [f"r{i}" for i in range(200)], "text": [f"t{i}" for i in range(200)],
                           "embedding": x.tolist()})
    xr, _ = blobs([60, 0], seed=3, noise_seed=99)  # reference: only the first group, other rows
    ref = tmp_path / "ref.parquet"
    pl.DataFrame({"text": [f"ref {i}" for i in range(60)], "embedding": xr.tolist()}).write_parquet(ref)
    f, _ = run(tmp_path, corpus, detectors=("off_target",), reference=str(ref))
    off = f.filter(pl.col("is_off_target_issue"))["id"].to_list()
    assert {int(i[1:]) for i in off} >= set(range(100, 200)) - set(range(100, 105))
    assert sum(int(i[1:]) < 100 for i in off) <= 2
    # without a reference the detector is skipped
    f2, _ = run(tmp_path / "b", corpus, detectors=("off_target", "exact_duplicate"))
    assert "is_off_target_issue" not in f2.columns


def test_classes_too_small_to_judge_are_not_flagged(tmp_path):
    x, y = blobs([80, 80, 80, 6])
    x[240:246] = x[:6] + 0.01  # the tiny class sits inside class0: a model cannot tell it apart
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    f, con = run(tmp_path, labelled(x, y), detectors=("label",))
    tiny = f.filter(pl.col("id").is_in([f"r{i}" for i in range(240, 246)]))
    assert not tiny["is_label_issue"].any()
    (summary,) = con.execute("SELECT summary::VARCHAR FROM detectors WHERE issue = 'label'").fetchall()[0]
    assert json.loads(summary)["classes_not_judged"] == ["class3"]


def test_robust_z_survives_a_majority_of_ties():
    """More than half the values equal (MAD 0): the standard deviation stands in, so the other values
    get finite, ordinary z-scores instead of ~1e9."""
    from uimdata.stats import robust_z

    s = np.r_[np.zeros(700), np.linspace(0.5, 1.5, 300)]
    z = robust_z(s)
    assert np.isfinite(z).all() and z.max() < 5
    assert robust_z(np.ones(10)).tolist() == [0.0] * 10


def test_z_threshold_moves_every_signal(tmp_path, genre_mix):
    df = genre_mix.drop("planted")
    default, _ = run(tmp_path / "t5", df, detectors=("outlier",))
    strict, _ = run(tmp_path / "t7", df, detectors=("outlier",), detector_options={"outlier": {"z_threshold": 7.0}})
    loose, _ = run(tmp_path / "t4", df, detectors=("outlier",), detector_options={"outlier": {"z_threshold": 4.0}})
    n = [x["is_outlier_issue"].sum() for x in (strict, default, loose)]
    assert n[0] < n[1] < n[2], n
    assert set(strict.filter(pl.col("is_outlier_issue"))["id"]) <= set(default.filter(pl.col("is_outlier_issue"))["id"])


def test_shapes_match_python_re_on_any_script():
    """shapes() (polars' regex engine) against the definition written with Python's re."""
    import re

    from uimdata.detectors.outlier import MAX_CHARS, shapes

    def shape(text: str) -> str:
        t = re.sub(r"\d+", "0", text[:MAX_CHARS])
        t = re.sub(r"[A-Z]+", "^", t)
        return re.sub(r"[^\W\d_A-Z]+", "a", t)

    texts = ["Straße 12, ÄÖÜ!", "नमस्ते दुनिया", "مَرْحَبًا ١٢٣", "cafe\u0301 x² ½ ①", "a_b ＿ 3.5 \u200d",
             "日本語のテキスト", "Ελληνικά ΑΒΓ", "emoji 😀 ok", "", "x" * 500] + glosses(200, seed=3)
    assert shapes(texts) == [shape(t) for t in texts]


def test_genre_z_sampled_and_chunked_paths():
    """Above max_train rows (a sample trains, one fold model scores the rest) and with several chunks
    (tokenised in worker processes), a planted group is still recognised and clean rows spared."""
    from uimdata.detectors.outlier import genre_z

    rng = np.random.default_rng(2)
    texts = glosses(3000, seed=4)
    group = [f"I told my {w} a joke about {x}; it did not laugh. -- {a}" for w, x, a in
             zip(rng.choice(["boss", "cat", "dentist"], 60), rng.choice(["taxes", "Mondays", "UNIX"], 60),
                 rng.choice(["Anon", "Wilde"], 60))]
    seed = np.r_[np.zeros(3000), np.ones(60)] * rng.integers(0, 2, 3060) + 1e-3 * rng.random(3060)
    z = genre_z(texts + group, seed, max_train=1500, chunk=1000)
    assert (z[3000:] > 5).mean() >= 0.9
    assert (z[:3000] > 5).sum() <= 30
    # the rows outside the training sample are counted and scored a few chunks at a time: the answer is
    # the same whatever the chunk
    assert np.allclose(z, genre_z(texts + group, seed, max_train=1500, chunk=400))


def test_foreign_language_signal_uses_identified_language():
    """``language (identified)``: rows identified confidently as a language that is rare in the corpus are
    flagged; a language holding more than ``FOREIGN_MAX_SHARE`` of the rows, low-confidence guesses and
    the main language are not."""
    import pyarrow as pa

    from uimdata.detectors.outlier import foreign_language
    from uimdata.lang import lang_columns

    english = glosses(300, seed=11)
    german = ["Die Katze schläft den ganzen Tag auf dem warmen Sofa im Wohnzimmer.",
              "Wir haben gestern Abend im Garten gegessen und lange über das Wetter geredet.",
              "Der Zug nach Hamburg fährt heute wegen einer Baustelle eine Stunde später ab."]
    texts = english + german
    samples = pa.table({"id": [str(i) for i in range(len(texts))], "text": texts} | lang_columns(texts))
    flagged, why = foreign_language(samples)
    assert flagged[-3:].all(), [w for w in why[-3:]]
    assert "identified as 'de'" in why[-1]
    assert flagged[:-3].sum() <= 3  # a few short glosses may be identified as another language
    # the same German rows are no longer rare in a corpus where they are a quarter of the rows
    many = english[:9] + german
    s2 = pa.table({"id": [str(i) for i in range(len(many))], "text": many} | lang_columns(many))
    assert not foreign_language(s2)[0][-3:].any()
    # a samples table without lang: nothing
    assert not foreign_language(samples.drop(["lang", "lang_conf"]))[0].any()


def test_text_label_model_finds_flips_the_embeddings_cannot_see(tmp_path):
    """Classes told apart only by their words (the embeddings are random): the text model finds the
    planted flips, and a clean copy of the corpus gets no flags."""
    from tests.conftest import random_embeddings

    rng = np.random.default_rng(3)
    vocab = [[f"{stem}{i}" for i in range(25)] for stem in ("kernel", "garden", "violin", "harbour")]
    shared = [f"common{i}" for i in range(40)]
    y = np.repeat(np.arange(4), 100)
    texts = [" ".join([*rng.choice(vocab[c], 6), *rng.choice(shared, 4)]) for c in y]
    flip = rng.choice(len(y), 16, replace=False)
    given = y.copy()
    given[flip] = (y[flip] + rng.integers(1, 4, len(flip))) % 4
    emb = random_embeddings(len(y), dim=16)
    f, _ = run(tmp_path / "noisy", labelled(emb, given, texts), detectors=("label",), label_model="text")
    flagged = set(f.filter(pl.col("is_label_issue"))["id"])
    planted = {f"r{i}" for i in flip}
    assert len(flagged & planted) >= 14, (len(flagged & planted), len(flagged))
    assert len(flagged - planted) <= 1
    sugg = dict(f.filter(pl.col("is_label_issue")).select("id", "suggested_label").rows())
    assert all(sugg[f"r{i}"] == f"class{y[i]}" for i in flip if f"r{i}" in sugg)
    f, _ = run(tmp_path / "clean", labelled(emb, y, texts), detectors=("label",), label_model="text")
    assert f["is_label_issue"].sum() == 0


def test_joint_label_model_learns_what_words_and_embedding_only_tell_together():
    """Four classes, each a pair (word group, embedding cluster): the words tell two classes apart from
    the other two, the embedding the other way. One model over both (the default ensemble's) tells all
    four apart and gives flipped labels a low likelihood ratio; mixing the probabilities of a text model
    and an embedding model, as the ensemble did before, does neither."""
    from uimdata import label_model as lm

    rng = np.random.default_rng(5)
    words = [[f"{stem}{i}" for i in range(20)] for stem in ("kernel", "garden")]
    shared = [f"common{i}" for i in range(40)]
    y = np.repeat(np.arange(4), 100)  # class = 2 x word group + embedding cluster
    texts = [" ".join([*rng.choice(words[c // 2], 5), *rng.choice(shared, 5)]) for c in y]
    x, _ = blobs([1, 1], dim=16, seed=2)  # two cluster centres
    emb = x[y % 2] + 0.1 * rng.normal(size=(len(y), 16))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    flip = rng.choice(len(y), 16, replace=False)
    given = y.copy()
    given[flip[:8]] ^= 2  # same cluster, other words
    given[flip[8:]] ^= 1  # same words, other cluster
    clean = np.setdiff1d(np.arange(len(y)), flip)

    def ratio(p: np.ndarray) -> np.ndarray:  # the given label's probability over the most probable one's
        return p[np.arange(len(y)), given] / p.max(axis=1)

    joint = lm.joint_oof(texts, emb, given, 4)
    assert (joint.argmax(axis=1) == y)[clean].mean() >= 0.98
    assert (joint.argmax(axis=1) == y)[flip].all()
    assert np.median(ratio(joint)[flip]) < 0.1
    mixed = lm.blend(lm.logreg_oof(emb, given, 4), lm.text_oof(texts, given, 4), given)
    assert (mixed.argmax(axis=1) == y)[clean].mean() < 0.85
    assert np.median(ratio(mixed)[flip]) > 0.3


def _flags_for_probs(labels: list[str], p: np.ndarray, corrupted: set[int] | None = None, **kw) -> set[int]:
    from uimdata.context import ScanContext
    from uimdata.detectors.label import LabelDetector

    n = len(labels)
    ctx = ScanContext.from_arrays([f"r{i}" for i in range(n)], ["x"] * n, np.eye(n, 8, dtype=np.float32) + 1,
                                  labels)
    ctx._pred_probs = p.astype(np.float32)
    if corrupted is not None:
        ctx.flagged_by["corrupted"] = np.isin(np.arange(n), list(corrupted))
    return set(np.flatnonzero(LabelDetector(**kw).detect(ctx).table["is_label_issue"]
                              .to_numpy(zero_copy_only=False)))


def test_label_flags_need_a_strong_likelihood_ratio():
    """With K classes a row is flagged when its given label's probability is below relative_threshold x
    its class's confident threshold and the predicted class is at least K times as probable (or
    1 / max_ratio times, when that is less)."""
    k = 30
    y = np.repeat(np.arange(k), 25)
    p = np.full((len(y), k), 0.1 / (k - 1))
    p[np.arange(len(y)), y] = 0.9
    p[0] = 0.0
    p[0, [0, 1]] = [0.03, 0.97]    # ratio 0.031 (under 1 / 30), but not below 0.025 x t_0 (0.0199)
    p[1] = 0.0
    p[1, [0, 1]] = [0.015, 0.985]  # both: flagged
    p[2] = 0.585 / 28
    p[2, [0, 1]] = [0.015, 0.4]    # below 0.025 x t_0, but a ratio of 0.0375: not 30 times as probable
    p[60] = 0.0
    p[60, [2, 3]] = [0.01, 0.99]   # flagged
    labels = [f"c{c:02d}" for c in y]
    assert _flags_for_probs(labels, p) == {1, 60}
    assert _flags_for_probs(labels, p, max_ratio=0.05) == {1, 2, 60}  # 20 times is enough
    assert _flags_for_probs(labels, p, max_ratio=None) == {1, 2, 60}
    assert _flags_for_probs(labels, p, relative_threshold=0.04) == {0, 1, 60}
    assert _flags_for_probs(labels, p, relative_threshold=0.015) == {60}  # 0.015 is not below 0.015 x t_0
    # a row ``corrupted`` flagged is left to it: its label is not the issue
    assert _flags_for_probs(labels, p, corrupted={60}) == {1}


def test_label_ratio_bar_relaxes_with_few_classes():
    """With few classes both bars relax: with two the predicted class needs to be only twice as probable
    and the per-class bar is 0.1 x t_c, so a row at 0.05 against 0.95 is flagged."""
    labels = ["a"] * 50 + ["b"] * 50
    p = np.tile([0.9, 0.1], (100, 1))
    p[50:] = [0.1, 0.9]
    p[0] = [0.05, 0.95]   # ratio 0.053, below 1 / 2; below 0.1 x t_a (0.087), not 0.025 x t_a
    p[1] = [0.2, 0.8]     # ratio 0.25, but not below 0.1 x t_a
    assert _flags_for_probs(labels, p) == {0}


def test_genre_cluster_flags_a_far_out_recognised_group_not_a_part_of_the_corpus():
    """``genre (cluster)``: a cluster far out in the embedding whose wording the genre model recognises is
    flagged (its recognised rows), though no row is extreme on its own; a cluster that is only far out,
    or only recognised, is not; and such clusters holding more than 5 % of the corpus are a part of it."""
    from uimdata.detectors.outlier import OutlierDetector

    rng = np.random.default_rng(0)
    sizes = [40, 40, 40] + [60] * 30  # group, far-only, recognised-only, 30 ordinary clusters
    clusters = np.repeat(np.arange(len(sizes)), sizes)
    z_embed = rng.normal(0, 1, len(clusters))
    z_genre = rng.normal(0, 1, len(clusters))
    z_embed[clusters == 0] += 4.5
    z_genre[clusters == 0] += 3.0  # genre z 3 +- 1: under the single-row bar of 5
    z_embed[clusters == 1] += 4.5
    z_genre[clusters == 2] += 3.0
    signal, mean_embed = OutlierDetector()._genre_cluster(clusters, z_embed, z_genre)
    flagged = signal > 5.0
    assert flagged[clusters == 0].mean() >= 0.7  # the rows with genre z > 2
    assert not flagged[clusters > 0].any()
    assert np.allclose(mean_embed[clusters == 0], z_embed[clusters == 0].mean())
    # the same group as 40 of 700 rows (5.7 %): a part of the corpus
    small = clusters < 13
    assert not (OutlierDetector()._genre_cluster(clusters[small], z_embed[small], z_genre[small])[0] > 5.0).any()


def test_outlier_leaves_rows_corrupted_flags_to_it(tmp_path, mixed_language_corpus):
    """A row both detectors would flag (here: other-language rows with encoding debris) is flagged by
    ``corrupted`` only; scanned without ``corrupted`` it is an outlier. The scan runs ``corrupted``
    first whatever order the detectors are named in."""
    from uimdata.detectors.base import deferring_last
    from uimdata.detectors.corrupted import CorruptedDetector
    from uimdata.detectors.outlier import OutlierDetector

    assert [d.issue for d in deferring_last([OutlierDetector(), CorruptedDetector()])] == ["corrupted", "outlier"]
    texts, emb = mixed_language_corpus
    texts = list(texts)
    broken = list(range(2000, 2010))
    for i in broken:  # mojibake: UTF-8 read as Latin-1
        texts[i] = texts[i].encode("utf-8").decode("latin-1") + " Ã©Ã¨Ã¼ Ã¤Ã¶"
    df = pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts, "embedding": emb.tolist()})
    alone, _ = run(tmp_path / "alone", df, detectors=("outlier",))
    both, con = run(tmp_path / "both", df, detectors=("outlier", "corrupted"))
    ids = {f"r{i}" for i in broken}
    out_alone = set(alone.filter(pl.col("is_outlier_issue"))["id"])
    out_both = set(both.filter(pl.col("is_outlier_issue"))["id"])
    corrupted = set(both.filter(pl.col("is_corrupted_issue"))["id"])
    assert len(ids & out_alone) >= 8 and ids <= corrupted
    assert not (out_both & corrupted)
    assert out_both == out_alone - corrupted
    (summary,) = con.execute("SELECT summary::VARCHAR FROM detectors WHERE issue = 'outlier'").fetchall()[0]
    assert json.loads(summary)["left_to"]["corrupted"] == len(out_alone & corrupted)


def test_batched_language_identification_answers_like_py3langid():
    """``identify`` walks py3langid's automaton for many texts at once: the same language and (to the
    rounding) the same probability as py3langid's own ``classify``, text by text, in many scripts and
    lengths, with texts that have no letter or no n-gram at all."""
    from pathlib import Path

    import uimdata
    from uimdata.lang import MAX_CHARS, _identifier, identify

    ood = pl.read_parquet(Path(uimdata.__file__).parent / "data" / "ood" / "ood.parquet")["text"].to_list()
    texts = (glosses(200, seed=3) + ood[:300] + [" ".join(ood[i:i + 30]) for i in range(0, 300, 30)]
             + ["", "123 456", "ABC DEF GHI", "Straße", "北京是中国的首都", "Привет мир", "x", "\u00e9" * 2000])
    ident = _identifier()
    langs, confs = identify(texts)
    for t, lang, conf in zip(texts, langs, confs, strict=True):
        head = t[:MAX_CHARS]
        if not any(ch.isalpha() for ch in head):
            assert (lang, conf) == (None, None), t
            continue
        want, p = ident.classify(head)
        assert lang == want and abs(conf - p) < 1e-3, (t[:60], lang, conf, want, p)
    assert len(set(langs)) >= 5


def test_character_model_answers_the_same_whatever_the_chunk_size():
    """The trigram model is counted and scored a chunk of texts at a time (bounded memory): the chunk
    size changes nothing."""
    from tests.conftest import CLEAN
    from uimdata.detectors.outlier import trigram_surprise

    texts = [t for t, _ in CLEAN] + ["Der schnelle braune Fuchs springt über den faulen Hund und läuft weg."]
    whole, count = trigram_surprise(texts, chunk=len(texts))
    for chunk in (1, 7, 20_000):
        part, part_count = trigram_surprise(texts, chunk=chunk)
        assert np.array_equal(part, whole) and np.array_equal(part_count, count)
    assert np.isfinite(whole).all() and (count > 0).all()


def test_text_label_model_frees_each_fold_without_a_garbage_collection():
    """A fold of the sparse text model leaves nothing behind once it returns: with the cyclic garbage
    collector off, no sparse training matrix of the fold survives (a class made per fit sat in a reference
    cycle and kept every fold's matrices alive until a collection)."""
    import gc

    import scipy.sparse as sp
    import torch

    from uimdata.label_model import sparse_softmax_fit_predict

    rng = np.random.default_rng(0)
    x = sp.random(300, 40, density=0.2, format="csr", dtype=np.float32, random_state=1)
    y = rng.integers(0, 3, 300)

    def fold_matrices() -> int:
        return sum(1 for o in gc.get_objects()
                   if isinstance(o, torch.Tensor) and o.layout == torch.sparse_csr and o.shape[0] in (300, 40))

    gc.collect()
    gc.disable()
    try:
        before = fold_matrices()
        probs = sparse_softmax_fit_predict(x, y, x, 3, device="cpu")
        left = fold_matrices() - before
    finally:
        gc.enable()
    assert probs.shape == (300, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert left == 0


def test_embedding_label_model_frees_its_training_rows_without_a_garbage_collection():
    """``SoftmaxModel.fit`` (the label model's fold models, the probe) keeps nothing of its training rows once
    it returns, also with the cyclic garbage collector off."""
    import gc
    import weakref

    import torch

    from uimdata.label_model import SoftmaxModel

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    x = rng.normal(size=(400, 8)).astype(np.float32) + y[:, None]
    gc.collect()
    gc.disable()
    try:
        train = x[:300].copy()  # the fold's copy of its rows, as ``x[train]`` makes it
        gone = weakref.finalize(train, lambda: None)
        model = SoftmaxModel(3, device="cpu").fit(train, y[:300])
        del train
        alive = gone.alive
        leftover = [o for o in gc.get_objects() if isinstance(o, torch.Tensor) and tuple(o.shape) == (300, 8)]
    finally:
        gc.enable()
    assert (model.predict_proba(x[300:]).argmax(axis=1) == y[300:]).mean() > 0.8
    assert not alive and not leftover
