"""long_tail: under-represented rows: rare classes and rare regions of the embedding space.

* rare classes: a class is in the tail when it holds fewer than ``class_ratio`` x the median
  class size (the summary also states the head: the largest classes that together hold 80 % of
  the labelled rows);
* rare regions: FAISS k-means (``k`` ~ sqrt(N / 2)) over the embeddings; a cluster is rare when it
  holds fewer than ``cluster_ratio`` x the median cluster size. Every row gets ``cluster_id`` and
  ``cluster_size``, and the table ``clusters`` describes each cluster (size, density = mean
  cosine to the row's neighbours, dominant label and its share, rare or not).

A tail row is not a defect: its reason says what it is under-represented by, so that training
can up-weight it rather than drop it. Score = min(class ratio, cluster ratio) / (2 x threshold),
clipped to [0, 1], so flagged <=> score < 0.5.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table
from uimdata.knn import neighbour_mean
from uimdata.stages.kmeans import kmeans_assign

if TYPE_CHECKING:
    import polars as pl


@register
class LongTailDetector(Detector):
    issue: ClassVar[str] = "long_tail"
    description: ClassVar[str] = ("Under-represented rows (not defects): members of rare classes and of rare "
                                  "regions of the embedding space (small k-means clusters).")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"cluster_id": pa.int64(), "cluster_size": pa.int64()}
    defect: ClassVar[bool] = False
    curate_actions: ClassVar[tuple[str, ...]] = ("reweight", "keep", "drop")
    curate_rule: ClassVar[dict[str, Any]] = {"action": "reweight", "max_weight": 5.0}
    #: rare classes weighted at most 2x by default: measured (docs/benchmarks.md, tail-aware curation)
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {"conservative": {"action": "keep"},
                                                            "default": {"action": "reweight", "max_weight": 2.0}}
    reweight_by_frequency: ClassVar[bool] = True
    example_columns: ClassVar[tuple[tuple[str, str], ...]] = (("cluster", "cluster_id"),
                                                              ("cluster size", "cluster_size"))

    @classmethod
    def summary_line(cls, summary: dict[str, Any]) -> str | None:
        """The tail classes (and the rule that made them) and the rare clusters."""
        return (f"long tail: tail classes {summary.get('tail_classes')} ({summary.get('tail_rule')}); "
                f"{len(summary.get('rare_clusters', []))} rare clusters of {summary.get('n_clusters')}")

    @classmethod
    def frequency_weights(cls, flags: pl.DataFrame, labels: list | None, kept: np.ndarray,
                          max_weight: float) -> np.ndarray:
        """Inverse frequency relative to the median, for classes and for clusters; the larger, capped at
        ``max_weight``. Class sizes are counted on the ``kept`` rows with their curated ``labels``, so a class
        that lost rows to other decisions gets its weight back."""
        import polars as pl

        w = np.ones(flags.height)
        if labels is not None:
            lab = pl.Series("label", labels, dtype=pl.Utf8)
            counts = lab.filter(pl.Series(kept)).drop_nulls().value_counts()
            med = float(np.median(counts["count"].to_numpy())) if counts.height else 1.0
            size = lab.replace_strict(counts["label"], counts["count"], default=None).to_numpy()
            w = np.maximum(w, np.where(np.isnan(size.astype(float)), 1.0, med / np.maximum(size.astype(float), 1)))
        if "cluster_size" in flags.columns:
            cs = flags["cluster_size"].fill_null(0).to_numpy().astype(float)
            med = float(np.median(cs[cs > 0])) if (cs > 0).any() else 1.0
            w = np.maximum(w, np.where(cs > 0, med / np.maximum(cs, 1), 1.0))
        return np.clip(w, 1.0, max_weight)

    def __init__(self, class_ratio: float = 0.25, cluster_ratio: float = 0.25, n_clusters: int | None = None,
                 seed: int = 0) -> None:
        """``n_clusters``: override k (default: the scan's shared k-means, k ~ sqrt(N / 2))."""
        self.class_ratio = class_ratio
        self.cluster_ratio = cluster_ratio
        self.n_clusters = n_clusters
        self.seed = seed

    def detect(self, ctx: Any) -> DetectorResult:
        n = ctx.n
        if self.n_clusters:
            assign = kmeans_assign(ctx.embeddings, self.n_clusters, self.seed, pmap=ctx.pmap, rows=ctx.embedding_rows)
        else:
            assign = ctx.cluster_ids  # shared with the outlier detector
        sizes = np.bincount(assign, minlength=int(assign.max()) + 1)
        nonempty = sizes[sizes > 0]
        med_cluster = float(np.median(nonempty))
        cluster_ratio = sizes[assign] / med_cluster
        ratio = cluster_ratio / self.cluster_ratio
        has_labels = "label" in ctx.samples.column_names
        tail_classes: list[str] = []
        head_classes: list[str] = []
        class_ratio = np.full(n, np.inf)
        if has_labels:
            y, classes = ctx.label_codes, ctx.classes
            counts = np.bincount(y[y >= 0], minlength=len(classes))
            med_class = float(np.median(counts[counts > 0])) if (counts > 0).any() else 1.0
            order = np.argsort(-counts)
            cum = np.cumsum(counts[order]) / max(counts.sum(), 1)
            head_classes = [classes[i] for i in order[:int(np.searchsorted(cum, 0.8) + 1)]]
            tail = (counts > 0) & (counts < self.class_ratio * med_class)
            tail_classes = [classes[i] for i in np.flatnonzero(tail)]
            lab = y >= 0
            class_ratio[lab] = counts[y[lab]] / med_class
            ratio = np.minimum(ratio, class_ratio / self.class_ratio)
        flagged = ratio < 1.0
        score = np.clip(ratio / 2.0, 0.0, 1.0)

        g = ctx.graph
        row_density = neighbour_mean(g.rows, g.cos)  # mean cosine to the present neighbours, 0 without
        labels = ctx.samples.column("label").to_pylist() if has_labels else [None] * n
        reasons = []
        for i in range(n):
            parts = []
            if has_labels and class_ratio[i] < self.class_ratio:
                parts.append(f"rare class '{labels[i]}' ({class_ratio[i]:.0%} of the median class size)")
            if cluster_ratio[i] < self.cluster_ratio:
                parts.append(f"rare region: cluster {assign[i]} holds {sizes[assign[i]]} rows "
                             f"({cluster_ratio[i]:.0%} of the median cluster)")
            reasons.append("under-represented: " + "; ".join(parts) if parts else "")
        table = result_table(self.issue, ctx.ids, flagged, score, reasons,
                             {"cluster_id": pa.array(assign), "cluster_size": pa.array(sizes[assign])})
        clusters = _cluster_table(assign, sizes, row_density, labels, med_cluster, self.cluster_ratio)
        rare_clusters = clusters.filter(pa.compute.field("is_rare")).column("cluster_id").to_pylist()
        summary = {"n_clusters": int((sizes > 0).sum()), "median_cluster_size": med_cluster,
                   "rare_clusters": rare_clusters[:50], "tail_classes": tail_classes, "head_classes": head_classes,
                   "head_rule": "largest classes holding 80% of labelled rows",
                   "tail_rule": f"classes below {self.class_ratio:.0%} of the median class size",
                   "class_ratio": self.class_ratio, "cluster_ratio": self.cluster_ratio}  # the thresholds used
        return DetectorResult(self.issue, table, summary, tables={"clusters": clusters})


def _cluster_table(assign: np.ndarray, sizes: np.ndarray, density: np.ndarray, labels: list,
                   med: float, ratio: float) -> pa.Table:
    import polars as pl

    df = pl.DataFrame({"cluster_id": assign, "density": density,
                       "label": pl.Series(labels, dtype=pl.Utf8)})
    agg = df.group_by("cluster_id").agg(
        pl.len().alias("size"),
        pl.col("density").mean().alias("density"),
        pl.col("label").drop_nulls().mode().sort().first().alias("top_label"),  # ties: the first by name
    )
    top_share = df.join(agg.select("cluster_id", "top_label"), on="cluster_id").group_by("cluster_id").agg(
        (pl.col("label") == pl.col("top_label")).mean().alias("top_label_share"))
    out = agg.join(top_share, on="cluster_id").with_columns(
        (pl.col("size") < ratio * med).alias("is_rare")).sort("cluster_id")
    return out.select("cluster_id", "size", "density", "top_label", "top_label_share", "is_rare").to_arrow()
