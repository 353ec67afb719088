"""Readers for every corpus format ``uim scan`` accepts, yielding Arrow batches.

Formats: a parquet file, a directory of parquet shards, jsonl (``.jsonl``/``.ndjson``/``.json``),
csv/tsv, and a Hugging Face ``save_to_disk`` directory (``state.json`` + ``*.arrow``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.ipc as ipc
import pyarrow.json as pajson

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
        if any(path.rglob("*.parquet")):
            return "parquet"
        raise UimError(f"cannot read directory {path}",
                       expected="parquet shards or a Hugging Face save_to_disk directory",
                       got=f"{sorted(p.name for p in path.iterdir())[:5]}")
    fmt = _SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise UimError(f"unknown corpus format for {path}",
                       expected=f"one of {sorted(_SUFFIX)} or a directory", got=repr(path.suffix or path.name),
                       hint="convert it to parquet or jsonl")
    return fmt


def _utf8_bytes(path: Path, encoding_errors: str) -> bytes:
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


def _read_text_format(path: Path, fmt: str, encoding_errors: str) -> pa.Table:
    data = _utf8_bytes(path, encoding_errors)
    try:
        if fmt == "jsonl":
            return pajson.read_json(io.BytesIO(data))
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
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
    each with a ``__uim_row`` column (the row's position in the corpus)."""
    schema, batches = _read_batches(Path(path), batch_size, encoding_errors)
    return schema, _numbered(batches)


def _read_batches(path: Path, batch_size: int, encoding_errors: str) -> tuple[pa.Schema, Iterator[pa.Table]]:
    fmt = detect_format(path)
    if fmt == "parquet":
        try:
            dataset = ds.dataset(str(path), format="parquet")
        except (pa.ArrowInvalid, OSError) as e:
            raise UimError(f"cannot read parquet {path}", got=str(e).splitlines()[0]) from None

        def gen() -> Iterator[pa.Table]:
            for b in dataset.to_batches(batch_size=batch_size):
                if b.num_rows:
                    yield pa.Table.from_batches([b])
        return dataset.schema, gen()
    table = _hf_table(path) if fmt == "hf" else _read_text_format(path, fmt, encoding_errors)
    return table.schema, (table.slice(i, batch_size) for i in range(0, table.num_rows, batch_size))
