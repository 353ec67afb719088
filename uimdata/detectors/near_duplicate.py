"""near_duplicate: near-copies (small edits) and semantic duplicates, grouped into clusters.

Cosine thresholds are relative to the corpus: with ``d`` = the median distance (1 - cosine) of a
row to its nearest neighbour, a radius ``r`` means cosine >= 1 - r * d (Datalab's near-duplicate
check uses the same idea with r = 0.13). For all-MiniLM-L6-v2 on dictionary glosses d ~ 0.31.

Candidates come from two places: kNN-graph pairs within ``copy_radius`` and MinHash-LSH pairs over
character 5-gram shingles (:func:`signatures`; datasketch's band and row choice). Pairs of long texts
are screened by their MinHash estimate first (:meth:`NearDuplicateDetector._screen`), so the work per
pair stays bounded among templated documents. Each remaining pair is verified with its character
similarity (rapidfuzz Indel ratio on normalised text) and its content-word edits
(:func:`content_edits`: dissimilar word swaps, content words added or dropped; typos, inflections,
stopwords and punctuation are free):

* near-copy: similarity >= ``lexical`` and either no content-word edit at all, or at most
  ``max_content_edits`` of them with the embeddings within ``copy_radius`` (one more within
  ``close_radius``). Templated but different texts ("east side" / "west side") fail here;
* semantic duplicate: embeddings within ``semantic_radius``, whatever the wording.

Rows the ``corrupted`` detector flagged (it runs first) join no cluster: a broken copy of a row is
``corrupted``, and an original is never kept behind a broken copy of itself.
Accepted pairs (and exact copies) are joined into connected components = ``duplicate_cluster``;
the earliest row of a cluster is kept and the others are flagged with ``near_duplicate_of``.
Exact copies belong to the cluster but are flagged by ``exact_duplicate``, not here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
from rapidfuzz.distance import OSA, Indel, Levenshtein
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table
from uimdata.detectors.minhash import estimated_jaccard, minhash_pairs, signatures
from uimdata.stages.ingest import normalize

if TYPE_CHECKING:
    import polars as pl

_TOKEN = re.compile(r"\w+")
#: candidate pairs are gathered and verified this many at a time (bounded temporaries)
BLOCK = 65536
_DIGIT = re.compile(r"\d")
#: words whose insertion, deletion or swap does not change what a text says
STOPWORDS = frozenset(
    "a an the of to in on at by for with from as or and but nor is are was were be been being it its "
    "this that these those which who whom very so such than then there here also too just".split())


def _is_typo(x: str, y: str) -> bool:
    """A slip of the keyboard: one character inserted, dropped, replaced or two swapped (two slips in a
    word of 8+ letters that keeps 85 % of its characters). "southeast" / "southwest", "reverent" /
    "irreverent" and a changed number ("1850" / "1870") are different words."""
    if _DIGIT.search(x) or _DIGIT.search(y):
        return False
    short, long_ = sorted((x, y), key=len)
    if len(long_) - len(short) >= 2 and (long_.startswith(short) or long_.endswith(short)):
        return False  # an affix: "correct" / "incorrect", "palatable" / "unpalatable"
    d = OSA.distance(x, y, score_cutoff=2)
    return d <= 1 or (d == 2 and min(len(x), len(y)) >= 8 and Indel.normalized_similarity(x, y) >= 0.85)


def _minor(w: str) -> bool:
    return w in STOPWORDS or len(w) == 1


def content_edits(a: str, b: str, limit: int | None = None) -> int:
    """Word-level edits between two texts that change content: a word replaced by a different word
    (not a typo or an inflection of it), or a content word inserted or deleted. Templated texts
    that differ in their key words ("east"/"west", "1850s"/"1870s") count >= 2; a typo, a dropped
    article or added punctuation count 0. Symmetric: the cheaper of the two alignments counts.

    ``limit``: the caller only needs to know whether the count exceeds it, so counting stops at
    ``limit + 1`` (bounded work on long documents that differ in many places)."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    first = _edits(ta, tb, limit)
    return min(first, _edits(tb, ta, first if limit is None else min(first, limit)))


def _edits(ta: list[str], tb: list[str], limit: int | None = None) -> int:
    edits = 0
    for op in Levenshtein.opcodes(ta, tb):
        if op.tag == "equal":
            continue
        sa, sb = ta[op.src_start:op.src_end], list(tb[op.dest_start:op.dest_end])
        # pair each word with a typo of it on the other side; what is left was swapped, added or dropped
        left = []
        for x in sa:
            j = next((j for j, y in enumerate(sb) if _is_typo(x, y)), None)
            if j is None:
                left.append(x)
            else:
                sb.pop(j)
        for k in range(max(len(left), len(sb))):
            x = left[k] if k < len(left) else None
            y = sb[k] if k < len(sb) else None
            if not ((x is None or _minor(x)) and (y is None or _minor(y))):
                edits += 1
        if limit is not None and edits > limit:
            return edits
    return edits


@register
class NearDuplicateDetector(Detector):
    issue: ClassVar[str] = "near_duplicate"
    description: ClassVar[str] = ("Copies with small edits (typos, a word added or dropped, punctuation) and "
                                  "semantic duplicates (embedding cosine above a high threshold), grouped into "
                                  "clusters; the earliest member of each cluster is kept.")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"near_duplicate_of": pa.string(),
                                                       "duplicate_cluster": pa.int64()}
    duplicate: ClassVar[bool] = True
    curate_rule: ClassVar[dict[str, Any]] = {"action": "drop", "keep": "first", "per_label": True}
    #: measured: dropping natural near duplicates cost more accuracy than the planted ones did
    #: (docs/benchmarks.md, tail-aware curation)
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {"default": {"action": "keep"}}
    kept_column: ClassVar[str | None] = "near_duplicate_of"
    #: a corrupted copy of a row is ``corrupted``, not a near duplicate: rows ``corrupted`` flagged join no
    #: cluster (so an original is never kept behind a broken copy of itself)
    defer_to: ClassVar[tuple[str, ...]] = ("corrupted",)

    @classmethod
    def duplicate_links(cls, flags: pl.DataFrame) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Each member of a ``duplicate_cluster`` linked to the cluster's first row; the flagged members are
        the redundant rows."""
        if "duplicate_cluster" not in flags.columns:
            return [], np.zeros(flags.height, bool)
        cluster = flags["duplicate_cluster"]
        first: dict[int, int] = {}
        links = [(j, first.setdefault(c, j)) for j, c in enumerate(cluster.to_list()) if c is not None]
        return links, flags["is_near_duplicate_issue"].fill_null(False).to_numpy() & cluster.is_not_null().to_numpy()

    def __init__(self, copy_radius: float = 0.65, close_radius: float = 0.16, semantic_radius: float = 0.10,
                 lexical: float = 0.85, max_content_edits: int = 1, minhash_threshold: float = 0.5,
                 num_perm: int = 64, use_minhash: bool = True, long_pair_chars: int = 500,
                 screen_jaccard: float = 0.5) -> None:
        self.copy_radius = copy_radius
        self.close_radius = close_radius
        self.semantic_radius = semantic_radius
        self.lexical = lexical
        self.max_content_edits = max_content_edits
        self.minhash_threshold = minhash_threshold
        self.num_perm = num_perm
        self.use_minhash = use_minhash
        #: pairs of texts this long (normalised) are screened by their MinHash estimate first (:meth:`_screen`)
        self.long_pair_chars = long_pair_chars
        self.screen_jaccard = screen_jaccard

    def thresholds(self, nn_cos: np.ndarray) -> tuple[float, float, float]:
        """Cosine thresholds scaled by the corpus' median nearest-neighbour distance, so that they
        mean the same for a model whose cosines crowd near 1 as for one whose cosines spread out."""
        d = float(np.median(1.0 - nn_cos)) if len(nn_cos) else 0.3
        d = min(max(d, 1e-3), 1.0)
        return 1 - self.copy_radius * d, 1 - self.close_radius * d, 1 - self.semantic_radius * d

    def detect(self, ctx: Any) -> DetectorResult:
        n = ctx.n
        norm = [normalize(t) for t in ctx.texts]
        rep, is_rep, nonempty = _representatives(ctx.samples.column("text_hash").to_numpy(zero_copy_only=False),
                                                 norm)
        broken = ctx.flagged("corrupted")
        linkable = nonempty.copy()
        if broken is not None:  # corrupted rows (and their exact copies) join no cluster
            is_rep &= ~broken[rep]
            linkable &= ~broken[rep]
        graph = ctx.graph
        nn_cos = graph.cos[:, 0] if graph.cos.shape[1] else np.zeros(0, np.float32)
        cuts = self.thresholds(nn_cos[is_rep] if len(nn_cos) else nn_cos)
        g_key, g_cos = _graph_keys(graph, rep, is_rep, cuts[0])
        reps = np.flatnonzero(is_rep)
        sig = signatures(norm, reps, self.num_perm) if self.use_minhash else None
        m_pairs = (minhash_pairs(norm, reps, self.minhash_threshold, self.num_perm, sig=sig) if sig is not None
                   else np.zeros((0, 2), np.int64))
        # candidates: the union of both, as int64 keys (a * n + b), sorted; the kNN edge's cosine where there
        # is one, else the embeddings' dot product
        key = np.union1d(g_key, m_pairs[:, 0] * n + m_pairs[:, 1])
        pairs = np.stack([key // max(n, 1), key % max(n, 1)], axis=1)
        cos = np.full(len(key), np.nan)
        at = np.searchsorted(key, g_key)
        cos[at] = g_cos
        missing = np.flatnonzero(np.isnan(cos))
        if len(missing):
            emb = ctx.embeddings
            for s in range(0, len(missing), BLOCK):  # two gathered blocks of BLOCK rows (100 MB at d=384)
                part = missing[s:s + BLOCK]
                cos[part] = np.einsum("ij,ij->i", emb[pairs[part, 0]], emb[pairs[part, 1]])
        screened = self._screen(norm, reps, sig, pairs, cos, cuts)
        accepted = []
        todo = np.flatnonzero(~screened)
        for s in range(0, len(todo), BLOCK):  # a slice at a time: Python lists of a bounded size
            part = todo[s:s + BLOCK]
            for (x, y), c in zip(pairs[part].tolist(), cos[part].tolist()):
                verdict = self.verify(norm[x], norm[y], c, cuts)
                if verdict is not None:
                    accepted.append((x, y, *verdict))
        comp, kept = _clusters(n, accepted, rep, linkable)
        table, clusters = self._result(ctx, comp, kept, is_rep, accepted, graph)
        summary = {"clusters": clusters, "candidate_pairs": len(key), "accepted_pairs": len(accepted),
                   "screened_pairs": int(screened.sum()),
                   "corrupted_rows_left_out": 0 if broken is None else int(broken.sum())}
        return DetectorResult(self.issue, table, summary)

    def _screen(self, norm: list[str], reps: np.ndarray, sig: np.ndarray | None, pairs: np.ndarray,
                cos: np.ndarray, cuts: tuple[float, float, float]) -> np.ndarray:
        """Candidate pairs settled without a character comparison, a heuristic that bounds the work per
        pair on long documents: below the semantic cut a pair must share ``lexical`` of its characters,
        and two texts of ``long_pair_chars`` or more characters whose MinHash estimate of shingle Jaccard
        is under ``screen_jaccard`` rarely do (a copy with a typo every s characters keeps about
        (s - 5) / (s + 5) of its 5-grams: at 0.5, 2 of 97 accepted copies with a typo every 20 characters
        are lost and 2 of 74 with one every 15; docs/detectors.md). Short texts, where a typo moves a
        large share of the shingles, are always compared."""
        out = np.zeros(len(pairs), bool)
        if sig is None or not len(pairs):
            return out
        lengths = np.fromiter((len(t) for t in norm), np.int64, len(norm))
        long_ = (np.minimum(lengths[pairs[:, 0]], lengths[pairs[:, 1]]) >= self.long_pair_chars) & (cos < cuts[2])
        if not long_.any():
            return out
        pos = np.full(len(norm), -1, np.int64)
        pos[reps] = np.arange(len(reps))
        est = estimated_jaccard(sig, pos[pairs[long_, 0]], pos[pairs[long_, 1]])
        out[long_] = est < self.screen_jaccard
        return out

    def verify(self, a: str, b: str, cos: float, cuts: tuple[float, float, float]) -> tuple[float, str] | None:
        """(similarity, reason) when the normalised texts ``a`` and ``b`` (embedding cosine ``cos``) are
        near-copies or semantic duplicates, else None. Bounded work per pair: below the semantic cut the
        length ratio caps the similarity (2 min / (la + lb)), the Indel computation stops as soon as it
        cannot reach ``lexical``, and content-word edits are counted only up to what is allowed."""
        copy_cos, close_cos, semantic_cos = cuts
        if cos < semantic_cos:
            la, lb = len(a), len(b)
            if 2 * min(la, lb) < self.lexical * (la + lb):
                return None
            lex = Indel.normalized_similarity(a, b, score_cutoff=self.lexical)
            if lex < self.lexical:
                return None
        else:
            lex = Indel.normalized_similarity(a, b)
        # typos, punctuation and stopwords only: a copy whatever the embedding says
        allowed = -1 if cos < copy_cos else self.max_content_edits + (1 if cos >= close_cos else 0)
        edits = content_edits(a, b, limit=max(allowed, 0))
        if lex >= self.lexical and (edits == 0 or edits <= allowed):
            why = f"near-copy: {lex:.0%} of characters shared, {edits} content-word edit(s), cosine {cos:.3f}"
        elif cos >= semantic_cos and edits > 0:
            why = f"semantic duplicate: cosine {cos:.3f}, {lex:.0%} of characters shared"
        elif cos >= semantic_cos:
            why = f"near-copy: same words, cosine {cos:.3f}"
        else:
            return None
        return max(lex, cos), why

    def _result(self, ctx: Any, comp: np.ndarray, kept: np.ndarray, is_rep: np.ndarray,
                accepted: list[tuple[int, int, float, str]], graph: Any) -> tuple[pa.Table, int]:
        """Per-row flags, scores, reasons, ``near_duplicate_of`` and ``duplicate_cluster``; and the number
        of clusters with more than one member."""
        n = ctx.n
        rows_all = np.arange(n)
        sizes = np.bincount(comp)
        in_cluster = sizes[comp] > 1
        flagged = in_cluster & is_rep & (kept[comp] != rows_all)
        best_sim = np.zeros(n)
        best_why: list[str | None] = [None] * n
        for x, y, s, w in accepted:
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
        return result_table(self.issue, ids, flagged, score, reasons, extras), len(order)


def _representatives(hashes: np.ndarray, norm: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rep``: the first row of each row's exact-duplicate group (others map onto it); ``is_rep``: the
    row is its group's representative and not empty; ``nonempty``: the normalised text is not empty."""
    _, first_idx, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    rep = first_idx[inverse]
    nonempty = np.array([bool(t) for t in norm], dtype=bool)
    return rep, (rep == np.arange(len(norm))) & nonempty, nonempty


def _graph_keys(graph: Any, rep: np.ndarray, is_rep: np.ndarray, min_cos: float) -> tuple[np.ndarray, np.ndarray]:
    """Representative pairs (a < b) joined by a kNN edge of cosine >= ``min_cos``, as sorted distinct
    int64 keys a * n + b, and each pair's best cosine (float64). Numpy throughout: no Python object per
    edge."""
    n = len(rep)
    k = graph.rows.shape[1]
    if not k or not n:
        return np.zeros(0, np.int64), np.zeros(0)
    a = np.repeat(np.arange(n, dtype=np.int64), k)
    b = graph.rows.reshape(-1).astype(np.int64)
    c = graph.cos.reshape(-1)
    ok = (b >= 0) & (c >= min_cos)
    a, b, c = rep[a[ok]], rep[b[ok]], c[ok].astype(np.float64)
    ok = (a != b) & is_rep[a] & is_rep[b]
    a, b, c = a[ok], b[ok], c[ok]
    key = np.minimum(a, b) * n + np.maximum(a, b)
    order = np.lexsort((-c, key))  # by pair, its best cosine first
    key, c = key[order], c[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    return key[first], c[first]


def _clusters(n: int, accepted: list[tuple[int, int, float, str]], rep: np.ndarray, linkable: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Connected components over accepted pairs plus exact copies (row -> its representative, for the
    ``linkable`` rows), and the kept member (earliest row) of each component. Empty and whitespace-only
    texts, and corrupted rows, are not linkable: they belong to no cluster (they are `corrupted`, not
    copies of each other)."""
    rows_all = np.arange(n)
    src = np.concatenate([np.asarray([p[0] for p in accepted], np.int64), rows_all])
    dst = np.concatenate([np.asarray([p[1] for p in accepted], np.int64), np.where(linkable, rep, rows_all)])
    adj = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    _, comp = connected_components(adj, directed=False)
    kept = np.full(int(comp.max()) + 1 if n else 0, n, np.int64)
    np.minimum.at(kept, comp, rows_all)
    return comp, kept
