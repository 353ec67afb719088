"""link: tie a downstream model's errors to the regions and issues of the pre-training corpus.

``uim link RUN DOWNSTREAM`` embeds a downstream evaluation set into the run's space (the run's model,
or the set's own ``embedding`` column) and finds each downstream row's ``k`` nearest pre-training rows.
From there:

* **slices** (:mod:`uimdata.link.slices`): regions of the joint space: the run's k-means clusters
  (``long_tail``'s ``cluster_id``; a downstream row belongs to the cluster most of its neighbours are
  in), every value of a column named with ``--slice-col``, and each inherited-label-bias region (below).
  Per slice: downstream rows, errors, the error rate with a Wilson 95 % interval, its lift over the
  overall error rate, pre-training rows, their density and the fraction flagged by each detector.
  Slices are ranked by the lower bound of the lift's 95 % interval (``score``): a slice of 3 rows with
  3 errors has a low lower bound and cannot outrank a large slice whose excess error is certain. Slices
  with fewer than ``min_down`` downstream rows are listed but not ranked. The top ones are described
  (:mod:`uimdata.link.describe`: distinctive terms, representative texts).
* **issue_attribution** (:mod:`uimdata.link.attribution`): one logistic regression of a downstream row's
  error on the share of its ``k`` pre-training neighbours flagged by each issue; odds ratio per +10
  points of share with a 95 % interval and p-value (statsmodels).
* **inherited label bias** (:mod:`uimdata.link.bias`, when the downstream set has true labels): for each
  pre-training row, the true labels of its nearest downstream rows. A row whose given label ``g`` is
  nearly absent there and another label ``L`` dominates is a candidate; candidates with the same
  ``(g, L)`` that are linked in the pre-training kNN graph form a region. A region is flagged when its
  downstream rows carry ``g`` far less often than downstream rows next to ``g``-labelled rows do
  elsewhere (one-sided binomial test, Bonferroni-corrected). Confident learning misses such regions when
  most of them are mislabelled the same way; the downstream truth does not. Its rows get
  ``is_inherited_label_bias_issue`` in ``flags`` with ``inherited_label_bias_suggested_label`` = ``L``.

:func:`link` (:mod:`uimdata.link.pipeline`) runs the steps; everything is computed in memory first, then
written (each file atomically) and ``uim.duckdb`` rebuilt: a failed link leaves the run as it was.
Re-running replaces the previous link's tables. :class:`LinkConfig` holds the options.
"""

from uimdata.link.config import LinkConfig, LinkResult
from uimdata.link.pipeline import link

__all__ = ["LinkConfig", "LinkResult", "link"]
