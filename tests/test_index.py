from __future__ import annotations

import numpy as np
import pytest

from uimdata.stages.index import knn_graph


def clustered(n: int, dim: int = 48, centers: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    x = c[rng.integers(0, centers, n)] + 0.6 * rng.normal(size=(n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_neighbors(x: np.ndarray, k: int) -> np.ndarray:
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1)[:, :k]


def test_flat_graph_is_exact_and_excludes_self():
    x = clustered(500)
    g = knn_graph(x, k=10)
    assert g.kind == "flat" and g.rows.shape == (500, 10)
    assert not (g.rows == np.arange(500)[:, None]).any()
    ref = exact_neighbors(x, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(g.rows, ref)]) > 0.999
    assert np.all(np.diff(g.cos, axis=1) <= 1e-6), "neighbours sorted by cosine"


@pytest.mark.parametrize("approx", ["hnsw", "ivf"])
def test_approximate_index_above_threshold_keeps_recall(approx):
    x = clustered(6000)
    g = knn_graph(x, k=10, exact_max=1000, approx=approx)
    assert g.kind.startswith(approx)
    assert not (g.rows == np.arange(6000)[:, None]).any()
    ref = exact_neighbors(x, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(g.rows, ref)])
    assert recall >= 0.95, recall


def test_duplicates_do_not_push_out_a_neighbour():
    x = clustered(50)
    x[7] = x[3]  # exact duplicate vectors: self may come second in the search result
    g = knn_graph(x, k=5)
    assert 7 in g.rows[3] and 3 in g.rows[7]
    assert not (g.rows == np.arange(50)[:, None]).any()


def test_tiny_corpora():
    assert knn_graph(clustered(1), k=10).rows.shape == (1, 0)
    g = knn_graph(clustered(3), k=10)
    assert g.rows.shape == (3, 2)


def test_torch_blockwise_search_matches_exact_faiss():
    """The GPU path without a FAISS GPU build (torch matmul + top-k), run here on the CPU."""
    x = clustered(700)
    faiss_graph = knn_graph(x, k=8, device="cpu")
    torch_graph = knn_graph(x, k=8, device="cpu:torch")
    assert torch_graph.kind.startswith("torch-exact")
    same = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(faiss_graph.rows, torch_graph.rows)])
    assert same > 0.995
    assert np.allclose(faiss_graph.cos, torch_graph.cos, atol=1e-5)
