"""index: the kNN graph over the embeddings (FAISS), a global step.

Exact inner-product search (``IndexFlatIP``) up to ``exact_max`` rows; above it HNSW
(``IndexHNSWFlat``, M = 16, efSearch = 48; with ``approx="auto"`` on either engine while its vectors fit
``HNSW_MAX_BYTES``, IVF-PQ above) or IVF (``approx="ivf"``: ``IndexIVFFlat``, ``nlist ~ 4 sqrt(N)``,
trained on a sample, ``nprobe`` 64 lists). On GPU when a FAISS GPU build sees a device (IVF
there), else exact blockwise torch search on a CUDA device. Embeddings are L2-normalised, so inner product = cosine.

Artifact ``neighbors.parquet``: ``id``, ``rank`` (1 = nearest), ``neighbor_id``, ``cosine``,
plus ``row``/``neighbor_row`` (positions in ``samples``) for fast joins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from uimdata.rundir import RunDir, atomic_write_parquet
from uimdata.stages.base import GlobalStep, PMap, local_map

#: HNSW above ``exact_max`` rows: faster than IVF at higher recall on 2 cores (figures: docs/benchmarks.md)
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 48
#: ``approx="auto"``: HNSW (search cost N log N) while its vectors fit in this many bytes (5.6 million rows of
#: 384-d float32), IVF-PQ searched in shards above (the compressed index is what every worker can hold)
HNSW_MAX_BYTES = 8 << 30
#: lists an IVF / IVF-PQ query visits: a fixed number, so a query's cost grows as sqrt(N) (nlist ~ sqrt(N)
#: lists of ~sqrt(N) rows), not as a fixed share of the corpus (nprobe = nlist / 16 made the search N^2).
#: 64 reaches HNSW's recall@10 on 51,500 MiniLM embeddings (IVF 0.970, HNSW 0.974; docs/benchmarks.md)
IVF_NPROBE = 64
#: after an approximate search, rows whose neighbours came back far worse than the corpus's (robust z of
#: the mean cosine distance above ``REPAIR_Z``) are searched again exactly, most suspicious first, up to
#: ``REPAIR_BUDGET`` query x corpus rows (about two minutes on 2 cores): an HNSW graph over many tight,
#: separated clusters strands some queries in the wrong cluster (13 % of 400,000 synthetic rows got
#: neighbours at cosine 0.20 instead of 0.71, and were all called outliers)
REPAIR_Z = 3.0
REPAIR_BUDGET = 2e10
#: rows sampled to measure the approximate index's recall@k against an exact search (``KnnGraph.check``)
RECALL_SAMPLE = 1000


@dataclass
class KnnGraph:
    """``rows[i, j]`` is the j-th nearest neighbour of row i (-1 = none), ``cos`` its cosine."""

    rows: np.ndarray
    cos: np.ndarray
    kind: str
    #: an approximate index's check (:func:`check_and_repair`): rows searched again exactly, recall@k
    check: dict | None = None


def _gpu_count() -> int:
    import faiss

    try:
        return faiss.get_num_gpus()
    except AttributeError:
        return 0


def torch_search(emb: np.ndarray, k: int, device: str = "cuda", block: int | None = None,
                 score_bytes: float = 2e9) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k by blockwise matmul in torch (the GPU path when FAISS has no GPU
    build): queries go a block at a time against the whole matrix held on the device, in fp16 on
    CUDA (scores re-ranked in fp32 for the returned neighbours)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32)).to(device)
    # one block of scores (block x N) stays under score_bytes
    block = block or int(np.clip(score_bytes / (len(emb) * 4), 256, 16384))
    base = x.half() if device.startswith("cuda") else x
    dist = np.empty((len(emb), k), np.float32)
    nbr = np.empty((len(emb), k), np.int64)
    with torch.no_grad():
        for start in range(0, len(emb), block):
            q = base[start:start + block]
            top = torch.topk(q @ base.T, k, dim=1).indices
            exact = torch.einsum("qd,qkd->qk", x[start:start + block], x[top])  # fp32 scores
            order = torch.argsort(exact, dim=1, descending=True)
            nbr[start:start + len(q)] = torch.gather(top, 1, order).cpu().numpy()
            dist[start:start + len(q)] = torch.gather(exact, 1, order).cpu().numpy()
    return dist, nbr


def _faiss_index(emb: np.ndarray, exact_max: int, nlist: int | None, nprobe: int | None, seed: int,
                 approx: str = "hnsw", gpu: bool | None = None) -> tuple[Any, str]:
    """A FAISS inner-product index holding ``emb``: flat up to ``exact_max`` rows, HNSW (CPU) or IVF above."""
    import faiss

    n, d = emb.shape
    gpu = _gpu_count() > 0 if gpu is None else gpu
    if n <= exact_max:
        index, kind = faiss.IndexFlatIP(d), "flat"
    elif approx == "ivfpq":
        # coarse IVF + 8-bit product quantisation (d/8 sub-vectors), trained on a sample; the search
        # returns candidates that are re-ranked exactly (see ivf_search)
        nlist = nlist or int(min(65536, max(16, 2 * math.sqrt(n))))
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, _pq_m(d), 8, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        index.train(emb[rng.choice(n, size=min(n, max(64 * nlist, 65536)), replace=False)])
        index.nprobe = min(nlist, nprobe or IVF_NPROBE)
        kind = f"ivfpq{nlist},m{_pq_m(d)},nprobe{index.nprobe},rerank"
        gpu = False  # the compressed index is small: it is shipped to CPU workers
    elif approx == "hnsw" and not gpu:  # FAISS has no GPU HNSW: IVF on the GPU
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        kind = f"hnsw{HNSW_M},ef{HNSW_EF_SEARCH}"
    else:
        nlist = nlist or int(min(65536, max(16, 4 * math.sqrt(n))))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = emb[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
        index.train(sample)
        index.nprobe = min(nlist, nprobe or IVF_NPROBE)
        kind = f"ivf{nlist},nprobe{index.nprobe}"
    if gpu:
        index = faiss.index_cpu_to_all_gpus(index)
        kind += ",gpu"
    index.add(emb)
    return index, kind


def _pq_m(d: int) -> int:
    """Sub-quantizers for IVF-PQ: d/8 (48 for 384-d), lowered until it divides d."""
    m = max(1, d // 8)
    while d % m:
        m -= 1
    return m


def ivf_search(span: tuple[int, int], index_bytes: np.ndarray, emb: np.ndarray, k: int,
               rerank: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Search rows ``span`` of ``emb`` in a serialised IVF index; with ``rerank`` > 0 (IVF-PQ), take
    ``rerank * k`` candidates and re-rank them by their exact inner product. One shard of a sharded
    kNN search: pure, so that any worker (a Ray task, or this process) can run it."""
    import faiss

    index = faiss.deserialize_index(index_bytes)
    q = np.ascontiguousarray(emb[span[0]:span[1]], dtype=np.float32)
    if not rerank:
        dist, nbr = index.search(q, k)
        return dist, nbr
    _, cand = index.search(q, rerank * k)
    dist = np.empty((len(q), k), np.float32)
    nbr = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), 1024):  # a block of candidates' vectors at a time (1024 x rerank*k x d)
        c = cand[s:s + 1024]
        scores = np.einsum("qd,qcd->qc", q[s:s + 1024], emb[np.where(c >= 0, c, 0)])
        scores[c < 0] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        dist[s:s + 1024] = np.take_along_axis(scores, top, 1)
        nbr[s:s + 1024] = np.take_along_axis(c, top, 1)
    return dist, nbr


def _faiss_search(emb: np.ndarray, k: int, exact_max: int, nlist: int | None, nprobe: int | None,
                  seed: int, approx: str = "hnsw", pmap: PMap | None = None,
                  shard_rows: int = 65536) -> tuple[np.ndarray, np.ndarray, str]:
    import faiss

    index, kind = _faiss_index(emb, exact_max, nlist, nprobe, seed, approx)
    if not kind.startswith("ivf") or kind.endswith(",gpu") or (pmap is None and "pq" not in kind):
        dist, nbr = index.search(emb, k)
        return dist, nbr, kind
    # IVF on the CPU: the index (trained on a sample) is serialised and the queries searched in shards,
    # Ray tasks under --engine ray; IVF-PQ candidates are re-ranked exactly
    blob = faiss.serialize_index(index)
    del index
    spans = [(s, min(s + shard_rows, len(emb))) for s in range(0, len(emb), shard_rows)]
    parts = (pmap or local_map)(ivf_search, spans, {"index_bytes": blob, "emb": emb, "k": k,
                                                     "rerank": 4 if kind.startswith("ivfpq") else 0})
    dist = np.concatenate([p[0] for p in parts])
    nbr = np.concatenate([p[1] for p in parts])
    return dist, nbr, kind + f",{len(spans)} shards"


def cross_search(base: np.ndarray, queries: np.ndarray, k: int, exact_max: int = 20000,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest ``base`` rows of every query row by cosine (both L2-normalised):
    ``(rows, cos)``, each ``(len(queries), min(k, len(base)))``, nearest first."""
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(base))
    if k == 0 or len(queries) == 0:
        return np.zeros((len(queries), k), np.int64), np.zeros((len(queries), k), np.float32)
    # a large base is worth an approximate index only when it is queried many times
    exact = len(base) <= exact_max or len(base) * len(queries) <= 5e9
    index, _ = _faiss_index(base, len(base) if exact else exact_max, None, None, seed)
    cos, rows = index.search(queries, k)
    return rows.astype(np.int64), np.clip(cos, -1.0, 1.0).astype(np.float32)


def knn_graph(emb: np.ndarray, k: int = 10, exact_max: int = 20000, nlist: int | None = None,
              nprobe: int | None = None, seed: int = 0, device: str = "auto", approx: str = "auto",
              pmap: PMap | None = None) -> KnnGraph:
    """Each row's k nearest other rows by cosine: FAISS (its GPU build when installed), or exact
    blockwise torch search on a CUDA device when FAISS has no GPU (``device`` auto/cpu/cuda)."""
    n, d = emb.shape
    k_eff = min(k, n - 1)
    if k_eff <= 0:
        return KnnGraph(np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32), "none")
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() and _gpu_count() == 0 else "cpu"
    if device.startswith("cuda") or device.endswith(":torch"):  # "cpu:torch" runs the torch path on the CPU
        torch_device = device.removesuffix(":torch")
        dist, nbr = torch_search(emb, k_eff + 1, torch_device)
        kind = "torch-exact," + torch_device
    else:
        if approx == "auto":  # HNSW (measured faster than IVF at higher recall) while it fits one process
            approx = "hnsw" if n * d * 4 <= HNSW_MAX_BYTES else "ivfpq"
        dist, nbr, kind = _faiss_search(emb, k_eff + 1, exact_max, nlist, nprobe, seed, approx, pmap)
    check = None
    if kind != "flat" and not kind.startswith("torch-exact"):
        check = check_and_repair(emb, dist, nbr, seed)
    # drop self-matches; keep k_eff others (an exact duplicate may outrank self, so mask by id)
    self_mask = nbr == np.arange(n)[:, None]
    keep = ~self_mask
    # rows where self was not returned: drop the last column instead
    no_self = ~self_mask.any(axis=1)
    keep[no_self, -1] = False
    rows = nbr[keep].reshape(n, k_eff)
    cos = dist[keep].reshape(n, k_eff)
    return KnnGraph(rows.astype(np.int64), np.clip(cos, -1.0, 1.0).astype(np.float32), kind, check)


def _exact(emb: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest rows (inner product, self included) of ``emb[rows]``, in blocks."""
    import faiss

    dist = np.empty((len(rows), k), np.float32)
    nbr = np.empty((len(rows), k), np.int64)
    for s in range(0, len(rows), 4096):
        dist[s:s + 4096], nbr[s:s + 4096] = faiss.knn(emb[rows[s:s + 4096]], emb, k,
                                                      metric=faiss.METRIC_INNER_PRODUCT)
    return dist, nbr


def check_and_repair(emb: np.ndarray, dist: np.ndarray, nbr: np.ndarray, seed: int = 0) -> dict:
    """Repair an approximate search in place and measure it. Rows whose mean cosine distance to what the
    index returned is ``REPAIR_Z`` robust SDs above the corpus's are searched again exactly (most
    suspicious first, within ``REPAIR_BUDGET``): a truly isolated row stays isolated, a row the index
    stranded gets its real neighbours. Then recall@k on ``RECALL_SAMPLE`` random rows against an exact
    search. Returns ``suspect_rows``, ``repaired_rows``, ``recall_at_k`` and ``sampled_rows``."""
    from uimdata.stats import robust_z

    n, k = nbr.shape
    found = np.where(nbr >= 0, dist, -1.0).mean(axis=1)
    z = robust_z(1.0 - found)
    suspects = np.flatnonzero(z > REPAIR_Z)
    fix = suspects[np.argsort(-z[suspects], kind="stable")][:int(REPAIR_BUDGET // n)]
    if len(fix):
        dist[fix], nbr[fix] = _exact(emb, fix, k)
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, RECALL_SAMPLE), replace=False))
    _, truth = _exact(emb, sample, k)
    recall = float(np.mean([len((set(a) & set(b)) - {r}) / max(1, len(set(b) - {r}))
                            for r, a, b in zip(sample.tolist(), nbr[sample].tolist(), truth.tolist())]))
    return {"suspect_rows": int(len(suspects)), "repaired_rows": int(len(fix)),
            "recall_at_k": round(recall, 4), "sampled_rows": int(len(sample))}


def graph_table(graph: KnnGraph, ids: pa.Array) -> pa.Table:
    n, k = graph.rows.shape
    row = np.repeat(np.arange(n), k)
    nb = graph.rows.reshape(-1)
    valid = nb >= 0
    row, nb, cos = row[valid], nb[valid], graph.cos.reshape(-1)[valid]
    rank = np.tile(np.arange(1, k + 1), n)[valid]
    return pa.table({
        "id": ids.take(pa.array(row)),
        "rank": pa.array(rank, pa.int16()),
        "neighbor_id": ids.take(pa.array(nb)),
        "cosine": pa.array(cos, pa.float32()),
        "row": pa.array(row, pa.int64()),
        "neighbor_row": pa.array(nb, pa.int64()),
    })


def read_graph(run: RunDir, n: int) -> KnnGraph:
    # the numbers only: the id columns would hold two strings per edge (~300 MB at 400,000 rows x 10)
    t = run.read_neighbors(columns=["row", "rank", "neighbor_row", "cosine"])
    row = t.column("row").to_numpy()
    k = int(np.bincount(row, minlength=n).max()) if len(row) else 0
    rows = np.full((n, k), -1, np.int64)
    cos = np.full((n, k), -1.0, np.float32)
    rank = t.column("rank").to_numpy().astype(np.int64) - 1
    rows[row, rank] = t.column("neighbor_row").to_numpy()
    cos[row, rank] = t.column("cosine").to_numpy()
    return KnnGraph(rows, cos, "read")


class KnnIndex(GlobalStep):
    name: ClassVar[str] = "index"

    def __init__(self, k: int = 10, exact_max: int = 20000, nlist: int | None = None,
                 nprobe: int | None = None, device: str = "auto", approx: str = "auto") -> None:
        self.k, self.exact_max, self.nlist, self.nprobe = k, exact_max, nlist, nprobe
        self.device, self.approx = device, approx
        self.kind = ""
        self.check: dict | None = None

    def run(self, run: RunDir, pmap: PMap | None = None) -> None:
        """Write ``neighbors.parquet`` from the run's embeddings; ``pmap``: the executor's parallel map for
        the sharded IVF / IVF-PQ search (None: in this process)."""
        emb = run.read_embeddings()
        ids = run.read_samples(columns=["id"]).column("id").combine_chunks()
        graph = knn_graph(emb, self.k, self.exact_max, self.nlist, self.nprobe, device=self.device,
                          approx=self.approx, pmap=pmap)
        self.kind, self.check = graph.kind, graph.check
        atomic_write_parquet(graph_table(graph, ids), run.neighbors)
