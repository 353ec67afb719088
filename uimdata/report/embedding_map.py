"""embedding_map: the report's "Embedding map" section: a 2-D PCA of a sample of the run's embeddings,
coloured by issue and (when ``long_tail`` ran) by k-means cluster.

The sample stays small whatever the corpus size: at most ``MAP_POINTS`` uniformly sampled rows plus
``MAP_FLAGGED`` more flagged rows, read from at most ``MAP_SHARDS`` embedding shards. The map is a
PNG (a scatter of thousands of points is smaller as pixels than as SVG).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from uimdata.report.blocks import as_float, note, short
from uimdata.report.charts import GREY, chart, figure, issue_colour
from uimdata.report.db import records
from uimdata.rundir import RunDir

MAP_POINTS = 3000      # uniformly sampled rows on the embedding map
MAP_FLAGGED = 1000     # flagged rows added to them
MAP_SHARDS = 8         # embedding shards read at most (100,000 rows each)
MAX_LABELLED_CLUSTERS = 60  # up to this many clusters: each one's id written at its median


@dataclass
class MapSample:
    """The rows drawn on the map and where they came from."""

    ids: list[str]
    x: np.ndarray          # their embeddings, float32 (n, dim)
    n_rows: int            # rows of the run
    n_shards: int          # embedding shards read
    n_files: int           # embedding shards of the run
    n_uniform: int         # rows sampled uniformly
    n_flagged: int         # flagged rows added to them


def embedding_map(run: RunDir, con: duckdb.DuckDBPyConnection, issue_order: list[str], seed: int) -> dict:
    """Section "Embedding map"; ``issue_order`` gives the issues their colours (as in the issue summary)."""
    section = {"id": "map", "title": "Embedding map", "blocks": []}
    files = sorted(run.embeddings_dir.glob("part-*.parquet")) if run.embeddings_dir.is_dir() else []
    if not files:
        section["blocks"].append(note("the run has no embeddings."))
        return section
    sample = _read_sample(files, con, np.random.default_rng(seed))
    if len(sample.x) < 3:
        section["blocks"].append(note("too few rows for a map."))
        return section
    section["blocks"].append(_map_chart(sample, con, issue_order, seed))
    return section


def _sample_positions(counts: list[int], flagged: np.ndarray, rng: np.random.Generator
                     ) -> tuple[list[int], dict[int, np.ndarray], int, int]:
    """Pick shards (all, or MAP_SHARDS at random) and the rows of them to draw.

    Returns the chosen shards, their local row indices, and how many uniform / flagged rows were picked.
    """
    starts = np.concatenate([[0], np.cumsum(counts)])
    shards = list(range(len(counts)))
    if len(shards) > MAP_SHARDS:
        shards = sorted(rng.choice(len(shards), MAP_SHARDS, replace=False).tolist())
    pool = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in shards]) if shards else np.array([])
    uniform = rng.choice(pool, min(MAP_POINTS, len(pool)), replace=False) if len(pool) else pool
    flagged = flagged[np.isin(flagged, pool)]
    if len(flagged) > MAP_FLAGGED:
        flagged = rng.choice(flagged, MAP_FLAGGED, replace=False)
    picked = np.union1d(uniform, flagged).astype(np.int64)
    local = {s: picked[(picked >= starts[s]) & (picked < starts[s + 1])] - starts[s] for s in shards}
    n_flag_only = len(np.setdiff1d(flagged, uniform))
    return shards, local, len(uniform), n_flag_only


def _read_sample(files: list, con: duckdb.DuckDBPyConnection, rng: np.random.Generator) -> MapSample:
    """The sampled rows' ids and embeddings, read shard by shard."""
    counts = [pq.ParquetFile(f).metadata.num_rows for f in files]
    flagged = np.array([r["row"] for r in records(con, "report_flagged_rows")], dtype=np.int64)
    shards, local, n_uniform, n_flagged = _sample_positions(counts, flagged, rng)
    ids: list[str] = []
    parts = []
    for s in shards:
        if not len(local[s]):
            continue
        t = pq.read_table(files[s], columns=["id", "embedding"]).take(pa.array(local[s]))
        ids += t.column("id").to_pylist()
        col = t.column("embedding").combine_chunks()
        parts.append(col.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(t), -1))
    x = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.float32)
    return MapSample(ids, x, sum(counts), len(shards), len(files), n_uniform, n_flagged)


def _map_chart(sample: MapSample, con: duckdb.DuckDBPyConnection, issue_order: list[str], seed: int) -> dict:
    """PCA of the sample: one panel by issue, a second by cluster when the rows have a ``cluster_id``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed)
    xy = pca.fit_transform(sample.x)
    ev = pca.explained_variance_ratio_
    info = {r["id"]: r for r in records(con, "report_map_points", {"ids": sample.ids})}
    has_clusters = any("cluster_id" in r for r in info.values())
    fig, axes = figure(11.5, 5.2, ncols=2 if has_clusters else 1)
    axes = np.atleast_1d(axes)
    issue = np.array([info.get(i, {}).get("issue") or "" for i in sample.ids], dtype=object)
    _issue_panel(axes[0], xy, issue, issue_order)
    if has_clusters:
        _cluster_panel(axes[1], xy, np.array([as_float(info.get(i, {}).get("cluster_id")) for i in sample.ids]))
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"PC1 ({100 * ev[0]:.1f} % of variance)")
        ax.set_ylabel(f"PC2 ({100 * ev[1]:.1f} % of variance)" if len(ev) > 1 else "PC2")
    where = (f" from {sample.n_shards} of {sample.n_files} embedding shards"
             if sample.n_shards < sample.n_files else "")
    caption = (f"PCA projection of {len(sample.ids):,} of {sample.n_rows:,} rows{where}: {sample.n_uniform:,} "
               f"sampled uniformly plus {sample.n_flagged:,} more flagged rows. A row with several issues "
               "takes its lowest-scored one.")
    return chart(fig, "2-D PCA map of the embedding space", caption, fmt="png")


def _issue_panel(ax, xy: np.ndarray, issue: np.ndarray, issue_order: list[str]) -> None:
    """Rows without an issue in grey, each issue in its colour (known issues first, in summary order)."""
    clean = issue == ""
    ax.scatter(xy[clean, 0], xy[clean, 1], s=4, c=GREY, alpha=0.5, linewidths=0, label=f"no issue ({clean.sum():,})")
    order = [i for i in issue_order if i in set(issue)] + sorted(set(issue) - set(issue_order) - {""})
    for k, name in enumerate(order):
        m = issue == name
        ax.scatter(xy[m, 0], xy[m, 1], s=12, color=issue_colour(k), alpha=0.9,
                   linewidths=0, label=f"{short(name)} ({m.sum():,})")
    ax.legend(loc="best", markerscale=1.6)
    ax.set_title("coloured by issue")


def _cluster_panel(ax, xy: np.ndarray, cid: np.ndarray) -> None:
    """Rows coloured by k-means cluster (``cid``, NaN = none), each cluster's id at its median when few."""
    import matplotlib
    from matplotlib import patheffects

    ok = np.isfinite(cid)
    cmap = matplotlib.colormaps["tab20"]
    ax.scatter(xy[~ok, 0], xy[~ok, 1], s=4, c=GREY, linewidths=0)
    ax.scatter(xy[ok, 0], xy[ok, 1], s=5, c=cmap((cid[ok].astype(int) % 20) / 19.999), linewidths=0)
    clusters = np.unique(cid[ok]).astype(int)
    if len(clusters) <= MAX_LABELLED_CLUSTERS:
        for c in clusters:
            cx, cy = np.median(xy[cid == c], axis=0)
            ax.annotate(str(c), (cx, cy), fontsize=7, ha="center", va="center", color="#111",
                        path_effects=[patheffects.withStroke(linewidth=2, foreground="white")])
    ax.set_title(f"coloured by k-means cluster ({len(clusters):,} clusters, ids at their medians)")
