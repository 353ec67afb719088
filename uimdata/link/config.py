"""What ``uim link`` is asked for (:class:`LinkConfig`) and what it returns (:class:`LinkResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from uimdata.downstream import DownstreamSpec
from uimdata.rundir import RunDir


@dataclass(kw_only=True)
class LinkConfig(DownstreamSpec):
    """``uim link``'s options: where the downstream set is and how to read it (:class:`DownstreamSpec`),
    the run it is linked to, and the thresholds below."""

    run: str
    k: int = 10
    #: downstream rows a slice needs to be ranked
    min_down: int = 10
    #: inherited label bias: the given label's share of nearby downstream truth at most this ...
    bias_given_max: float = 0.2
    #: ... and another label's share at least this (0.45: the concept's recall on the dictionary corpus 0.79 ->
    #: 0.83 at precision 0.91, the technical one's precision 0.853 -> 0.850; docs/benchmarks.md)
    bias_other_min: float = 0.45
    #: nearest downstream rows each pre-training row looks at
    bias_k: int = 10
    #: smallest flagged region (pre-training rows) and its smallest downstream support
    bias_min_rows: int = 8
    #: candidates join a region through a direct kNN edge (1) or one shared neighbour (2)
    bias_hops: int = 1
    bias_min_support: int = 8
    #: the given label's share in the region's downstream support must be at most this x its usual share
    bias_effect: float = 0.25
    #: a region keeps the rows whose pre-training neighbours mostly (at least this share) belong to the
    #: region or carry its downstream label; rows that only sit next to it are let go (0 = keep all)
    bias_core: float = 0.5
    #: a region is systematic when the corpus agrees with itself there: at least this share of its rows'
    #: kNN-graph neighbours carry the given label (a mixed area is the label detector's business)
    bias_self_agreement: float = 0.5
    #: significance level of the bias regions' test (Bonferroni) and of the issue attribution
    alpha: float = 0.05
    #: slices described (terms, examples) in rank order
    describe_top: int = 50


@dataclass
class LinkResult:
    run: RunDir
    slices: pl.DataFrame
    attribution: pl.DataFrame
    n_down: int
    error_rate: float
    outcome: str
    bias_regions: int
    timings: dict[str, float] = field(default_factory=dict)
    #: things the user should know (e.g. downstream labels the corpus does not have)
    warnings: list[str] = field(default_factory=list)
