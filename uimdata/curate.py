"""curate: turn a run's flags into a curated training set, with the reason for every row.

A policy says, per issue, what to do with a flagged row:

* ``drop``: leave it out (for duplicates: every member of a duplicate cluster but one, chosen by
  ``keep``: ``first`` = the earliest row, ``longest`` = the longest text);
* ``relabel``: replace the label by the detector's suggestion when its probability is at least
  ``min_prob``, else ``otherwise`` (``drop`` or ``keep``);
* ``reweight``: keep it with a ``weight`` > 1 (``long_tail``: inverse class / cluster frequency relative
  to the median, capped at ``max_weight``);
* ``keep``: do nothing.

When several issues apply to one row, ``drop`` wins over ``relabel``, which wins over ``reweight``;
a relabel from ``inherited_label_bias`` (downstream evidence, ``uim link``) wins over one from ``label``.
Built-in policies: ``conservative``, ``default``, ``aggressive`` (:data:`POLICIES`); any other is a TOML
file whose tables override a built-in one (``base = "default"``), validated with one-line errors.

Output: the curated rows (``id``, ``text``, ``label`` (possibly relabelled), ``original_label``,
``weight``, then the input's other columns untouched), ``manifest`` (every input row: ``action`` =
kept / dropped / relabelled / reweighted, ``issue``, ``reason``), and the ``curation`` table in
``uim.duckdb``. Same run + policy gives byte-identical files.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from uimdata.errors import UimError
from uimdata.rundir import RunDir, atomic_write_parquet, atomic_write_text, overlaps_input

ACTIONS = ("drop", "relabel", "reweight", "keep")
FORMATS = ("parquet", "jsonl", "hf")
DUPLICATES = ("exact_duplicate", "near_duplicate")
#: issue -> the column holding its suggested label and its probability
SUGGESTIONS = {"label": ("suggested_label", "suggested_label_prob"),
               "inherited_label_bias": ("inherited_label_bias_suggested_label", "inherited_label_bias_suggested_prob")}
RELABEL_PRIORITY = ("inherited_label_bias", "label")

_BASE: dict[str, dict[str, Any]] = {
    "exact_duplicate": {"action": "drop", "keep": "first", "per_label": True},
    "near_duplicate": {"action": "drop", "keep": "first", "per_label": True},
    "corrupted": {"action": "drop"},
    # Gopher / C4 heuristics: readable text; on the multi-domain benchmark 0-2.8 % of clean rows and
    # 21-29 % of planted corrupted ones, which corrupted flags anyway
    # (docs/benchmarks.md#multi-domain-benchmark): kept by default, dropped by `aggressive`
    "low_quality": {"action": "keep"},
    "label": {"action": "relabel", "min_prob": 0.7, "otherwise": "drop"},
    "inherited_label_bias": {"action": "relabel", "min_prob": 0.6, "otherwise": "drop"},
    "outlier": {"action": "drop"},
    "off_target": {"action": "keep"},
    "long_tail": {"action": "reweight", "max_weight": 5.0},
    # not an issue: how label / outlier decisions treat the members of rare classes (see _tail_guard)
    "tail": {"action": "guard", "rare_ratio": 0.5, "max_drop": 0.2, "knn_min": 0.5, "prior_power": 1.0,
             "reweight_rare": True},
}
#: policy tables that are not issues
SETTINGS = ("tail",)


def _policy(**over: dict[str, Any]) -> dict[str, dict[str, Any]]:
    p = copy.deepcopy(_BASE)
    for k, v in over.items():
        p[k] = {**p[k], **v} if v.get("action") == p[k]["action"] else dict(v)
    return p


#: built-in policies (measured in `make bench`, see docs/benchmarks.md)
POLICIES: dict[str, dict[str, dict[str, Any]]] = {
    "conservative": _policy(label={"action": "relabel", "min_prob": 0.9, "otherwise": "keep"},
                            inherited_label_bias={"action": "relabel", "min_prob": 0.8, "otherwise": "keep"},
                            outlier={"action": "keep"}, long_tail={"action": "keep"}),
    # near duplicates kept and rare classes weighted at most 2x: measured (docs/benchmarks.md, tail-aware curation)
    "default": _policy(near_duplicate={"action": "keep"}, long_tail={"action": "reweight", "max_weight": 2.0}),
    "aggressive": _policy(label={"action": "drop"}, inherited_label_bias={"action": "drop"},
                          off_target={"action": "drop"}, low_quality={"action": "drop"}),
}
_OPTIONS = {"action": str, "keep": str, "min_prob": float, "otherwise": str, "max_weight": float,
            "rare_ratio": float, "max_drop": float, "knn_min": float, "prior_power": float, "per_label": bool,
            "reweight_rare": bool}


def load_policy(spec: str | None) -> tuple[str, dict[str, dict[str, Any]]]:
    """A built-in name or a TOML file -> (name, policy)."""
    spec = spec or "default"
    if spec in POLICIES:
        return spec, copy.deepcopy(POLICIES[spec])
    path = Path(spec)
    if not path.exists():
        raise UimError(f"unknown policy {spec!r}", expected=f"one of {', '.join(POLICIES)} or a TOML file",
                       got="no such name or file")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UimError(f"{path}: not valid TOML", got=str(e)) from None
    base = raw.pop("base", "default")
    if base not in POLICIES:
        raise UimError(f"{path}: unknown base policy {base!r}", expected=", ".join(POLICIES), got=repr(base))
    policy = copy.deepcopy(POLICIES[base])
    for issue, table in raw.items():
        where = f"{path}: [{issue}]"
        if not isinstance(table, dict) and issue not in _BASE:
            raise UimError(f"{path}: unknown top-level key {issue!r}",
                           expected="base = \"NAME\" and one [ISSUE] table per issue", got=f"{issue} = {table!r}",
                           hint=f'put options under their issue\'s table, e.g. [label] then {issue} = ...')
        if issue not in _BASE:
            raise UimError(f"{where}: unknown issue", expected=", ".join(_BASE), got=repr(issue))
        if not isinstance(table, dict):
            raise UimError(f"{where}: not a table", expected='e.g. action = "drop"', got=repr(table))
        for key, val in table.items():
            if key not in _OPTIONS:
                raise UimError(f"{where}: unknown key {key!r}", expected=", ".join(_OPTIONS), got=repr(key))
            if _OPTIONS[key] is float and (not isinstance(val, int | float) or isinstance(val, bool)) \
                    or _OPTIONS[key] is str and not isinstance(val, str) \
                    or _OPTIONS[key] is bool and not isinstance(val, bool):
                raise UimError(f"{where}: {key} has the wrong type", expected=_OPTIONS[key].__name__,
                               got=repr(val))
        action = table.get("action", policy[issue]["action"])
        allowed = _allowed(issue)
        if action not in allowed:
            raise UimError(f"{where}: action {action!r} does not apply", expected=" | ".join(allowed),
                           got=repr(action))
        merged = {**policy[issue], **table} if action == policy[issue]["action"] else {**_BASE[issue], **table}
        merged["action"] = action
        if merged.get("keep", "first") not in ("first", "longest"):
            raise UimError(f"{where}: keep must be first or longest", expected="first | longest",
                           got=repr(merged["keep"]))
        if merged.get("otherwise", "drop") not in ("drop", "keep"):
            raise UimError(f"{where}: otherwise must be drop or keep", expected="drop | keep",
                           got=repr(merged["otherwise"]))
        if not 0 <= float(merged.get("min_prob", 0.5)) <= 1:
            raise UimError(f"{where}: min_prob out of range", expected="0 <= min_prob <= 1",
                           got=repr(merged["min_prob"]))
        for key in ("max_drop", "knn_min"):
            if not 0 <= float(merged.get(key, 0.5)) <= 1:
                raise UimError(f"{where}: {key} out of range", expected=f"0 <= {key} <= 1", got=repr(merged[key]))
        if float(merged.get("max_weight", 5.0)) < 1:
            raise UimError(f"{where}: max_weight below 1", expected=">= 1", got=repr(merged["max_weight"]))
        policy[issue] = merged
    return str(path), policy


def _allowed(issue: str) -> tuple[str, ...]:
    if issue == "tail":
        return ("guard", "off")
    if issue in SUGGESTIONS:
        return ("drop", "relabel", "keep", "reweight")
    if issue == "long_tail":
        return ("reweight", "keep", "drop")
    return ("drop", "keep", "reweight")


# ----------------------------------------------------------------------------------------- decisions

@dataclass
class Curation:
    manifest: pl.DataFrame     # every input row
    policy_name: str
    policy: dict[str, dict[str, Any]]
    counts: dict[str, int] | None = None


def _tail_weights(flags: pl.DataFrame, samples: pl.DataFrame, cap: float,
                  labels: list | None = None, kept: np.ndarray | None = None) -> np.ndarray:
    """Inverse frequency relative to the median, for classes and for clusters; the larger, capped.
    ``labels`` / ``kept``: the curated labels and the rows that survive; class sizes are then counted
    on the curated set, so a class that lost rows to other decisions gets its weight back."""
    w = np.ones(flags.height)
    if "label" in samples.columns:
        lab = samples["label"] if labels is None else pl.Series("label", labels, dtype=pl.Utf8)
        counted = lab if kept is None else lab.filter(pl.Series(kept))
        counts = counted.drop_nulls().value_counts()
        med = float(np.median(counts["count"].to_numpy())) if counts.height else 1.0
        size = lab.replace_strict(counts["label"], counts["count"], default=None).to_numpy()
        w = np.maximum(w, np.where(np.isnan(size.astype(float)), 1.0, med / np.maximum(size.astype(float), 1)))
    if "cluster_size" in flags.columns:
        cs = flags["cluster_size"].fill_null(0).to_numpy().astype(float)
        med = float(np.median(cs[cs > 0])) if (cs > 0).any() else 1.0
        w = np.maximum(w, np.where(cs > 0, med / np.maximum(cs, 1), 1.0))
    return np.clip(w, 1.0, cap)


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


def _tail_guard(run: RunDir, flags: pl.DataFrame, labels: list, policy: dict[str, dict[str, Any]],
                ran: list[str]) -> tuple[dict[str, dict[int, str]], list[str]]:
    """Rows of rare classes whose label / outlier decision the ``tail`` settings turn into ``keep``:
    issue -> {row: why}, and the rare classes.

    A class is rare below ``rare_ratio`` x the median class size. Confident learning's per-class evidence
    is weakest there (few rows, a small prior pulls its out-of-fold probabilities down), so a member of a
    rare class flagged as a label issue is kept when its neighbours in the kNN graph carry its label
    (vote >= ``knn_min``) or when its label still beats the suggestion once the out-of-fold probabilities
    are divided by the class priors (to the power ``prior_power``); an outlier of a rare class is kept
    when its neighbours carry its label. Then at most ``max_drop`` of a rare class may leave it through
    label / outlier decisions (drop or relabel): beyond that, the rows with the weakest evidence stay."""
    rule = policy.get("tail", {})
    out: dict[str, dict[int, str]] = {"label": {}, "outlier": {}}
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
    for issue in ("label", "outlier"):
        if issue not in ran or issue not in policy or policy[issue]["action"] == "keep":
            continue
        flagged = flags[f"is_{issue}_issue"].fill_null(False).to_numpy() & in_rare
        if issue == "label" and policy[issue]["action"] == "relabel" and policy[issue].get("otherwise") == "keep":
            col, pcol = SUGGESTIONS["label"]
            prob = flags[pcol].fill_null(-1.0).to_numpy() if pcol in flags.columns else np.full(len(codes), -1.0)
            flagged &= prob >= float(policy[issue]["min_prob"])  # the others are kept anyway
        for i in np.flatnonzero(flagged):
            g = int(codes[i])
            if vote_own[i] >= knn_min:
                out[issue][int(i)] = (f"its neighbours carry its rare class '{classes[g]}' "
                                      f"(vote {vote_own[i]:.2f} >= {knn_min:.2f})")
            elif issue == "label" and corrected is not None:
                s = int(np.argmax(np.where(np.arange(len(classes)) == g, -1.0, corrected[i])))
                if corrected[i, g] >= corrected[i, s]:
                    out[issue][int(i)] = (f"corrected for class frequency, its rare class '{classes[g]}' "
                                          f"(q={corrected[i, g]:.2f}) beats '{classes[s]}' (q={corrected[i, s]:.2f})")
        leaving[issue] = np.array([i for i in np.flatnonzero(flagged) if int(i) not in out[issue]], np.int64)
    # the cap: at most max_drop of a rare class leaves it through these decisions
    cap = float(rule.get("max_drop", 0.2))
    score = {issue: flags[f"{issue}_score"].fill_null(1.0).to_numpy() for issue in leaving}
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
    return out, [classes[j] for j in np.flatnonzero(rare)]


def decide(run: RunDir, policy_spec: str | None = None) -> Curation:
    name, policy = load_policy(policy_spec)
    samples = pl.read_parquet(run.require(run.samples, "ingest"))
    flags = pl.read_parquet(run.require(run.flags, "scan"))
    n = flags.height
    ran = [c.removeprefix("is_").removesuffix("_issue") for c in flags.columns
           if c.startswith("is_") and c.endswith("_issue")]
    has_label = "label" in samples.columns
    original = samples["label"].to_list() if has_label else [None] * n
    label = list(original)
    drop = np.zeros(n, bool)
    weight = np.ones(n)
    reasons: list[list[str]] = [[] for _ in range(n)]
    issues_of: list[list[str]] = [[] for _ in range(n)]
    relabelled_by: list[str | None] = [None] * n

    def note(i: int, issue: str, why: str) -> None:
        if issue not in issues_of[i]:
            issues_of[i].append(issue)
        reasons[i].append(why)

    # 0. the tail guard: label / outlier decisions that must not empty a rare class
    guarded, _rare = _tail_guard(run, flags, original, policy, ran) if has_label else ({}, [])
    # 1. per-row actions (duplicates are handled per cluster below)
    tail_rows: list[int] = []
    for issue in ran:
        if issue in DUPLICATES or issue not in policy:
            continue
        rule = policy[issue]
        is_issue = flags[f"is_{issue}_issue"].fill_null(False).to_numpy()
        why = flags[f"{issue}_reason"].to_list()
        guard = guarded.get(issue, {})
        for i in np.flatnonzero(is_issue):
            act = rule["action"]
            if int(i) in guard:
                note(i, issue, f"{issue}: kept by the tail guard, {guard[int(i)]}; {why[i]}")
                continue
            if act == "reweight" and issue == "long_tail":
                tail_rows.append(int(i))
                continue
            if act == "relabel":
                col, pcol = SUGGESTIONS[issue]
                sug = flags[col][int(i)] if col in flags.columns else None
                prob = flags[pcol][int(i)] if pcol in flags.columns else None
                if has_label and sug is not None and prob is not None and prob >= rule["min_prob"]:
                    if relabelled_by[i] is None or RELABEL_PRIORITY.index(issue) < RELABEL_PRIORITY.index(
                            relabelled_by[i]):
                        label[i], relabelled_by[i] = sug, issue
                    note(i, issue, f"{issue}: relabelled '{original[i]}' -> '{sug}' (p={prob:.2f}); {why[i]}")
                    continue
                act = rule.get("otherwise", "drop")
                extra = f" (suggestion below min_prob {rule['min_prob']})"
            else:
                extra = ""
            if act == "drop":
                drop[i] = True
                note(i, issue, f"{issue}: dropped{extra}; {why[i]}")
            elif act == "reweight":
                w = float(rule.get("max_weight", 2.0))
                weight[i] = max(weight[i], w)
                note(i, issue, f"{issue}: weight {w:.2f}; {why[i]}")
            else:
                note(i, issue, f"{issue}: kept by policy{extra}; {why[i]}")

    # 2. duplicates: one member per cluster survives (the first / longest not dropped for another reason)
    dup_rules = {i: policy[i] for i in DUPLICATES if i in ran and policy[i]["action"] == "drop"}
    if dup_rules:
        ids = flags["id"].to_list()
        pos = {x: j for j, x in enumerate(ids)}
        parent = np.arange(n)

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        def union(a: int, b: int) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        dup_issue = np.full(n, None, dtype=object)
        if "exact_duplicate" in dup_rules:
            for j, of in enumerate(flags["duplicate_of"].to_list()):
                if of is not None:
                    union(j, pos[of])
                    dup_issue[j] = "exact_duplicate"
        if "near_duplicate" in dup_rules and "duplicate_cluster" in flags.columns:
            first: dict[int, int] = {}
            near = flags["is_near_duplicate_issue"].fill_null(False).to_numpy()
            for j, c in enumerate(flags["duplicate_cluster"].to_list()):
                if c is not None:
                    union(j, first.setdefault(c, j))
                    if near[j] and dup_issue[j] is None:
                        dup_issue[j] = "near_duplicate"
        roots = np.array([find(j) for j in range(n)])
        texts = samples["text"].to_list()
        rule = dup_rules.get("near_duplicate") or dup_rules["exact_duplicate"]
        # per_label: members with different (curated) labels are not redundant for a classifier (e.g. a
        # library and its -dev package, described alike): one member per label survives
        per_label = has_label and bool(rule.get("per_label", True))
        groups: dict[tuple[int, Any], list[int]] = {}
        for j in np.flatnonzero(np.bincount(roots, minlength=n)[roots] > 1):
            groups.setdefault((int(roots[j]), label[j] if per_label else None), []).append(int(j))
        for members in groups.values():
            if len(members) < 2:
                continue
            members = np.array(members)
            alive = [int(m) for m in members if not drop[m]] or [int(m) for m in members]
            keeper = max(alive, key=lambda m: (len(texts[m]), -m)) if rule.get("keep") == "longest" else min(alive)
            for m in members:
                if m == keeper or drop[m]:
                    continue
                issue = dup_issue[m] or ("near_duplicate" if "near_duplicate" in dup_rules else "exact_duplicate")
                drop[m] = True
                note(int(m), issue, f"{issue}: dropped, a duplicate of kept row {ids[keeper]}")
            if any(dup_issue[m] for m in members) and not drop[keeper] and keeper != min(members):
                note(keeper, "near_duplicate", "kept as its duplicate cluster's member "
                     f"({rule.get('keep', 'first')} surviving row)")
    # 3. long tail: inverse frequency counted on the curated set (after every drop and relabel); with the
    # tail guard, every surviving member of a rare class counts as a tail row, flagged or not
    reweights = "long_tail" in ran and policy.get("long_tail", {}).get("action") == "reweight"
    if reweights and _rare and policy.get("tail", {}).get("reweight_rare", True):
        flagged_tail = set(tail_rows)
        rare_set = set(_rare)
        extra = [i for i in range(n) if not drop[i] and label[i] in rare_set and i not in flagged_tail]
        tail_rows = sorted(flagged_tail | set(extra))
    if tail_rows:
        rule = policy["long_tail"]
        tail_w = _tail_weights(flags, samples, float(rule.get("max_weight", 5.0)), labels=label, kept=~drop)
        why = flags["long_tail_reason"].to_list()
        for i in tail_rows:
            w = float(tail_w[i])
            if w <= 1 and not why[i]:
                continue
            weight[i] = max(weight[i], w)
            note(i, "long_tail", f"long_tail: weight {w:.2f}; "
                 f"{why[i] or f'a member of the rare class {label[i]!r} (tail guard)'}")
    act = np.where(drop, "dropped", np.where([label[i] != original[i] for i in range(n)], "relabelled",
                                             np.where(weight > 1, "reweighted", "kept")))
    manifest = pl.DataFrame({
        "id": flags["id"], "row": samples["row"], "action": act,
        "issue": [",".join(x) if x else None for x in issues_of],
        "reason": ["; ".join(x) if x else None for x in reasons],
        "original_label": pl.Series(original, dtype=pl.Utf8), "label": pl.Series(label, dtype=pl.Utf8),
        "weight": weight,
    })
    return Curation(manifest, name, policy)


# ----------------------------------------------------------------------------------------- export

def _original_rows(run: RunDir, meta: dict[str, Any]) -> pl.DataFrame:
    """The input corpus as scanned (all its columns), in corpus order."""
    from uimdata.readers import ROW_COL, read_batches

    if "metadata" in meta:  # scans that keep the corpus's columns in samples (docs/corpora.md)
        from uimdata.stages.ingest import original_rows

        return pl.from_arrow(original_rows(str(run.path), meta))
    corpus = meta["config"]["corpus"]
    if not Path(corpus).exists():
        raise UimError(f"the run's corpus {corpus} is gone", expected="the file `uim scan` read",
                       got="no such path", hint="curate needs the input to copy its other columns")
    schema, batches = read_batches(corpus, encoding_errors=meta["config"].get("encoding_errors", "strict"))
    parts = list(batches)
    df = pl.from_arrow(pa.concat_tables(parts))
    return df.sort(ROW_COL).rename({ROW_COL: "row"})


def curate(run_path: str, out: str, policy: str | None = None, fmt: str = "parquet",
           upsample: bool = False) -> tuple[Curation, Path]:
    from uimdata.store import build_db, read_detectors

    if fmt not in FORMATS:
        raise UimError("--format", expected=" | ".join(FORMATS), got=repr(fmt))
    run = RunDir(run_path)
    meta = run.read_meta()
    _check_out(Path(out), meta)
    _writable(run.path, "the run directory (curate records its manifest there, in the curation table)")
    cur = decide(run, policy)
    src = _original_rows(run, meta)
    cols = meta.get("columns", {})
    role_cols = {cols.get("id"), cols.get("text"), cols.get("label"), "row"} - {None}
    others = [c for c in src.columns if c not in role_cols and c not in ("id", "text", "label", "original_label",
                                                                          "weight")]
    samples = pl.read_parquet(run.samples, columns=["id", "text", "row"])
    m = cur.manifest
    full = samples.join(m.select("id", "action", "label", "original_label", "weight"), on="id",
                        maintain_order="left")
    full = full.join(src.select("row", *others), on="row", how="left", maintain_order="left")
    curated = full.filter(pl.col("action") != "dropped").select(
        "id", "text", "label", "original_label", "weight", *others)
    if "label" not in pl.read_parquet_schema(run.samples):
        curated = curated.drop("label", "original_label")
    if upsample:
        reps = np.round(curated["weight"].to_numpy()).astype(int)
        curated = curated[np.repeat(np.arange(curated.height), np.maximum(reps, 1)).tolist()]
        curated = curated.with_columns(pl.lit(1.0).alias("weight"))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    _writable(out_dir, "the output directory")
    if fmt == "parquet":
        target = out_dir / "curated.parquet"
        atomic_write_parquet(curated.to_arrow(), target)
    elif fmt == "jsonl":
        target = out_dir / "curated.jsonl"
        atomic_write_text(curated.write_ndjson(), target)
    else:
        target = out_dir / "curated"
        _save_hf(curated, target)
    atomic_write_parquet(m.to_arrow(), out_dir / "manifest.parquet")
    atomic_write_text(json.dumps({"policy": cur.policy_name, "rules": cur.policy}, indent=2, sort_keys=True),
                      out_dir / "policy.json")
    counts = m["action"].value_counts().sort("action")
    atomic_write_parquet(m.with_columns(pl.lit(cur.policy_name).alias("policy")).to_arrow(),
                         run.path / "tables" / "curation.parquet")
    build_db(run, read_detectors(run))
    cur.counts = dict(zip(counts["action"].to_list(), counts["count"].to_list()))
    return cur, target


def _check_out(out: Path, meta: dict[str, Any]) -> None:
    """The export never lands in (or around) the corpus it was curated from."""
    corpus = meta.get("config", {}).get("corpus")
    if not corpus:
        return
    src, target = Path(corpus).expanduser().resolve(), out.expanduser().resolve()
    if overlaps_input(target, src):
        raise UimError(f"-o {out} overlaps the run's corpus {corpus}",
                       expected="an output folder apart from the corpus (a later scan would read the export "
                                "as corpus)", got=str(target), hint="pass a new folder, e.g. -o curated/default")


def _writable(path: Path, what: str) -> None:
    """Fail before writing anything when ``path`` cannot take a file (read-only filesystem, no space)."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".uim-write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UimError(f"cannot write to {what} {path}: {e.strerror or e}", expected="a writable directory",
                       hint="make it writable, or copy the run somewhere writable first") from None


def _save_hf(df: pl.DataFrame, target: Path) -> None:
    import shutil
    import tempfile

    try:
        from datasets import Dataset
    except ImportError:
        raise UimError("--format hf needs the datasets package", expected="datasets installed",
                       got="not installed", hint="pip install 'uimdata[hf]'") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        Dataset.from_polars(df).save_to_disk(str(tmp / "ds"))
        if target.exists():
            shutil.rmtree(target)
        (tmp / "ds").rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
