"""A labelled corpus in a synthetic embedding space, for tests of link / curate / probe.

``concept_space`` draws ``n_classes x concepts`` Gaussian blobs: each class has a centre, each of its
concepts a centre near it, each row a point near its concept (unit-normalised). Texts are short word
strings made of the concept's and the class' own words, so slice descriptions have distinct terms and
no two texts are equal. Nothing is embedded by a model: the corpus carries an ``embedding`` column.
"""

from __future__ import annotations

import numpy as np
import polars as pl

_SYLLABLES = ["ka", "lo", "mi", "ru", "te", "sa", "no", "vi", "de", "po", "zu", "fe", "gi", "ha", "jo", "be"]


def _word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_SYLLABLES, size=3))


def concept_space(n_classes: int = 8, concepts: int = 4, per_concept: int = 60, dim: int = 32,
                  class_spread: float = 0.6, concept_spread: float = 0.35, row_spread: float = 0.18,
                  seed: int = 0, prefix: str = "r") -> pl.DataFrame:
    """Columns: ``id``, ``text``, ``label`` (``class_C``), ``concept`` (``C.J``), ``embedding``."""
    rng = np.random.default_rng(seed)
    vocab_rng = np.random.default_rng(1234)  # words do not depend on the seed: train and test share them
    class_words = [[_word(vocab_rng) for _ in range(3)] for _ in range(n_classes)]
    concept_words = [[[_word(vocab_rng) for _ in range(4)] for _ in range(concepts)] for _ in range(n_classes)]
    filler = [_word(vocab_rng) for _ in range(200)]
    cls_centres = np.random.default_rng(99).normal(size=(n_classes, dim))
    cls_centres /= np.linalg.norm(cls_centres, axis=1, keepdims=True)
    con_centres = cls_centres[:, None, :] + class_spread * np.random.default_rng(98).normal(
        size=(n_classes, concepts, dim)) / np.sqrt(dim)
    rows = []
    for c in range(n_classes):
        for j in range(concepts):
            for _ in range(per_concept):
                v = con_centres[c, j] + row_spread * rng.normal(size=dim) / np.sqrt(dim) * (1 + concept_spread)
                words = (list(rng.choice(concept_words[c][j], size=2, replace=False)) + [class_words[c][0]]
                         + list(rng.choice(filler, size=4)))
                rng.shuffle(words)
                rows.append((" ".join(words), f"class_{c}", f"{c}.{j}", v / np.linalg.norm(v)))
    order = rng.permutation(len(rows))
    emb = np.stack([rows[i][3] for i in order]).astype(np.float32)
    return pl.DataFrame({
        "id": [f"{prefix}{i:05d}" for i in range(len(rows))],
        "text": [f"{rows[i][0]} {k}" for k, i in enumerate(order)],
        "label": [rows[i][1] for i in order],
        "concept": [rows[i][2] for i in order],
        "embedding": pl.Series(emb, dtype=pl.Array(pl.Float32, dim)),
    })
