"""Plant label noise and out-of-distribution rows: the ground truth behind the label-noise and OOD benchmarks.

Like :mod:`uimdata.synth`, every planting function takes a polars DataFrame with ``id``, ``text`` and
``label`` columns (any other column is carried along) and a ``rng`` (a :class:`numpy.random.Generator` or
a seed), and returns ``(new_df, truth_df)``. ``truth_df`` has one row per planted row, in ``new_df``
order, with the columns of :func:`truth_schema`:

* ``id``: the planted row's id;
* ``defect``: ``"label_noise"`` or ``"ood"``;
* ``kind``: for label noise the way the label was chosen (``"uniform"`` or ``"confusable"``), for OOD
  rows the kind of text (``"other_language"``, ``"other_domain"``, ... as the OOD frame says);
* ``given_label``: the row's label in ``new_df``;
* ``true_label``: the row's original label (null for OOD rows: they have none).

* :func:`plant_label_noise` changes the ``label`` of a fraction of the rows and nothing else (same rows,
  same order, same ids);
* :func:`plant_ood` inserts texts that do not belong to the corpus (e.g. ``uimdata/data/ood/ood.parquet``)
  at random positions, with fresh ids in the corpus's own style and a label that means nothing;
* :func:`confusable_classes` builds the ``confusable`` map that :func:`plant_label_noise` draws realistic
  mistakes from, from the similarity of the class centroids of some embeddings.

The same seed gives the same output. Both planting functions are vectorised: well under a second for
tens of thousands of rows.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import polars as pl

from uimdata.synth import new_ids

RngLike = np.random.Generator | int | None

DEFECTS = ("label_noise", "ood")
NOISE_MODES = ("uniform", "confusable", "mixed")
LABEL_STRATEGIES = ("random", "uniform", "null")

#: label -> [(other label, weight), ...]; a bare label stands for weight 1
Confusable = Mapping[Hashable, Sequence[tuple[Hashable, float] | Hashable]]


def truth_schema(id_dtype: pl.DataType = pl.Utf8, label_dtype: pl.DataType = pl.Utf8) -> dict[str, pl.DataType]:
    return {"id": id_dtype, "defect": pl.Utf8, "kind": pl.Utf8, "given_label": label_dtype,
            "true_label": label_dtype}


TRUTH_SCHEMA = truth_schema()


def _rng(rng: RngLike) -> np.random.Generator:
    return np.random.default_rng(rng)


def _check(df: pl.DataFrame, need_label: bool = True) -> None:
    cols = ("id", "text", "label") if need_label else ("id", "text")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"synth.labels: the frame needs column(s) {missing}; it has {df.columns}")


def _label_series(values: list, dtype: pl.DataType, name: str = "label") -> pl.Series:
    if dtype == pl.Null:
        return pl.Series(name, values)
    try:
        return pl.Series(name, values, dtype=dtype)
    except (TypeError, pl.exceptions.PolarsError):  # e.g. Categorical from python objects
        return pl.Series(name, values).cast(dtype)


# ----------------------------------------------------------------------------------------- confusable

def confusable_classes(labels: Sequence | pl.Series | np.ndarray, embeddings: np.ndarray,
                       top: int = 3) -> dict[Hashable, list[tuple[Hashable, float]]]:
    """For every class, its ``top`` nearest other classes and a weight for each, as
    :func:`plant_label_noise`'s ``confusable`` wants them.

    ``embeddings[i]`` is the embedding of the row whose label is ``labels[i]`` (rows with a null label are
    ignored). Rows are L2-normalised, a class's centroid is the mean of its rows, and classes are ranked by
    the cosine similarity of their centroids (ties: class order). The weights are the similarities
    (negative ones count as 0) normalised to sum to 1, equal weights where they are all <= 0. Classes are
    returned in sorted order, their neighbours nearest first.
    """
    if top < 1:
        raise ValueError("confusable_classes: top must be >= 1")
    lab = labels.to_list() if isinstance(labels, pl.Series) else list(labels)
    x = np.asarray(embeddings)
    x = x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=False)
    if x.ndim != 2 or x.shape[0] != len(lab):
        raise ValueError(f"confusable_classes: embeddings must be (n, d) with n = {len(lab)} labels, "
                         f"got {x.shape}")
    keep = np.array([v is not None for v in lab], dtype=bool)
    lab_kept = [v for v in lab if v is not None]
    if not keep.all():
        x = x[keep]
    classes = sorted(set(lab_kept), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise ValueError("confusable_classes: needs at least two classes")
    code = {c: i for i, c in enumerate(classes)}
    inv = np.fromiter((code[v] for v in lab_kept), dtype=np.int64, count=len(lab_kept))
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    x = x / np.where(norms > 0, norms, 1.0)
    xs = x[np.argsort(inv, kind="stable")]
    ends = np.cumsum(np.bincount(inv, minlength=len(classes)))
    starts = ends - np.bincount(inv, minlength=len(classes))
    cent = np.stack([xs[a:b].mean(axis=0, dtype=np.float64) for a, b in zip(starts, ends)])
    cn = np.linalg.norm(cent, axis=1, keepdims=True)
    cent = cent / np.where(cn > 0, cn, 1.0)
    sim = cent @ cent.T
    np.fill_diagonal(sim, -np.inf)
    k = min(top, len(classes) - 1)
    out: dict[Hashable, list[tuple[Hashable, float]]] = {}
    for i, c in enumerate(classes):
        nearest = np.argsort(-sim[i], kind="stable")[:k]
        w = np.clip(sim[i, nearest], 0.0, None)
        w = w / w.sum() if w.sum() > 0 else np.full(k, 1.0 / k)
        out[c] = [(classes[j], float(wj)) for j, wj in zip(nearest, w)]
    return out


def _confusable_options(confusable: Confusable, label: Hashable) -> tuple[list, np.ndarray] | None:
    """``(labels, probabilities)`` a row labelled ``label`` may be flipped to, or None."""
    entries = confusable.get(label) or ()
    opts: dict = {}
    for e in entries:
        other, w = (e if isinstance(e, tuple) else (e, 1.0))
        w = float(w)
        if other is None or other == label or not np.isfinite(w) or w <= 0:
            continue
        opts[other] = opts.get(other, 0.0) + w
    if not opts:
        return None
    p = np.fromiter(opts.values(), dtype=np.float64, count=len(opts))
    return list(opts), p / p.sum()


# ----------------------------------------------------------------------------------------- label noise

def plant_label_noise(df: pl.DataFrame, frac: float, rng: RngLike = None, mode: str = "uniform",
                      confusable: Confusable | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Flip the ``label`` of ``round(frac * rows)`` rows, never to the same label.

    ``mode``:

    * ``"uniform"``: to another class of the corpus, each equally likely;
    * ``"confusable"``: to a class drawn from ``confusable[label]`` (``[(other_label, weight), ...]``,
      e.g. from :func:`confusable_classes`), in proportion to the weights; only rows whose label has an
      entry there can be flipped;
    * ``"mixed"``: half the flips (rounded down) ``confusable``, the rest ``uniform``, on distinct rows.

    Rows with a null label are never flipped. Ids, texts, other columns and the row order are unchanged;
    the label keeps its dtype. ``truth_df``'s ``kind`` is the mode used for that row. Raises
    ``ValueError`` when there are not enough rows that can be flipped.
    """
    _check(df)
    if mode not in NOISE_MODES:
        raise ValueError(f"plant_label_noise: mode must be one of {NOISE_MODES}, got {mode!r}")
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"plant_label_noise: frac must be in [0, 1], got {frac}")
    if mode in ("confusable", "mixed") and confusable is None:
        raise ValueError(f"plant_label_noise: mode {mode!r} needs a confusable map "
                         "(see confusable_classes)")
    rng = _rng(rng)
    n = int(round(frac * df.height))
    label_dtype = df.schema["label"]
    id_dtype = df.schema["id"]
    empty = pl.DataFrame(schema=truth_schema(id_dtype, label_dtype))
    if n == 0:
        return df.clone(), empty

    labels = df["label"].to_list()
    classes = sorted({v for v in labels if v is not None}, key=lambda v: (str(type(v)), v))
    code = {c: i for i, c in enumerate(classes)}
    codes = np.fromiter((code[v] if v is not None else -1 for v in labels), dtype=np.int64,
                        count=len(labels))
    n_conf = n if mode == "confusable" else (n // 2 if mode == "mixed" else 0)
    n_uni = n - n_conf

    conf_rows = np.empty(0, dtype=np.int64)
    new_labels: dict[int, Hashable] = {}
    if n_conf:
        options = {c: _confusable_options(confusable, c) for c in classes}
        ok_class = np.array([options[c] is not None for c in classes] + [False])  # [-1] -> null label
        pool = np.flatnonzero(ok_class[codes])
        if len(pool) < n_conf:
            raise ValueError(f"plant_label_noise: {n_conf} confusable flips asked for, but only {len(pool)} "
                             "rows have a label with confusable classes")
        conf_rows = np.sort(rng.choice(pool, size=n_conf, replace=False))
        for c_idx in np.unique(codes[conf_rows]):
            rows = conf_rows[codes[conf_rows] == c_idx]
            opts, p = options[classes[c_idx]]
            picks = rng.choice(len(opts), size=len(rows), p=p)
            for r, k in zip(rows.tolist(), picks.tolist()):
                new_labels[r] = opts[k]
    uni_rows = np.empty(0, dtype=np.int64)
    if n_uni:
        if len(classes) < 2:
            raise ValueError("plant_label_noise: uniform flips need at least two classes")
        pool = np.flatnonzero(codes >= 0)
        if len(conf_rows):
            pool = np.setdiff1d(pool, conf_rows, assume_unique=True)
        if len(pool) < n_uni:
            raise ValueError(f"plant_label_noise: {n_uni} uniform flips asked for, but only {len(pool)} "
                             "rows can be flipped")
        uni_rows = np.sort(rng.choice(pool, size=n_uni, replace=False))
        r = rng.integers(0, len(classes) - 1, size=n_uni)
        cur = codes[uni_rows]
        new_codes = np.where(r >= cur, r + 1, r)  # a uniform draw among the other classes
        for row, k in zip(uni_rows.tolist(), new_codes.tolist()):
            new_labels[row] = classes[k]

    flipped = np.sort(np.concatenate([conf_rows, uni_rows]))
    kinds = np.where(np.isin(flipped, conf_rows), "confusable", "uniform")
    new_values = list(labels)
    for row, v in new_labels.items():
        new_values[row] = v
    new_label = _label_series(new_values, label_dtype)
    out = df.with_columns(new_label)
    idx = pl.Series(flipped, dtype=pl.Int64)
    truth = pl.DataFrame({
        "id": df["id"].gather(idx),
        "defect": pl.Series(["label_noise"] * len(flipped), dtype=pl.Utf8),
        "kind": pl.Series(kinds.tolist(), dtype=pl.Utf8),
        "given_label": new_label.gather(idx),
        "true_label": df["label"].gather(idx),
    })
    return out, truth


# ----------------------------------------------------------------------------------------- OOD rows

def plant_ood(df: pl.DataFrame, ood: pl.DataFrame, n: int, rng: RngLike = None,
              label_strategy: str = "random") -> tuple[pl.DataFrame, pl.DataFrame]:
    """Insert ``n`` rows of ``ood`` (columns ``text`` and ``kind``, e.g. ``uimdata/data/ood/ood.parquet``),
    sampled without replacement, at random positions.

    A planted row gets a fresh id in the style of the corpus's ids (integers and ``prefix-00042`` style
    ids continue the numbering, anything else gets random hex ids: :func:`uimdata.synth.new_ids`), its
    ``text`` from ``ood``, and a label that means nothing, by ``label_strategy``:

    * ``"random"``: drawn from the corpus's label distribution (the label of a random labelled row);
    * ``"uniform"``: a class of the corpus, each equally likely;
    * ``"null"``: no label.

    Other columns of ``df`` are null in the planted rows. ``ood`` texts already in the corpus are not
    used. ``truth_df``'s ``kind`` is the OOD row's ``kind``; its ``true_label`` is null. The original
    rows keep their relative order.
    """
    _check(df, need_label=False)
    for c in ("text", "kind"):
        if c not in ood.columns:
            raise ValueError(f"plant_ood: the OOD frame needs a {c!r} column; it has {ood.columns}")
    if label_strategy not in LABEL_STRATEGIES:
        raise ValueError(f"plant_ood: label_strategy must be one of {LABEL_STRATEGIES}, "
                         f"got {label_strategy!r}")
    if n < 0:
        raise ValueError("plant_ood: n must be >= 0")
    rng = _rng(rng)
    has_label = "label" in df.columns
    label_dtype = df.schema["label"] if has_label else pl.Utf8
    id_dtype = df.schema["id"]
    if n == 0:
        return df.clone(), pl.DataFrame(schema=truth_schema(id_dtype, label_dtype))

    pool = ood.filter(pl.col("text").is_not_null()
                      & ~pl.col("text").cast(pl.Utf8).is_in(df["text"].cast(pl.Utf8).implode()))
    pool = pool.unique(subset="text", keep="first", maintain_order=True)
    if pool.height < n:
        raise ValueError(f"plant_ood: {n} OOD rows asked for, the OOD frame has {pool.height} usable texts")
    picked = pool[np.sort(rng.choice(pool.height, size=n, replace=False))]
    picked = picked[rng.permutation(n)]

    labels: list | None = None
    if has_label and label_strategy != "null":
        present = df["label"].drop_nulls()
        if present.len() == 0:
            labels = [None] * n
        elif label_strategy == "random":
            labels = present.gather(pl.Series(rng.integers(0, present.len(), size=n))).to_list()
        else:
            classes = sorted(set(present.to_list()), key=lambda v: (str(type(v)), v))
            labels = [classes[k] for k in rng.integers(0, len(classes), size=n).tolist()]
    elif has_label:
        labels = [None] * n

    ids = new_ids(df["id"], n, rng).cast(id_dtype)
    cols = {}
    for name, dtype in df.schema.items():
        if name == "id":
            cols[name] = ids
        elif name == "text":
            cols[name] = picked["text"].cast(pl.Utf8).cast(dtype).alias("text")
        elif name == "label":
            cols[name] = _label_series(labels, dtype)
        else:
            cols[name] = pl.Series(name, [None] * n, dtype=dtype)
    new_rows = pl.DataFrame(cols)

    big_n = df.height
    is_new = np.zeros(big_n + n, dtype=bool)
    is_new[rng.choice(big_n + n, size=n, replace=False)] = True
    order = np.empty(big_n + n, dtype=np.int64)
    order[~is_new] = np.arange(big_n)
    order[is_new] = big_n + np.arange(n)  # the sample is already in random order
    out = pl.concat([df, new_rows], how="vertical")[order]

    given = new_rows["label"] if has_label else pl.Series("given_label", [None] * n, dtype=label_dtype)
    truth = pl.DataFrame({
        "id": ids,
        "defect": pl.Series(["ood"] * n, dtype=pl.Utf8),
        "kind": picked["kind"].cast(pl.Utf8),
        "given_label": given.alias("given_label"),
        "true_label": pl.Series("true_label", [None] * n, dtype=label_dtype),
    })
    return out, truth


# ----------------------------------------------------------------------------------- poisoned concept

def pick_concept(labels: Sequence | pl.Series | np.ndarray, embeddings: np.ndarray, rng: RngLike = None,
                 size: tuple[int, int] = (150, 400), purity: float = 0.8, n_clusters: int | None = None
                 ) -> tuple[np.ndarray, Hashable, Hashable]:
    """A fine-grained concept of a labelled corpus: a k-means cluster (``k`` ~ N / 150) whose size lies
    in ``size`` and whose rows carry one class at least ``purity`` of the time, drawn with ``rng``.

    Returns ``(rows, true_label, wrong_label)``: the concept's rows that carry its class, the class, and
    the other class whose centroid is nearest to the concept's centroid (the systematic mistake an
    annotator would make).
    """
    import faiss

    rng = _rng(rng)
    y = np.asarray(pl.Series(labels).to_list(), dtype=object)
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    k = n_clusters or max(2, len(y) // 150)
    km = faiss.Kmeans(x.shape[1], k, niter=20, seed=int(rng.integers(1 << 30)), spherical=True, verbose=False)
    km.train(x)
    assign = km.index.search(x, 1)[1][:, 0]
    options = []
    for c in range(k):
        rows = np.flatnonzero(assign == c)
        if not size[0] <= len(rows) <= size[1]:
            continue
        vals, counts = np.unique(y[rows].astype(str), return_counts=True)
        if counts.max() >= purity * len(rows):
            options.append((c, vals[counts.argmax()]))
    if not options:
        raise ValueError(f"pick_concept: no cluster of {size[0]}-{size[1]} rows with purity >= {purity}")
    c, label = options[int(rng.integers(len(options)))]
    rows = np.flatnonzero((assign == c) & (y.astype(str) == label))
    classes = sorted({str(v) for v in y if v is not None})
    cents = np.stack([x[y.astype(str) == cl].mean(axis=0) for cl in classes])
    sims = cents @ x[rows].mean(axis=0)
    order = [classes[i] for i in np.argsort(-sims) if classes[i] != label]
    true_label = next(v for v in y[rows])
    wrong = next(v for v in y if str(v) == order[0])
    return rows, true_label, wrong


def plant_concept_poison(df: pl.DataFrame, rows: np.ndarray, wrong_label: Hashable, frac: float = 0.85,
                         rng: RngLike = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Systematic label bias: give ``frac`` of the concept's ``rows`` (positions in ``df``) the one
    ``wrong_label``. Confident learning cannot see this when most of a region is mislabelled the same
    way. ``truth_df``: ``defect`` = ``"label_noise"``, ``kind`` = ``"poisoned_concept"``."""
    _check(df)
    rng = _rng(rng)
    rows = np.asarray(rows, dtype=np.int64)
    pick = np.sort(rng.choice(rows, size=int(round(frac * len(rows))), replace=False))
    labels = df["label"].to_list()
    true = [labels[i] for i in pick]
    for i in pick:
        labels[i] = wrong_label
    out = df.with_columns(_label_series(labels, df.schema["label"]))
    truth = pl.DataFrame({
        "id": df["id"].gather(pl.Series(pick)),
        "defect": ["label_noise"] * len(pick), "kind": ["poisoned_concept"] * len(pick),
        "given_label": _label_series([wrong_label] * len(pick), df.schema["label"], "given_label"),
        "true_label": _label_series(true, df.schema["label"], "true_label"),
    }, schema_overrides={"id": df.schema["id"]})
    return out, truth
