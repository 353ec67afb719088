"""The downstream evaluation set that ``uim link`` and ``uim probe`` read: its columns (text or
embedding, id, true label, and the model's outcome: ``correct``, ``prediction`` + ``label`` or
``loss``), resolved like ingest's, and its embeddings in the run's space.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from uimdata.errors import UimError
from uimdata.stages.embed import normalize_rows

PREDICTION_CANDIDATES = ("prediction", "predicted", "pred", "predicted_label", "prediction_label")
CORRECT_CANDIDATES = ("correct", "is_correct")
LOSS_CANDIDATES = ("loss", "nll")


def _pick(names: list[str], given: str | None, candidates: tuple[str, ...], role: str, source: str) -> str | None:
    if given == "":
        return None
    if given is not None:
        if given not in names:
            raise UimError(f"{source}: no column '{given}' for the {role}", expected="one of its columns",
                           got=", ".join(names))
        return given
    lower = {n.lower(): n for n in names}
    return next((lower[c] for c in candidates if c in lower), None)


@dataclass
class Downstream:
    frame: pl.DataFrame            # down_id, text?, label?, prediction?, correct?, loss?, error, + slice cols
    embeddings: np.ndarray
    outcome: str                   # "correct", "prediction", "loss"
    columns: dict[str, str | None]


@dataclass
class DownstreamSpec:
    """Where the downstream set is and how to read it: its columns (None = auto-detect, "" = none), the
    ``--slice-col`` columns it must have, and how to embed its text."""

    downstream: str
    text_col: str | None = None
    label_col: str | None = None
    prediction_col: str | None = None
    correct_col: str | None = None
    loss_col: str | None = None
    id_col: str | None = None
    embedding_col: str | None = None
    slice_cols: tuple[str, ...] = ()
    device: str = "auto"
    cache_dir: str | None = None
    encoding_errors: str = "strict"

    @classmethod
    def of(cls, options: Any, **changes: Any) -> DownstreamSpec:
        """The spec from any object with these attributes (e.g. ``uim link``'s config), ``changes`` applied."""
        return cls(**({f.name: getattr(options, f.name) for f in fields(cls)} | changes))


def read_downstream(cfg: DownstreamSpec, meta: dict[str, Any], dim: int | None = None,
                    need_outcome: bool = True) -> Downstream:
    from uimdata.readers import ROW_COL, read_batches
    from uimdata.stages.ingest import EMBEDDING_CANDIDATES, ID_CANDIDATES, LABEL_CANDIDATES, TEXT_CANDIDATES

    source = cfg.downstream
    schema, batches = read_batches(source, encoding_errors=cfg.encoding_errors)
    parts = list(batches)
    df = pl.from_arrow(pa.concat_tables(parts)) if parts else pl.DataFrame()
    if not isinstance(df, pl.DataFrame) or df.height == 0:
        raise UimError(f"{source} has no rows", expected="a downstream evaluation set", got="0 rows")
    names = [n for n in df.columns if n != ROW_COL]
    cols = {
        "text": _pick(names, cfg.text_col, TEXT_CANDIDATES, "text", source),
        "embedding": _pick(names, cfg.embedding_col, EMBEDDING_CANDIDATES, "embedding", source),
        "id": _pick(names, cfg.id_col, ID_CANDIDATES, "id", source),
        "label": _pick(names, cfg.label_col, LABEL_CANDIDATES, "true label", source),
        "prediction": _pick(names, cfg.prediction_col, PREDICTION_CANDIDATES, "prediction", source),
        "correct": _pick(names, cfg.correct_col, CORRECT_CANDIDATES, "correctness", source),
        "loss": _pick(names, cfg.loss_col, LOSS_CANDIDATES, "loss", source),
    }
    for c in cfg.slice_cols:
        if c not in names:
            raise UimError(f"{source}: no column '{c}' for --slice-col", expected="one of its columns",
                           got=", ".join(names))
    if cols["text"] is None and cols["embedding"] is None:
        raise UimError(f"{source}: no text or embedding column", expected="a 'text' or 'embedding' column",
                       got=", ".join(names), hint="name it with --text-col or --embedding-col")
    outcome, error = _outcome(df, cols, source, names, need_outcome)
    ids = (df[cols["id"]].cast(pl.Utf8) if cols["id"] else pl.Series([f"d{i}" for i in range(df.height)]))
    if ids.null_count():
        raise UimError(f"{source}: null id at row {int(ids.is_null().arg_max())}", expected="an id on every row",
                       got="null", hint="--id-col '' derives ids from the row position")
    if ids.n_unique() != ids.len():
        dup = ids.filter(ids.is_duplicated())[0]
        raise UimError(f"{source}: duplicate id {dup!r}", expected="unique ids", got="repeated",
                       hint="--id-col '' derives ids from the row position")
    out = {"down_id": ids}
    if cols["text"]:
        out["text"] = df[cols["text"]].cast(pl.Utf8).fill_null("")
    if cols["label"]:
        out["label"] = df[cols["label"]].cast(pl.Utf8)
    if cols["prediction"]:
        out["prediction"] = df[cols["prediction"]].cast(pl.Utf8)
    if cols["correct"]:
        out["correct"] = (1 - error).cast(pl.Boolean)
    if cols["loss"]:
        out["loss"] = df[cols["loss"]].cast(pl.Float64)
    out["error"] = error
    for c in cfg.slice_cols:
        out[f"slice_{c}"] = df[c].cast(pl.Utf8)
    emb = _downstream_embeddings(cfg, df, cols, meta, dim)
    out["content_key"] = content_keys(out.get("text"), emb)
    return Downstream(pl.DataFrame(out), emb, outcome, cols)


def _outcome(df: pl.DataFrame, cols: dict[str, str | None], source: str, names: list[str],
             need_outcome: bool) -> tuple[str, pl.Series]:
    """The model's outcome ("correct" > "prediction" vs label > "loss", or "none") and the per-row error
    it gives (1.0 = wrong; the loss itself for a loss; null = unknown)."""
    if cols["correct"] is not None:
        outcome = "correct"
        c = df[cols["correct"]]
        if c.dtype != pl.Boolean:
            if c.dtype.is_numeric() and set(c.drop_nulls().unique().to_list()) <= {0, 1}:
                c = c.cast(pl.Boolean)
            else:
                raise UimError(f"{source}: column '{cols['correct']}' is not boolean",
                               expected="true/false (or 0/1)", got=str(c.dtype))
        error = (~c).cast(pl.Float64)
    elif cols["prediction"] is not None and cols["label"] is not None:
        outcome = "prediction"
        lab, pred = df[cols["label"]].cast(pl.Utf8), df[cols["prediction"]].cast(pl.Utf8)
        error = pl.Series((lab != pred).cast(pl.Float64)).set((lab.is_null() | pred.is_null()), None)
    elif cols["loss"] is not None:
        outcome = "loss"
        error = df[cols["loss"]].cast(pl.Float64)
        if not error.dtype.is_numeric():
            raise UimError(f"{source}: column '{cols['loss']}' is not numeric", expected="a per-row loss",
                           got=str(df[cols["loss"]].dtype))
    elif not need_outcome:
        outcome, error = "none", pl.Series([None] * df.height, dtype=pl.Float64)
    else:
        raise UimError(f"{source}: no model outcome", expected="a boolean 'correct' column, or 'prediction' "
                       "with a true 'label', or a per-row 'loss'", got="columns " + ", ".join(names),
                       hint="name them with --correct-col / --prediction-col and --label-col / --loss-col")
    if need_outcome and error.drop_nulls().len() == 0:
        raise UimError(f"{source}: no row has a known outcome", expected="non-null outcome values",
                       got="all null")
    return outcome, error


def content_keys(texts: pl.Series | None, emb: np.ndarray) -> pl.Series:
    """What identifies a downstream row across files: the hash of its normalised text, else of its
    embedding (rounded to float16)."""
    import hashlib

    from uimdata.stages.ingest import text_hash

    if texts is not None:
        return pl.Series("content_key", [text_hash(t) for t in texts.to_list()], pl.Utf8)
    half = np.asarray(emb, dtype=np.float16)
    return pl.Series("content_key", [hashlib.blake2b(r.tobytes(), digest_size=8).hexdigest() for r in half], pl.Utf8)


def _downstream_embeddings(cfg: DownstreamSpec, df: pl.DataFrame, cols: dict, meta: dict,
                           dim: int | None) -> np.ndarray:
    model = str(meta.get("embedding", {}).get("model", ""))
    if cols["embedding"]:
        col = df[cols["embedding"]]
        try:
            emb = np.stack(col.to_numpy()).astype(np.float32) if col.dtype != pl.Array else col.to_numpy()
        except (ValueError, TypeError) as e:
            raise UimError(f"{cfg.downstream}: column '{cols['embedding']}' is not a fixed-length vector",
                           expected="a list of floats per row", got=str(e).splitlines()[0]) from None
        emb = np.asarray(emb, dtype=np.float32)
        if not np.isfinite(emb).all():
            bad = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
            raise UimError(f"{cfg.downstream}: embedding of row {bad} has NaN/inf", expected="finite floats",
                           got="NaN or inf")
    else:
        if model.startswith("given column"):
            raise UimError(f"{cfg.downstream} has no embedding column",
                           expected="embeddings from the same model as the run's (it was scanned with a "
                                    "precomputed embedding column)", got="text only",
                           hint="add an 'embedding' column, or name it with --embedding-col")
        from uimdata.executors.local import LocalExecutor
        from uimdata.stages.embed import EmbedStage, embed_texts

        emb, _ = embed_texts(EmbedStage(model, cfg.device, chunking="auto"),
                             df[cols["text"]].cast(pl.Utf8).fill_null("").to_list(), LocalExecutor(), cfg.cache_dir)
    emb = normalize_rows(emb)
    if dim is not None and emb.shape[1] != dim:
        raise UimError(f"{cfg.downstream}: embeddings have dimension {emb.shape[1]}",
                       expected=f"the run's dimension {dim}", got=str(emb.shape[1]),
                       hint="embed the downstream set with the model the run was scanned with")
    return np.ascontiguousarray(emb, dtype=np.float32)


#: share of labelled downstream rows whose label no corpus row carries, above which link and probe warn
UNKNOWN_LABEL_WARN = 0.2


def label_overlap(corpus_labels: list[str | None], down_labels: list[str | None], source: str,
                  refuse: bool) -> list[str]:
    """Compare the downstream set's true labels with the corpus's classes.

    Returns warnings (empty when the labels fit). With ``refuse``, a set that shares no class with the
    corpus is an error: every prediction of a model trained on the corpus would count as wrong."""
    classes = {c for c in corpus_labels if c is not None}
    given = [x for x in down_labels if x is not None]
    if not given or not classes:
        return []
    unknown = [x for x in given if x not in classes]
    if not unknown:
        return []
    names = sorted(set(unknown))
    shown = ", ".join(repr(x) for x in names[:5]) + (", …" if len(names) > 5 else "")
    what = (f"{source}: {len(unknown):,} of its {len(given):,} labelled rows carry a label that no corpus row "
            f"has ({len(names)} unknown label(s): {shown})")
    if len(unknown) == len(given) and refuse:
        raise UimError(f"{source}: its labels share no class with the corpus",
                       expected=f"labels among the corpus's {len(classes)} classes "
                                f"(e.g. {', '.join(repr(c) for c in sorted(classes)[:3])})",
                       got=f"{len(names)} other label(s): {shown}",
                       hint="check --label-col on both sides, or map the label names first")
    if len(unknown) / len(given) > UNKNOWN_LABEL_WARN:
        return [what + "; those rows can never be predicted right"]
    return [what]
