"""minhash: MinHash signatures of texts' character 5-gram shingles and LSH candidate pairs.

Shingles are hashed vectorised (a polynomial over the code points of each 5-gram), signatures are
multiply-shift minima (numpy), and banding uses datasketch's own choice of bands and rows with numpy
sorts instead of ``MinHashLSH``'s per-band dicts. Used by the ``near_duplicate`` detector.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

SHINGLE = 5
MAX_SHINGLE_CHARS = 4000


_MAX_HASH = np.uint64((1 << 32) - 1)
_POW = np.array([0x100000001B3 ** k % (1 << 64) for k in range(SHINGLE)], dtype=np.uint64)


def _shingle_hashes(t: str) -> np.ndarray:
    """32-bit hashes of the character 5-grams of ``t``, repeats included (a minimum does not need them
    distinct, and sorting them out cost more than hashing them twice); a text shorter than 5
    characters is one shingle."""
    cp = np.frombuffer(t.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    if len(cp) == 0:
        cp = np.zeros(1, np.uint64)
    m = max(1, len(cp) - SHINGLE + 1)
    h = np.zeros(m, np.uint64)
    for k in range(min(SHINGLE, len(cp))):
        h += (cp[k:k + m] + np.uint64(1)) * _POW[k]  # wraps mod 2**64
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return h & _MAX_HASH


def _signature(t: str, perm_a: np.ndarray, perm_b: np.ndarray, buf: np.ndarray | None = None) -> np.ndarray:
    """MinHash signature: per permutation, the minimum over the text's shingle hashes h of the
    multiply-shift hash ((a * h + b) mod 2**64) >> 32 (a odd; Dietzfelbinger's universal family, two
    numpy operations per shingle and permutation where a Mersenne-prime modulus costs a division; the
    shift, which keeps the order, is applied to the minimum). ``buf``: a (permutations x at least the
    shingles) uint64 array to work in, so that a batch of texts reuses one."""
    h = _shingle_hashes(t)
    x = np.empty((len(perm_a), len(h)), np.uint64) if buf is None or buf.shape[1] < len(h) else buf[:, :len(h)]
    np.multiply(perm_a, h[None, :], out=x)
    x += perm_b
    return x.min(axis=1) >> np.uint64(32)


def signatures(norm: list[str], rows: np.ndarray, num_perm: int) -> np.ndarray:
    """MinHash signatures (len(rows) x num_perm, uint32) of the character 5-gram shingles of the first
    :data:`MAX_SHINGLE_CHARS` characters of ``norm[row]``, under ``num_perm`` multiply-shift hashes
    with random 64-bit parameters (seed 1; the multiplier odd). The shingles are hashed vectorised (a
    polynomial over the code points of each 5-gram), so the cost per character is a few numpy
    operations rather than a Python call per shingle."""
    rng = np.random.default_rng(1)
    perm_a = (rng.integers(0, np.iinfo(np.uint64).max, num_perm, dtype=np.uint64, endpoint=True)
              | np.uint64(1))[:, None]
    perm_b = rng.integers(0, np.iinfo(np.uint64).max, num_perm, dtype=np.uint64, endpoint=True)[:, None]
    sig = np.empty((len(rows), num_perm), np.uint32)  # the hashes are 32-bit after the shift
    buf = np.empty((num_perm, MAX_SHINGLE_CHARS), np.uint64)
    for k, row in enumerate(rows):
        sig[k] = _signature(norm[row][:MAX_SHINGLE_CHARS], perm_a, perm_b, buf)
    return sig


def estimated_jaccard(sig: np.ndarray, ia: np.ndarray, ib: np.ndarray, block: int = 65536) -> np.ndarray:
    """The MinHash estimate of each pair's shingle Jaccard: the share of equal signature values of rows
    ``ia[k]`` and ``ib[k]`` of ``sig``."""
    if not len(ia):
        return np.zeros(0)
    return np.concatenate([(sig[ia[s:s + block]] == sig[ib[s:s + block]]).mean(axis=1)
                           for s in range(0, len(ia), block)])


#: bucket pairs are built this many at a time (5 int64 arrays each: about 160 MB), so that a template
#: repeated a million times (50 pairs per copy) never holds all of a band's pairs in temporaries at once
PAIR_CHUNK = 1 << 22


def _bucket_pairs(order: np.ndarray, bounds: np.ndarray, max_bucket: int,
                  chunk: int = PAIR_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Positions ``(j, i)`` in ``order`` of the pairs of each bucket (``order`` grouped by bucket, a bucket
    starting at each of ``bounds``): every member paired with each member before it among the bucket's
    first ``max_bucket``. Vectorised (numpy arrays, no Python object per pair), in chunks of about
    ``chunk`` pairs (whole members: a member's pairs never straddle two chunks)."""
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    sizes = np.diff(np.concatenate([starts, [len(order)]]))
    first = np.repeat(starts, sizes)  # each member's bucket start
    per = np.minimum(np.arange(len(order)) - first, max_bucket)  # member i pairs with min(rank, max_bucket)
    ends = np.cumsum(per)
    lo = 0
    while lo < len(order):
        done = int(ends[lo - 1]) if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, done + chunk, side="right")))
        p = per[lo:hi]
        if p.sum():
            i = np.repeat(np.arange(lo, hi), p)
            j = np.repeat(first[lo:hi], p) + (np.arange(len(i)) - np.repeat(np.cumsum(p) - p, p))
            yield j, i
        lo = hi


def minhash_pairs(norm: list[str], rows: np.ndarray, threshold: float, num_perm: int,
                  max_bucket: int = 50, sig: np.ndarray | None = None) -> np.ndarray:
    """Candidate pairs (row_a < row_b, an ``(m, 2)`` int64 array sorted by row_a then row_b) whose shingle
    sets have estimated Jaccard >= threshold - 0.15.

    Signatures (:func:`signatures`, or ``sig`` when given, one per entry of ``rows``) into one matrix;
    the banding is datasketch's own choice of bands and rows for ``threshold`` (``_optimal_param``, as
    MinHashLSH uses), done with numpy sorts instead of MinHashLSH's per-band dicts, which hold every
    key in Python objects (gigabytes at 10^6 rows). A bucket of more than ``max_bucket`` rows yields
    each member paired with the bucket's first ``max_bucket`` rows (a template repeated thousands of
    times stays linear). The pairs are int64 keys (row_a * N + row_b), 8 bytes each, never Python tuples
    (the tuples' sets took 2.2 GB at 400,000 rows)."""
    from datasketch.lsh import _optimal_param

    b, r = _optimal_param(threshold, num_perm, 0.5, 0.5)
    rows = np.asarray(rows, np.int64)
    if not len(rows):
        return np.zeros((0, 2), np.int64)
    if sig is None:
        sig = signatures(norm, rows, num_perm)
    span = int(rows.max()) + 1
    key = np.zeros(0, np.int64)
    for band in range(b):
        band_keys = np.ascontiguousarray(sig[:, band * r:(band + 1) * r]).view(f"V{r * sig.itemsize}").ravel()
        _, inv, counts = np.unique(band_keys, return_inverse=True, return_counts=True)
        shared = counts[inv] > 1
        if not shared.any():
            continue
        members = np.flatnonzero(shared)
        order = members[np.argsort(inv[members], kind="stable")]
        bounds = np.flatnonzero(np.diff(inv[order])) + 1
        for j, i in _bucket_pairs(order, bounds, max_bucket):
            a, c = rows[order[j]], rows[order[i]]
            key = np.union1d(key, np.minimum(a, c) * span + np.maximum(a, c))  # sorted, distinct
    if not len(key):
        return np.zeros((0, 2), np.int64)
    pairs = np.stack([key // span, key % span], axis=1)
    # MinHash estimate first: a bucket shares one band, not the whole signature; keep the pairs whose
    # estimated Jaccard (share of equal signature values) is within 0.15 of the threshold
    pos = np.full(span, -1, np.int64)
    pos[rows] = np.arange(len(rows))
    est = estimated_jaccard(sig, pos[pairs[:, 0]], pos[pairs[:, 1]])
    return pairs[est >= threshold - 0.15]
