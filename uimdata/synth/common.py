"""Shared pieces of the planting helpers: defect names, the similarity measure, RNG helpers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from rapidfuzz.distance import Indel

RngLike = np.random.Generator | int | None

DEFECTS = ("exact_duplicate", "near_duplicate", "corrupted")
#: the edit operations of a near duplicate; a copy's ``kind`` joins the ones applied with "+"
NEAR_EDITS = ("word_deletion", "word_insertion", "synonym", "typo", "casing", "punctuation",
              "whitespace", "suffix")
CORRUPTION_KINDS = ("mojibake", "markup", "boilerplate", "stub", "repetition", "symbols",
                    "replacement_chars")
#: the seven classic kinds plus text truncated to a few characters (mid-word: "syste", "librec-d") and
#: page chrome (navigation, share / cookie / copyright lines) around a short fragment of the text
ALL_CORRUPTION_KINDS = CORRUPTION_KINDS + ("truncation", "page_chrome")
MIN_NEAR_SIMILARITY = 0.85
#: near-duplicate sources are drawn from texts at least this long when there are enough of them
MIN_NEAR_SOURCE_CHARS = 40
EXACT_KIND = "verbatim"

MAX_TRIES = 40


def similarity(a: str, b: str) -> float:
    """Normalised Indel similarity in [0, 1] (rapidfuzz's ``fuzz.ratio`` / 100)."""
    return float(Indel.normalized_similarity(a, b))


def truth_schema(id_dtype: pl.DataType = pl.Utf8) -> dict[str, pl.DataType]:
    return {"id": id_dtype, "defect": pl.Utf8, "kind": pl.Utf8, "source_id": id_dtype}


TRUTH_SCHEMA = truth_schema()


def rng_of(rng: RngLike) -> np.random.Generator:
    return np.random.default_rng(rng)


def pick(rng: np.random.Generator, seq: Sequence):
    return seq[int(rng.integers(len(seq)))]
