"""Duplicate detectors on corpora with given embeddings (no model): planted copies found, clean rows spared."""

from __future__ import annotations

import numpy as np
import polars as pl

from tests.conftest import CLEAN, random_embeddings
from uimdata.context import ScanContext
from uimdata.detectors.exact_duplicate import ExactDuplicateDetector
from uimdata.detectors.near_duplicate import NearDuplicateDetector, content_edits


def run(tmp_path, texts: list[str], emb: np.ndarray) -> pl.DataFrame:  # noqa: ARG001
    """The two duplicate detectors' flags columns (ordered by id) on a context built in memory: the rows a
    scan with k = 5 would see, without running one."""
    ctx = ScanContext.from_arrays([f"r{i}" for i in range(len(texts))], texts, emb, k=5)
    exact, near = (pl.from_arrow(d.detect(ctx).table) for d in (ExactDuplicateDetector(), NearDuplicateDetector()))
    return exact.join(near, on="id").sort("id")


def test_exact_duplicates_keep_first_occurrence(tmp_path):
    texts = [t for t, _ in CLEAN]
    texts += [texts[4], texts[4].upper(), "  " + texts[9].replace(" ", "   ")]  # rows 30, 31, 32
    emb = random_embeddings(len(texts))
    f = run(tmp_path, texts, emb)
    flagged = dict(f.filter(pl.col("is_exact_duplicate_issue")).select("id", "duplicate_of").rows())
    assert flagged == {"r30": "r4", "r31": "r4", "r32": "r9"}
    assert f.filter(pl.col("is_exact_duplicate_issue"))["exact_duplicate_score"].max() == 0.0


def near_copies(texts: list[str]) -> list[str]:
    return texts + [
        texts[0].replace("domesticated", "domestcated"),          # r30: typo only
        texts[10].replace("optical ", ""),                       # r31: a content word dropped
        texts[20] + " (see also)",                                # r32: a suffix
        texts[25].replace("Nile", "Nile,").replace("longest", "longset"),  # r33: punctuation + typo
    ]


def test_typo_copies_found_even_where_embeddings_disagree(tmp_path):
    texts = near_copies([t for t, _ in CLEAN])
    emb = random_embeddings(len(texts))  # unrelated vectors: only MinHash + the word-level check can tell
    f = run(tmp_path, texts, emb)
    flagged = dict(f.filter(pl.col("is_near_duplicate_issue")).select("id", "near_duplicate_of").rows())
    assert flagged == {"r30": "r0", "r33": "r25"}, "content-word edits need the embeddings to agree"
    reasons = f.filter(pl.col("is_near_duplicate_issue"))["near_duplicate_reason"].to_list()
    assert all(r.startswith("near-copy") and "0 content-word edit" in r for r in reasons)


def test_edited_copies_found_when_embeddings_agree(tmp_path):
    texts = near_copies([t for t, _ in CLEAN])
    emb = random_embeddings(len(texts), dim=64)
    noise = random_embeddings(4, dim=64, seed=9)
    for k, src in enumerate((0, 10, 20, 25)):
        emb[30 + k] = emb[src] + 0.3 * noise[k]
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    f = run(tmp_path, texts, emb)
    flagged = dict(f.filter(pl.col("is_near_duplicate_issue")).select("id", "near_duplicate_of").rows())
    assert flagged == {"r30": "r0", "r31": "r10", "r32": "r20", "r33": "r25"}
    clusters = dict(f.select("id", "duplicate_cluster").rows())
    assert clusters["r30"] == clusters["r0"] is not None and clusters["r31"] != clusters["r30"]
    assert f.filter(pl.col("id").is_in(["r1", "r2", "r3"]))["duplicate_cluster"].null_count() == 3


def test_templated_but_different_texts_are_not_duplicates(tmp_path):
    texts = [t for t, _ in CLEAN] + [
        "east side: the side that is on the east",
        "west side: the side that is on the west",
        "1850s: the decade from 1850 to 1859",
        "1870s: the decade from 1870 to 1879",
        "correctly: in an accurate manner",
        "incorrectly: in an inaccurate manner",
    ]
    emb = random_embeddings(len(texts), dim=64)
    for a, b in ((30, 31), (32, 33), (34, 35)):  # close in the model (cosine ~0.8), like MiniLM on these
        emb[b] = emb[a] + 0.75 * random_embeddings(1, dim=64, seed=b)[0]
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    f = run(tmp_path, texts, emb)
    assert not f["is_near_duplicate_issue"].any(), f.filter(pl.col("is_near_duplicate_issue"))["near_duplicate_reason"].to_list()


def test_content_edits():
    assert content_edits("dog: a domesticated animal", "dog: a domestcated animal") == 0
    assert content_edits("dog: a domesticated animal", "dog: domesticated animal!") == 0
    assert content_edits("bootleg: produce or distribute", "bootleg: produe and/or distribute") == 0
    assert content_edits("east side: the side on the east", "west side: the side on the west") == 2
    assert content_edits("the 1850s decade", "the 1870s decade") == 1
    assert content_edits("correctly done", "incorrectly done") == 1
    assert content_edits("a large fish", "a large red fish") == 1


def test_semantic_duplicate_by_cosine_and_similar_but_distinct_rows_spared(tmp_path):
    texts = [t for t, _ in CLEAN] + ["hound: a canine animal people keep at home or use for the hunt"]
    emb = random_embeddings(len(texts), dim=64)
    emb[30] = emb[0] + 0.02 * random_embeddings(1, dim=64, seed=5)[0]  # cosine ~0.999 with row 0
    emb[1] = 0.7 * emb[2] + 0.3 * emb[1]                                 # rows 1, 2 similar, not duplicates
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    f = run(tmp_path, texts, emb)
    assert 0.85 < float(emb[1] @ emb[2]) < 0.97
    flagged = f.filter(pl.col("is_near_duplicate_issue"))
    assert flagged["id"].to_list() == ["r30"]
    assert flagged["near_duplicate_reason"][0].startswith("semantic duplicate")


def test_clean_corpus_has_no_duplicate_flags(tmp_path):
    texts = [t for t, _ in CLEAN]
    f = run(tmp_path, texts, random_embeddings(len(texts)))
    assert not f["is_exact_duplicate_issue"].any() and not f["is_near_duplicate_issue"].any()
    assert f["duplicate_cluster"].null_count() == len(texts)


def _words(rng: np.random.Generator, n: int) -> str:
    vocab = sorted({w.lower() for t, _ in CLEAN for w in t.split() if w.isalpha()})
    return " ".join(rng.choice(vocab, n))


def test_long_documents_are_screened_by_minhash_before_comparing_characters():
    """Long documents that share a long template (a MinHash candidate pair, but far from a copy) are
    settled by their MinHash estimate without a character comparison; a long copy with a typo every
    20 characters still shares about 0.6 of its 5-grams and is found."""
    rng = np.random.default_rng(0)
    header = _words(rng, 180)  # ~1,300 characters every document starts with
    texts = [header + " " + _words(rng, 120) for _ in range(30)]
    original = texts[7]
    typos = "".join(("q" if ch != "q" else "z") if i % 20 == 10 and ch.isalpha() else ch
                    for i, ch in enumerate(original))
    texts.append(typos)  # r30
    ctx = ScanContext.from_arrays([f"r{i}" for i in range(len(texts))], texts, random_embeddings(len(texts)), k=5)
    res = NearDuplicateDetector().detect(ctx)
    f = pl.from_arrow(res.table).sort("id")
    flagged = dict(f.filter(pl.col("is_near_duplicate_issue")).select("id", "near_duplicate_of").rows())
    assert flagged == {"r30": "r7"}
    assert res.summary["screened_pairs"] > 0, res.summary
    # the same corpus without screening reaches the same verdict, comparing every candidate's characters
    unscreened = NearDuplicateDetector(screen_jaccard=0.0).detect(ctx)
    assert unscreened.summary["screened_pairs"] == 0
    assert unscreened.table.column("is_near_duplicate_issue").to_pylist() == res.table.column(
        "is_near_duplicate_issue").to_pylist()


def test_a_corrupted_copy_is_corrupted_not_a_near_duplicate(tmp_path):
    """A broken copy of a row placed before it (so it would be the cluster's kept member): ``corrupted``
    flags it, ``near_duplicate`` leaves it out of its clusters, and the original is not flagged as a copy of
    its broken version. Without ``corrupted`` in the scan the pair is a near duplicate as before."""
    from uimdata.executors.local import LocalExecutor
    from uimdata.scan import ScanConfig, scan

    texts = [t for t, _ in CLEAN]
    broken = texts[3] + " \ufffd\ufffd\ufffd\ufffd \ufffd\ufffd\ufffd\ufffd"
    texts = [broken] + texts  # r00 is the broken copy of r04
    emb = random_embeddings(len(texts))
    emb[0] = emb[4]  # the embedding of a copy
    df = pl.DataFrame({"id": [f"r{i:02d}" for i in range(len(texts))], "text": texts, "embedding": emb.tolist()})
    df.write_parquet(tmp_path / "c.parquet")

    def flags(name: str, dets: tuple[str, ...]) -> pl.DataFrame:
        scan(ScanConfig(corpus=str(tmp_path / "c.parquet"), out=str(tmp_path / name), detectors=dets, k=5),
             LocalExecutor(progress=False))
        return pl.read_parquet(tmp_path / name / "flags.parquet")

    alone = flags("alone", ("near_duplicate",))
    assert alone.filter(pl.col("is_near_duplicate_issue"))["id"].to_list() == ["r04"]
    both = flags("both", ("near_duplicate", "corrupted"))
    assert both.filter(pl.col("is_corrupted_issue"))["id"].to_list() == ["r00"]
    assert not both["is_near_duplicate_issue"].any()
    assert both["duplicate_cluster"].null_count() == both.height
    assert both.columns.index("is_near_duplicate_issue") < both.columns.index("is_corrupted_issue")  # named order


def test_lsh_buckets_pair_each_member_with_the_first_members_of_its_bucket():
    """The vectorised bucket pairs are exactly the nested loop's: each member of a bucket with every
    member before it among the bucket's first ``max_bucket`` (a template repeated thousands of times
    stays linear), and MinHash candidates come back as sorted ``(a, b)`` rows with a < b."""
    from uimdata.detectors.minhash import _bucket_pairs, minhash_pairs

    rng = np.random.default_rng(0)
    sizes = [2, 1, 7, 60, 3, 120, 2]
    order = rng.permutation(sum(sizes))
    bounds = np.cumsum(sizes)[:-1]
    want, start = set(), 0
    for size in sizes:
        ids = order[start:start + size]
        want |= {(int(ids[j]), int(ids[i])) for i in range(1, size) for j in range(min(i, 50))}
        start += size
    for chunk in (1, 7, 1 << 22):  # built a few pairs at a time or all at once: the same pairs
        got = [(a, b) for j, i in _bucket_pairs(order, bounds, 50, chunk=chunk)
               for a, b in zip(order[j].tolist(), order[i].tolist())]
        assert len(got) == len(set(got)) and set(got) == want

    template = "the quick brown fox jumps over the lazy dog near the river bank at dawn"
    norm = [template] * 300 + [_words(rng, 12) for _ in range(20)]
    pairs = minhash_pairs(norm, np.arange(len(norm)), 0.5, 64)
    assert pairs.dtype == np.int64 and (pairs[:, 0] < pairs[:, 1]).all()
    assert len(pairs) == sum(min(i, 50) for i in range(300))  # every copy with the first 50, nothing else
    assert pairs[:, 1].max() < 300


def test_minhash_signatures_are_the_multiply_shift_minima():
    """The signature computed in a reused buffer, shifted after the minimum, is the textbook one:
    per permutation, min over the shingles of ((a * h + b) mod 2**64) >> 32."""
    from uimdata.detectors.minhash import _shingle_hashes, signatures

    texts = ["", "abc", "a near-copy of a sentence", "x" * 5000, "caf\u00e9 na\u00efve " * 30]
    sig = signatures(texts, np.arange(len(texts)), 16)
    rng = np.random.default_rng(1)
    a = [int(v) | 1 for v in rng.integers(0, np.iinfo(np.uint64).max, 16, dtype=np.uint64, endpoint=True)]
    b = [int(v) for v in rng.integers(0, np.iinfo(np.uint64).max, 16, dtype=np.uint64, endpoint=True)]
    for row, text in enumerate(texts):
        hs = [int(h) for h in _shingle_hashes(text[:4000])]
        want = [min(((ai * h + bi) % 2**64) >> 32 for h in hs) for ai, bi in zip(a, b)]
        assert sig[row].tolist() == want
