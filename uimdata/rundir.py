"""The run directory: parquet artifacts per stage plus ``uim.duckdb``.

Layout (a public contract, see docs/run-directory.md)::

    RUN/
      run.json            scan arguments, versions, per-stage timings
      samples.parquet     ingest: id, text, label, text_hash, n_chars, row
      embeddings/         embed: part-NNNNN.parquet shards (id, embedding)
      neighbors.parquet   index: id, rank, neighbor_id, cosine
      detectors/ISSUE.parquet  one per detector (id + its flag columns)
      flags.parquet       all detector columns, one row per sample
      uim.duckdb          tables and views for SQL

Every file is written to a temporary name and renamed into place, so a crash never leaves a
half-written artifact behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from uimdata.errors import UimError
from uimdata.memory import release_memory

EMBED_DIR = "embeddings"


def atomic_write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class RunDir:
    """Paths and readers for the artifacts of one run."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # --- paths -------------------------------------------------------------------------
    @property
    def samples(self) -> Path:
        return self.path / "samples.parquet"

    @property
    def embeddings_dir(self) -> Path:
        return self.path / EMBED_DIR

    @property
    def neighbors(self) -> Path:
        return self.path / "neighbors.parquet"

    @property
    def flags(self) -> Path:
        return self.path / "flags.parquet"

    @property
    def db(self) -> Path:
        return self.path / "uim.duckdb"

    @property
    def meta(self) -> Path:
        return self.path / "run.json"

    def detector(self, issue: str) -> Path:
        return self.path / "detectors" / f"{issue}.parquet"

    # --- readers -----------------------------------------------------------------------
    def require(self, path: Path, made_by: str) -> Path:
        if not path.exists():
            raise UimError(f"run directory {self.path} has no {path.name}",
                           expected=f"an artifact written by the '{made_by}' stage",
                           got="nothing", hint="run `uim scan` into this directory first")
        return path

    def read_samples(self, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.require(self.samples, "ingest"), columns=columns)

    def read_embeddings(self) -> np.ndarray:
        """The embedding matrix (float32, L2-normalised), rows aligned with ``samples``: filled shard by
        shard, 8,192 rows decoded at a time (:class:`EmbeddingRows`)."""
        self.require(self.embeddings_dir, "embed")
        return EmbeddingRows(self.embeddings_dir)[:]

    def read_neighbors(self, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.require(self.neighbors, "index"), columns=columns)

    def read_meta(self) -> dict[str, Any]:
        return json.loads(self.require(self.meta, "scan").read_text())

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_text(json.dumps(meta, indent=2, default=str), self.meta)


class EmbeddingRows:
    """The rows of a run's ``RUN/embeddings/`` read where they are used: ``rows[a:b]`` reads only the row
    groups that hold rows ``a`` to ``b - 1`` (``rows[:]``: the matrix, :meth:`RunDir.read_embeddings`),
    ``rows.take(idx)`` only those that hold one of ``idx``; float32, whatever the stored dtype. Small to
    pickle: what a Ray task gets instead of the matrix (which the driver would otherwise copy into the
    object store, and whose pages it would keep mapped for the rest of the scan); what the label model
    gathers its rows from instead of holding the matrix."""

    def __init__(self, embeddings_dir: str | os.PathLike[str]) -> None:
        self.dir = str(embeddings_dir)

    def _groups(self, wanted):  # noqa: ANN001, ANN202 - (start, rows) -> bool; yields (start, rows, vectors)
        """The rows of each row group that ``wanted(start, rows)`` asks for, in row order, decoded
        8,192 at a time (a whole row group decoded at once stays in Arrow's pool: 0.7 GB for a gather
        of 100,000 rows over 400,000)."""
        at = 0
        for pf in self._files():
            dim = pf.schema_arrow.field("embedding").type.list_size
            for g in range(pf.metadata.num_row_groups):
                n = pf.metadata.row_group(g).num_rows
                if wanted(at, n):
                    start = at
                    for batch in pf.iter_batches(batch_size=8192, row_groups=[g], columns=["embedding"]):
                        vals = batch.column(0).flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
                        yield start, len(vals), vals
                        start += len(vals)
                at += n

    def _files(self) -> list:  # pyarrow.parquet.ParquetFile of each shard, in row order
        from uimdata.readers import parquet_file  # pages streamed: no whole row group decoded at once

        return [parquet_file(p) for p in sorted(Path(self.dir).glob("part-*.parquet"))]

    @property
    def dim(self) -> int:
        files = self._files()[:1]
        return files[0].schema_arrow.field("embedding").type.list_size if files else 0

    def __len__(self) -> int:
        return sum(pf.metadata.num_rows for pf in self._files())

    def __getitem__(self, rows: slice) -> np.ndarray:
        a, b, _ = rows.indices(len(self))
        out = np.empty((max(b - a, 0), self.dim), np.float32)  # filled as read: no second copy
        for at, n, vals in self._groups(lambda at, n: at < b and at + n > a):
            lo, hi = max(a, at), min(b, at + n)
            if lo < hi:
                out[lo - a:hi - a] = vals[lo - at:hi - at]
            if at + n >= b:
                break
        release_memory()  # the readers' buffers (700 MB kept by Arrow's pool at 400,000 rows otherwise)
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (any order, repeats allowed), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        ranked = rows[order]
        out = np.empty((len(rows), self.dim), np.float32)

        def wanted(at: int, n: int) -> bool:
            lo = np.searchsorted(ranked, at)
            return lo < len(ranked) and ranked[lo] < at + n

        for at, n, vals in self._groups(wanted):
            lo, hi = np.searchsorted(ranked, [at, at + n])
            out[order[lo:hi]] = vals[ranked[lo:hi] - at]
        release_memory()  # the readers' buffers
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: entries of a run directory that a scan writes or that later commands derive from the scan (and so
#: go stale when it is rescanned); everything else in a run directory belongs to the user and is
#: carried over into the new run by a rescan
SCAN_OWNED = frozenset({"run.json", "samples.parquet", EMBED_DIR, "neighbors.parquet", "detectors",
                        "detectors.jsonl", "flags.parquet", "pred_probs.parquet", "tables", "uim.duckdb",
                        "link.json", "report.html", "input.parquet"})


def is_run_dir(path: Path) -> bool:
    """A directory whose ``run.json`` was written by uimdata."""
    try:
        meta = json.loads((path / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "uimdata" in meta


def within(inner: Path, outer: Path) -> bool:
    """``inner`` is ``outer`` or lies inside it (both resolved)."""
    return inner == outer or outer in inner.parents


def overlaps_input(target: Path, src: Path) -> bool:
    """Writing ``target`` would touch the input ``src``: it is the input, holds it, or lies inside an
    input folder (a later scan would read it as corpus). Both resolved."""
    return within(src, target) or (src.is_dir() and within(target, src))


def check_output(out: str | os.PathLike[str], inputs: list[str | os.PathLike[str]],
                 flag: str = "-o") -> Path:
    """Refuse an output path that the tool did not create: an existing file, a non-empty directory
    that is not a uimdata run, the input itself, a folder holding the input, or a folder inside an
    input folder. Returns the resolved path."""
    target = Path(out).expanduser().resolve()
    if target.parent == target:
        raise UimError(f"{flag} {out} is the filesystem root", expected="a run directory",
                       hint="pass a new folder, e.g. -o runs/mine")
    for src in inputs:
        if not src:
            continue
        src_path = Path(src).expanduser().resolve()
        if within(src_path, target):
            raise UimError(f"{flag} {out} is or holds the input {src}", expected="an output path apart from "
                           "the input", got=str(target), hint="pass a new folder, e.g. -o runs/mine")
        if src_path.is_dir() and within(target, src_path):
            raise UimError(f"{flag} {out} lies inside the input folder {src}",
                           expected="an output path outside the corpus (a later scan would read it as "
                                    "corpus)", got=str(target), hint="pass a folder elsewhere, e.g. -o runs/mine")
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise UimError(f"{flag} {out} exists and is not a run directory", expected="a new path or a run "
                           "written by `uim scan`", got="a file" if target.is_file() else "not a folder",
                           hint="pass a new folder, e.g. -o runs/mine")
        if any(target.iterdir()) and not is_run_dir(target):
            raise UimError(f"{flag} {out} exists and is not a run directory", expected="a new or empty folder, "
                           "or a run written by `uim scan` (with its run.json)",
                           got=f"a folder with {sum(1 for _ in target.iterdir())} entries and no uimdata run.json",
                           hint="pass a new folder, e.g. -o runs/mine; uimdata never replaces files it did "
                                "not write")
    return target


class StagingRun:
    """Build a run in a sibling temp directory and swap it in only when the scan succeeds.

    A failed scan leaves the earlier run directory (if any) exactly as it was. On success, the entries
    of the earlier run that a scan does not own (:data:`SCAN_OWNED`: e.g. a ``uim curate`` output or
    notes the user put there) are moved into the new run.
    """

    def __init__(self, final: str | os.PathLike[str]) -> None:
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.{os.getpid()}.", suffix=".partial",
                                         dir=self.final.parent))

    def _remove_stale(self) -> None:
        """Staging dirs left by scans that were killed (their process is gone) are removed."""
        for old in self.final.parent.glob(f".{self.final.name}.*.partial"):
            pid = old.name[len(self.final.name) + 2:].split(".", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)

    def commit(self) -> Path:
        old = None
        if self.final.exists():
            if any(self.final.iterdir()) and not is_run_dir(self.final):  # created since check_output ran
                raise UimError(f"{self.final} exists and is not a run directory",
                               expected="a new or empty folder, or a run written by `uim scan`",
                               hint="pass a new folder; uimdata never replaces files it did not write")
            old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        if old is not None:
            # the user's entries move over first; the earlier run is removed only when all of them did
            for entry in sorted(old.iterdir()):
                stale_tmp = entry.name.startswith(".") and entry.name.endswith(".tmp")
                if entry.name not in SCAN_OWNED and not stale_tmp and not (self.final / entry.name).exists():
                    os.replace(entry, self.final / entry.name)
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
