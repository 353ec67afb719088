"""curate: turn a run's flags into a curated training set, with the reason for every row.

A policy says, per issue, what to do with a flagged row:

* ``drop``: leave it out (for duplicates: every member of a duplicate cluster but one, chosen by
  ``keep``: ``first`` = the earliest row, ``longest`` = the longest text);
* ``relabel``: replace the label by the detector's suggestion when its probability is at least
  ``min_prob``, else ``otherwise`` (``drop`` or ``keep``);
* ``reweight``: keep it with a ``weight`` > 1 (``max_weight``; ``long_tail``: inverse class / cluster
  frequency relative to the median, capped at ``max_weight``);
* ``keep``: do nothing.

When several issues apply to one row, ``drop`` wins over ``relabel``, which wins over ``reweight``;
between two relabels, the higher ``relabel_priority`` wins (``inherited_label_bias``, downstream evidence
from ``uim link``, over ``label``).

What an issue allows and its table in each policy are declared on its detector class
(:class:`~uimdata.detectors.base.Detector`: ``curate_actions``, ``curate_rule``, ``curate_policies``, ...);
``policy.py`` holds what the actions mean and the policy tables that are not issues (``[tail]``),
``decide.py`` the steps of :func:`decide`, ``export.py`` :func:`curate`. Built-in policies: ``conservative``, ``default``, ``aggressive``
(:func:`builtin_policies`, built from the registered detectors); any other is a TOML file whose tables
override a built-in one (``base = "default"``), validated with one-line errors.

Output: the curated rows (``id``, ``text``, ``label`` (possibly relabelled), ``original_label``,
``weight``, then the input's other columns untouched), ``manifest`` (every input row: ``action`` =
kept / dropped / relabelled / reweighted, ``issue``, ``reason``), and the ``curation`` table in
``uim.duckdb``. Same run + policy gives byte-identical files.
"""

from __future__ import annotations

from uimdata.curate.decide import Curation, decide
from uimdata.curate.export import curate
from uimdata.curate.policy import (
    ACTIONS,
    FORMATS,
    POLICY_NAMES,
    SETTINGS,
    base_policy,
    builtin_policies,
    load_policy,
)

__all__ = ["ACTIONS", "FORMATS", "POLICY_NAMES", "SETTINGS", "Curation", "base_policy", "builtin_policies",
           "curate", "decide", "load_policy"]
