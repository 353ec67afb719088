"""Multi-domain benchmark corpora, built deterministically from texts on this machine.

Four real corpora of different kinds, each with every planted defect family:

==============  ===========================================================  ======================
corpus          base texts                                                   label
==============  ===========================================================  ======================
``glosses``     WordNet glosses (``uimdata/data/wordnet``): short definitions  lexicographer file
``packages``    Debian package name + short description (``apt-cache        archive section
                dumpavail``): short technical texts with identifiers
``techdocs``    man pages (sections 1, 3, 5, 8; troff stripped, cut at a      none
                paragraph boundary below 6,000 characters) and long module
                docstrings of Python's standard library: long documents,
                several sources
``docstrings``  function / class docstrings of Python's standard library      none
                (parsed with ``ast``, never imported): medium-length code docs
==============  ===========================================================  ======================

Planted (``uimdata.synth``): exact duplicates (1 %), near duplicates (2 %), corrupted texts (2.5 %,
spread over :data:`uimdata.synth.ALL_CORRUPTION_KINDS`: the seven classic kinds plus ``truncation`` to a
few characters and ``page_chrome`` around a fragment), other-language rows (1.5 %) and other-genre rows
(1.5 %), and 5 % label noise (half uniform, half confusable) on the labelled corpora. Other language:
German / Spanish / Italian fortunes (``uimdata/data/ood``) for the short corpora, translated man pages
(``/usr/share/man/{de,fr,es,...}``) for ``techdocs``, several fortunes of one language joined for
``docstrings``. Other genre: English fortunes (quips, quotations) for ``glosses`` and ``docstrings``,
WordNet glosses for ``packages``, several English fortunes joined into one text for ``techdocs``.

The base of each corpus is deduplicated first (exact copies, then the generous natural near-duplicate
test of ``bench_data.natural_near_duplicates``), so that every duplicate in the benchmark is a planted one.
Everything is embedded once with the default model through uimdata's embedding cache and written to
``runs/domains/<corpus>.parquet`` (id, text, [label], embedding) and ``<corpus>_truth.parquet`` (id,
defect, kind, source_id). ``python -m pipelines.build_domains [corpus ...]``.
"""

from __future__ import annotations

import ast
import gzip
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_data import GLOSSES, embed_cached, natural_near_duplicates
from uimdata.synth import ALL_CORRUPTION_KINDS, plant_all, renumber_ids
from uimdata.synth.labels import confusable_classes, plant_label_noise, plant_ood

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "domains"
OOD = ROOT / "uimdata" / "data" / "ood" / "ood.parquet"
SIZES = {"glosses": 4000, "packages": 4000, "techdocs": 3000, "docstrings": 3000}
LABELLED = ("glosses", "packages")
MAX_DOC_CHARS = 6000


# ------------------------------------------------------------------------------------------ man pages

_ESC = [
    (re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)"), ""),       # font changes
    (re.compile(r"\\s[+-]?\d+|\\s\[[^\]]*\]"), ""),      # size changes
    (re.compile(r"\\\*(?:\[[^\]]*\]|\(..|.)"), ""),      # strings
    (re.compile(r"\\[,/&:%|^]"), ""),
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\\(em|\\\[em\]"), "\u2014"),
    (re.compile(r"\\\(en|\\\[en\]"), "\u2013"),
    (re.compile(r"\\\((?:aq|cq)|\\\[aq\]"), "'"),
    (re.compile(r"\\\((?:lq|rq|dq)|\\\[(?:lq|rq)\]"), '"'),
    (re.compile(r"\\\(bu|\\\[bu\]"), "\u2022"),
    (re.compile(r"\\\(co|\\\[co\]"), "\u00a9"),
    (re.compile(r"\\\(ga"), "`"),
    (re.compile(r"\\\(ti|\\\(ap"), "~"),
    (re.compile(r"\\\(\w\w|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\ "), " "),
    (re.compile(r"\\c$"), ""),
    (re.compile(r"\\(.)"), r"\1"),
]
_FONT_MACROS = {"B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM", "SB", "UR", "MT"}
_BREAK_MACROS = {"PP", "P", "LP", "TP", "IP", "HP", "SH", "SS", "br", "sp", "TQ", "RS", "RE", "Sh", "Pp"}


def _unescape(s: str) -> str:
    for rx, rep in _ESC:
        s = rx.sub(rep, s)
    return s


def _args(rest: str) -> list[str]:
    return [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', rest)]


def troff_to_text(src: str) -> str:
    """Plain text of a man page source: a crude renderer, enough for a benchmark corpus."""
    paras: list[list[str]] = [[]]
    nofill = False
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"", '\\"')) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"[.']\s*(\w+)\s*(.*)", line)
            if not m:
                continue
            mac, rest = m.group(1), m.group(2)
            if mac in ("nf", "EX"):
                nofill = True
                paras.append([])
            elif mac in ("fi", "EE"):
                nofill = False
                paras.append([])
            elif mac in ("SH", "SS", "Sh", "Ss"):
                paras.append([_unescape(" ".join(_args(rest))).upper() if mac in ("SH", "Sh")
                              else _unescape(" ".join(_args(rest)))])
                paras.append([])
            elif mac in ("TP", "IP", "TQ", "It"):
                paras.append([])
                if mac == "IP" and rest:
                    paras[-1].append(_unescape(_args(rest)[0]))
            elif mac in _BREAK_MACROS:
                paras.append([])
            elif mac in _FONT_MACROS or mac in ("Nm", "Fl", "Ar", "Op", "Nd", "Xr", "Pa", "Dq", "Em"):
                paras[-1].append(_unescape(("" if mac in _FONT_MACROS and mac in ("B", "I", "SM", "SB")
                                            else "") + " ".join(_args(rest))))
            continue
        text = _unescape(line)
        if nofill:
            paras[-1].append(text + "\n")
        else:
            paras[-1].append(text)
    out = []
    for p in paras:
        if not p:
            continue
        s = " ".join(x for x in p if x is not None)
        s = re.sub(r"[ \t]+", " ", s).replace(" \n ", "\n").strip()
        if s:
            out.append(s)
    return "\n\n".join(out)


def _cut(text: str, limit: int = MAX_DOC_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n\n", 0, limit)
    return text[:cut if cut > limit // 2 else limit].rstrip()


def man_pages(section_dirs: list[Path], n: int, rng: np.random.Generator, min_chars: int = 400,
              not_lang: str | None = None) -> list[str]:
    """``n`` distinct man pages of ``section_dirs`` as text, in a random order. ``not_lang``: skip pages
    whose whole text py3langid identifies as that language (a "translated" page often translates only
    its headings: a French NAME / SYNOPSIS over an English body is not another language)."""
    from uimdata.lang import identify

    files = sorted(f for d in section_dirs if d.is_dir() for f in d.iterdir() if f.name.endswith(".gz"))
    files = [files[i] for i in rng.permutation(len(files))]
    out: list[str] = []
    seen: set[str] = set()
    for f in files:
        if len(out) >= n:
            break
        try:
            src = gzip.open(f, "rt", encoding="utf-8", errors="strict").read()
        except (OSError, UnicodeDecodeError, EOFError):
            continue
        if src.lstrip().startswith(".so ") or len(src) < 300:
            continue
        text = _cut(troff_to_text(src))
        key = " ".join(text.split()[:60])
        if len(text) < min_chars or key in seen:
            continue
        if not_lang is not None and identify([text], max_chars=None)[0][0] == not_lang:
            continue
        seen.add(key)
        out.append(text)
    return out


# ------------------------------------------------------------------------------------------ docstrings

def _py_files() -> list[Path]:
    lib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not lib.is_dir():
        lib = Path("/usr/lib/python3.11")
    skip = ("test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "__phello__")
    return sorted(p for p in lib.rglob("*.py") if not set(p.relative_to(lib).parts) & set(skip))


def docstrings(kind: str) -> list[str]:
    """``kind`` = "module" (module docstrings >= 800 chars) or "member" (function / class docstrings)."""
    out: list[str] = []
    for p in _py_files():
        try:
            tree = ast.parse(p.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        nodes = [tree] if kind == "module" else [
            n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        for node in nodes:
            doc = ast.get_docstring(node, clean=True)
            if not doc:
                continue
            if kind == "module" and len(doc) >= 800:
                out.append(_cut(doc))
            elif kind == "member" and 60 <= len(doc) <= 3000 and "\ufffd" not in doc:
                out.append(doc)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------ packages

def packages() -> pl.DataFrame:
    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    rows = []
    for block in dump.split("\n\n"):
        f = dict(re.findall(r"^(Package|Description|Section): (.*)$", block, re.MULTILINE))
        if "Package" in f and "Description" in f and "Section" in f:
            rows.append((f["Package"], f"{f['Package']} - {f['Description'].strip()}", f["Section"].split("/")[-1]))
    df = pl.DataFrame(rows, schema=["package", "text", "label"], orient="row")
    return df.unique("text", keep="first", maintain_order=True)


# ------------------------------------------------------------------------------------------ foreign rows

def _joined(texts: list[str], rng: np.random.Generator, n: int, lo: int, hi: int) -> list[str]:
    """``n`` texts, each several of ``texts`` joined into paragraphs (no text used twice)."""
    order = rng.permutation(len(texts)).tolist()
    out = []
    for _ in range(n):
        k = int(rng.integers(lo, hi + 1))
        take, order = order[:k], order[k:]
        out.append("\n\n".join(texts[i] for i in take))
    return out


def foreign_rows(name: str, n: int, rng: np.random.Generator) -> pl.DataFrame:
    ood = pl.read_parquet(OOD)
    lang = ood.filter(pl.col("kind") == "other_language")["text"].to_list()
    eng = ood.filter(pl.col("kind") == "other_domain")["text"].to_list()
    if name == "glosses":
        other_lang, other_genre = [lang[i] for i in rng.permutation(len(lang))[:n]], \
            [eng[i] for i in rng.permutation(len(eng))[:n]]
    elif name == "packages":
        g = pl.read_parquet(GLOSSES, columns=["text"])["text"].to_list()
        other_lang = [lang[i] for i in rng.permutation(len(lang))[:n]]
        other_genre = [g[i] for i in rng.permutation(len(g))[:n]]
    elif name == "techdocs":
        man = Path("/usr/share/man")
        dirs = [man / lng / f"man{s}" for lng in ("de", "fr", "es", "it", "pt", "pl", "nl", "ru", "sv")
                for s in (1, 5, 8)]
        other_lang = man_pages(dirs, n, rng, not_lang="en")
        other_genre = _joined(eng, rng, n, 6, 14)
    else:  # docstrings
        by_lang = ood.filter(pl.col("kind") == "other_language").partition_by("lang")
        other_lang = []
        for i in range(n):
            texts = by_lang[i % len(by_lang)]["text"].to_list()
            other_lang += _joined(texts, rng, 1, 1, 3)
        other_genre = _joined(eng, rng, n, 1, 3)
    return pl.DataFrame({"text": other_lang + other_genre,
                         "kind": ["other_language"] * len(other_lang) + ["other_domain"] * len(other_genre)})


# ------------------------------------------------------------------------------------------ assembly

def base_texts(name: str, n: int, rng: np.random.Generator) -> pl.DataFrame:
    if name == "glosses":
        g = pl.read_parquet(GLOSSES, columns=["text", "label"]).unique("text", keep="first", maintain_order=True)
        return g[rng.permutation(g.height)[:n].tolist()]
    if name == "packages":
        p = packages()
        return p[rng.permutation(p.height)[:n].tolist()].select("text", "label")
    if name == "techdocs":
        man = Path("/usr/share/man")
        mods = docstrings("module")
        k_py = min(len(mods), n // 10)
        docs = (man_pages([man / "man1"], int(n * 0.6), rng) + man_pages([man / "man3"], int(n * 0.15), rng)
                + man_pages([man / "man5", man / "man7", man / "man8"], n - int(n * 0.75) - k_py, rng)
                + [mods[i] for i in rng.permutation(len(mods))[:k_py]])
        return pl.DataFrame({"text": docs}).unique("text", keep="first", maintain_order=True)
    docs = docstrings("member")
    return pl.DataFrame({"text": [docs[i] for i in rng.permutation(len(docs))[:n]]})


def build(name: str, seed: int = 0) -> tuple[Path, Path]:
    corpus, truth_path = OUT / f"{name}.parquet", OUT / f"{name}_truth.parquet"
    if corpus.exists() and truth_path.exists():
        return corpus, truth_path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = SIZES[name]
    base = base_texts(name, int(n * 1.15), rng)
    texts = base["text"].to_list()
    print(f"[{name}] {len(texts)} base texts, embedding for the natural-duplicate filter", file=sys.stderr)
    drop = natural_near_duplicates(texts, embed_cached(texts))
    keep = [i for i in range(len(texts)) if i not in drop][:n]
    base = base[keep].with_row_index("id").with_columns(pl.col("id").cast(pl.Utf8))
    print(f"[{name}] dropped {len(drop)} natural near duplicates, base {base.height}", file=sys.stderr)
    k_exact, k_near, k_bad, k_ood = int(n * 0.01), int(n * 0.02), int(n * 0.025), int(n * 0.015)
    truths = []
    if name in LABELLED:
        conf = confusable_classes(base["label"], embed_cached(base["text"].to_list()), top=3)
        base, t = plant_label_noise(base, 0.05, rng, mode="mixed", confusable=conf)
        truths.append(t.select("id", pl.lit("label_noise").alias("defect"), "kind"))
    df, t = plant_all(base, n_exact=k_exact, n_near=k_near, n_corrupted=k_bad, rng=rng,
                      corruption_kinds=ALL_CORRUPTION_KINDS)
    truths.append(t)
    df, t = plant_ood(df, foreign_rows(name, k_ood, rng), 2 * k_ood, rng)
    truths.append(t.select("id", "defect", "kind"))
    truth = pl.concat(truths, how="diagonal_relaxed")
    perm = rng.permutation(df.height)
    df, truth = renumber_ids(df[perm.tolist()], truth.with_columns(
        pl.col("source_id") if "source_id" in truth.columns else pl.lit(None, pl.Utf8).alias("source_id")),
        prefix=f"{name[:3]}-", width=6)
    emb = embed_cached(df["text"].to_list())
    df = df.with_columns(pl.Series("embedding", emb, dtype=pl.Array(pl.Float32, emb.shape[1])))
    df.write_parquet(corpus)
    truth.write_parquet(truth_path)
    print(f"[{name}] {df.height} rows -> {corpus}", file=sys.stderr)
    return corpus, truth_path


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="CORPUS", help=f"of {', '.join(SIZES)} (default: all)")
    for name in ap.parse_args().names or list(SIZES):
        build(name)
