"""Out-of-fold predicted probabilities from the embeddings alone (no user model needed).

Two models, both cheap on a CPU and on a GPU when there is one:

* ``logreg``: multinomial logistic regression (softmax over a linear layer) in torch, trained
  full-batch with L-BFGS on k-1 folds and applied to the held-out fold;
* ``knn``: the labels of each row's neighbours in the kNN graph, weighted by cosine (the graph
  never holds the row itself, so this is leave-one-out by construction);
* ``ensemble`` (default): the mean of the two.
"""

from __future__ import annotations

import numpy as np

from uimdata.knn import TEMPERATURE, class_votes, neighbour_values, vote_weights

METHODS = ("logreg", "knn", "ensemble")


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
                      lr: float = 0.05, min_steps: int = 300, max_steps: int = 1000) -> SoftmaxModel:
        """Mini-batch Adam over shuffled batches of ``batch_rows`` rows (only one batch on the device at
        a time): for training sets too large for full-batch L-BFGS in memory. The label detector's F1 with
        mini-batches against full-batch L-BFGS on the label benchmark: docs/benchmarks.md.
        Between ``min_steps`` and ``max_steps`` optimiser steps: more epochs on small
        sets, fewer on very large ones (the cost stays bounded)."""
        import torch

        torch.manual_seed(self.seed)
        dev = self.device
        lin = torch.nn.Linear(x.shape[1], self.n_classes).to(dev)
        opt = torch.optim.Adam(lin.parameters(), lr=lr)
        rng = np.random.default_rng(self.seed)
        per_epoch = max(1, -(-len(x) // batch_rows))
        steps = int(np.clip(epochs * per_epoch, min_steps, max_steps))
        done = 0
        while done < steps:
            order = rng.permutation(len(x))
            for s in range(0, len(x), batch_rows):
                if done == steps:
                    break
                done += 1
                b = np.sort(order[s:s + batch_rows])
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
        xs = torch.tensor(np.asarray(x, dtype=np.float32), device=dev)
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

    def predict_proba(self, x: np.ndarray, batch: int = 65536) -> np.ndarray:
        import torch

        assert self.linear is not None, "fit() first"
        out = []
        with torch.no_grad():
            for s in range(0, len(x), batch):
                xb = torch.tensor(np.asarray(x[s:s + batch], dtype=np.float32), device=self.device)
                out.append(torch.softmax(self.linear(xb), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_classes), np.float32)


#: fold models above this many training rows learn with mini-batches (``SoftmaxModel.fit_minibatch``)
MINIBATCH_ABOVE = 200_000


def logreg_oof(x: np.ndarray, y: np.ndarray, n_classes: int, folds: int = 5, l2: float = 1e-4,
               max_iter: int = 20, seed: int = 0, device: str = "auto", max_train: int | None = None
               ) -> np.ndarray:
    """Fold models learn full-batch (L-BFGS) up to ``MINIBATCH_ABOVE`` training rows, with mini-batches
    above. ``max_train``: optionally, at most this many rows of the other folds (a uniform sample)."""
    fold = fold_ids(y, folds, seed)
    out = np.zeros((len(y), n_classes), np.float32)
    rng = np.random.default_rng(seed)
    for f in range(folds):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if len(test) == 0:
            continue
        if max_train and len(train) > max_train:
            train = np.sort(rng.choice(train, size=max_train, replace=False))
        model = SoftmaxModel(n_classes, l2=l2, max_iter=max_iter, seed=seed, device=device)
        if len(train) > MINIBATCH_ABOVE:
            model.fit_minibatch(x[train], y[train])
        else:
            model.fit(x[train], y[train])
        out[test] = model.predict_proba(x[test])
    return out


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


def oof_pred_probs(x: np.ndarray, y: np.ndarray, n_classes: int, neighbors: np.ndarray, cos: np.ndarray,
                   method: str = "ensemble", folds: int = 5, seed: int = 0, device: str = "auto") -> np.ndarray:
    """Out-of-fold probabilities for labelled rows (``y >= 0``); rows with ``y < 0`` get the knn vote."""
    if method not in METHODS:
        raise ValueError(f"label model must be one of {METHODS}, got {method!r}")
    knn = knn_probs(neighbors, cos, y, n_classes) if method != "logreg" else None
    if method == "knn":
        return knn
    lab = np.flatnonzero(y >= 0)
    lr = np.zeros((len(y), n_classes), np.float32)
    lr[lab] = logreg_oof(x[lab], y[lab], n_classes, folds=folds, seed=seed, device=device)
    if method == "logreg":
        return lr
    return (lr + knn) / 2
