"""The corpus behind the link / curate / probe benchmarks (``make bench``).

50,000 real WordNet glosses (45 long-tailed classes; the same sample as ``bench_data``, so the
embeddings come from the cache) split into a pre-training corpus (80 %), a downstream dev split (10 %,
used by ``uim link``) and a downstream test split (10 %, used only for evaluation), by row.
Planted in the pre-training part only:

* a poisoned concept: a fine-grained k-means cluster of one class (150-400 rows), 85 % of whose
  pre-training members get one wrong class, the class nearest to the concept
  (``uimdata.synth.labels.pick_concept`` / ``plant_concept_poison``);
* 8 % label noise (half uniform, half towards each class' 3 nearest classes);
* 1.5 % other-language and 1.5 % other-domain rows (``uimdata/data/ood``);
* 1,000 near duplicates and 500 exact duplicates of random rows.

The downstream model is `uim probe`'s softmax regression on the embeddings, trained on the raw pre-training
corpus; its predictions on dev and test are the ``prediction`` column of the downstream files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_data import GLOSSES, OUT, embed_cached

OOD = Path(__file__).resolve().parents[1] / "uimdata" / "data" / "ood" / "ood.parquet"


def train_predict(train: pl.DataFrame, others: list[pl.DataFrame]) -> list[np.ndarray]:
    """The downstream model: uim probe's softmax regression, trained on the raw corpus."""
    from uimdata.probe import fit_predict

    x = np.stack(train["embedding"].to_numpy())
    return [fit_predict(x, train["label"].to_list(), None, np.stack(o["embedding"].to_numpy())) for o in others]


def link_corpus(n: int = 50_000, seed: int = 0) -> dict[str, Path]:
    from uimdata.synth import plant_exact_duplicates, plant_near_duplicates

    d = OUT / f"link{n}"
    paths = {k: d / f"{k}.parquet" for k in ("corpus", "truth", "dev", "test")}
    if all(p.exists() for p in paths.values()):
        return paths
    d.mkdir(parents=True, exist_ok=True)
    glosses = pl.read_parquet(GLOSSES, columns=["text", "label"])
    rng = np.random.default_rng(seed)
    order = rng.permutation(glosses.height)[:n]  # the bench_data sample: embeddings are cached
    base = glosses[order.tolist()].with_row_index("id").with_columns(pl.format("w-{}", pl.col("id")).alias("id"))
    # concept seed 2: a concept the raw downstream model gets mostly wrong (its accuracy is reported)
    base, train, t_parts, concept, rng = plant_loop_defects(base, seed, concept_seed=2)
    train, t = plant_near_duplicates(train, 1000, rng)
    t_parts.append(t.select("id", "defect", "kind", pl.col("source_id")))
    train, t = plant_exact_duplicates(train, 500, rng)
    t_parts.append(t.select("id", "defect", "kind", pl.col("source_id")))
    write_loop_corpus(d, paths, train, base, t_parts, concept)
    return paths


def plant_loop_defects(base: pl.DataFrame, seed: int, concept_seed: int
                       ) -> tuple[pl.DataFrame, pl.DataFrame, list[pl.DataFrame], dict, np.random.Generator]:
    """The label defects both loop benchmarks share, on ``base`` (id, text, label): an 80/10/10
    train/dev/test split, a poisoned concept (85 % of it relabelled to a confusable class), 8 % mixed
    label noise and 1.5 % + 1.5 % other-language / other-domain rows in train. Returns base (with its
    embedding, split and concept columns), train, the truth parts, the concept's description and the
    generator to plant the rest with."""
    from uimdata.synth.labels import (
        confusable_classes,
        pick_concept,
        plant_concept_poison,
        plant_label_noise,
        plant_ood,
    )

    emb = embed_cached(base["text"].to_list())
    concept, true_label, wrong = pick_concept(base["label"], emb, np.random.default_rng(concept_seed))
    rng = np.random.default_rng(seed + 1)
    split = rng.choice(3, size=base.height, p=[0.8, 0.1, 0.1])
    base = base.with_columns(pl.Series("embedding", emb, dtype=pl.Array(pl.Float32, emb.shape[1])),
                             pl.Series("split", np.array(["train", "dev", "test"])[split]),
                             pl.Series("concept", np.isin(np.arange(base.height), concept)))
    train = base.filter(pl.col("split") == "train")
    conf = confusable_classes(train["label"], np.stack(train["embedding"].to_numpy()), top=3)
    parts = []
    train, t = plant_concept_poison(train, np.flatnonzero(train["concept"].to_numpy()), wrong, 0.85, rng)
    parts.append(t)
    poisoned = set(t["id"].to_list())
    rest = train.filter(~pl.col("id").is_in(list(poisoned)))
    noisy, t = plant_label_noise(rest, 0.08, rng, mode="mixed", confusable=conf)
    parts.append(t)
    train = pl.concat([train.filter(pl.col("id").is_in(list(poisoned))), noisy]).sort(
        pl.col("id").str.slice(2).cast(pl.Int64))
    ood = pl.read_parquet(OOD)
    k = int(0.015 * train.height)
    pick = pl.concat([ood.filter(pl.col("kind") == "other_language").sample(k, seed=seed),
                      ood.filter(pl.col("kind") == "other_domain").sample(k, seed=seed)])
    train, t = plant_ood(train.drop("embedding"), pick, 2 * k, rng)
    parts.append(t)
    meta = {"true_label": true_label, "wrong_label": wrong, "rows": int(len(concept)), "poisoned": len(poisoned)}
    return base, train, parts, meta, rng


def write_loop_corpus(d: Path, paths: dict[str, Path], train: pl.DataFrame, base: pl.DataFrame,
                      truth_parts: list[pl.DataFrame], concept: dict) -> None:
    """Embed the planted corpus, give the dev/test splits the raw-trained model's predictions, and
    write corpus, truth, dev, test and concept.json (shared by the loop and tail benchmarks)."""
    vecs = embed_cached(train["text"].to_list())
    train = train.with_columns(pl.Series("embedding", vecs, dtype=pl.Array(pl.Float32, vecs.shape[1])))
    dev = base.filter(pl.col("split") == "dev")
    test = base.filter(pl.col("split") == "test")
    pred_dev, pred_test = train_predict(train.filter(pl.col("label").is_not_null()), [dev, test])
    dev = dev.with_columns(pl.Series("prediction", pred_dev)).drop("split")
    test = test.with_columns(pl.Series("prediction", pred_test)).drop("split")
    truth = pl.concat(truth_parts, how="diagonal_relaxed")
    train.drop("split", "concept").write_parquet(paths["corpus"])
    truth.write_parquet(paths["truth"])
    dev.write_parquet(paths["dev"])
    test.write_parquet(paths["test"])
    (d / "concept.json").write_text(json.dumps(concept))


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    p = link_corpus()
    print({k: str(v) for k, v in p.items()})
    print((p["corpus"].parent / "concept.json").read_text())
