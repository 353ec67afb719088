"""ingest: pick the id/text/label/embedding columns, normalise, hash.

Output columns (the ``samples`` table): ``id`` (string), ``text`` (string, null -> ""),
``label`` (string, nullable; absent when the corpus has none), ``text_hash`` (16 hex chars of
blake2b over the normalised text: NFKC, case-folded, whitespace collapsed), ``n_chars``,
``row`` (position in the corpus), and ``embedding`` when the corpus brings its own.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from uimdata.errors import UimError
from uimdata.readers import ROW_COL
from uimdata.stages.base import Stage

TEXT_CANDIDATES = ("text", "content", "document", "sentence", "body", "passage", "review", "question")
LABEL_CANDIDATES = ("label", "labels", "class", "category", "target", "label_text")
ID_CANDIDATES = ("id", "uid", "doc_id", "_id", "idx", "guid")
EMBEDDING_CANDIDATES = ("embedding", "embeddings", "vector", "emb")

_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The normal form that defines an exact duplicate."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> str:
    return hashlib.blake2b(normalize(text).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def content_hash(text: str) -> str:
    """Hash of the raw text (the embedding cache key: models see the raw text)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


@dataclass
class Columns:
    """Which input columns play which role (``None`` = absent)."""

    text: str
    id: str | None = None
    label: str | None = None
    embedding: str | None = None

    @classmethod
    def resolve(cls, schema: pa.Schema, source: str, text: str | None = None, id: str | None = None,
                label: str | None = None, embedding: str | None = None) -> Columns:
        names = schema.names

        def pick(given: str | None, candidates: tuple[str, ...], role: str, flag: str) -> str | None:
            if given is not None:
                if given == "":
                    return None
                if given not in names:
                    raise UimError(f"{source}: no column '{given}' for {role}", expected=f"one of {names}",
                                   got=repr(given), hint=f"pass {flag} with an existing column")
                return given
            lower = {n.lower(): n for n in names}
            return next((lower[c] for c in candidates if c in lower), None)

        text_col = pick(text, TEXT_CANDIDATES, "text", "--text-col")
        if text_col is None:
            strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            if len(strings) == 1:
                text_col = strings[0]
            else:
                raise UimError(f"{source}: no text column found", expected=f"one of {list(TEXT_CANDIDATES)}",
                               got=f"columns {names}", hint="name it with --text-col")
        ftype = schema.field(text_col).type
        if not (pa.types.is_string(ftype) or pa.types.is_large_string(ftype) or pa.types.is_null(ftype)):
            raise UimError(f"{source}: text column '{text_col}' is not text", expected="a string column",
                           got=str(ftype), hint="name the text column with --text-col")
        emb_col = pick(embedding, EMBEDDING_CANDIDATES, "embeddings", "--embedding-col")
        if emb_col is not None and not (pa.types.is_list(schema.field(emb_col).type)
                                        or pa.types.is_fixed_size_list(schema.field(emb_col).type)
                                        or pa.types.is_large_list(schema.field(emb_col).type)):
            raise UimError(f"{source}: embedding column '{emb_col}' is not a list of floats",
                           got=str(schema.field(emb_col).type), hint="pass --embedding-col '' to ignore it")
        return cls(text=text_col, id=pick(id, ID_CANDIDATES, "ids", "--id-col"),
                   label=pick(label, LABEL_CANDIDATES, "labels", "--label-col"), embedding=emb_col)


def embedding_matrix(col: pa.ChunkedArray | pa.Array, source: str, offset: int = 0) -> np.ndarray:
    """Validate a list-of-floats column (same length everywhere, no nulls/NaN) and return float32."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        row = offset + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise UimError(f"{source}: embedding is null at row {row}", expected="a vector in every row",
                       hint="drop those rows or drop the embedding column to embed the text instead")
    if pa.types.is_fixed_size_list(col.type):
        dim = col.type.list_size
        flat = col.values
    else:
        lengths = pc.list_value_length(col).to_numpy()
        dim = int(lengths[0]) if len(lengths) else 0
        bad = np.flatnonzero(lengths != dim)
        if len(bad):
            raise UimError(f"{source}: embedding at row {offset + int(bad[0])} has {lengths[bad[0]]} dimensions",
                           expected=f"{dim} like row {offset}", got=str(lengths[bad[0]]),
                           hint="all embeddings must come from one model")
        flat = col.flatten()
    mat = flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    finite = np.isfinite(mat).all(axis=1)
    if not finite.all():
        row = offset + int(np.flatnonzero(~finite)[0])
        raise UimError(f"{source}: embedding at row {row} has NaN or inf", expected="finite numbers")
    return mat


def fixed_list(mat: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1)), mat.shape[1])


class IngestStage(Stage):
    """Map a raw corpus batch onto the ``samples`` schema."""

    name: ClassVar[str] = "ingest"
    adds: ClassVar[tuple[str, ...]] = ("id", "text", "label", "text_hash", "n_chars", "row")
    batch_size: ClassVar[int] = 65536

    def __init__(self, columns: Columns, source: str) -> None:
        self.columns = columns
        self.source = source

    def process(self, batch: pa.Table) -> pa.Table:
        c = self.columns
        rows = batch.column(ROW_COL).to_numpy()
        offset = int(rows[0]) if len(rows) else 0
        texts = ["" if t is None else t for t in batch.column(c.text).to_pylist()]
        hashes = [text_hash(t) for t in texts]
        if c.id is not None:
            ids_col = batch.column(c.id)
            if ids_col.null_count:
                row = offset + int(np.flatnonzero(ids_col.is_null().to_numpy(zero_copy_only=False))[0])
                raise UimError(f"{self.source}: id is null at row {row} of column '{c.id}'",
                               expected="an id in every row", hint="fill it, or pass --id-col '' to derive ids")
            ids = pa.array([str(x) for x in ids_col.to_pylist()], pa.string())
        else:
            ids = pa.array([content_hash(t) for t in texts], pa.string())
        cols = {
            "id": ids,
            "text": pa.array(texts, pa.string()),
            "text_hash": pa.array(hashes, pa.string()),
            "n_chars": pa.array([len(t) for t in texts], pa.int64()),
            "row": pa.array(rows, pa.int64()),
        }
        if c.label is not None:
            labels = batch.column(c.label).to_pylist()
            cols["label"] = pa.array([None if v is None else str(v) for v in labels], pa.string())
        if c.embedding is not None:
            cols["embedding"] = fixed_list(embedding_matrix(batch.column(c.embedding), self.source, offset))
        return pa.table(cols)


def dedupe_ids(table: pa.Table, source: str, derived: bool) -> pa.Table:
    """Derived ids of repeated texts get ``~2``, ``~3`` suffixes; repeated given ids are an error."""
    ids = table.column("id").to_pylist()
    seen: dict[str, int] = {}
    dup_rows: list[int] = []
    for i, x in enumerate(ids):
        if x in seen:
            dup_rows.append(i)
        seen[x] = seen.get(x, 0) + 1
    if not dup_rows:
        return table
    if not derived:
        first = dup_rows[0]
        earlier = ids.index(ids[first])
        raise UimError(f"{source}: duplicate id {ids[first]!r} at rows {earlier} and {first}",
                       expected="unique ids", got=f"{len(dup_rows)} repeated ids",
                       hint="pass --id-col with a unique column, or --id-col '' to derive ids from content")
    count: dict[str, int] = {}
    new = []
    for x in ids:
        count[x] = count.get(x, 0) + 1
        new.append(x if count[x] == 1 else f"{x}~{count[x]}")
    return table.set_column(table.schema.get_field_index("id"), "id", pa.array(new, pa.string()))
