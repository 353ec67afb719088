"""Plant known defects into a text corpus: the ground truth behind the demo, the tests and the benchmarks.

Every function takes a polars DataFrame with an ``id`` and a ``text`` column (any other column, such as
``label``, is carried along) and a ``rng`` (a :class:`numpy.random.Generator` or a seed), and returns
``(new_df, truth_df)``:

* ``new_df`` holds every original row, in its original relative order, plus the planted rows inserted at
  random positions. A planted row is a copy of a random original row (so its ``label`` and other columns
  are real), with a fresh ``id`` that follows the corpus's own id pattern and a new ``text``.
* ``truth_df`` has one row per planted row, in ``new_df`` order, with the columns of :data:`TRUTH_SCHEMA`:
  ``id``, ``defect`` (one of :data:`DEFECTS`), ``kind`` and ``source_id`` (the id of the original that a
  duplicate copies; null for corrupted rows).

Guarantees: exact duplicates equal their source verbatim; near duplicates differ from their source and from
every other text in the corpus, with an Indel similarity of at least :data:`MIN_NEAR_SIMILARITY`; corrupted
texts are unique in the corpus. The same seed gives the same output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from uimdata.synth.common import (
    ALL_CORRUPTION_KINDS,
    CORRUPTION_KINDS,
    DEFECTS,
    EXACT_KIND,
    MAX_TRIES,
    MIN_NEAR_SIMILARITY,
    MIN_NEAR_SOURCE_CHARS,
    NEAR_EDITS,
    TRUTH_SCHEMA,
    RngLike,
    pick,
    rng_of,
    similarity,
    truth_schema,
)
from uimdata.synth.corruption import CORRUPTORS, corrupt_text, mojibake
from uimdata.synth.edits import near_duplicate_text

__all__ = ["ALL_CORRUPTION_KINDS", "CORRUPTION_KINDS", "DEFECTS", "EXACT_KIND", "MIN_NEAR_SIMILARITY", "MIN_NEAR_SOURCE_CHARS",
           "NEAR_EDITS", "TRUTH_SCHEMA", "corrupt_text", "mojibake", "near_duplicate_text", "new_ids",
           "plant_all", "plant_corrupted", "plant_exact_duplicates", "plant_near_duplicates", "renumber_ids",
           "similarity", "truth_schema"]

# ----------------------------------------------------------------------------------------- planning

class _Plan:
    """New rows to insert: source row index, text, defect, kind, and a label that overrides the source's
    (a donor's label) or None."""

    def __init__(self) -> None:
        self.src: list[int] = []
        self.text: list[str] = []
        self.defect: list[str] = []
        self.kind: list[str] = []
        self.label: list = []

    def add(self, src: int, text: str, defect: str, kind: str, label=None) -> None:
        self.src.append(src)
        self.text.append(text)
        self.defect.append(defect)
        self.kind.append(kind)
        self.label.append(label)


def _check(df: pl.DataFrame) -> None:
    missing = [c for c in ("id", "text") if c not in df.columns]
    if missing:
        raise ValueError(f"plant: the DataFrame needs columns 'id' and 'text'; missing {missing}")


def _valid_rows(texts: list[str | None]) -> np.ndarray:
    return np.array([i for i, t in enumerate(texts) if t], dtype=np.int64)


def _sample(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if len(pool) == 0:
        raise ValueError("plant: no row with a non-empty text to copy")
    return rng.choice(pool, size=n, replace=n > len(pool))


def _plan_exact(plan: _Plan, texts: list, pool: np.ndarray, n: int, rng: np.random.Generator) -> None:
    for i in _sample(rng, pool, n):
        plan.add(int(i), texts[i], "exact_duplicate", EXACT_KIND)


def _plan_near(plan: _Plan, texts: list, pool: np.ndarray, n: int, rng: np.random.Generator,
               taken: set[str]) -> None:
    if n == 0:
        return
    long_pool = pool[[len(texts[i]) >= MIN_NEAR_SOURCE_CHARS for i in pool]] if len(pool) else pool
    if len(long_pool) >= n:
        pool = long_pool
    sources = list(_sample(rng, pool, n))
    made = 0
    while made < n:
        i = int(sources[made]) if made < len(sources) else int(rng.choice(pool))
        src = texts[i]
        for _ in range(MAX_TRIES):
            out = near_duplicate_text(src, rng)
            if out is not None and out[0] not in taken:
                taken.add(out[0])
                plan.add(i, out[0], "near_duplicate", out[1])
                made += 1
                break
        else:  # this source resists editing (too short?): draw another one
            if made < len(sources):
                sources[made] = int(rng.choice(pool))


def _balanced_kinds(rng: np.random.Generator, n: int, kinds: Sequence[str]) -> list[str]:
    base = [kinds[i] for i in rng.permutation(len(kinds))]
    out = [base[i % len(base)] for i in range(n)]
    return [out[i] for i in rng.permutation(n)]


Donors = pl.DataFrame | Sequence[str] | None


def _plan_corrupted(plan: _Plan, texts: list, pool: np.ndarray, n: int, rng: np.random.Generator,
                    taken: set[str], kinds: Sequence[str], donors: Donors = None) -> None:
    if n == 0:
        return
    bad = [k for k in kinds if k not in CORRUPTORS]
    if bad or not kinds:
        raise ValueError(f"plant_corrupted: unknown kinds {bad}; expected some of {CORRUPTION_KINDS}")
    donor_texts: list[str] | None = None
    donor_labels: list | None = None
    if donors is not None:
        if isinstance(donors, pl.DataFrame):
            donor_texts = donors["text"].cast(pl.Utf8).to_list()
            donor_labels = donors["label"].to_list() if "label" in donors.columns else None
        else:
            donor_texts = [str(t) for t in donors]
        if not donor_texts:
            raise ValueError("plant_corrupted: donors is empty")
        donor_idx = _sample(rng, np.arange(len(donor_texts)), n)
    for j, (i, kind) in enumerate(zip(_sample(rng, pool, n), _balanced_kinds(rng, n, kinds), strict=True)):
        label = None
        if donor_texts is None:
            src = texts[i]
        else:
            src = donor_texts[donor_idx[j]]
            label = None if donor_labels is None else donor_labels[donor_idx[j]]
        for attempt in range(MAX_TRIES * 5):
            out = CORRUPTORS[kind](src, rng)
            if attempt >= MAX_TRIES:  # a small pool (stubs): make it unique
                out = out + pick(rng, (" ", ".", "!", "?", " .", "..", "-", " x")) * (attempt // MAX_TRIES)
            if out not in taken:
                break
        taken.add(out)
        plan.add(int(i), out, "corrupted", kind, label)


# ----------------------------------------------------------------------------------------- ids, insert

_ID_RE = r"^(.*?)(\d+)$"


def new_ids(ids: pl.Series, n: int, rng: RngLike = None) -> pl.Series:
    """``n`` ids that are not in ``ids`` and look like them: integers continue the sequence, strings that
    end in digits with a common prefix ("demo-00042") continue the numbering; anything else gets random
    12-hex-digit ids."""
    rng = rng_of(rng)
    if ids.dtype.is_integer():
        start = int(ids.max()) + 1 if len(ids) else 0
        return pl.Series("id", np.arange(start, start + n), dtype=ids.dtype)
    s = ids.cast(pl.Utf8)
    if len(s):
        prefix = s.str.extract(_ID_RE, 1)
        digits = s.str.extract(_ID_RE, 2)
        if prefix.null_count() == 0 and prefix.n_unique() == 1:
            width = int(digits.str.len_chars().max())
            start = int(digits.cast(pl.Int64).max()) + 1
            p = prefix[0]
            out = pl.Series("id", [f"{p}{k:0{width}d}" for k in range(start, start + n)], dtype=pl.Utf8)
            if not set(out.to_list()) & set(s.to_list()):
                return out
    existing = set(s.to_list())
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        for v in rng.integers(0, 2 ** 48, size=n - len(out)):
            h = f"{int(v):012x}"
            if h not in existing and h not in seen:
                seen.add(h)
                out.append(h)
    return pl.Series("id", out, dtype=pl.Utf8)


def _apply(df: pl.DataFrame, plan: _Plan, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    n, big_n = len(plan.src), df.height
    ids = new_ids(df["id"], n, rng)
    id_dtype = df.schema["id"]
    if n == 0:
        return df, pl.DataFrame(schema=truth_schema(id_dtype))
    src_idx = np.asarray(plan.src, dtype=np.int64)
    new_rows = df[src_idx].with_columns(
        ids.cast(id_dtype).alias("id"), pl.Series("text", plan.text, dtype=pl.Utf8).cast(df.schema["text"]))
    if "label" in df.columns and any(v is not None for v in plan.label):
        labels = [d if d is not None else s for d, s in zip(plan.label, new_rows["label"].to_list(),
                                                              strict=True)]
        new_rows = new_rows.with_columns(pl.Series("label", labels).cast(df.schema["label"]))
    src_ids = df["id"].gather(src_idx)
    truth = pl.DataFrame({
        "id": ids.cast(id_dtype),
        "defect": pl.Series(plan.defect, dtype=pl.Utf8),
        "kind": pl.Series(plan.kind, dtype=pl.Utf8),
        "source_id": src_ids,
    }).with_columns(
        pl.when(pl.col("defect") == "corrupted").then(None).otherwise(pl.col("source_id")).alias("source_id"))
    is_new = np.zeros(big_n + n, dtype=bool)
    is_new[rng.choice(big_n + n, size=n, replace=False)] = True
    order = np.empty(big_n + n, dtype=np.int64)
    order[~is_new] = np.arange(big_n)
    order[is_new] = big_n + rng.permutation(n)
    out = pl.concat([df, new_rows], how="vertical")[order]
    truth = truth[order[is_new] - big_n]
    return out, truth


# ----------------------------------------------------------------------------------------- public API

def plant_exact_duplicates(df: pl.DataFrame, n: int, rng: RngLike = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` verbatim copies of random rows (distinct sources while ``n`` <= rows)."""
    return plant_all(df, n_exact=n, rng=rng)


def plant_near_duplicates(df: pl.DataFrame, n: int, rng: RngLike = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` copies of random rows with 1-3 small edits each (see :data:`NEAR_EDITS`); ``kind`` lists the
    edits applied, joined by "+"."""
    return plant_all(df, n_near=n, rng=rng)


def plant_corrupted(df: pl.DataFrame, n: int, rng: RngLike = None,
                    kinds: Sequence[str] = CORRUPTION_KINDS,
                    donors: Donors = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` copies of random rows whose text is replaced by corrupted text, spread evenly over ``kinds``.

    Mojibake, markup, replacement characters and some repetitions and stubs keep (part of) a text. By
    default that is the copied row's own text, so the corrupted row is also close to its source, which
    stays in the corpus. ``donors`` (texts, or a DataFrame with ``text`` and optionally ``label``, e.g.
    held-out rows) supplies those texts instead; a donor's ``label`` then replaces the copied row's.
    """
    return plant_all(df, n_corrupted=n, rng=rng, corruption_kinds=kinds, donors=donors)


def plant_all(df: pl.DataFrame, n_exact: int = 0, n_near: int = 0, n_corrupted: int = 0,
              rng: RngLike = None, corruption_kinds: Sequence[str] = CORRUPTION_KINDS,
              donors: Donors = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All three defects at once. Sources are original rows only (never a planted copy); the sources of the
    exact duplicates, the near duplicates and the corrupted rows are disjoint while the corpus is large
    enough (each source is copied once). ``donors``: see :func:`plant_corrupted`."""
    _check(df)
    if min(n_exact, n_near, n_corrupted) < 0:
        raise ValueError("plant: counts must be >= 0")
    rng = rng_of(rng)
    texts = df["text"].cast(pl.Utf8).to_list()
    pool = _valid_rows(texts)
    taken = set(texts)
    plan = _Plan()
    _plan_exact(plan, texts, pool, n_exact, rng)
    near_pool = pool
    if n_exact and len(pool) - len(set(plan.src)) >= n_near:
        near_pool = np.setdiff1d(pool, np.asarray(plan.src, dtype=np.int64))
    _plan_near(plan, texts, near_pool, n_near, rng, taken)
    bad_pool = pool
    used = np.unique(np.asarray(plan.src, dtype=np.int64))
    if len(used) and len(pool) - len(used) >= n_corrupted:
        bad_pool = np.setdiff1d(pool, used)
    _plan_corrupted(plan, texts, bad_pool, n_corrupted, rng, taken, corruption_kinds, donors)
    return _apply(df, plan, rng)


def renumber_ids(df: pl.DataFrame, truth: pl.DataFrame, prefix: str, width: int = 5,
                 start: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Give every row the id ``f"{prefix}{k:0{width}d}"`` in row order and map ``truth``'s ``id`` and
    ``source_id`` along: after a shuffle, planted rows carry no tell-tale id."""
    mapping = pl.DataFrame({
        "old": df["id"],
        "new": [f"{prefix}{k:0{width}d}" for k in range(start, start + df.height)],
    })
    out = df.with_columns(mapping["new"].alias("id"))
    old = mapping["old"].to_list()
    new = mapping["new"].to_list()
    truth = truth.with_columns(
        pl.col("id").replace_strict(old, new, return_dtype=pl.Utf8),
        pl.col("source_id").replace_strict(old, new, default=None, return_dtype=pl.Utf8),
    )
    return out, truth
