"""ingest: pick the id/text/label/embedding columns (per input file), normalise, hash, identify the language.

Output columns (the ``samples`` table): ``id`` (string), ``text`` (string, null -> ""),
``text_hash`` (16 hex chars of blake2b over the normalised text: NFKC, case-folded, whitespace
collapsed), ``n_chars``, ``row`` (position in the corpus), ``label`` (string, nullable; absent when
the corpus has none), ``source_file`` (the input file the row came from), ``lang`` / ``lang_conf``
(:mod:`uimdata.lang`), then every other input column (metadata, see :func:`meta_name`), and
``embedding`` when the corpus brings its own (moved to ``RUN/embeddings`` by the scan).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator
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


def normalize(text: str) -> str:
    """The normal form that defines an exact duplicate."""
    # str.split() splits on exactly the characters of re's \s (str.isspace), 3x faster than a sub
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


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
    # float32 input stays the Arrow buffer (no copy): the sink normalises it into its own array
    mat = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
    finite = np.isfinite(mat).all(axis=1)
    if not finite.all():
        row = offset + int(np.flatnonzero(~finite)[0])
        raise UimError(f"{source}: embedding at row {row} has NaN or inf", expected="finite numbers")
    return mat


def dimension_changed(source: str, row: int, expected: int, dims: set[int]) -> UimError:
    """The error for a given embedding column whose dimension changes (between files) at ``row``."""
    return UimError(f"{source}: embedding dimension changes at row {row}", expected=f"{expected} everywhere",
                    got=f"dimensions {sorted(dims)}", hint="all embeddings must come from one model")


def fixed_list(mat: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1)), mat.shape[1])


#: the columns ``samples`` holds besides the corpus's metadata; an input column whose name equals one
#: of them (case-insensitively, as DuckDB compares names) is kept as ``meta_<name>``
RESERVED = ("id", "text", "text_hash", "n_chars", "row", "label", "source_file", "lang", "lang_conf", "embedding")
#: internal names of the role columns between the reader and the ingest stage
_TEXT, _ID, _LABEL, _EMB, _FILE = "__uim_text", "__uim_id", "__uim_label", "__uim_embedding", "__uim_file"


def meta_name(name: str) -> str:
    """The ``samples`` column of input column ``name``: itself, or ``meta_<name>`` when it collides."""
    out = name
    while out.lower() in RESERVED or out.startswith("__uim_"):
        out = f"meta_{out}"
    return out


class IngestStage(Stage):
    """Map a raw corpus batch (role columns renamed by :class:`CorpusReader`) onto the ``samples`` schema:
    id, text, text_hash, n_chars, row, [label], source_file, lang, lang_conf, then the metadata columns."""

    name: ClassVar[str] = "ingest"
    adds: ClassVar[tuple[str, ...]] = ("id", "text", "label", "text_hash", "n_chars", "row", "source_file",
                                       "lang", "lang_conf")
    batch_size: ClassVar[int] = 65536
    parallel: ClassVar[bool] = True  # hashing, normalising and identifying languages in Python

    def __init__(self, source: str, lang: bool = True) -> None:
        self.source = source
        self.lang = lang

    def process(self, batch: pa.Table) -> pa.Table:
        from uimdata.lang import lang_columns

        rows = batch.column(ROW_COL).to_numpy()
        offset = int(rows[0]) if len(rows) else 0
        source = batch.column(_FILE)[0].as_py() if batch.num_rows and _FILE in batch.column_names else self.source
        texts = ["" if t is None else t for t in batch.column(_TEXT).to_pylist()]
        hashes = [text_hash(t) for t in texts]
        if _ID in batch.column_names:
            ids_col = batch.column(_ID)
            if ids_col.null_count:
                row = offset + int(np.flatnonzero(ids_col.is_null().to_numpy(zero_copy_only=False))[0])
                raise UimError(f"{source}: id is null at row {row}",
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
        if _LABEL in batch.column_names:
            labels = batch.column(_LABEL).to_pylist()
            cols["label"] = pa.array([None if v is None else str(v) for v in labels], pa.string())
        cols["source_file"] = (batch.column(_FILE) if _FILE in batch.column_names
                               else pa.array([self.source] * batch.num_rows, pa.string()))
        if self.lang:
            cols.update(lang_columns(texts))
        if _EMB in batch.column_names:
            cols["embedding"] = fixed_list(embedding_matrix(batch.column(_EMB), source, offset))
        for name in batch.column_names:
            if not name.startswith("__uim_"):
                cols[name] = batch.column(name)
        return pa.table(cols)


@dataclass
class FileInfo:
    """One input file as ``run.json`` records it (``files``)."""

    path: str
    source_file: str
    format: str
    rows: int = 0
    columns: dict[str, str | None] | None = None


class CorpusReader:
    """Reads a corpus file by file: each file's columns are resolved on their own (a shard may call its
    text ``content`` where the others say ``text``), must fill the same roles as the first file's (else
    a one-line error naming the file and its columns), and its rows carry ``source_file``."""

    def __init__(self, corpus: str, text: str | None = None, id: str | None = None, label: str | None = None,
                 embedding: str | None = None, keep_cols: list[str] | None = None,
                 drop_cols: list[str] | None = None, encoding_errors: str = "strict",
                 batch_size: int = 65536) -> None:
        from uimdata.readers import corpus_files

        self.corpus = corpus
        self.flags = {"text": text, "id": id, "label": label, "embedding": embedding}
        self.keep = None if keep_cols is None else list(keep_cols)
        self.drop = list(drop_cols or [])
        self.encoding_errors = encoding_errors
        self.batch_size = batch_size
        self.files = corpus_files(corpus)
        self.info: list[FileInfo] = []
        #: the first file's resolution (``run.json``'s ``columns``)
        self.columns: Columns | None = None
        self._first: tuple[str, dict[str, str | None]] | None = None
        #: input column -> samples column, in the order first seen
        self.metadata: dict[str, str] = {}
        self._seen: set[str] = set()

    def row_count(self) -> int | None:
        """The corpus's rows when every file records its count (parquet), for the progress bar; else None."""
        counts = [f.num_rows() for f in self.files]
        return None if any(c is None for c in counts) else sum(counts)

    def _resolve(self, schema: pa.Schema, where: str) -> Columns:
        cols = Columns.resolve(schema, where, **self.flags)
        roles = {"text": cols.text, "id": cols.id, "label": cols.label, "embedding": cols.embedding}
        if self._first is None:
            self._first = (where, roles)
            self.columns = cols
            return cols
        first_where, first = self._first
        if {r for r, c in roles.items() if c} != {r for r, c in first.items() if c}:
            def show(m: dict[str, str | None]) -> str:
                return ", ".join(f"{r}={c}" for r, c in m.items() if c) or "none"
            raise UimError(f"{where}: its columns fill other roles than {first_where}'s",
                           expected=f"{show(first)} (as in {first_where})",
                           got=f"{show(roles)} from columns {schema.names}",
                           hint="give every file the same roles, or name them with --text-col / --id-col / "
                                "--label-col / --embedding-col ('' = none)")
        return cols

    def _meta_cols(self, schema: pa.Schema, cols: Columns) -> list[str]:
        out = []
        for name in schema.names:
            if name in (cols.text, cols.embedding):
                continue
            if (name == cols.id and name.lower() == "id") or (name == cols.label and name.lower() == "label"):
                continue  # already samples.id / samples.label
            self._seen.add(name)
            if (self.keep is not None and name not in self.keep) or name in self.drop:
                continue
            out.append(name)
        return out

    def check_names(self) -> None:
        """--keep-cols / --drop-cols must name columns of the corpus (called after reading it)."""
        for flag, names in (("--keep-cols", self.keep or []), ("--drop-cols", self.drop)):
            missing = [n for n in names if n not in self._seen]
            if missing:
                raise UimError(f"{self.corpus}: {flag} names no metadata column {missing[0]!r}",
                               expected=f"one of {sorted(self._seen)}", got=repr(missing[0]),
                               hint="the text and embedding columns are never metadata")

    def _file_columns(self, schema: pa.Schema, where: str, info: FileInfo) -> tuple[dict[str, str], dict[str, str]]:
        """One file's role columns (internal name -> its column) and metadata columns (its column -> the
        samples column), resolved and checked against the first file's."""
        cols = self._resolve(schema, where)
        info.columns = {"text": cols.text, "id": cols.id, "label": cols.label, "embedding": cols.embedding}
        meta = self._meta_cols(schema, cols)
        for m in meta:
            self.metadata.setdefault(m, meta_name(m))
        roles = {_TEXT: cols.text}
        for internal, name in ((_ID, cols.id), (_LABEL, cols.label), (_EMB, cols.embedding)):
            if name is not None:
                roles[internal] = name
        return roles, {m: self.metadata[m] for m in meta}

    def batches(self) -> Iterator[pa.Table]:
        offset = 0
        for f in self.files:
            where = str(f.path)
            schema, batches = f.read(self.batch_size, self.encoding_errors)
            info = FileInfo(str(f.path), f.name, f.format + (f".{f.compression}" if f.compression else ""))
            self.info.append(info)
            roles = meta = None
            for b in batches:
                if not b.num_rows:
                    continue
                if roles is None:
                    roles, meta = self._file_columns(schema, where, info)
                yield assemble(b, roles, meta, offset, f.name)
                offset += b.num_rows
                info.rows += b.num_rows
        self.check_names()

    def read_tasks(self, task_rows: int = 131072) -> list[ReadTask] | None:
        """The corpus as tasks a worker reads on its own (:func:`read_task`): runs of whole row groups of
        about ``task_rows`` rows, each knowing its first corpus row, when every file is parquet (whose
        footer gives the row counts before any row is read); None for other formats (read here, with
        :meth:`batches`). Columns are resolved and checked here, file by file, as :meth:`batches` does."""
        if not self.files or any(f.format != "parquet" for f in self.files):
            return None
        tasks, offset = [], 0
        for f in self.files:
            pf = f.parquet()  # the footer only
            md, schema = pf.metadata, pf.schema_arrow
            info = FileInfo(str(f.path), f.name, f.format)
            self.info.append(info)
            if md.num_rows == 0:
                continue
            roles, meta = self._file_columns(schema, str(f.path), info)
            groups: list[int] = []
            held = 0
            for g in range(md.num_row_groups):
                groups.append(g)
                held += md.row_group(g).num_rows
                if held >= task_rows or g == md.num_row_groups - 1:
                    if held:
                        tasks.append(ReadTask(str(f.path), f.name, tuple(groups), offset, roles, meta, self.batch_size))
                    offset += held
                    groups, held = [], 0
            info.rows = md.num_rows
        self.check_names()
        return tasks


@dataclass(frozen=True)
class ReadTask:
    """Row groups ``groups`` of one parquet file, whose first row is corpus row ``offset``: what a worker
    reads itself (:func:`read_task`), with the columns :class:`CorpusReader` resolved for the file."""

    path: str
    name: str
    groups: tuple[int, ...]
    offset: int
    roles: dict[str, str]
    meta: dict[str, str]
    batch_size: int

    @property
    def has_embedding(self) -> bool:
        """The file has a given embedding column."""
        return _EMB in self.roles


def read_task(task: ReadTask) -> Iterator[pa.Table]:
    """The rows of ``task`` as :meth:`CorpusReader.batches` gives them (same columns, row numbers and
    ``source_file``), at most ``task.batch_size`` rows at a time."""
    from uimdata.readers import parquet_file

    pf = parquet_file(task.path)
    columns = list(dict.fromkeys([*task.roles.values(), *task.meta]))
    offset = task.offset
    for b in pf.iter_batches(batch_size=task.batch_size, row_groups=list(task.groups), columns=columns):
        if b.num_rows:
            yield assemble(pa.Table.from_batches([b]), task.roles, task.meta, offset, task.name)
            offset += b.num_rows


def assemble(b: pa.Table, roles: dict[str, str], meta: dict[str, str], offset: int, name: str) -> pa.Table:
    """A batch of one file in the ingest stage's input form: the role columns under their internal names,
    the corpus row numbers from ``offset``, the file's ``name``, then the metadata columns under their
    samples names (categoricals as their values: files may differ)."""
    out = {internal: b.column(col) for internal, col in roles.items()}
    out[ROW_COL] = pa.array(range(offset, offset + b.num_rows), pa.int64())
    out[_FILE] = pa.array([name] * b.num_rows, pa.string())
    for m, samples_name in meta.items():
        col = b.column(m)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        out[samples_name] = col
    return pa.table(out)


def combine(parts: list[pa.Table], source: str) -> pa.Table:
    """Concatenate ingest outputs whose metadata columns differ between files (missing = null,
    types promoted: int64 + float64 -> float64); a column whose types cannot combine is an error."""
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        types: dict[str, set[str]] = {}
        for p in parts:
            for fld in p.schema:
                types.setdefault(fld.name, set()).add(str(fld.type))
        bad = next((n for n, t in types.items() if len(t) > 1), None)
        raise UimError(f"{source}: metadata column {bad!r} has types that do not combine across files"
                       if bad else f"{source}: the files' columns do not combine",
                       expected="one type per column", got=f"{sorted(types.get(bad, []))}" if bad
                       else str(e).splitlines()[0],
                       hint=f"drop it with --drop-cols {bad}" if bad else "give every file the same columns") from None


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


def original_rows(run_dir: str, meta: dict) -> pa.Table:
    """What ``uim curate`` copies next to id/text/label: ``row``, every metadata column as ``samples``
    holds it, and the corpus's own embedding column (re-read from the corpus, unnormalised) if it had one."""
    import pyarrow.parquet as pq

    from uimdata.errors import UimError as _Err

    samples_path = f"{run_dir}/samples.parquet"
    names = list(meta.get("metadata", {}).values())
    extra = [c for c in ("url_host",) if c in pq.read_schema(samples_path).names]
    table = pq.read_table(samples_path, columns=["row", *names, *extra])
    emb_col = (meta.get("columns") or {}).get("embedding")
    if emb_col:
        cfg = meta.get("config", {})
        from pathlib import Path

        if not Path(cfg.get("corpus", "")).exists() and not set("*?[") & set(cfg.get("corpus", "")):
            raise _Err(f"the run's corpus {cfg.get('corpus')} is gone", expected="the files `uim scan` read",
                       got="no such path", hint="curate re-reads the corpus's embedding column from it")
        reader = CorpusReader(cfg["corpus"], cfg.get("text_col"), cfg.get("id_col"), cfg.get("label_col"),
                              cfg.get("embedding_col"), keep_cols=[], encoding_errors=cfg.get("encoding_errors",
                                                                                              "strict"))
        parts = [pa.table({"row": b.column(ROW_COL), emb_col: b.column(_EMB)}) for b in reader.batches()]
        embs = pa.concat_tables(parts, promote_options="permissive")
        if embs.num_rows == table.num_rows:
            table = table.append_column(emb_col, embs.column(emb_col))
    return table
