"""Check the GPU paths and print figures (run on a CUDA machine; `--device cpu` smoke-tests it here).

    python -m pipelines.gpu_check                 # CUDA: 20k texts, 1M x 384 kNN and k-means
    python -m pipelines.gpu_check --device cpu --n-embed 200 --n-vectors 20000

Measures, and checks against the CPU path on a sample:
1. embedding docs/s (fp16 on CUDA) on real WordNet glosses; cosine of GPU vs CPU embeddings;
2. seconds for the kNN graph of N x 384 vectors (FAISS GPU build if installed, else blockwise
   torch matmul + top-k); recall@10 against exact numpy search on 1,000 queries;
3. seconds for FAISS k-means (k = sqrt(N / 2)) on the same vectors;
4. seconds for the out-of-fold label model (torch softmax regression) on 50,000 rows.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def clustered(n: int, dim: int = 384, centers: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)).astype(np.float32)
    x = c[rng.integers(0, centers, n)] + 0.7 * rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def check_embedding(device: str, n: int) -> dict:
    import polars as pl

    from uimdata.stages.embed import EmbedStage

    texts = pl.read_parquet(ROOT / "uimdata/data/wordnet/glosses.parquet", columns=["text"])["text"].head(n).to_list()
    stage = EmbedStage(device=device, encode_batch_size=256 if device == "cuda" else 64)
    stage.encode(texts[:256])  # warm-up
    t = time.perf_counter()
    emb = stage.encode(texts)
    seconds = time.perf_counter() - t
    sample = texts[:300]
    ref = EmbedStage(device="cpu").encode(sample)
    agree = float(np.mean(np.sum(ref * emb[:300], axis=1)))
    return {"texts": n, "seconds": round(seconds, 2), "docs_per_s": round(n / seconds),
            "mean_cosine_vs_cpu_fp32": round(agree, 5)}


def check_knn(device: str, n: int, k: int = 10) -> dict:
    from uimdata.stages.index import knn_graph

    x = clustered(n)
    t = time.perf_counter()
    g = knn_graph(x, k=k, device=device if device == "cuda" else "cpu", exact_max=20000)
    seconds = time.perf_counter() - t
    q = np.random.default_rng(1).choice(n, 1000, replace=False)
    s = x[q] @ x.T
    s[np.arange(len(q)), q] = -np.inf
    true = np.argpartition(-s, k, axis=1)[:, :k]
    recall = float(np.mean([len(set(true[i]) & set(g.rows[qi])) / k for i, qi in enumerate(q)]))
    return {"vectors": n, "dim": x.shape[1], "kind": g.kind, "seconds": round(seconds, 1),
            "recall_at_10_vs_exact": round(recall, 4)}


def check_kmeans(device: str, n: int) -> dict:
    import faiss

    x = clustered(n)
    k = int(np.sqrt(n / 2))
    t = time.perf_counter()
    km = faiss.Kmeans(x.shape[1], k, niter=20, seed=0, spherical=True, max_points_per_centroid=256,
                      gpu=device == "cuda" and faiss.get_num_gpus() > 0)
    km.train(x)
    km.index.search(x, 1)
    return {"vectors": n, "k": k, "seconds": round(time.perf_counter() - t, 1),
            "on_gpu": bool(device == "cuda" and faiss.get_num_gpus() > 0)}


def check_label_model(device: str, n: int = 50_000, classes: int = 45) -> dict:
    from uimdata.label_model import logreg_oof

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(classes, 384)).astype(np.float32)
    y = rng.integers(0, classes, n)
    x = centres[y] + 8.0 * rng.normal(size=(n, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = {}
    for dev in ([device, "cpu"] if device != "cpu" else ["cpu"]):
        t = time.perf_counter()
        p = logreg_oof(x, y, classes, device=dev)
        out[dev] = {"seconds": round(time.perf_counter() - t, 1), "oof_accuracy": round(float((p.argmax(1) == y).mean()), 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--n-embed", type=int, default=20_000)
    ap.add_argument("--n-vectors", type=int, default=1_000_000)
    args = ap.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu for a smoke test")
    report = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
              "torch": torch.__version__}
    for name, fn in (("embedding", lambda: check_embedding(args.device, args.n_embed)),
                     ("knn", lambda: check_knn(args.device, args.n_vectors)),
                     ("kmeans", lambda: check_kmeans(args.device, args.n_vectors)),
                     ("label_model", lambda: check_label_model(args.device))):
        report[name] = fn()
        print(json.dumps({name: report[name]}), flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
