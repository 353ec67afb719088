"""The decisions of a curation: per row, kept / dropped / relabelled / reweighted, with the issue and the reason (:func:`decide`), in named steps: the tail guard, each issue's action, duplicate clusters, frequency reweighting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from uimdata.curate.policy import SETTINGS, detector_class, load_policy
from uimdata.detectors import REGISTRY
from uimdata.detectors.base import flag_issues, is_col, reason_col, score_col
from uimdata.rundir import RunDir

# ----------------------------------------------------------------------------------------- decisions

@dataclass
class Curation:
    manifest: pl.DataFrame     # every input row
    policy_name: str
    policy: dict[str, dict[str, Any]]
    counts: dict[str, int] | None = None


@dataclass
class _Rows:
    """What :func:`decide`'s steps decide, per corpus row: dropped, curated label, weight, and why."""

    samples: pl.DataFrame
    flags: pl.DataFrame
    has_label: bool
    original: list
    label: list
    drop: np.ndarray
    weight: np.ndarray
    reasons: list[list[str]]
    issues_of: list[list[str]]
    #: the issue whose suggestion the row's curated label is
    relabelled_by: list[str | None]

    @classmethod
    def read(cls, run: RunDir) -> _Rows:
        samples = pl.read_parquet(run.require(run.samples, "ingest"))
        flags = pl.read_parquet(run.require(run.flags, "scan"))
        n = flags.height
        has_label = "label" in samples.columns
        original = samples["label"].to_list() if has_label else [None] * n
        return cls(samples, flags, has_label, original, list(original), np.zeros(n, bool), np.ones(n),
                   [[] for _ in range(n)], [[] for _ in range(n)], [None] * n)

    def note(self, i: int, issue: str, why: str) -> None:
        if issue not in self.issues_of[i]:
            self.issues_of[i].append(issue)
        self.reasons[i].append(why)

    def manifest(self) -> pl.DataFrame:
        n, label, original = self.flags.height, self.label, self.original
        act = np.where(self.drop, "dropped", np.where([label[i] != original[i] for i in range(n)], "relabelled",
                                                      np.where(self.weight > 1, "reweighted", "kept")))
        return pl.DataFrame({
            "id": self.flags["id"], "row": self.samples["row"], "action": act,
            "issue": [",".join(x) if x else None for x in self.issues_of],
            "reason": ["; ".join(x) if x else None for x in self.reasons],
            "original_label": pl.Series(original, dtype=pl.Utf8), "label": pl.Series(label, dtype=pl.Utf8),
            "weight": self.weight,
        })


def _oof_and_votes(run: RunDir, flags: pl.DataFrame, classes: list[str], codes: np.ndarray
                   ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The scan's out-of-fold probabilities (``pred_probs.parquet``, columns in ``classes`` order) and the
    kNN vote of each row's neighbours in the run's graph (leave-one-out); None where unavailable."""
    import pyarrow.parquet as pq

    from uimdata.label_model import knn_probs
    from uimdata.stages.index import read_graph

    n = flags.height
    probs = None
    path = run.path / "pred_probs.parquet"
    if path.exists():
        t = pq.read_table(path)
        names = ((t.schema.metadata or {}).get(b"classes") or b"").decode().split("\x1f")
        if t.num_rows == n and names and set(names) <= set(classes):
            flat = t.column("pred_probs").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            raw = np.asarray(flat, np.float64).reshape(t.num_rows, len(names))
            order = {x: j for j, x in enumerate(t.column("id").to_pylist())}
            rows = np.array([order.get(x, -1) for x in flags["id"].to_list()])
            if (rows >= 0).all():
                probs = np.zeros((n, len(classes)))
                probs[:, [classes.index(c) for c in names]] = raw[rows]
    votes = None
    try:
        g = read_graph(run, n)
        votes = knn_probs(g.rows, g.cos, codes, len(classes), prior_weight=0.0) if g.rows.shape[1] else None
    except (OSError, FileNotFoundError, KeyError, ValueError):
        votes = None
    return probs, votes


def tail_guard(run: RunDir, flags: pl.DataFrame, labels: list, policy: dict[str, dict[str, Any]],
                ran: list[str]) -> tuple[dict[str, dict[int, str]], list[str]]:
    """Rows of rare classes whose decision under a ``tail_guard`` issue (label, outlier) the ``tail``
    settings turn into ``keep``: issue -> {row: why}, and the rare classes.

    A class is rare below ``rare_ratio`` x the median class size. Confident learning's per-class evidence
    is weakest there (few rows, a small prior pulls its out-of-fold probabilities down), so a flagged
    member of a rare class is kept when its neighbours in the kNN graph carry its label (``"knn"``:
    vote >= ``knn_min``) or, for an issue that weighs ``"prior"`` (label), when its label still beats the
    suggestion once the out-of-fold probabilities are divided by the class priors (to the power
    ``prior_power``). Then at most ``max_drop`` of a rare class may leave it through these decisions
    (drop or relabel): beyond that, the rows with the weakest evidence stay (:func:`_cap_rare_exits`)."""
    rule = policy.get("tail", {})
    guarded = [issue for issue, cls in REGISTRY.items() if cls.tail_guard]
    out: dict[str, dict[int, str]] = {issue: {} for issue in guarded}
    if rule.get("action", "guard") != "guard" or not any(labels):
        return out, []
    classes = sorted({x for x in labels if x is not None})
    idx = {c: j for j, c in enumerate(classes)}
    codes = np.array([idx[x] if x is not None else -1 for x in labels], np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=len(classes)).astype(float)
    med = float(np.median(counts[counts > 0])) if (counts > 0).any() else 0.0
    rare = (counts > 0) & (counts < float(rule.get("rare_ratio", 0.5)) * med)
    if not rare.any():
        return out, []
    in_rare = (codes >= 0) & rare[np.clip(codes, 0, None)]
    probs, votes = _oof_and_votes(run, flags, classes, codes)
    knn_min = float(rule.get("knn_min", 0.5))
    vote_own = votes[np.arange(len(codes)), np.clip(codes, 0, None)] if votes is not None else np.zeros(len(codes))
    corrected = None
    if probs is not None:
        prior = np.maximum(counts / max(counts.sum(), 1.0), 1e-9) ** float(rule.get("prior_power", 1.0))
        corrected = probs / prior
        corrected /= np.maximum(corrected.sum(axis=1, keepdims=True), 1e-12)
    leaving: dict[str, np.ndarray] = {}
    for issue in guarded:
        if issue not in ran or issue not in policy or policy[issue]["action"] == "keep":
            continue
        evidence = REGISTRY[issue].tail_guard
        flagged = _guard_candidates(flags, issue, policy[issue]) & in_rare
        for i in np.flatnonzero(flagged):
            g = int(codes[i])
            if "knn" in evidence and vote_own[i] >= knn_min:
                out[issue][int(i)] = (f"its neighbours carry its rare class '{classes[g]}' "
                                      f"(vote {vote_own[i]:.2f} >= {knn_min:.2f})")
            elif "prior" in evidence and corrected is not None:
                s = int(np.argmax(np.where(np.arange(len(classes)) == g, -1.0, corrected[i])))
                if corrected[i, g] >= corrected[i, s]:
                    out[issue][int(i)] = (f"corrected for class frequency, its rare class '{classes[g]}' "
                                          f"(q={corrected[i, g]:.2f}) beats '{classes[s]}' (q={corrected[i, s]:.2f})")
        leaving[issue] = np.array([i for i in np.flatnonzero(flagged) if int(i) not in out[issue]], np.int64)
    _cap_rare_exits(flags, leaving, codes, counts, classes, float(rule.get("max_drop", 0.2)), out)
    return out, [classes[j] for j in np.flatnonzero(rare)]


def _guard_candidates(flags: pl.DataFrame, issue: str, rule: dict[str, Any]) -> np.ndarray:
    """The rows whose ``issue`` decision would take them out of their class: flagged, and under a relabel
    that otherwise keeps, only those whose suggestion is confident enough to apply (the others stay anyway)."""
    flagged = flags[is_col(issue)].fill_null(False).to_numpy()
    if rule["action"] == "relabel" and rule.get("otherwise") == "keep":
        _, pcol = detector_class(issue).suggestion_columns or ("", "")
        prob = flags[pcol].fill_null(-1.0).to_numpy() if pcol in flags.columns else np.full(flags.height, -1.0)
        flagged = flagged & (prob >= float(rule["min_prob"]))
    return flagged


def _cap_rare_exits(flags: pl.DataFrame, leaving: dict[str, np.ndarray], codes: np.ndarray, counts: np.ndarray,
                    classes: list[str], cap: float, out: dict[str, dict[int, str]]) -> None:
    """At most ``cap`` of a rare class leaves it through the guarded decisions (``leaving``: issue -> rows):
    beyond that, the rows with the weakest evidence (highest score among the issues acting on them) are
    added to ``out`` (kept)."""
    score = {issue: flags[score_col(issue)].fill_null(1.0).to_numpy() for issue in leaving}
    cand = sorted({int(i) for v in leaving.values() for i in v})
    by_class: dict[int, list[int]] = {}
    for i in cand:
        by_class.setdefault(int(codes[i]), []).append(i)
    for g, rows in by_class.items():
        allowed = int(np.floor(cap * counts[g]))
        if len(rows) <= allowed:
            continue
        # strongest evidence first: the lowest score among the issues that act on the row
        ev = {i: min(float(score[iss][i]) for iss in leaving if i in set(leaving[iss].tolist())) for i in rows}
        for i in sorted(rows, key=lambda r: (ev[r], r))[allowed:]:
            for iss in leaving:
                if i in set(leaving[iss].tolist()):
                    out[iss][i] = (f"at most {cap:.0%} of the rare class '{classes[g]}' ({int(counts[g])} rows) "
                                   "may leave it; this row's evidence is among the weakest")


def decide(run: RunDir, policy_spec: str | None = None) -> Curation:
    """Every row's fate under the policy: 0. the tail guard (rare classes' rows that label / outlier
    decisions must leave alone), 1. each issue's action on its flagged rows, 2. one member kept per
    duplicate cluster, 3. frequency reweighting on the curated set."""
    name, policy = load_policy(policy_spec)
    rows = _Rows.read(run)
    ran = flag_issues(rows.flags.columns)
    guarded, rare = tail_guard(run, rows.flags, rows.original, policy, ran) if rows.has_label else ({}, [])
    deferred = _row_actions(rows, policy, ran, guarded)
    _duplicates(rows, policy, ran)
    _frequency_reweights(rows, policy, ran, deferred, rare)
    return Curation(rows.manifest(), name, policy)


def _row_actions(rows: _Rows, policy: dict[str, dict[str, Any]], ran: list[str],
                 guarded: dict[str, dict[int, str]]) -> dict[str, list[int]]:
    """Step 1: each issue's action on its flagged rows, issue by issue in ``flags`` order (duplicates wait
    for step 2). The rows of a ``reweight_by_frequency`` issue are returned (issue -> rows) for step 3,
    which weighs them once every drop and relabel is known."""
    deferred: dict[str, list[int]] = {}
    for issue in ran:
        if issue not in policy or issue in SETTINGS or detector_class(issue).duplicate:
            continue
        rule = policy[issue]
        why = rows.flags[reason_col(issue)].to_list()
        guard = guarded.get(issue, {})
        for i in np.flatnonzero(rows.flags[is_col(issue)].fill_null(False).to_numpy()):
            i = int(i)
            if i in guard:
                rows.note(i, issue, f"{issue}: kept by the tail guard, {guard[i]}; {why[i]}")
            elif rule["action"] == "reweight" and detector_class(issue).reweight_by_frequency:
                deferred.setdefault(issue, []).append(i)
            else:
                _act(rows, i, issue, rule, why[i])
    return deferred


def _act(rows: _Rows, i: int, issue: str, rule: dict[str, Any], why: str | None) -> None:
    """One flagged row of ``issue`` under its ``rule``: relabelled (else its ``otherwise``), dropped,
    reweighted or kept, with the reason."""
    act, extra = rule["action"], ""
    if act == "relabel":
        if _relabel(rows, i, issue, rule, why):
            return
        act, extra = rule.get("otherwise", "drop"), f" (suggestion below min_prob {rule['min_prob']})"
    if act == "drop":
        rows.drop[i] = True
        rows.note(i, issue, f"{issue}: dropped{extra}; {why}")
    elif act == "reweight":
        w = float(rule.get("max_weight", 2.0))
        rows.weight[i] = max(rows.weight[i], w)
        rows.note(i, issue, f"{issue}: weight {w:.2f}; {why}")
    else:
        rows.note(i, issue, f"{issue}: kept by policy{extra}; {why}")


def _relabel(rows: _Rows, i: int, issue: str, rule: dict[str, Any], why: str | None) -> bool:
    """Relabel row ``i`` to ``issue``'s suggestion when the corpus has labels and the suggestion's probability
    is at least ``min_prob`` (a suggestion of a higher ``relabel_priority`` issue already there stays);
    False when it does not apply."""
    cls = detector_class(issue)
    col, pcol = cls.suggestion_columns or ("", "")
    sug = rows.flags[col][i] if col in rows.flags.columns else None
    prob = rows.flags[pcol][i] if pcol in rows.flags.columns else None
    if not (rows.has_label and sug is not None and prob is not None and prob >= rule["min_prob"]):
        return False
    by = rows.relabelled_by[i]
    if by is None or cls.relabel_priority > detector_class(by).relabel_priority:
        rows.label[i], rows.relabelled_by[i] = sug, issue
    rows.note(i, issue, f"{issue}: relabelled '{rows.original[i]}' -> '{sug}' (p={prob:.2f}); {why}")
    return True


def _duplicates(rows: _Rows, policy: dict[str, dict[str, Any]], ran: list[str]) -> None:
    """Step 2: the duplicate issues the policy drops join their rows into clusters (each detector's
    ``duplicate_links``); one member per cluster survives (per label with ``per_label``): the first or the
    longest (``keep``) of those not dropped for another reason. The last of these issues in registry order
    (near_duplicate, whose clusters hold exact copies too) gives the rule."""
    from uimdata.unionfind import UnionFind

    dups = [issue for issue, cls in REGISTRY.items()
            if cls.duplicate and issue in ran and policy.get(issue, {}).get("action") == "drop"]
    if not dups:
        return
    n = rows.flags.height
    uf = UnionFind(n)
    dup_issue = np.full(n, None, dtype=object)
    for issue in dups:
        links, flagged = detector_class(issue).duplicate_links(rows.flags)
        for a, b in links:
            uf.union(a, b)
        unset = np.array([x is None for x in dup_issue], bool)
        dup_issue[flagged & unset] = issue
    roots = uf.roots()
    rule_issue = dups[-1]
    rule = policy[rule_issue]
    # per_label: members with different (curated) labels are not redundant for a classifier (e.g. a
    # library and its -dev package, described alike): one member per label survives
    per_label = rows.has_label and bool(rule.get("per_label", True))
    groups: dict[tuple[int, Any], list[int]] = {}
    for j in np.flatnonzero(np.bincount(roots, minlength=n)[roots] > 1):
        groups.setdefault((int(roots[j]), rows.label[j] if per_label else None), []).append(int(j))
    ids, texts = rows.flags["id"].to_list(), rows.samples["text"].to_list()
    for members in groups.values():
        if len(members) > 1:
            _keep_one(rows, members, dup_issue, rule_issue, rule, ids, texts)


def _keep_one(rows: _Rows, members: list[int], dup_issue: np.ndarray, rule_issue: str, rule: dict[str, Any],
              ids: list[str], texts: list[str]) -> None:
    """One duplicate cluster (or its rows of one label): the keeper survives, the others are dropped, each
    under the issue that flagged it (else ``rule_issue``). A keeper that is not the cluster's first row is
    noted under the issue that flagged the cluster's first flagged member."""
    alive = [m for m in members if not rows.drop[m]] or list(members)
    keeper = max(alive, key=lambda m: (len(texts[m]), -m)) if rule.get("keep") == "longest" else min(alive)
    for m in members:
        if m == keeper or rows.drop[m]:
            continue
        issue = dup_issue[m] or rule_issue
        rows.drop[m] = True
        rows.note(m, issue, f"{issue}: dropped, a duplicate of kept row {ids[keeper]}")
    cluster_issue = next((dup_issue[m] for m in members if dup_issue[m]), None)  # the issue that flagged its copies
    if cluster_issue and not rows.drop[keeper] and keeper != min(members):
        rows.note(keeper, cluster_issue, "kept as its duplicate cluster's member "
                  f"({rule.get('keep', 'first')} surviving row)")


def _frequency_reweights(rows: _Rows, policy: dict[str, dict[str, Any]], ran: list[str],
                         deferred: dict[str, list[int]], rare: list[str]) -> None:
    """Step 3: a ``reweight_by_frequency`` issue (long_tail) weighs its flagged rows by the detector's
    ``frequency_weights``, counted on the curated set (after every drop and relabel); with the tail guard,
    every surviving member of a rare class counts as its row too, flagged or not."""
    for issue in ran:
        cls = REGISTRY.get(issue)
        if cls is None or not cls.reweight_by_frequency or policy.get(issue, {}).get("action") != "reweight":
            continue
        todo = deferred.get(issue, [])
        if rare and policy.get("tail", {}).get("reweight_rare", True):
            flagged, rare_set = set(todo), set(rare)
            extra = [i for i in range(rows.flags.height)
                     if not rows.drop[i] and rows.label[i] in rare_set and i not in flagged]
            todo = sorted(flagged | set(extra))
        if not todo:
            continue
        weights = cls.frequency_weights(rows.flags, rows.label if rows.has_label else None, ~rows.drop,
                                        float(policy[issue].get("max_weight", 5.0)))
        why = rows.flags[reason_col(issue)].to_list()
        for i in todo:
            w = float(weights[i])
            if w <= 1 and not why[i]:
                continue
            rows.weight[i] = max(rows.weight[i], w)
            rows.note(i, issue, f"{issue}: weight {w:.2f}; "
                      f"{why[i] or f'a member of the rare class {rows.label[i]!r} (tail guard)'}")
