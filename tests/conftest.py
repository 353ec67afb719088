from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest

from uimdata.scan import ScanConfig as _Cfg
from uimdata.scan import scan as _scan
from uimdata.synth.labels import plant_concept_poison as _poison
from uimdata.synth.space import concept_space as _space

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: short, varied, clean English texts with labels (no duplicates, nothing corrupted)
CLEAN = [
    ("dog: a domesticated carnivorous mammal kept as a pet or for hunting", "animal"),
    ("sparrow: a small brown songbird common in towns and fields", "animal"),
    ("salmon: a large fish that swims upriver from the sea to spawn", "animal"),
    ("beetle: an insect with hard wing covers that protect its wings", "animal"),
    ("oak: a large deciduous tree that bears acorns", "plant"),
    ("fern: a flowerless plant that reproduces by spores", "plant"),
    ("tulip: a spring flower grown from a bulb, with cup-shaped blooms", "plant"),
    ("cactus: a succulent plant with spines that thrives in deserts", "plant"),
    ("hammer: a hand tool with a heavy head used to drive nails", "artifact"),
    ("bicycle: a vehicle with two wheels that is pedalled by its rider", "artifact"),
    ("telescope: an optical instrument for viewing distant objects", "artifact"),
    ("umbrella: a folding canopy that shields a person from rain", "artifact"),
    ("run: move fast on foot, taking quick steps", "motion"),
    ("swim: travel through water by moving the limbs", "motion"),
    ("climb: go upward using the hands and feet", "motion"),
    ("drift: be carried slowly by a current of air or water", "motion"),
    ("joy: a feeling of great happiness and delight", "feeling"),
    ("grief: deep sorrow, especially caused by someone's death", "feeling"),
    ("anger: a strong feeling of annoyance and hostility", "feeling"),
    ("fear: an unpleasant emotion caused by the threat of danger", "feeling"),
    ("bread: a food made of flour, water and yeast, baked in an oven", "food"),
    ("cheese: a food made from the pressed curds of milk", "food"),
    ("soup: a liquid dish made by boiling meat or vegetables", "food"),
    ("honey: a sweet sticky substance made by bees from nectar", "food"),
    ("Paris: the capital and largest city of France, on the Seine", "location"),
    ("Nile: the longest river of Africa, flowing north into the Mediterranean", "location"),
    ("Alps: a mountain range in south central Europe", "location"),
    ("Sahara: a vast desert covering much of northern Africa", "location"),
    ("budget: a plan of expected income and spending for a period", "possession"),
    ("mortgage: a loan secured on a house or other property", "possession"),
]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    """Every test gets a session-wide embedding cache away from the user's home."""
    monkeypatch.setenv("UIM_CACHE_DIR", shared_cache_dir(tmp_path_factory))


def clean_frame() -> pl.DataFrame:
    """CLEAN as a frame: id (c000, c001, ...), text, label."""
    return pl.DataFrame({"id": [f"c{i:03d}" for i in range(len(CLEAN))],
                         "text": [t for t, _ in CLEAN], "label": [lab for _, lab in CLEAN]})


@pytest.fixture
def clean_df() -> pl.DataFrame:
    return clean_frame()


def shared_cache_dir(tmp_path_factory) -> str:
    """The session-wide embedding cache of ``_cache_dir``, for module-scoped fixtures (which run before it)."""
    return str(tmp_path_factory.getbasetemp() / "uim-cache")


def random_embeddings(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def embedding_shards(root, x: np.ndarray, per_shard: int):  # -> uimdata.rundir.RunDir
    """A run directory at ``root`` whose ``embeddings/`` holds ``x`` (as given, not normalised) in shards
    of ``per_shard`` rows."""
    import pyarrow as pa

    from uimdata.rundir import RunDir
    from uimdata.shards import EmbeddingShards

    run = RunDir(root)
    shards = EmbeddingShards(run)
    for s in range(0, len(x), per_shard):
        ids = pa.array([f"r{i}" for i in range(s, min(s + per_shard, len(x)))])
        shards.add(ids, x[s:s + per_shard], normalize=False)
        shards.flush()
    return run


POISONED_CONCEPT, WRONG = "3.1", "class_5"


def _predict(train: pl.DataFrame, test: pl.DataFrame) -> list[str]:
    from uimdata.probe import fit_predict

    return list(fit_predict(train["embedding"].to_numpy(), train["label"].to_list(), None,
                            test["embedding"].to_numpy()))


def make_world(tmp_path, poison: bool, detectors: tuple[str, ...] = ("exact_duplicate", "label", "long_tail"),
               extra=None):
    """A synthetic labelled corpus (given embeddings), scanned, and a downstream split with the raw-trained
    probe's predictions. ``poison``: 85 % of concept 3.1 labelled class_5. ``extra(train) -> (train, truth_ids)``
    plants more defects."""
    train = _space(seed=0, row_spread=0.6)
    truth = set()
    if poison:
        rows = np.flatnonzero(train["concept"].to_numpy() == POISONED_CONCEPT)
        train, t = _poison(train, rows, WRONG, 0.85, rng=0)
        truth = set(t["id"])
    if extra is not None:
        train, more = extra(train)
        truth |= set(more)
    down = _space(seed=1, per_concept=30, prefix="t", row_spread=0.6)
    down = down.with_columns(pl.Series("prediction", _predict(train, down)))
    corpus, dpath = tmp_path / "corpus.parquet", tmp_path / "down.parquet"
    train.drop("concept").write_parquet(corpus)
    down.write_parquet(dpath)
    run = tmp_path / "run"
    _scan(_Cfg(corpus=str(corpus), out=str(run), detectors=detectors))
    return run, dpath, truth, down


