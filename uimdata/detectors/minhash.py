"""minhash: MinHash signatures of texts' character 5-gram shingles and LSH candidate pairs.

Shingles are hashed vectorised (a polynomial over the code points of each 5-gram), signatures are
multiply-shift minima (numpy), and banding uses datasketch's own choice of bands and rows with numpy
sorts instead of ``MinHashLSH``'s per-band dicts. Used by the ``near_duplicate`` detector.
"""

from __future__ import annotations

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


def _signature(t: str, perm_a: np.ndarray, perm_b: np.ndarray) -> np.ndarray:
    """MinHash signature: per permutation, the minimum over the text's shingle hashes h of the
    multiply-shift hash ((a * h + b) mod 2**64) >> 32 (a odd; Dietzfelbinger's universal family, three
    numpy operations per shingle and permutation where a Mersenne-prime modulus costs a division)."""
    x = perm_a * _shingle_hashes(t)[None, :]
    x += perm_b
    x >>= np.uint64(32)
    return x.min(axis=1)


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
    for k, row in enumerate(rows):
        sig[k] = _signature(norm[row][:MAX_SHINGLE_CHARS], perm_a, perm_b)
    return sig


def estimated_jaccard(sig: np.ndarray, ia: np.ndarray, ib: np.ndarray, block: int = 65536) -> np.ndarray:
    """The MinHash estimate of each pair's shingle Jaccard: the share of equal signature values of rows
    ``ia[k]`` and ``ib[k]`` of ``sig``."""
    if not len(ia):
        return np.zeros(0)
    return np.concatenate([(sig[ia[s:s + block]] == sig[ib[s:s + block]]).mean(axis=1)
                           for s in range(0, len(ia), block)])


def minhash_pairs(norm: list[str], rows: np.ndarray, threshold: float, num_perm: int,
                  max_bucket: int = 50, sig: np.ndarray | None = None) -> set[tuple[int, int]]:
    """Candidate pairs (row_a < row_b) whose shingle sets have estimated Jaccard >= threshold.

    Signatures (:func:`signatures`, or ``sig`` when given, one per entry of ``rows``) into one matrix;
    the banding is datasketch's own choice of bands and rows for ``threshold`` (``_optimal_param``, as
    MinHashLSH uses), done with numpy sorts instead of MinHashLSH's per-band dicts, which hold every
    key in Python objects (gigabytes at 10^6 rows). A bucket of more than ``max_bucket`` rows yields
    each member paired with the bucket's first ``max_bucket`` rows (a template repeated thousands of
    times stays linear)."""
    from datasketch.lsh import _optimal_param

    b, r = _optimal_param(threshold, num_perm, 0.5, 0.5)
    pairs: set[tuple[int, int]] = set()
    if not len(rows):
        return pairs
    rows = np.asarray(rows)
    if sig is None:
        sig = signatures(norm, rows, num_perm)
    for band in range(b):
        keys = np.ascontiguousarray(sig[:, band * r:(band + 1) * r]).view(f"V{r * sig.itemsize}").ravel()
        _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
        shared = counts[inv] > 1
        if not shared.any():
            continue
        members = np.flatnonzero(shared)
        order = members[np.argsort(inv[members], kind="stable")]
        bounds = np.flatnonzero(np.diff(inv[order])) + 1
        for bucket in np.split(order, bounds):
            ids = rows[bucket]
            for i in range(1, len(ids)):
                for j in range(min(i, max_bucket)):
                    a, c = int(ids[j]), int(ids[i])
                    pairs.add((a, c) if a < c else (c, a))
    if not pairs:
        return pairs
    # MinHash estimate first: a bucket shares one band, not the whole signature; keep the pairs whose
    # estimated Jaccard (share of equal signature values) is within 0.15 of the threshold
    pos = np.full(int(rows.max()) + 1, -1, np.int64)
    pos[rows] = np.arange(len(rows))
    arr = np.array(sorted(pairs), dtype=np.int64)
    est = estimated_jaccard(sig, pos[arr[:, 0]], pos[arr[:, 1]])
    return {(int(a), int(c)) for a, c in arr[est >= threshold - 0.15]}
