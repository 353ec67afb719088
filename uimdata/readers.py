"""Readers for every corpus format ``uim scan`` accepts, yielding Arrow batches.

Formats: parquet, jsonl (``.jsonl``/``.ndjson``/``.json``), csv/tsv (jsonl and csv also compressed:
``.gz``, ``.zst``), a Hugging Face ``save_to_disk`` directory (``state.json`` + ``*.arrow``), and a
directory or glob of such files, in any mix (:func:`corpus_files`; see docs/corpora.md).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from uimdata.errors import UimError

#: column the reader appends: each row's position in the corpus (for error messages and ``row``)
ROW_COL = "__uim_row"
_SUFFIX = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl", ".csv": "csv", ".tsv": "csv"}


def detect_format(path: Path) -> str:
    if not path.exists():
        raise UimError(f"corpus not found: {path}", expected="a file or directory",
                       got="no such path", hint="check the path, or run `make scan` for the demo corpus")
    if path.is_dir():
        if (path / "state.json").exists() or (path / "dataset_info.json").exists():
            return "hf"
        if (path / "dataset_dict.json").exists():
            splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
            raise UimError(f"{path} is a Hugging Face DatasetDict", expected="one split",
                           got=f"splits {splits}", hint=f"pass one split, e.g. {path / (splits or ['train'])[0]}")
        if any(file_format(q)[0] and not _skipped(q.relative_to(path)) for q in path.rglob("*") if q.is_file()):
            return "dir"
        raise UimError(f"cannot read directory {path}",
                       expected=f"files ending in {_suffix_list()}, or a Hugging Face save_to_disk directory",
                       got=f"{sorted(p.name for p in path.iterdir())[:5]}")
    fmt, _ = file_format(path)
    if fmt is None:
        raise UimError(f"unknown corpus format for {path}",
                       expected=f"one of {sorted(_SUFFIX)} or a directory", got=repr(path.suffix or path.name),
                       hint="convert it to parquet or jsonl")
    return fmt


def _utf8_bytes(path: Path, encoding_errors: str, compression: str | None = None) -> bytes:
    if compression:
        try:
            with pa.input_stream(str(path), compression=compression) as f:
                raw = f.read()
        except (pa.ArrowInvalid, OSError) as e:
            raise UimError(f"cannot decompress {path}", expected=f"a {compression} stream",
                           got=str(e).splitlines()[0] if str(e) else type(e).__name__,
                           hint="check the file is complete, and that its suffix names its compression") from None
    else:
        raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        return raw
    except UnicodeDecodeError as e:
        if encoding_errors == "replace":
            return raw.decode("utf-8", errors="replace").encode("utf-8")
        line = raw.count(b"\n", 0, e.start) + 1
        raise UimError(f"{path} is not valid UTF-8 at line {line} (byte {e.start})",
                       expected="UTF-8 text", got=f"byte 0x{raw[e.start]:02x}",
                       hint="re-encode it (iconv -f latin1 -t utf-8), or pass --encoding-errors replace "
                            "to read bad bytes as U+FFFD (they are then flagged as corrupted)") from None


def _read_text_format(path: Path, fmt: str, encoding_errors: str, compression: str | None = None) -> pa.Table:
    data = _utf8_bytes(path, encoding_errors, compression)
    try:
        if fmt == "jsonl":
            return pajson.read_json(io.BytesIO(data))
        delim = "\t" if ".tsv" in path.name.lower() else ","
        return pacsv.read_csv(io.BytesIO(data), parse_options=pacsv.ParseOptions(
            delimiter=delim, newlines_in_values=True))
    except pa.ArrowInvalid as e:
        raise UimError(f"cannot parse {path} as {fmt}", got=str(e).splitlines()[0],
                       hint="check the file is one JSON object per line" if fmt == "jsonl"
                       else "check the header row and quoting") from None


def _hf_table(path: Path) -> pa.Table:
    state = path / "state.json"
    files = ([path / f["filename"] for f in json.loads(state.read_text())["_data_files"]]
             if state.exists() else sorted(path.glob("*.arrow")))
    if not files:
        raise UimError(f"no .arrow files in Hugging Face directory {path}", expected="data-*.arrow shards")
    tables = []
    for f in files:
        with pa.memory_map(str(f)) as src:
            try:
                tables.append(ipc.open_stream(src).read_all())
            except pa.ArrowInvalid:
                tables.append(ipc.open_file(src).read_all())
    return pa.concat_tables(tables)


def _numbered(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    offset = 0
    for b in batches:
        yield b.append_column(ROW_COL, pa.array(range(offset, offset + b.num_rows), pa.int64()))
        offset += b.num_rows


def read_batches(path: str | Path, batch_size: int = 65536,
                 encoding_errors: str = "strict") -> tuple[pa.Schema, Iterator[pa.Table]]:
    """Return the corpus schema and an iterator of Arrow tables of at most ``batch_size`` rows,
    each with a ``__uim_row`` column (the row's position in the corpus).

    A corpus of several files is returned under one schema (the union of the files' columns, types
    promoted; a column a file lacks is null there). ``uim scan`` reads each file on its own instead
    (:func:`corpus_files`), so that each file's columns are resolved separately."""
    files = corpus_files(path)
    if len(files) == 1:
        schema, batches = files[0].read(batch_size, encoding_errors)
        return schema, _numbered(batches)
    parts = [t for f in files for t in f.read(batch_size, encoding_errors)[1] if t.num_rows]
    if not parts:
        schema, _ = files[0].read(batch_size, encoding_errors)
        return schema, iter(())
    try:
        table = pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise UimError(f"{path}: the files' columns do not combine", got=str(e).splitlines()[0],
                       hint="give every file the same columns and types") from None
    return table.schema, _numbered(table.slice(i, batch_size) for i in range(0, table.num_rows, batch_size))


# ------------------------------------------------------------------------------ many files per corpus

#: bytes a parquet column is read through at a time (pages streamed), instead of a whole row group
PARQUET_BUFFER = 1 << 20


def parquet_file(path: str | Path) -> pq.ParquetFile:
    """A parquet file opened for batches that stream its pages: without pre-buffering and through a
    :data:`PARQUET_BUFFER` stream, reading a 400,000-row corpus of 384-d embeddings in 3 row groups peaks
    at 571 MB instead of 931 MB (whole row groups' column chunks held), and no slower from a local disk."""
    return pq.ParquetFile(str(path), pre_buffer=False, buffer_size=PARQUET_BUFFER)

_COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_GLOB_CHARS = set("*?[")


@dataclass
class CorpusFile:
    """One file of a corpus (or a whole Hugging Face ``save_to_disk`` directory)."""

    path: Path
    #: what ``samples.source_file`` records: the path relative to the corpus directory (or glob base)
    name: str
    format: str
    compression: str | None = None

    def num_rows(self) -> int | None:
        """The file's row count when its format records one without reading the rows (parquet's footer);
        None otherwise, or when the footer cannot be read (:meth:`read` then says why)."""
        if self.format != "parquet":
            return None
        try:
            return pq.ParquetFile(str(self.path)).metadata.num_rows
        except (pa.ArrowInvalid, OSError):
            return None

    def parquet(self) -> pq.ParquetFile:
        """This parquet file opened for streamed batches (:func:`parquet_file`); a one-line error when its
        footer cannot be read."""
        try:
            return parquet_file(self.path)
        except (pa.ArrowInvalid, OSError) as e:
            raise UimError(f"cannot read parquet {self.path}", got=str(e).splitlines()[0]) from None

    def read(self, batch_size: int = 65536, encoding_errors: str = "strict") -> tuple[pa.Schema, Iterator[pa.Table]]:
        """This file's schema and its rows as tables of at most ``batch_size`` rows (no row numbers)."""
        if self.format == "parquet":
            pf = self.parquet()
            schema = pf.schema_arrow

            def gen() -> Iterator[pa.Table]:
                for b in pf.iter_batches(batch_size=batch_size):
                    if b.num_rows:
                        yield pa.Table.from_batches([b])
            return schema, gen()
        table = (_hf_table(self.path) if self.format == "hf"
                 else _read_text_format(self.path, self.format, encoding_errors, self.compression))
        return table.schema, (table.slice(i, batch_size) for i in range(0, table.num_rows, batch_size))


def file_format(path: Path) -> tuple[str | None, str | None]:
    """(format, compression) of a file from its suffixes: ``x.jsonl.gz`` -> ("jsonl", "gzip")."""
    name = path.name.lower()
    comp = next((c for suf, c in _COMPRESSION.items() if name.endswith(suf)), None)
    if comp:
        name = name[: name.rindex(".")]
    fmt = _SUFFIX.get(Path(name).suffix)
    if comp and fmt == "parquet":
        return None, comp  # parquet compresses inside the file
    return fmt, comp


def _skipped(rel: Path) -> bool:
    """Hidden files and folders, and Spark/Hadoop markers (``_SUCCESS``, ``_metadata``)."""
    return any(part.startswith((".", "_")) for part in rel.parts)


def corpus_files(path: str | Path) -> list[CorpusFile]:
    """The files ``uim scan CORPUS`` reads, in path order: one file, a directory (read recursively,
    every supported file in it; a Hugging Face ``save_to_disk`` directory is one corpus), or a glob
    (``'data/*.jsonl.gz'``, ``'**'`` recursive). Files of other types in a directory are skipped."""
    text = str(path)
    p = Path(text)
    if not p.exists() and _GLOB_CHARS & set(text):
        import glob as _glob

        matches = sorted(Path(m) for m in _glob.glob(text, recursive=True) if Path(m).is_file())
        parts = Path(text).parts
        base = Path(*parts[: next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))] or ["."])
        files = [CorpusFile(m, str(m.relative_to(base)) if m.is_relative_to(base) else str(m), *file_format(m))
                 for m in matches]
        files = [f for f in files if f.format is not None]
        if not files:
            raise UimError(f"no corpus files match {text}", expected=f"files ending in {_suffix_list()}",
                           got=f"{len(matches)} matching files of other types" if matches else "no match",
                           hint="check the pattern (quote it so the shell does not expand it)")
        return files
    fmt = detect_format(p)
    if fmt == "hf" or not p.is_dir():
        return [CorpusFile(p, p.name, fmt, file_format(p)[1] if fmt != "hf" else None)]
    files = []
    for m in sorted(q for q in p.rglob("*") if q.is_file()):
        rel = m.relative_to(p)
        fmt_m, comp = file_format(m)
        if fmt_m is not None and not _skipped(rel):
            files.append(CorpusFile(m, str(rel), fmt_m, comp))
    return files


def _suffix_list() -> str:
    return ", ".join(sorted(_SUFFIX)) + " (jsonl/csv also as .gz or .zst)"
