"""A real pre-training-like corpus from texts on this machine (Debian docs, Python's standard library),
for `make bench` (pipelines/bench_corpora.py): unlabelled, four sources of different kinds, long
documents, metadata columns, many files in four formats, planted defects concentrated in some sources.
``python -m pipelines.build_real_corpus [OUT]`` builds it alone.

Sources (documents of at least MIN_CHARS characters, clipped at MAX_CHARS):

* ``changelog``: /usr/share/doc/*/changelog.Debian.gz, consecutive entries joined into documents of
  ~3,000 characters; two ``.jsonl.gz`` shards; text column ``text``; metadata package, path, url,
  n_entries.
* ``copyright``: /usr/share/doc/*/copyright (exact copies across packages removed); parquet; text
  column ``content``; metadata package, path, url.
* ``docstring``: module, class and function docstrings of /usr/lib/python3.*/ (the standard library;
  from MIN_CHARS / 2 characters);
  ``.jsonl.zst``; text column ``text``; metadata module, qualname, path, url.
* ``manpage``: English man pages (/usr/share/man/man{1,5,8}), troff markup stripped; csv; text column
  ``body``; metadata section, path, url, and the page's ``lang`` (an input column: ``meta_lang``).

Planted (``truth.parquet``: id, defect, kind, source_id; uimdata.synth's planting): exact and near
duplicates and corrupted documents per source (most exact copies in ``docstring``, most corrupted ones
in the second changelog shard, a "bad crawl"), and out-of-distribution documents in ``manpage``:
other-language man pages (German, French, Spanish, ...; ``kind`` other_language) and English pages whose
text after the first ~250 tokens is another language's page (``kind`` late_other_language: truncation
to the model's window sees only English). Every row has an ``id``.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

MIN_CHARS, MAX_CHARS = 1200, 12_000
_ENTRY = re.compile(r"^\S+ \([^)]*\) [^;]*; urgency=", re.M)


def _norm_hash(t: str) -> str:
    return hashlib.blake2b(" ".join(t.lower().split()).encode(), digest_size=8).hexdigest()


def changelogs(limit: int) -> list[dict]:
    rows = []
    for path in sorted(Path("/usr/share/doc").glob("*/changelog.Debian.gz")):
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        starts = [m.start() for m in _ENTRY.finditer(text)] + [len(text)]
        entries = [text[a:b].strip() for a, b in zip(starts, starts[1:])]
        doc: list[str] = []
        for e in entries:
            doc.append(e)
            if sum(map(len, doc)) >= 3000:
                rows.append({"text": "\n\n".join(doc)[:MAX_CHARS], "package": path.parent.name, "n_entries": len(doc)})
                doc = []
        if doc and sum(map(len, doc)) >= MIN_CHARS:
            rows.append({"text": "\n\n".join(doc)[:MAX_CHARS], "package": path.parent.name, "n_entries": len(doc)})
    seen: set[str] = set()
    unique = []
    for r in rows:  # binary packages of one source package ship the same changelog: keep one copy
        h = _norm_hash(r["text"])
        if h not in seen:
            seen.add(h)
            unique.append(r | {"path": f"/usr/share/doc/{r['package']}/changelog.Debian.gz",
                               "url": f"https://tracker.debian.org/pkg/{r['package']}"})
    return unique[:limit]


def copyrights(limit: int) -> list[dict]:
    rows, seen = [], set()
    for path in sorted(Path("/usr/share/doc").glob("*/copyright")):
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        h = _norm_hash(text)
        if len(text) < MIN_CHARS or h in seen:
            continue
        seen.add(h)
        rows.append({"content": text[:MAX_CHARS], "package": path.parent.name, "path": str(path),
                     "url": f"https://sources.debian.org/src/{path.parent.name}/"})
    return rows[:limit]


def docstrings(limit: int) -> list[dict]:
    rows, seen = [], set()
    roots = sorted(Path("/usr/lib").glob("python3.*"))
    for root in roots[-1:]:
        for path in sorted(root.rglob("*.py")):
            if any(p in path.parts for p in ("test", "tests", "idlelib", "site-packages", "dist-packages")):
                continue
            try:
                tree = ast.parse(path.read_text("utf-8"))
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            for node in [tree, *ast.walk(tree)]:
                if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                doc = ast.get_docstring(node)
                if not doc or len(doc) < MIN_CHARS // 2 or _norm_hash(doc) in seen:
                    continue
                seen.add(_norm_hash(doc))
                name = getattr(node, "name", "")
                rows.append({"text": doc[:MAX_CHARS], "module": module, "qualname": name,
                             "path": str(path), "url": f"https://docs.python.org/3/library/{module.split('.')[0]}.html"})
    return rows[:limit]


_TROFF_ESC = re.compile(r"\\f[BIRP0-9]|\\f\(..|\\f\[[^]]*\]|\\s[+-]?\d|\\\(..|\\\[[^]]*\]|\\[&|^%:c]")


def _troff_text(src: str) -> str:
    out = []
    for line in src.splitlines():
        if line.startswith((".\\\"", "'\\\"", ".\\}", ".ig", ".de")):
            continue
        if line.startswith("."):
            m = re.match(r"\.(SH|SS|B|I|BI|BR|IR|RB|IB|TP|IP|PP|LP|P|HP|TH|Nm|Nd|Sh|It|Fl|Ar|Op|Pa|Xr)\b\s*(.*)", line)
            if not m:
                continue
            line = m.group(2).replace('"', "")
            if m.group(1) == "TH":
                continue
        line = _TROFF_ESC.sub("", line).replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ")
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def manpages(limit: int, lang_dirs: tuple[str, ...] = ("",), sections: tuple[str, ...] = ("1", "5", "8"),
             lang: str = "en") -> list[dict]:
    rows = []
    for ld in lang_dirs:
        for sec in sections:
            base = Path("/usr/share/man") / ld / f"man{sec}"
            for path in sorted(base.glob("*.gz")):
                try:
                    text = _troff_text(gzip.decompress(path.read_bytes()).decode("utf-8"))
                except (OSError, UnicodeDecodeError, EOFError):
                    continue
                if len(text) < MIN_CHARS:
                    continue
                name = path.name.removesuffix(".gz")
                rows.append({"body": text[:MAX_CHARS], "section": sec, "path": str(path),
                             "url": f"https://manpages.debian.org/{name}", "lang": ld or lang})
                if len(rows) >= limit * 3:
                    break
    rng = np.random.default_rng(len(rows))  # a spread over sections and languages, not the first pages only
    return [rows[i] for i in sorted(rng.permutation(len(rows))[:limit])]


def _ids(rows: list[dict], prefix: str) -> list[dict]:
    for i, r in enumerate(rows):
        r["id"] = f"{prefix}{i:05d}"
    return rows


def _plant(rows: list[dict], text_col: str, rng: np.random.Generator, exact: int, near: int,
           corrupted: int, prefix: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plant, then number every row ``prefix`` + row position (ids unique across files, no tell-tale ids)."""
    from uimdata.synth import plant_all, renumber_ids

    df = pl.DataFrame(rows).rename({text_col: "text"})
    out, truth = plant_all(df, n_exact=exact, n_near=near, n_corrupted=corrupted, rng=rng)
    out, truth = renumber_ids(out, truth, prefix)
    return out.rename({"text": text_col}), truth


def build(out: Path, seed: int = 0, scale: float = 1.0) -> dict:
    """Write the corpus under ``out/corpus/`` and ``out/truth.parquet``; returns the counts."""
    rng = np.random.default_rng(seed)

    def k(count: int) -> int:  # planted counts scale with the corpus
        return max(2, int(round(count * scale)))

    n = {name: int(v * scale) for name, v in {"changelog": 1400, "copyright": 500, "docstring": 900,
                                        "manpage": 1100}.items()}
    corpus = out / "corpus"
    if corpus.exists():
        import shutil

        shutil.rmtree(corpus)
    (corpus / "debian").mkdir(parents=True)
    (corpus / "python").mkdir()
    (corpus / "man").mkdir()
    truths = []
    counts: dict[str, dict] = {}

    def add(name: str, df: pl.DataFrame, truth: pl.DataFrame) -> None:
        truths.append(truth.with_columns(pl.lit(name).alias("file")))
        counts[name] = {"rows": df.height, **{k: int(v) for k, v in truth["defect"].value_counts().rows()}}

    ch = _ids(changelogs(n["changelog"]), "chg")
    for r in ch:
        r["source"] = "changelog"
    half = len(ch) // 2
    df, t = _plant(ch[:half], "text", rng, exact=k(10), near=k(30), corrupted=k(10), prefix="chg1-")
    (corpus / "debian" / "changelog-1.jsonl.gz").write_bytes(gzip.compress(df.write_ndjson().encode()))
    add("debian/changelog-1.jsonl.gz", df, t)
    df, t = _plant(ch[half:], "text", rng, exact=k(10), near=k(30), corrupted=k(90), prefix="chg2-")  # the "bad crawl"
    (corpus / "debian" / "changelog-2.jsonl.gz").write_bytes(gzip.compress(df.write_ndjson().encode()))
    add("debian/changelog-2.jsonl.gz", df, t)

    cp = _ids(copyrights(n["copyright"]), "cpy")
    for r in cp:
        r["source"] = "copyright"
    df, t = _plant(cp, "content", rng, exact=k(10), near=k(30), corrupted=k(10), prefix="cpy-")
    pq.write_table(df.to_arrow(), corpus / "debian" / "copyright.parquet")
    add("debian/copyright.parquet", df, t)

    ds = _ids(docstrings(n["docstring"]), "doc")
    for r in ds:
        r["source"] = "docstring"
    df, t = _plant(ds, "text", rng, exact=k(80), near=k(30), corrupted=k(10), prefix="doc-")
    with pa.CompressedOutputStream(str(corpus / "python" / "docstrings.jsonl.zst"), "zstd") as f:
        f.write(df.write_ndjson().encode())
    add("python/docstrings.jsonl.zst", df, t)

    mp = _ids(manpages(n["manpage"]), "man")
    other = manpages(400, lang_dirs=("de", "fr", "es", "it", "pt", "pl", "nl", "sv"), sections=("1", "5", "8"))
    other = [other[i] for i in rng.permutation(len(other))]
    for r in mp:
        r["source"] = "manpage"
    df, t = _plant(mp, "body", rng, exact=k(10), near=k(30), corrupted=k(10), prefix="man-")
    # out of distribution: 60 other-language pages, and 60 English pages continued in another language
    ood_rows, ood_truth = [], []
    for j, r in enumerate(other[:k(60)]):
        ood_rows.append(r | {"id": f"ood{j:05d}", "source": "manpage"})
        ood_truth.append({"id": f"ood{j:05d}", "defect": "outlier", "kind": "other_language", "source_id": None})
    from uimdata.stages.embed import EmbedStage

    stage = EmbedStage(chunking=True)
    english = df.filter(~pl.col("id").is_in(t["id"].to_list())).sample(k(60), seed=seed)
    n_ood = k(60)
    for j, (r, o) in enumerate(zip(english.iter_rows(named=True), other[n_ood:2 * n_ood])):
        sp = stage.spans([r["body"]])[0]
        head = r["body"][: sp[min(len(sp), stage.window) - 1][1]]
        ood_rows.append(r | {"id": f"late{j:05d}", "body": (head + "\n\n" + o["body"])[:MAX_CHARS]})
        ood_truth.append({"id": f"late{j:05d}", "defect": "outlier", "kind": "late_other_language",
                          "source_id": None})
    ood = pl.DataFrame(ood_rows).select(df.columns)
    df = pl.concat([df, ood])[rng.permutation(df.height + ood.height)]
    t = pl.concat([t, pl.DataFrame(ood_truth, schema=t.schema)])
    df.write_csv(corpus / "man" / "manpages.csv")
    add("man/manpages.csv", df, t)
    (corpus / "README.txt").write_text("built by pipelines/build_real_corpus.py; not a corpus file\n")
    truth = pl.concat(truths)
    truth.write_parquet(out / "truth.parquet")
    summary = {"files": counts, "rows": sum(c["rows"] for c in counts.values()),
               "planted": {k: int(v) for k, v in truth["defect"].value_counts().rows()}}
    (out / "corpus.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path, default=Path("runs/bench/real"))
    print(json.dumps(build(ap.parse_args().out), indent=1))
