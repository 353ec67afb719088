"""k-means over the embeddings: spherical FAISS k-means trained on a sample, every row then assigned
to its nearest centroid in shards (through an executor's :class:`~uimdata.stages.base.PMap`).

The scan's shared clustering (``ScanContext.cluster_ids``, read by the outlier and long_tail
detectors) uses :func:`default_k` clusters; ``long_tail --n-clusters`` picks its own k.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uimdata.stages.base import PMap, local_map


def default_k(n: int) -> int:
    """k ~ sqrt(N / 2), at most 4096, with at least 39 rows per centroid (FAISS' minimum); 1 = no clustering."""
    k = int(np.clip(round(np.sqrt(n / 2)), 1, 4096))
    return max(1, min(k, n // 39))


def assign_shard(span: tuple[int, int], centroids: np.ndarray, emb: Any) -> np.ndarray:
    """Nearest centroid (inner product) of rows ``span`` of ``emb`` (the matrix, or
    ``rundir.EmbeddingRows``): one shard of the assignment."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    return index.search(np.ascontiguousarray(emb[span[0]:span[1]], dtype=np.float32), 1)[1][:, 0].astype(np.int64)


def kmeans_assign(x: np.ndarray, k: int, seed: int = 0, niter: int = 20, pmap: PMap | None = None,
                  shard_rows: int = 262_144, rows: Any = None) -> np.ndarray:
    """Spherical FAISS k-means trained on a sample (at most 256 rows per centroid), then every row
    assigned to its nearest centroid in shards (Ray tasks when ``pmap`` is the Ray executor's). ``rows``:
    the same rows where a task can read them itself (``rundir.EmbeddingRows``), handed to a ``pmap``
    that runs elsewhere (``pmap.remote``) instead of the matrix."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False,
                      max_points_per_centroid=256, gpu=faiss.get_num_gpus() > 0 if hasattr(faiss, "get_num_gpus") else False)
    km.train(x)
    spans = [(s, min(s + shard_rows, len(x))) for s in range(0, len(x), shard_rows)]
    remote = rows is not None and getattr(pmap, "remote", False)
    shared = {"centroids": np.asarray(km.centroids, np.float32), "emb": rows if remote else x}
    parts = (pmap or local_map)(assign_shard, spans, shared)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)
