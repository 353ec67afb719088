"""``uim curate``: write the curated rows, the manifest and the ``curation`` table of a decided curation (parquet, jsonl or a Hugging Face dataset folder), never over what uimdata did not write."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from uimdata.curate.decide import Curation, decide
from uimdata.curate.policy import FORMATS
from uimdata.errors import UimError
from uimdata.rundir import RunDir, atomic_write_parquet, atomic_write_text, overlaps_input

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
    from uimdata.store import publish

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
    publish(run, {"curation": m.with_columns(pl.lit(cur.policy_name).alias("policy"))})
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
