"""The pipeline commands as the Python API and the ``uim`` command line both run them: keyword options
checked and turned into the pipeline's config, in-memory inputs written where the readers read them,
errors and warnings naming those objects instead of their temporary files, then ``uimdata.scan.scan``,
``uimdata.link.link``, ``uimdata.curate.curate`` or ``uimdata.probe.probe``.

Each returns the pipeline's whole result: the :class:`~uimdata.api.run.Run` methods hand back its main
table, ``uim`` prints the rest. ``progress=None`` leaves the progress bars as the surrounding settings
say (what the command line does).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from uimdata.api.inputs import Data, materialize, named
from uimdata.api.options import DEFAULT_POLICIES, link_options, policy_names, probe_options
from uimdata.api.progress import bars

if TYPE_CHECKING:
    from uimdata.curate import Curation
    from uimdata.link import LinkResult
    from uimdata.probe import ProbeResult

#: the file an in-memory corpus is kept in, inside its run directory (``uim curate`` copies its columns)
INPUT_FILE = "input.parquet"


class Target(Protocol):
    """The run a command reads and adds to (a :class:`~uimdata.api.run.Run`)."""

    path: Path

    def scratch_dir(self) -> Path:
        """A temporary folder living as long as the run object (in-memory inputs, exports)."""
        ...


# ------------------------------------------------------------------------------------------- scan

def scan_into(data: Data, target: Path, scratch: Callable[[], Path], *, text: str | None, label: str | None,
              id: str | None, embedding: Any, progress: bool | None, options: Mapping[str, Any]) -> Path:
    """Scan ``data`` into the run directory ``target`` (``options``: ``ScanConfig`` fields, checked by
    :func:`~uimdata.api.options.scan_options`); returns the run's path. An in-memory corpus the run's
    ``curate`` must re-read is kept in the run as ``input.parquet``."""
    from uimdata.scan import ScanConfig, make_executor
    from uimdata.scan import scan as run_scan

    opts = dict(options)
    enc = opts.get("encoding_errors", "strict")
    source, emb_col = materialize(data, embedding, scratch, "input", "data", enc)
    sources = [source]
    if opts.get("reference") is not None:
        ref, _ = materialize(opts["reference"], None, scratch, "reference", "reference", enc)
        opts["reference"] = ref.path
        sources.append(ref)
    cfg = ScanConfig(corpus=source.path, out=os.fspath(target), text_col=text, label_col=label, id_col=id,
                     embedding_col=emb_col, **opts)
    with named(*sources), bars(progress):
        # progress None: the scan makes its executor itself, after checking its pipeline (as `uim scan`)
        res = run_scan(cfg, None if progress is None else make_executor(cfg, progress=progress))
    if source.in_memory and _needs_input(res.run.read_meta()):
        _keep_input(res.run.path, Path(source.path))
    return res.run.path


def _needs_input(meta: Mapping[str, Any]) -> bool:
    """Whether ``curate`` re-reads the corpus of this run: for the corpus's own embedding column, or
    (runs whose ``samples`` do not hold the corpus's other columns) for those columns."""
    return "metadata" not in meta or bool((meta.get("columns") or {}).get("embedding"))


def _keep_input(run_path: Path, source: Path) -> None:
    """Move an in-memory corpus' parquet into the run (``input.parquet``) and point ``run.json`` at it,
    so that a later ``curate`` (in this session, after ``uimdata.open``, or ``uim curate``) can re-read it."""
    from uimdata.rundir import RunDir

    kept = run_path / INPUT_FILE
    shutil.move(os.fspath(source), os.fspath(kept))
    rd = RunDir(run_path)
    meta = rd.read_meta()
    meta["config"]["corpus"] = os.fspath(kept)
    for f in meta.get("files") or []:
        if isinstance(f, dict) and f.get("path") == os.fspath(source):
            f["path"] = os.fspath(kept)
    rd.write_meta(meta)


# ------------------------------------------------------------------------------------------- after the scan

def link(run: Target, downstream: Data, *, progress: bool | None = True, **options: Any) -> LinkResult:
    """``uim link``: ``options`` as :meth:`Run.link <uimdata.api.run.Run.link>` takes them."""
    from uimdata.device import check_device
    from uimdata.link import LinkConfig
    from uimdata.link import link as run_link

    opts, embedding = link_options(options)
    source, emb_col = materialize(downstream, embedding, run.scratch_dir, "downstream", "downstream")
    cfg = LinkConfig(run=os.fspath(run.path), downstream=source.path, embedding_col=emb_col, **opts)
    with named(source), bars(progress):
        check_device(cfg.device)
        res = run_link(cfg)
    res.warnings = [source.rename(w) for w in res.warnings]
    return res


def curate(run: Target, policy: str | os.PathLike[str] = "default", out: str | os.PathLike[str] | None = None, *,
           format: str = "parquet", upsample: bool = False) -> tuple[Curation, Path]:
    """``uim curate``: the curation and the file (or ``hf`` folder) of the curated rows; ``out`` None
    writes them to a folder living as long as ``run``."""
    from uimdata.curate import curate as run_curate

    if out is None:
        out = tempfile.mkdtemp(prefix="curated-", dir=run.scratch_dir())
    return run_curate(os.fspath(run.path), os.fspath(out), os.fspath(policy), format, upsample)


def probe(run: Target, downstream: Data, policies: str | Sequence[str] = DEFAULT_POLICIES, *,
          progress: bool | None = True, **options: Any) -> ProbeResult:
    """``uim probe``: ``options`` as :meth:`Run.probe <uimdata.api.run.Run.probe>` takes them."""
    from uimdata.device import check_device
    from uimdata.probe import probe as run_probe

    opts, embedding = probe_options(options)
    chosen = policy_names(policies)
    source, emb_col = materialize(downstream, embedding, run.scratch_dir, "probe", "downstream")
    with named(source), bars(progress):
        check_device(opts.get("device", "auto"))
        res = run_probe(os.fspath(run.path), source.path, chosen, embedding_col=emb_col, **opts)
    res.warnings = [source.rename(w) for w in res.warnings]
    return res
