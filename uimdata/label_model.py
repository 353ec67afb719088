"""Out-of-fold predicted probabilities from the corpus itself: its embeddings, kNN graph and texts (no
user model needed).

The models, all cheap on a CPU and on a GPU when there is one:

* ``logreg``: multinomial logistic regression (softmax over a linear layer) in torch, trained
  full-batch with L-BFGS on k-1 folds and applied to the held-out fold;
* ``knn``: the labels of each row's neighbours in the kNN graph, weighted by cosine (the graph
  never holds the row itself, so this is leave-one-out by construction);
* ``text``: the same softmax regression over the text's words and word pairs (scikit-learn's
  ``TfidfVectorizer``, a vocabulary of at most 50,000 learnt on at most 100,000 texts), cross-validated
  on the same folds. The words a sentence encoder blurs (identifiers, package prefixes, a domain's
  terms) are what it sees;
* ``ensemble`` (default): one softmax regression over both the words (as ``text``) and the embedding
  (:func:`joint_oof`), mixed with ``knn`` by the one weight under which the given labels are most
  probable (:func:`blend`). Without texts it is ``embedding``;
* ``embedding``: logreg and knn only.

Learning the words and the embedding in one model ranks flipped labels better than mixing two models'
probabilities: average precision of the flips 0.523 -> 0.610 on glosses, 0.635 -> 0.649 on packages
(docs/benchmarks.md, multi-domain benchmark, ``label``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from uimdata.knn import TEMPERATURE, class_votes, neighbour_values, vote_weights
from uimdata.memory import release_memory

METHODS = ("ensemble", "embedding", "logreg", "knn", "text")


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def fold_ids(y: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Stratified fold of every row: each class is spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    return fold


class SoftmaxModel:
    """Multinomial logistic regression (a linear layer + softmax) in torch, trained full-batch with
    L-BFGS; optional per-row weights. On the GPU when present. The downstream probe of ``uim probe``
    and the fold model of ``logreg_oof``."""

    def __init__(self, n_classes: int, l2: float = 1e-4, max_iter: int = 100, seed: int = 0,
                 device: str = "auto") -> None:
        self.n_classes, self.l2, self.max_iter, self.seed = n_classes, l2, max_iter, seed
        self.device = _device(device)
        self.linear = None

    def fit_minibatch(self, x: np.ndarray, y: np.ndarray, batch_rows: int = 4096, epochs: int = 10,
                      lr: float = 0.05, min_steps: int = 300, max_steps: int = 1000,
                      rows: np.ndarray | None = None) -> SoftmaxModel:
        """Mini-batch Adam over shuffled batches of ``batch_rows`` rows (only one batch on the device at
        a time): for training sets too large for full-batch L-BFGS in memory. The label detector's F1 with
        mini-batches against full-batch L-BFGS on the label benchmark: docs/benchmarks.md.
        Between ``min_steps`` and ``max_steps`` optimiser steps: more epochs on small
        sets, fewer on very large ones (the cost stays bounded). ``rows``: train on these rows of ``x``
        and ``y`` only, gathered a batch at a time (no copy of the training set)."""
        import torch

        torch.manual_seed(self.seed)
        dev = self.device
        rows = np.arange(len(x)) if rows is None else np.asarray(rows)
        lin = torch.nn.Linear(x.shape[1], self.n_classes).to(dev)
        opt = torch.optim.Adam(lin.parameters(), lr=lr)
        rng = np.random.default_rng(self.seed)
        per_epoch = max(1, -(-len(rows) // batch_rows))
        steps = int(np.clip(epochs * per_epoch, min_steps, max_steps))
        done = 0
        while done < steps:
            order = rng.permutation(len(rows))
            for s in range(0, len(rows), batch_rows):
                if done == steps:
                    break
                done += 1
                b = rows[np.sort(order[s:s + batch_rows])]
                xb = torch.tensor(np.asarray(x[b], dtype=np.float32), device=dev)
                yb = torch.from_numpy(np.asarray(y[b], dtype=np.int64)).to(dev)
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(lin(xb), yb) + self.l2 * lin.weight.pow(2).sum()
                loss.backward()
                opt.step()
        self.linear = lin
        return self

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> SoftmaxModel:
        import torch

        torch.manual_seed(self.seed)
        dev = self.device
        # no second copy of the training set on the CPU (torch.tensor would copy what numpy already holds)
        xs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)
        ys = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
        w = None if weight is None else torch.from_numpy(np.asarray(weight, dtype=np.float32)).to(dev)
        lin = torch.nn.Linear(x.shape[1], self.n_classes).to(dev)
        opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=self.max_iter, history_size=10,
                                line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            per_row = torch.nn.functional.cross_entropy(lin(xs), ys, reduction="none")
            data = per_row.mean() if w is None else (per_row * w).sum() / w.sum()
            loss = data + self.l2 * lin.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.linear = lin
        return self

    def predict_proba(self, x: np.ndarray, batch: int = 65536, rows: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities of the rows of ``x`` (``rows``: of these rows only, gathered a batch at a time)."""
        import torch

        assert self.linear is not None, "fit() first"
        out = []
        n = len(x) if rows is None else len(rows)
        with torch.no_grad():
            for s in range(0, n, batch):
                part = x[s:s + batch] if rows is None else x[rows[s:s + batch]]
                xb = torch.tensor(np.asarray(part, dtype=np.float32), device=self.device)
                out.append(torch.softmax(self.linear(xb), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_classes), np.float32)


#: fold models above this many training rows learn with mini-batches (``SoftmaxModel.fit_minibatch``)
MINIBATCH_ABOVE = 200_000


def cross_fit(y: np.ndarray, n_classes: int, fit_predict, folds: int = 5, seed: int = 0,
              max_train: int | None = None) -> np.ndarray:
    """Out-of-fold probabilities on the folds of :func:`fold_ids`: ``fit_predict(train, test)`` (row
    indices) learns from ``train`` and returns the probabilities of ``test``. ``max_train``: at most this
    many rows of the other folds (a uniform sample)."""
    fold = fold_ids(y, folds, seed)
    out = np.zeros((len(y), n_classes), np.float32)
    rng = np.random.default_rng(seed)
    for f in range(folds):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if len(test) == 0:
            continue
        if max_train and len(train) > max_train:
            train = np.sort(rng.choice(train, size=max_train, replace=False))
        out[test] = fit_predict(train, test)
        release_memory()  # the fold model's buffers, before the next fold allocates its own
    return out


def logreg_oof(x: np.ndarray, y: np.ndarray, n_classes: int, folds: int = 5, l2: float = 1e-4,
               max_iter: int = 20, seed: int = 0, device: str = "auto", max_train: int | None = None
               ) -> np.ndarray:
    """Fold models learn full-batch (L-BFGS) up to ``MINIBATCH_ABOVE`` training rows, with mini-batches
    above. ``max_train``: optionally, at most this many rows of the other folds (a uniform sample)."""

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        model = SoftmaxModel(n_classes, l2=l2, max_iter=max_iter, seed=seed, device=device)
        if len(train) > MINIBATCH_ABOVE:  # batches gathered from x: no copy of the training rows
            model.fit_minibatch(x, y, rows=train)
        else:
            model.fit(x[train], y[train])
        return model.predict_proba(x, rows=test)

    return cross_fit(y, n_classes, fit_predict, folds, seed, max_train)


def knn_probs(neighbors: np.ndarray, cos: np.ndarray, y: np.ndarray, n_classes: int,
              temperature: float = TEMPERATURE, prior_weight: float = 0.5) -> np.ndarray:
    """Soft votes of each row's neighbours (rows with y < 0 do not vote), smoothed by the class prior."""
    n, k = neighbors.shape
    prior = np.bincount(y[y >= 0], minlength=n_classes).astype(np.float64)
    prior /= max(prior.sum(), 1)
    out = np.tile(prior * prior_weight, (n, 1))
    if k:
        ny = neighbour_values(neighbors, y)
        class_votes(ny, vote_weights(cos, ny >= 0, temperature), n_classes, out=out)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


#: the text model's vocabulary (words and word pairs in at least two texts) at most, the texts it is
#: learnt from and each fold model's training rows at most
TEXT_FEATURES = 50_000
TEXT_MAX_TRAIN = 100_000


def text_features(texts: list[str], max_fit: int = TEXT_MAX_TRAIN, seed: int = 0):  # -> scipy.sparse.csr_matrix
    """Each text's words and word pairs, TF-IDF weighted (sublinear term frequency) and L2-normalised,
    over the :data:`TEXT_FEATURES` most frequent of those in at least two of ``max_fit`` texts (a uniform
    sample when there are more)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["" if t is None else t for t in texts]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=TEXT_FEATURES, sublinear_tf=True,
                          dtype=np.float32)
    try:
        if len(texts) <= max_fit:
            return vec.fit_transform(texts).tocsr()  # one pass over the texts
        vec.fit([texts[i] for i in np.sort(np.random.default_rng(seed).choice(len(texts), max_fit, replace=False))])
    except ValueError:  # no word in two texts: no vocabulary
        from scipy.sparse import csr_matrix

        return csr_matrix((len(texts), 1), dtype=np.float32)
    return vec.transform(texts).tocsr()


def _torch_csr(x):  # scipy.sparse.csr_matrix -> torch sparse CSR tensor
    import warnings

    import torch

    with warnings.catch_warnings():  # "sparse CSR tensor support is in beta": the product is what is used
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(x.indptr.astype(np.int64)),
                                       torch.from_numpy(x.indices.astype(np.int64)),
                                       torch.from_numpy(x.data.astype(np.float32)), size=x.shape)


class Dense:
    """Dense features joined to the sparse ones: the training rows ``train`` and the test rows ``test``,
    whose vectors ``gather(rows)`` returns (from the embedding matrix, or read from the run's shards),
    gathered a batch at a time, never copied whole."""

    def __init__(self, gather: Callable[[np.ndarray], np.ndarray], train: np.ndarray, test: np.ndarray) -> None:
        self.gather, self.train, self.test = gather, train, test


def sparse_softmax_fit_predict(x_train, y_train: np.ndarray, x_test, n_classes: int, l2: float = 1e-5,
                               max_iter: int = 30, seed: int = 0, device: str = "auto",
                               batch: int = 65536, dense: Dense | None = None) -> np.ndarray:
    """Softmax regression on sparse features (full-batch L-BFGS, as :class:`SoftmaxModel`), fitted on
    ``x_train`` and applied to ``x_test`` in batches of ``batch`` rows; with ``dense``, over the sparse and
    the dense features together (one more linear block, learnt with the other). On the CPU in one thread:
    torch's sparse products gain little from a second thread and collapse when other work holds the cores
    (a fold took 33 s with two threads against 3 s with one on two busy cores)."""
    import torch

    torch.manual_seed(seed)
    dev = _device(device)
    if dev == "cpu":
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return _sparse_fit_predict(x_train, y_train, x_test, n_classes, l2, max_iter, dev, batch, dense)
        finally:
            torch.set_num_threads(threads)
    return _sparse_fit_predict(x_train, y_train, x_test, n_classes, l2, max_iter, dev, batch, dense)


@functools.cache
def _sparse_product():  # -> a torch.autograd.Function
    """``a @ w`` for a sparse ``a`` whose gradient ``a.T @ grad`` uses ``a.T`` built once: torch's own backward
    transposes the sparse ``a`` on every step (0.65 s against 0.13 s for the product, 80,000 texts x 50,000
    features). One class for the process, the matrices passed in: a class is itself a reference cycle, and
    one made per fit held the fold's matrices through its methods' closures until a garbage collection."""
    import torch

    class Product(torch.autograd.Function):
        @staticmethod
        def forward(ctx, w, a, a_t):  # noqa: ANN001, ANN205 - torch's signature
            ctx.a_t = a_t
            return a @ w

        @staticmethod
        def backward(ctx, grad):  # noqa: ANN001, ANN205
            return ctx.a_t @ grad, None, None

    return Product


def _sparse_fit_predict(x_train, y_train: np.ndarray, x_test, n_classes: int, l2: float, max_iter: int,
                        dev: str, batch: int, dense: Dense | None = None) -> np.ndarray:  # noqa: ANN001 - CSR
    import torch

    w = torch.zeros(x_train.shape[1], n_classes, device=dev, requires_grad=True)
    b = torch.zeros(n_classes, device=dev, requires_grad=True)
    # the fold's training matrices (and the sparse one's transpose), in a dict emptied after the fit (below)
    held = {"a": _torch_csr(x_train).to(dev), "a_t": _torch_csr(x_train.T.tocsr()).to(dev)}
    params = [w, b]
    wd = None
    if dense is not None:
        held["d"] = torch.from_numpy(dense.gather(dense.train)).to(dev)
        wd = torch.zeros(held["d"].shape[1], n_classes, device=dev, requires_grad=True)
        params.append(wd)
    ys = torch.from_numpy(np.asarray(y_train, dtype=np.int64)).to(dev)
    opt = torch.optim.LBFGS(params, lr=1, max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe")

    product = _sparse_product()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = product.apply(w, held["a"], held["a_t"]) + b
        penalty = w.pow(2).sum()
        if wd is not None:
            logits = logits + held["d"] @ wd
            penalty = penalty + wd.pow(2).sum()
        loss = torch.nn.functional.cross_entropy(logits, ys) + l2 * penalty
        loss.backward()
        return loss

    opt.step(closure)
    # torch's optimiser constructor leaves its frames, and through them this one, in a reference cycle
    # that lives until a garbage collection: empty what it would keep alive (the fold's training
    # matrices and the L-BFGS history, 100s of MB at 100,000 training rows)
    opt.state.clear()
    held.clear()
    return _sparse_predict(x_test, w.detach(), b.detach(), n_classes, dev, batch, dense,
                           None if wd is None else wd.detach())


def _sparse_predict(x, w, b, n_classes: int, dev: str, batch: int, dense: Dense | None = None,
                    wd=None) -> np.ndarray:  # noqa: ANN001
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            logits = _torch_csr(x[s:s + batch]).to(dev) @ w + b
            if dense is not None:
                logits += torch.from_numpy(dense.gather(dense.test[s:s + batch])).to(dev) @ wd
            out.append(torch.softmax(logits, dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)


def text_oof(texts: list[str], y: np.ndarray, n_classes: int, folds: int = 5, seed: int = 0,
             device: str = "auto", max_train: int = TEXT_MAX_TRAIN) -> np.ndarray:
    """Out-of-fold probabilities of the text model for the rows ``texts`` (all labelled, ``y >= 0``), on
    the folds of :func:`fold_ids`; each fold model learns from at most ``max_train`` rows of the others
    (a uniform sample)."""
    x = text_features(texts)
    return cross_fit(y, n_classes, lambda train, test: sparse_softmax_fit_predict(
        x[train], y[train], x[test], n_classes, seed=seed, device=device), folds, seed, max_train)


#: the joint model's regularisation as scikit-learn's C (the L2 weight on the mean loss is 1 / (2 C n) for n
#: training rows) and its L-BFGS iterations: measured on the four labelled benchmark corpora (C 3 / 10 / 30,
#: 30 / 50 / 100 iterations; docs/benchmarks.md)
JOINT_C = 10.0
JOINT_ITER = 50


def joint_oof(texts: list[str], x: np.ndarray | Callable[[], np.ndarray], y: np.ndarray, n_classes: int,
              rows: np.ndarray | None = None, folds: int = 5, seed: int = 0, device: str = "auto",
              max_train: int = TEXT_MAX_TRAIN) -> np.ndarray:
    """Out-of-fold probabilities of one softmax regression over each text's words (:func:`text_features`)
    and its embedding together, for the rows ``texts`` (all labelled, ``y >= 0``), on the folds of
    :func:`fold_ids`; each fold model learns from at most ``max_train`` rows of the others (a uniform
    sample). ``x``: the embedding matrix (or a function that returns it, called once the word features
    are built, or a reader of its rows such as ``rundir.EmbeddingRows``: the rows a fold needs are read
    where they are used, and the matrix is never held); ``rows``: the rows of ``x`` the texts are
    (default: all, in order)."""
    a = text_features(texts)
    if hasattr(x, "take") and not isinstance(x, np.ndarray):  # a reader: rows read where they are used
        gather = x.take
    else:
        matrix = x() if callable(x) else x

        def gather(r: np.ndarray) -> np.ndarray:
            return np.asarray(matrix[r], dtype=np.float32)
    at = np.arange(len(y)) if rows is None else np.asarray(rows)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return sparse_softmax_fit_predict(a[train], y[train], a[test], n_classes, l2=0.5 / (JOINT_C * len(train)),
                                          max_iter=JOINT_ITER, seed=seed, device=device,
                                          dense=Dense(gather, at[train], at[test]))

    return cross_fit(y, n_classes, fit_predict, folds, seed, max_train)


#: the class prior's weight in the label model's kNN vote (the votes weigh 1): light, so that a row none
#: of whose neighbours shares its label gets a small probability for it, also when there are few classes
KNN_PRIOR_WEIGHT = 0.1


def oof_pred_probs(x: np.ndarray | Callable[[], np.ndarray], y: np.ndarray, n_classes: int, neighbors: np.ndarray,
                   cos: np.ndarray, method: str = "ensemble", folds: int = 5, seed: int = 0, device: str = "auto",
                   texts: list[str] | None = None, reader=None) -> np.ndarray:  # noqa: ANN001
    """Out-of-fold probabilities for labelled rows (``y >= 0``); rows with ``y < 0`` get the knn vote.
    ``texts`` (aligned with ``y``) feed the text and joint models: ``ensemble`` without them is
    ``embedding``. ``x``: the embedding matrix, or a function that returns it, called once the word
    features are built (the vocabulary is never held with the matrix) or, without texts, when the
    embedding models start. ``reader``: optionally, the matrix's rows read where they are used
    (``rundir.EmbeddingRows``): the joint model gathers the rows each fold needs from it and never holds
    the matrix (the same probabilities). Each model's folds and seeds are its own."""
    if method not in METHODS:
        raise ValueError(f"label model must be one of {METHODS}, got {method!r}")
    if method == "text" and texts is None:
        raise ValueError("the text label model needs the texts")
    knn = knn_probs(neighbors, cos, y, n_classes, prior_weight=KNN_PRIOR_WEIGHT)
    if method == "knn":
        return knn
    lab = np.flatnonzero(y >= 0)
    out = knn.copy()  # unlabelled rows keep the knn vote
    if method == "ensemble" and texts is not None:
        joint = joint_oof([texts[i] for i in lab], x if reader is None else reader, y[lab], n_classes, rows=lab,
                          folds=folds, seed=seed, device=device)
        out[lab] = blend(joint, knn[lab], y[lab])
        return out
    if method == "text":
        out[lab] = text_oof([texts[i] for i in lab], y[lab], n_classes, folds=folds, seed=seed, device=device)
        return out
    x = x() if callable(x) else x
    # every row labelled (the usual case): the embedding matrix itself, not a copy of it
    lr = logreg_oof(x if len(lab) == len(y) else x[lab], y[lab], n_classes, folds=folds, seed=seed, device=device)
    out[lab] = lr if method == "logreg" else (lr + knn[lab]) / 2
    return out


def blend(a: np.ndarray, b: np.ndarray, y: np.ndarray, steps: int = 20) -> np.ndarray:
    """``w * a + (1 - w) * b`` with the weight w in {0, 1/steps, ..., 1} under which the given labels ``y``
    are most probable (mean log-probability; one number learnt from out-of-fold probabilities): a model
    that knows nothing of the classes (texts that never name them) gets no weight, instead of diluting
    the other's evidence."""
    p_a, p_b = a[np.arange(len(y)), y].astype(np.float64), b[np.arange(len(y)), y].astype(np.float64)
    ws = np.linspace(0.0, 1.0, steps + 1)
    ll = [np.log(np.maximum(w * p_a + (1 - w) * p_b, 1e-12)).mean() for w in ws]
    w = float(ws[int(np.argmax(ll))])
    return (w * a + (1 - w) * b).astype(np.float32)
