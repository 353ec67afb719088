"""The scan pipeline: ingest -> embed -> index -> detect -> store.

Batch stages run through an executor (``LocalExecutor`` by default); global steps (kNN graph,
global detectors) run once over the whole corpus. The run directory is built in a temporary
sibling and swapped in only when every step succeeded, so a failed scan never touches an
earlier run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from uimdata import __version__, detectors, groups
from uimdata.context import ScanContext
from uimdata.detectors.base import BatchDetector, DetectorResult
from uimdata.device import check_device
from uimdata.errors import UimError
from uimdata.executors.local import LocalExecutor
from uimdata.rundir import RunDir, StagingRun, atomic_write_parquet, check_output
from uimdata.stages.embed import DEFAULT_MODEL, EmbeddingCache, EmbedStage, default_cache_dir
from uimdata.stages.index import KnnIndex
from uimdata.stages.ingest import Columns, CorpusReader, IngestStage, combine, dedupe_ids, fixed_list
from uimdata.store import build_db

DEFAULT_DETECTORS = ("exact_duplicate", "near_duplicate", "corrupted", "low_quality", "label", "outlier", "long_tail",
                     "off_target")
SHARD_ROWS = 100_000


@dataclass
class ScanConfig:
    corpus: str
    out: str
    model: str = DEFAULT_MODEL
    text_col: str | None = None
    label_col: str | None = None
    id_col: str | None = None
    embedding_col: str | None = None
    k: int = 10
    exact_max: int = 20000
    device: str = "auto"
    encoding_errors: str = "strict"
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    detector_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache_dir: str | None = None
    label_model: str = "ensemble"
    reference: str | None = None
    engine: str = "local"
    address: str | None = None
    #: rows per embed batch (one cache shard each: an interrupted scan keeps every finished batch)
    embed_batch_rows: int | None = None
    #: kNN index above exact_max rows: auto (HNSW locally, IVF searched in Ray task shards under
    #: --engine ray) | hnsw | ivf | ivfpq
    index: str = "auto"
    #: storage of RUN/embeddings: float32, or float16 (half the disk; read back as float32)
    embedding_dtype: str = "float32"
    #: metadata columns kept in samples: None = every input column but the text and the embedding
    keep_cols: list[str] | None = None
    drop_cols: list[str] | None = None
    #: columns issues are counted by (issue_by_group): None = auto-detect, [] = none (uimdata/groups.py)
    group_cols: list[str] | None = None
    #: texts longer than the model's window: auto (chunked and pooled when > 2 % of rows would be cut) | none
    chunking: str = "auto"


@dataclass
class ScanResult:
    run: RunDir
    summary: list[dict[str, Any]]
    timings: dict[str, dict[str, float]]
    skipped: dict[str, str] = field(default_factory=dict)


def _ingest(cfg: ScanConfig, ex: LocalExecutor) -> tuple[pa.Table, Columns, CorpusReader]:
    source = str(cfg.corpus)
    # file by file: each file's columns resolved on its own (uimdata/stages/ingest.py)
    reader = CorpusReader(source, cfg.text_col, cfg.id_col, cfg.label_col, cfg.embedding_col,
                          keep_cols=cfg.keep_cols, drop_cols=cfg.drop_cols, encoding_errors=cfg.encoding_errors)
    parts = ex.map(IngestStage(source), reader.batches(), desc="ingest")
    if not parts or sum(p.num_rows for p in parts) == 0 or reader.columns is None:
        raise UimError(f"{source} has no rows", expected="at least one row", got="0 rows")
    cols = reader.columns
    if cols.embedding is not None:
        dims = {p.schema.field("embedding").type.list_size for p in parts}
        if len(dims) > 1:
            bad = next(p for p in parts if p.schema.field("embedding").type.list_size != parts[0].schema.field(
                "embedding").type.list_size)
            raise UimError(f"{source}: embedding dimension changes at row {bad.column('row')[0].as_py()}",
                           expected=f"{sorted(dims)[0]} everywhere", got=f"dimensions {sorted(dims)}",
                           hint="all embeddings must come from one model")
    table = combine(parts, source)
    return dedupe_ids(table, source, derived=cols.id is None), cols, reader


def _normalized(samples: pa.Table) -> np.ndarray:
    emb = np.ascontiguousarray(
        samples.column("embedding").combine_chunks().values.to_numpy().reshape(samples.num_rows, -1),
        dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norms == 0, 1, norms)


def _reference(cfg: ScanConfig, ex: LocalExecutor) -> np.ndarray | None:
    """Embeddings of the --reference set: its own `embedding` column, else the scan's model."""
    if not cfg.reference or "off_target" not in cfg.detectors:
        return None
    ref_cfg = ScanConfig(corpus=cfg.reference, out=cfg.out, model=cfg.model, device=cfg.device,
                         encoding_errors=cfg.encoding_errors, cache_dir=cfg.cache_dir, id_col="", label_col="")
    samples, _, _ = _ingest(ref_cfg, ex)
    if "embedding" in samples.column_names:
        return _normalized(samples)
    return _embed(ref_cfg, samples, ex)[0]


def _write_embeddings(run: RunDir, ids: pa.Array, emb: np.ndarray, dtype: str = "float32") -> None:
    if dtype not in ("float32", "float16"):
        raise UimError("--embedding-dtype", expected="float32 or float16", got=repr(dtype))
    for i, start in enumerate(range(0, len(ids), SHARD_ROWS)):
        part = pa.table({"id": ids.slice(start, SHARD_ROWS),
                         "embedding": fixed_list(emb[start:start + SHARD_ROWS].astype(dtype, copy=False))})
        atomic_write_parquet(part, run.embeddings_dir / f"part-{i:05d}.parquet")


def _embed(cfg: ScanConfig, samples: pa.Table, ex: LocalExecutor) -> tuple[np.ndarray, dict[str, Any]]:
    texts = samples.column("text").to_pylist()
    stage = EmbedStage(cfg.model, cfg.device, batch_rows=cfg.embed_batch_rows, chunking=cfg.chunking)
    hashes = stage.cache_keys(texts)  # decides --chunking auto; a chunked text's key names the chunking
    cache = EmbeddingCache(cfg.cache_dir or default_cache_dir(), cfg.model)
    found = cache.lookup(hashes)
    missing = [i for i, h in enumerate(hashes) if h not in found]
    # one row per distinct missing text
    todo: dict[str, int] = {}
    for i in missing:
        todo.setdefault(hashes[i], i)
    if todo:
        rows = list(todo.values())
        # length-sorted so each encode call sees similar lengths (the model sorts within a call too)
        rows.sort(key=lambda i: len(texts[i]))
        batch = pa.table({"text": pa.array([texts[i] for i in rows], pa.string())})
        done = 0
        for part in ex.imap(stage, [batch], total=len(rows), desc="embed"):
            new = part.column("embedding").combine_chunks().values.to_numpy().reshape(part.num_rows, -1)
            new_hashes = [hashes[i] for i in rows[done:done + part.num_rows]]
            cache.add(new_hashes, new)  # each batch is cached as soon as it is embedded
            found.update(zip(new_hashes, new))
            done += part.num_rows
    else:
        ex.record("embed", 0.0, 0)
    emb = np.stack([found[h] for h in hashes]).astype(np.float32)
    return emb, {"model": cfg.model, "embedded": len(todo), "from_cache": len(hashes) - len(missing),
                 "chunking": stage.chunk_info}


def _detect(cfg: ScanConfig, ctx: ScanContext, ex: LocalExecutor,
            skipped: dict[str, str]) -> list[DetectorResult]:
    results = []
    for name in cfg.detectors:
        det = detectors.get(name)(**cfg.detector_options.get(name, {}))
        reason = det.skip_reason(ctx)
        if reason:
            skipped[name] = reason
            continue
        if isinstance(det, BatchDetector):
            parts = ex.map(det, [ctx.samples.select(["id", "text"])], total=ctx.n, desc=name)
            table = det.finish(pa.concat_tables(parts), ctx.samples.column("text").to_pylist())
            res = DetectorResult(name, table, det.summarize(table))
        else:
            res = ex.run_global(name, lambda d=det: d.detect(ctx), ctx.n)
        atomic_write_parquet(res.table, ctx.run.detector(name))
        for table_name, table in res.tables.items():
            atomic_write_parquet(table, ctx.run.path / "tables" / f"{table_name}.parquet")
        results.append(res)
    return results


def _flags(ids: pa.Array, results: list[DetectorResult]) -> pa.Table:
    cols: dict[str, pa.Array] = {"id": ids}
    for res in results:
        t = res.table
        if not pc.all(pc.equal(t.column("id"), ids)).as_py():
            raise RuntimeError(f"detector '{res.issue}' returned rows out of order")
        for name in t.column_names:
            if name != "id":
                cols[name] = t.column(name)
    return pa.table(cols)


def make_executor(cfg: ScanConfig) -> LocalExecutor:
    if cfg.engine == "local":
        return LocalExecutor()
    if cfg.engine == "ray":
        from uimdata.executors.ray import RayExecutor

        return RayExecutor(address=cfg.address)
    raise UimError("unknown engine", expected="local or ray", got=repr(cfg.engine))


def scan(cfg: ScanConfig, executor: LocalExecutor | None = None) -> ScanResult:
    ex = executor or make_executor(cfg)
    for name in cfg.detectors:
        detectors.get(name)  # unknown names fail before any work
    check_device(cfg.device)
    out = check_output(cfg.out, [cfg.corpus, cfg.reference])
    started = time.time()
    staging = StagingRun(out)
    try:
        run = RunDir(staging.tmp)
        samples, cols, reader = _ingest(cfg, ex)
        samples, group_cols = groups.resolve(samples, cfg.group_cols, reader.metadata, len(reader.files))
        if "embedding" in samples.column_names:
            emb = _normalized(samples)
            samples = samples.drop_columns(["embedding"])
            embed_info: dict[str, Any] = {"model": f"given column '{cols.embedding}'", "embedded": 0}
            ex.record("embed", 0.0, 0)
        else:
            emb, embed_info = _embed(cfg, samples, ex)
        chunk_info = embed_info.pop("chunking", {"chunking": False})
        atomic_write_parquet(samples, run.samples)
        atomic_write_parquet(groups.group_table(samples, group_cols), run.path / "tables" / "sample_groups.parquet")
        _write_embeddings(run, samples.column("id").combine_chunks(), emb, cfg.embedding_dtype)
        del emb
        approx = cfg.index if cfg.index != "auto" else ("ivf" if cfg.engine == "ray" else "hnsw")
        index = KnnIndex(k=cfg.k, exact_max=cfg.exact_max, device=cfg.device, approx=approx)
        ex.run_global("index", lambda: index.run(run, pmap=ex.map_tasks), samples.num_rows)
        ctx = ScanContext(run, label_model=cfg.label_model, device=cfg.device, reference=_reference(cfg, ex),
                          pmap=ex.map_tasks)
        skipped: dict[str, str] = {}
        results = _detect(cfg, ctx, ex, skipped)
        atomic_write_parquet(_flags(ctx.ids, results), run.flags)
        det_rows = [{"issue": r.issue, "description": detectors.get(r.issue).description,
                     "summary": r.summary} for r in results]
        det_rows += [{"issue": name, "description": detectors.get(name).description,
                      "summary": {"skipped": why}} for name, why in skipped.items()]
        ex.run_global("store", lambda: build_db(run, det_rows), samples.num_rows)
        summary = [{"issue": r.issue,
                    "n_flagged": int(pc.sum(r.table.column(f"is_{r.issue}_issue")).as_py() or 0),
                    "n_rows": r.table.num_rows, **r.summary} for r in results]
        run.write_meta({
            "uimdata": __version__, "config": asdict(cfg), "columns": asdict(cols),
            "rows": samples.num_rows, "embedding": embed_info, "index": index.kind,
            "started": started, "seconds": time.time() - started, "timings": ex.timings, "summary": summary,
            "skipped": skipped,
            "chunking": chunk_info, "files": [asdict(f) for f in reader.info], "metadata": reader.metadata, "group_cols": group_cols,
        })
        final = RunDir(staging.commit())
    except BaseException:
        staging.abort()
        raise
    return ScanResult(final, summary, ex.timings, skipped)
