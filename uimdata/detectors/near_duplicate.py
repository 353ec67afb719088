"""near_duplicate: near-copies (small edits) and semantic duplicates, grouped into clusters.

Candidates come from two places: kNN-graph pairs above ``candidate_cosine`` and MinHash-LSH
pairs over character 5-gram shingles (datasketch). Each candidate pair is verified:

* lexical near-copy: normalised edit similarity (rapidfuzz Indel ratio) >= ``lexical``, or
  >= ``lexical_with_cosine`` when the embeddings agree (cosine >= ``candidate_cosine``);
* semantic duplicate: cosine >= ``semantic``.

Accepted pairs (and exact copies) are joined into connected components = ``duplicate_cluster``;
the earliest row of a cluster is kept and the others are flagged with ``near_duplicate_of``.
Exact copies belong to the cluster but are flagged by ``exact_duplicate``, not here.
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from rapidfuzz.distance import Indel
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table
from uimdata.stages.ingest import normalize

SHINGLE = 5
MAX_SHINGLE_CHARS = 4000


def _crc32(b: bytes) -> int:
    return zlib.crc32(b)


def minhash_pairs(norm: list[str], rows: np.ndarray, threshold: float, num_perm: int) -> set[tuple[int, int]]:
    """Candidate pairs (row_a < row_b) whose shingle sets have estimated Jaccard >= threshold."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    pairs: set[tuple[int, int]] = set()
    shingle_sets = []
    for r in rows:
        t = norm[r][:MAX_SHINGLE_CHARS]
        sh = {t[i:i + SHINGLE].encode("utf-8", "surrogatepass") for i in range(max(1, len(t) - SHINGLE + 1))}
        shingle_sets.append(sh)
    hashes = MinHash.bulk(shingle_sets, num_perm=num_perm, hashfunc=_crc32, seed=1)
    with lsh.insertion_session() as session:
        for r, m in zip(rows, hashes):
            session.insert(int(r), m, check_duplication=False)
    for r, m in zip(rows, hashes):
        for other in lsh.query(m):
            if other != r:
                pairs.add((min(r, other), max(r, other)))
    return pairs


@register
class NearDuplicateDetector(Detector):
    issue: ClassVar[str] = "near_duplicate"
    description: ClassVar[str] = ("Copies with small edits (typos, a word added or dropped, punctuation) and "
                                  "semantic duplicates (embedding cosine above a high threshold), grouped into "
                                  "clusters; the earliest member of each cluster is kept.")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"near_duplicate_of": pa.string(),
                                                       "duplicate_cluster": pa.int64()}
    requires: ClassVar[tuple[str, ...]] = ("samples", "neighbors")

    def __init__(self, candidate_cosine: float = 0.85, semantic: float = 0.97, lexical: float = 0.90,
                 lexical_with_cosine: float = 0.80, minhash_threshold: float = 0.5, num_perm: int = 64,
                 use_minhash: bool = True) -> None:
        self.candidate_cosine = candidate_cosine
        self.semantic = semantic
        self.lexical = lexical
        self.lexical_with_cosine = lexical_with_cosine
        self.minhash_threshold = minhash_threshold
        self.num_perm = num_perm
        self.use_minhash = use_minhash

    def detect(self, ctx: Any) -> DetectorResult:
        n = ctx.n
        hashes = ctx.samples.column("text_hash").to_numpy(zero_copy_only=False)
        # representatives: the first row of each exact-duplicate group (others map onto it)
        _, first_idx, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        rep = first_idx[inverse]
        norm = [normalize(t) for t in ctx.texts]
        nonempty = np.array([bool(t) for t in norm])
        is_rep = (rep == np.arange(n)) & nonempty

        graph = ctx.graph
        cos_of: dict[tuple[int, int], float] = {}
        if graph.rows.shape[1]:
            a = np.repeat(np.arange(n), graph.rows.shape[1])
            b = graph.rows.reshape(-1)
            c = graph.cos.reshape(-1)
            ok = (b >= 0) & (c >= self.candidate_cosine)
            a, b, c = rep[a[ok]], rep[b[ok]], c[ok]
            for x, y, cc in zip(a.tolist(), b.tolist(), c.tolist()):
                if x != y and is_rep[x] and is_rep[y]:
                    key = (min(x, y), max(x, y))
                    cos_of[key] = max(cos_of.get(key, -1.0), cc)
        candidates = set(cos_of)
        if self.use_minhash:
            candidates |= minhash_pairs(norm, np.flatnonzero(is_rep), self.minhash_threshold, self.num_perm)

        emb = ctx.embeddings if candidates else None
        acc_a, acc_b, acc_sim, acc_why = [], [], [], []
        for x, y in sorted(candidates):
            cos = cos_of.get((x, y))
            if cos is None:
                cos = float(emb[x] @ emb[y])
            lex = Indel.normalized_similarity(norm[x], norm[y])
            if lex >= self.lexical or (lex >= self.lexical_with_cosine and cos >= self.candidate_cosine):
                why = f"near-copy: {lex:.0%} of characters shared, cosine {cos:.3f}"
            elif cos >= self.semantic:
                why = f"semantic duplicate: cosine {cos:.3f}, {lex:.0%} of characters shared"
            else:
                continue
            acc_a.append(x)
            acc_b.append(y)
            acc_sim.append(max(lex, cos))
            acc_why.append(why)

        # clusters over accepted pairs plus exact copies (row -> its representative)
        rows_all = np.arange(n)
        src = np.concatenate([np.asarray(acc_a, np.int64), rows_all])
        dst = np.concatenate([np.asarray(acc_b, np.int64), rep])
        adj = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
        _, comp = connected_components(adj, directed=False)
        sizes = np.bincount(comp)
        # kept member = earliest row of the cluster
        kept = np.full(sizes.shape[0], n, np.int64)
        np.minimum.at(kept, comp, rows_all)
        in_cluster = sizes[comp] > 1
        flagged = in_cluster & is_rep & (kept[comp] != rows_all)

        best_sim = np.zeros(n)
        best_why: list[str | None] = [None] * n
        for x, y, s, w in zip(acc_a, acc_b, acc_sim, acc_why):
            for r in (x, y):
                if s > best_sim[r]:
                    best_sim[r] = s
                    best_why[r] = w
        nn_cos = graph.cos[:, 0] if graph.cos.shape[1] else np.full(n, -1.0)
        score = np.where(flagged, 1.0 - best_sim, 1.0 - np.maximum(nn_cos, 0.0))
        ids = ctx.ids
        kept_ids = ids.take(pa.array(kept[comp])).to_pylist()
        reasons = [f"{w} (cluster kept member {k})" if f else None
                   for w, k, f in zip(best_why, kept_ids, flagged)]
        # cluster ids: dense numbering of clusters with > 1 member, in order of their kept row
        cluster_id = np.full(n, -1, np.int64)
        multi = np.flatnonzero(sizes > 1)
        order = multi[np.argsort(kept[multi])]
        remap = np.full(sizes.shape[0], -1, np.int64)
        remap[order] = np.arange(len(order))
        cluster_id[in_cluster] = remap[comp[in_cluster]]
        extras = {
            "near_duplicate_of": pa.array([k if f else None for k, f in zip(kept_ids, flagged)], pa.string()),
            "duplicate_cluster": pa.array(np.where(in_cluster, cluster_id, 0), pa.int64(), mask=~in_cluster),
        }
        table = result_table(self.issue, ids, flagged, score, reasons, extras)
        summary = {"clusters": len(order), "candidate_pairs": len(candidates), "accepted_pairs": len(acc_a)}
        return DetectorResult(self.issue, table, summary)
