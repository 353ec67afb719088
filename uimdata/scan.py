"""The scan pipeline: ingest -> embed -> index -> detect -> store.

:func:`build_pipeline` makes the steps of a scan and checks their declarations before any work
(a stage's ``needs`` added by the stages before it, one owner per ``flags`` column). Batch stages
run through an :class:`~uimdata.executors.base.Executor` (``LocalExecutor`` by default); global
steps (kNN graph, global detectors) run once over the whole corpus. The run directory is built in
a temporary sibling and swapped in only when every step succeeded, so a failed scan never touches
an earlier run.
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
from uimdata.detectors.base import BatchDetector, Detector, DetectorResult, SharedPass, deferring_last, is_col
from uimdata.device import check_device
from uimdata.errors import UimError
from uimdata.executors.base import Executor
from uimdata.executors.local import LocalExecutor
from uimdata.memory import release_memory
from uimdata.rundir import RunDir, StagingRun, atomic_write_parquet, check_output
from uimdata.shards import EmbeddingShards
from uimdata.stages.base import check_pipeline
from uimdata.stages.embed import DEFAULT_MODEL, EmbedStage, embed_texts, normalize_rows
from uimdata.stages.index import KnnIndex
from uimdata.stages.ingest import (
    Columns,
    CorpusReader,
    IngestStage,
    combine,
    dedupe_ids,
    dimension_changed,
)
from uimdata.store import publish

#: the built-in detectors ``uim scan`` runs, in registry order (``inherited_label_bias`` is ``uim link``'s)
DEFAULT_DETECTORS = detectors.scan_names()


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
    #: kNN index above exact_max rows: auto (HNSW on either engine while its vectors fit 8 GiB, IVF-PQ
    #: searched in shards above) | hnsw | ivf | ivfpq (IVF and IVF-PQ searched in Ray tasks under --engine ray)
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


@dataclass
class Pipeline:
    """The steps of one scan, made and checked by :func:`build_pipeline` before any of them runs."""

    ingest: IngestStage
    #: the embed stage (not run when the corpus brings an embedding column)
    embed: EmbedStage
    index: KnnIndex
    #: in run order, options applied
    detectors: list[Detector]


def build_pipeline(cfg: ScanConfig) -> Pipeline:
    """The scan's stages and detectors; every mistake here is a one-line error before any work: an
    unknown detector or option, a stage whose ``needs`` no stage before it ``adds``, two detectors that
    would write one ``flags`` column."""
    dets = [detectors.scan_detector(name)(**cfg.detector_options.get(name, {})) for name in cfg.detectors]
    pipe = Pipeline(ingest=IngestStage(str(cfg.corpus)),
                    embed=EmbedStage(cfg.model, cfg.device, batch_rows=cfg.embed_batch_rows, chunking=cfg.chunking),
                    index=KnnIndex(k=cfg.k, exact_max=cfg.exact_max, device=cfg.device, approx=cfg.index),
                    detectors=dets)
    check_pipeline([pipe.ingest, pipe.embed, *(d for d in dets if isinstance(d, BatchDetector))])
    owner: dict[str, str] = {}
    for det in dets:
        for col in det.flag_columns():
            if col in owner:
                raise UimError(f"detectors '{owner[col]}' and '{det.issue}' both add the flags column {col!r}",
                               expected="one detector per column", got=f"{owner[col]}, {det.issue}")
            owner[col] = det.issue
    return pipe


def _ingest(cfg: ScanConfig, ex: Executor, stage: IngestStage, sink: EmbeddingShards | None = None
            ) -> tuple[pa.Table, Columns, CorpusReader]:
    """The corpus as ``samples`` rows. With a ``sink``, a given embedding column goes to it batch by batch as
    the batches come back (normalised, written as ``embeddings/`` shards) and ``samples`` holds none."""
    source = str(cfg.corpus)
    # file by file: each file's columns resolved on its own (uimdata/stages/ingest.py)
    reader = CorpusReader(source, cfg.text_col, cfg.id_col, cfg.label_col, cfg.embedding_col,
                          keep_cols=cfg.keep_cols, drop_cols=cfg.drop_cols, encoding_errors=cfg.encoding_errors)
    batches = ex.ingest(stage, reader, total=reader.row_count(), desc="ingest", sink=sink)
    parts = [sink.take(p, source) for p in batches] if sink is not None else list(batches)
    if not parts or sum(p.num_rows for p in parts) == 0 or reader.columns is None:
        raise UimError(f"{source} has no rows", expected="at least one row", got="0 rows")
    cols = reader.columns
    if cols.embedding is not None and sink is None:  # (the sink checks each batch as it takes it)
        dims = {p.schema.field("embedding").type.list_size for p in parts}
        if len(dims) > 1:
            first = parts[0].schema.field("embedding").type.list_size
            bad = next(p for p in parts if p.schema.field("embedding").type.list_size != first)
            raise dimension_changed(source, bad.column("row")[0].as_py(), min(dims), dims)
    table = combine(parts, source)
    deduped = dedupe_ids(table, source, derived=cols.id is None)
    if sink is not None:
        sink.flush()
        if deduped is not table:  # repeated derived ids got suffixes: the shards take the new ids
            sink.set_ids(deduped.column("id"))
    return deduped, cols, reader


def _normalized(samples: pa.Table) -> np.ndarray:
    """The ``embedding`` column as one L2-normalised float32 matrix, filled chunk by chunk (no second and
    third copy of the matrix: 614 MB each at 400,000 rows of 384 dimensions)."""
    col = samples.column("embedding")
    dim = col.type.list_size
    out = np.empty((samples.num_rows, dim), np.float32)
    at = 0
    for chunk in col.chunks:
        for s in range(0, len(chunk), 65536):
            part = chunk.slice(s, 65536)
            rows = part.flatten().to_numpy(zero_copy_only=False).reshape(len(part), dim)
            out[at:at + len(part)] = normalize_rows(rows)
            at += len(part)
    return out


def _reference(cfg: ScanConfig, ex: Executor) -> np.ndarray | None:
    """Embeddings of the --reference set: its own `embedding` column, else the scan's model."""
    if not cfg.reference or "off_target" not in cfg.detectors:
        return None
    ref_cfg = ScanConfig(corpus=cfg.reference, out=cfg.out, model=cfg.model, device=cfg.device,
                         encoding_errors=cfg.encoding_errors, cache_dir=cfg.cache_dir, id_col="", label_col="")
    samples, _, _ = _ingest(ref_cfg, ex, IngestStage(str(ref_cfg.corpus)))
    if "embedding" in samples.column_names:
        return _normalized(samples)
    stage = EmbedStage(ref_cfg.model, ref_cfg.device, batch_rows=ref_cfg.embed_batch_rows, chunking=ref_cfg.chunking)
    return embed_texts(stage, samples.column("text").to_pylist(), ex, ref_cfg.cache_dir)[0]


def _detect(dets: list[Detector], ctx: ScanContext, ex: Executor, run: RunDir,
            skipped: dict[str, str]) -> list[DetectorResult]:
    """Run the detectors (one that defers to others after them: ``Detector.defer_to``), each seeing the
    flags of those before it (``ctx.flagged``); the results in the order of ``dets``."""
    results = []
    ordered = deferring_last(dets)
    batch_skip = {det.issue: det.skip_reason(ctx) for det in ordered if isinstance(det, BatchDetector)}
    batch_tables = _shared_pass([det for det in ordered if isinstance(det, BatchDetector)  # type: ignore[misc]
                                 and not batch_skip[det.issue]], ctx, ex)
    for det in ordered:
        name = det.issue
        reason = batch_skip[name] if name in batch_skip else det.skip_reason(ctx)
        if reason:
            skipped[name] = reason
            continue
        if isinstance(det, BatchDetector):
            start = time.perf_counter()
            table = det.finish(batch_tables.pop(name), ctx.texts)
            res = DetectorResult(name, table, det.summarize(table))
            ex.record(name, time.perf_counter() - start, 0)
        else:
            res = ex.run_global(name, lambda d=det: _detect_global(d, ctx), ctx.n)
        det.check_result(res.table)
        ctx.flagged_by[name] = res.table.column(is_col(name)).to_numpy(zero_copy_only=False).astype(bool)
        atomic_write_parquet(res.table, run.detector(name))
        results.append(res)
    order = {det.issue: i for i, det in enumerate(dets)}
    return sorted(results, key=lambda r: order[r.issue])


def _detect_global(det: Detector, ctx: ScanContext) -> DetectorResult:
    """A global detector's result; the embedding matrix is let go of before the step's memory is
    recorded (the next detector reads it again if it needs it)."""
    try:
        return det.detect(ctx)
    finally:
        ctx.drop_embeddings()


def _shared_pass(dets: list[BatchDetector], ctx: ScanContext, ex: Executor) -> dict[str, pa.Table]:
    """The batch detectors' per-batch results (before ``finish``), from one pass over the corpus that
    analyses each text once for all of them (:class:`~uimdata.detectors.base.SharedPass`); each gets its
    share of the pass's seconds in ``timings``, by the time it spent in it."""
    if not dets:
        return {}
    stage = SharedPass(dets)
    parts = ex.map(stage, [ctx.samples.select(list(stage.needs))], total=ctx.n, desc=stage.name)
    split = stage.split(pa.concat_tables(parts))
    ex.share_step(stage.name, {det.issue: seconds for det, (_, seconds) in zip(dets, split)})
    return {det.issue: table for det, (table, _) in zip(dets, split)}


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


def make_executor(cfg: ScanConfig, progress: bool | None = None) -> Executor:
    """The executor of ``cfg.engine``; ``progress`` None = bars as ``executors.base.progress_bars`` says."""
    if cfg.engine == "local":
        return LocalExecutor(progress=progress)
    if cfg.engine == "ray":
        from uimdata.executors.ray import RayExecutor

        return RayExecutor(address=cfg.address, progress=progress)
    raise UimError("unknown engine", expected="local or ray", got=repr(cfg.engine))


def scan(cfg: ScanConfig, executor: Executor | None = None) -> ScanResult:
    pipe = build_pipeline(cfg)  # unknown detectors, bad options, unmet needs: before any work
    ex = executor or make_executor(cfg)
    check_device(cfg.device)
    out = check_output(cfg.out, [cfg.corpus, cfg.reference])
    started = time.time()
    staging = StagingRun(out)
    try:
        run = RunDir(staging.tmp)
        shards = EmbeddingShards(run, cfg.embedding_dtype)
        samples, cols, reader = _ingest(cfg, ex, pipe.ingest, shards)  # a given embedding column: to shards
        samples, group_cols = groups.resolve(samples, cfg.group_cols, reader.metadata, len(reader.files))
        if shards.rows:
            embed_info: dict[str, Any] = {"model": f"given column '{cols.embedding}'", "embedded": 0}
            ex.record("embed", 0.0, 0)
        else:
            emb, embed_info = embed_texts(pipe.embed, samples.column("text").to_pylist(), ex, cfg.cache_dir)
            shards.add(samples.column("id").combine_chunks(), emb, normalize=False)
            shards.flush()
            del emb
        chunk_info = embed_info.pop("chunking", {"chunking": False})
        atomic_write_parquet(samples, run.samples)
        ex.run_global("index", lambda: pipe.index.run(run, pmap=ex.map_tasks), samples.num_rows)
        ctx = ScanContext(run, label_model=cfg.label_model, device=cfg.device, reference=_reference(cfg, ex),
                          pmap=ex.map_tasks, samples=samples)
        skipped: dict[str, str] = {}
        results = _detect(pipe.detectors, ctx, ex, run, skipped)
        ctx.write_pred_probs()  # when the label detector computed them
        ctx.release()  # the matrix, the graph, the probabilities: not held through flags and store
        release_memory()
        atomic_write_parquet(_flags(ctx.ids, results), run.flags)
        det_rows = [{"issue": r.issue, "description": detectors.get(r.issue).description,
                     "summary": r.summary} for r in results]
        det_rows += [{"issue": name, "description": detectors.get(name).description,
                      "summary": {"skipped": why}} for name, why in skipped.items()]
        tables = {"sample_groups": groups.group_table(samples, group_cols),
                  **{name: table for r in results for name, table in r.tables.items()}}
        ex.run_global("store", lambda: publish(run, tables, detectors=det_rows), samples.num_rows)
        summary = [{"issue": r.issue,
                    "n_flagged": int(pc.sum(r.table.column(f"is_{r.issue}_issue")).as_py() or 0),
                    "n_rows": r.table.num_rows, **r.summary} for r in results]
        run.write_meta({
            "uimdata": __version__, "config": asdict(cfg), "columns": asdict(cols),
            "rows": samples.num_rows, "embedding": embed_info, "index": pipe.index.kind,
            "index_check": pipe.index.check,
            "started": started, "seconds": time.time() - started, "timings": ex.timings,
            # the scan process' peak resident memory (MB; the driver's under Ray), every step included
            "peak_rss_mb": getattr(ex, "peak_rss_mb", None), "summary": summary,
            "skipped": skipped,
            "chunking": chunk_info, "files": [asdict(f) for f in reader.info], "metadata": reader.metadata, "group_cols": group_cols,
        })
        final = RunDir(staging.commit())
    except BaseException:
        staging.abort()
        raise
    return ScanResult(final, summary, ex.timings, skipped)
