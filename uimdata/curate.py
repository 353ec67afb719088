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
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from uimdata.errors import UimError
from uimdata.rundir import RunDir, atomic_write_parquet, atomic_write_text

ACTIONS = ("drop", "relabel", "reweight", "keep")
FORMATS = ("parquet", "jsonl", "hf")
DUPLICATES = ("exact_duplicate", "near_duplicate")
#: issue -> the column holding its suggested label and its probability
SUGGESTIONS = {"label": ("suggested_label", "suggested_label_prob"),
               "inherited_label_bias": ("inherited_label_bias_suggested_label", "inherited_label_bias_suggested_prob")}
RELABEL_PRIORITY = ("inherited_label_bias", "label")

_BASE: dict[str, dict[str, Any]] = {
    "exact_duplicate": {"action": "drop", "keep": "first"},
    "near_duplicate": {"action": "drop", "keep": "first"},
    "corrupted": {"action": "drop"},
    "label": {"action": "relabel", "min_prob": 0.7, "otherwise": "drop"},
    "inherited_label_bias": {"action": "relabel", "min_prob": 0.6, "otherwise": "drop"},
    "outlier": {"action": "drop"},
    "off_target": {"action": "keep"},
    "long_tail": {"action": "reweight", "max_weight": 5.0},
}


def _policy(**over: dict[str, Any]) -> dict[str, dict[str, Any]]:
    p = copy.deepcopy(_BASE)
    for k, v in over.items():
        p[k] = {**p[k], **v} if v.get("action") == p[k]["action"] else dict(v)
    return p


#: built-in policies (measured in `make bench`, see the README)
POLICIES: dict[str, dict[str, dict[str, Any]]] = {
    "conservative": _policy(label={"action": "relabel", "min_prob": 0.9, "otherwise": "keep"},
                            inherited_label_bias={"action": "relabel", "min_prob": 0.8, "otherwise": "keep"},
                            outlier={"action": "keep"}, long_tail={"action": "keep"}),
    "default": _policy(),
    "aggressive": _policy(label={"action": "drop"}, inherited_label_bias={"action": "drop"},
                          off_target={"action": "drop"}),
}
_OPTIONS = {"action": str, "keep": str, "min_prob": float, "otherwise": str, "max_weight": float}


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
        if issue not in _BASE:
            raise UimError(f"{where}: unknown issue", expected=", ".join(_BASE), got=repr(issue))
        if not isinstance(table, dict):
            raise UimError(f"{where}: not a table", expected='e.g. action = "drop"', got=repr(table))
        for key, val in table.items():
            if key not in _OPTIONS:
                raise UimError(f"{where}: unknown key {key!r}", expected=", ".join(_OPTIONS), got=repr(key))
            if _OPTIONS[key] is float and not isinstance(val, int | float) or _OPTIONS[key] is str and not isinstance(val, str):
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
        if float(merged.get("max_weight", 5.0)) < 1:
            raise UimError(f"{where}: max_weight below 1", expected=">= 1", got=repr(merged["max_weight"]))
        policy[issue] = merged
    return str(path), policy


def _allowed(issue: str) -> tuple[str, ...]:
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


def _tail_weights(flags: pl.DataFrame, samples: pl.DataFrame, cap: float) -> np.ndarray:
    """Inverse frequency relative to the median, for classes and for clusters; the larger, capped."""
    w = np.ones(flags.height)
    if "label" in samples.columns:
        lab = samples["label"]
        counts = lab.value_counts()
        med = float(np.median(counts["count"].to_numpy()))
        size = lab.replace_strict(counts["label"], counts["count"], default=None).to_numpy()
        w = np.maximum(w, np.where(np.isnan(size.astype(float)), 1.0, med / np.maximum(size.astype(float), 1)))
    if "cluster_size" in flags.columns:
        cs = flags["cluster_size"].fill_null(0).to_numpy().astype(float)
        med = float(np.median(cs[cs > 0])) if (cs > 0).any() else 1.0
        w = np.maximum(w, np.where(cs > 0, med / np.maximum(cs, 1), 1.0))
    return np.clip(w, 1.0, cap)


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

    # 1. per-row actions (duplicates are handled per cluster below)
    tail_w = None
    for issue in ran:
        if issue in DUPLICATES or issue not in policy:
            continue
        rule = policy[issue]
        if rule["action"] == "reweight" and issue == "long_tail":
            tail_w = _tail_weights(flags, samples, float(rule.get("max_weight", 5.0)))
        is_issue = flags[f"is_{issue}_issue"].fill_null(False).to_numpy()
        why = flags[f"{issue}_reason"].to_list()
        for i in np.flatnonzero(is_issue):
            act = rule["action"]
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
                w = float(tail_w[i]) if issue == "long_tail" and tail_w is not None \
                    else float(rule.get("max_weight", 2.0))
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
        for r in np.unique(roots[np.bincount(roots, minlength=n)[roots] > 1]):
            members = np.flatnonzero(roots == r)
            rule = dup_rules.get("near_duplicate") or dup_rules["exact_duplicate"]
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
