"""Build ``uimdata/data/ood/ood.parquet``: real out-of-distribution texts for the OOD benchmarks.

The texts are fortune cookies from Debian's fortune packages (installed with
``apt-get install fortunes fortunes-de fortunes-es fortunes-it``; ``fortunes-min`` comes along):

* ``kind = "other_language"``: German (``fortunes-de``), Spanish (``fortunes-es``) and Italian
  (``fortunes-it``) fortunes;
* ``kind = "other_domain"``: English fortunes (``fortunes`` + ``fortunes-min``, one source ``fortunes``):
  jokes, quotations, aphorisms.

Every fortune file is a list of records separated by lines holding only ``%``. A record is kept when

1. it is not in an ``off/`` directory (ROT13 "offensive" files) nor in a file listed in
   :data:`SKIP_FILES` (ASCII art, banners, recipes, phrase tables, and the English files that are mostly
   excerpts of a single copyrighted work: Discworld novels, Zippy comics, Star Trek scripts, song lyrics,
   Douglas Adams' books, one comedian's act);
2. its body (the record less its ``-- author`` attribution lines) is one paragraph (no blank line), and it
   has no control characters (overstrike), no IRC / chat log lines (``<nick>``), no e-mail address and
   nothing that looks like code or ASCII art (see :func:`looks_like_code`);
3. its body is at least :data:`MIN_BODY_SHARE` of its characters (not "mostly attribution");
4. after collapsing whitespace the text is 20-300 characters long;
5. a small stop-word test does not say it is in another language (drops English lines in the German
   files, and the like; see :func:`language_ok`);
6. it is not a duplicate (same text after case folding and dropping everything but letters and digits)
   of a record kept before it (packages read in the order en, de, es, it; files and records in order).

At most :data:`PER_SOURCE` rows come from one source, spread over its files about in proportion to the
square root of their sizes (see :func:`file_quotas`), drawn at random within each file with the fixed seed
:data:`SEED`. The ``text`` keeps the attribution, collapsed onto the same line ("... -- Seneca").
The script also writes ``README.md`` (sources, versions, licences, counts) and ``COPYRIGHT`` (the
packages' copyright files verbatim and the GPL-2 text) beside the parquet file.

Deterministic: same packages, same files. Run: ``python -m pipelines.build_ood``
(``--stats`` prints per-file counts too).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "uimdata" / "data" / "ood"
OUT = OUT_DIR / "ood.parquet"

SEED = 20240613
PER_SOURCE = 1500
MIN_CHARS, MAX_CHARS = 20, 300
#: a record whose body (the text less its attribution) is under this share of its characters is dropped
MIN_BODY_SHARE = 0.4

#: source -> (Debian packages, lang, kind); a source's files are those its packages install
SOURCES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "fortunes": (("fortunes", "fortunes-min"), "en", "other_domain"),
    "fortunes-de": (("fortunes-de",), "de", "other_language"),
    "fortunes-es": (("fortunes-es",), "es", "other_language"),
    "fortunes-it": (("fortunes-it",), "it", "other_language"),
}
FORTUNE_ROOT = "/usr/share/games/fortunes/"

#: files (relative to FORTUNE_ROOT) left out whole
SKIP_FILES = frozenset({
    # ASCII art / banners
    "ascii-art", "de/asciiart", "it/banner",
    # mostly excerpts of one copyrighted work (novels, comics, scripts, lyrics): left out to be safe
    "pratchett", "zippy", "startrek", "songs-poems", "de/woerterbuch", "it/adams", "it/jackfr",
    "it/itatrek", "it/luttazzi",
    # puns that need a translation, phrase tables, quizzes laid out in columns
    "translate-me", "de/translations", "de/quiz",
    # recipes (fortunes-de): long, multi-paragraph, lists of ingredients
    "de/beilagen", "de/brot", "de/dessert", "de/hauptgericht", "de/kalt", "de/kuchen",
    "de/plaetzchen", "de/salat", "de/sauce", "de/suppe", "de/vorspeise",
})

# ------------------------------------------------------------------------------------------- language

_STOP = {
    "en": """the and of to is you that it for are with be not have this what they his but your will can if
             from when who or all my we he she would there their at on by do as been has had were which
             than then them our its just about should could into only""",
    "de": """der die das und ist nicht ich sie ein eine zu den mit sich auf für dem des auch wenn aber wie
             nur noch wird sind hat kann bei aus dass daß nach oder wer mir mich dir uns einen einem vom
             zum zur ihr sein haben schon immer keine kein er wir ich nichts sehr viel gibt hier""",
    "es": """el los las que de y en por para lo su del al más como pero ya hay muy sin sobre cuando porque
             todo nos yo les ser está son también qué mi tu sus pues puede hace tiene este esta eso""",
    "it": """il che di e per non della sono ma come anche più gli nel alla dei delle da cosa quando perche
             io ha ho sei essere questo questa molto nella sul suo sua chi gia cosi hanno fa tutto""",
}
#: words of more than one of these languages (some missing from the lists above): never counted
_AMBIGUOUS = frozenset("""a e i o y al da de del di du el en es ha he in la las le lo man mi no se sei si so
                          su te ti tu un una con come cosa was war will die""".split())
STOPWORDS: dict[str, frozenset[str]] = {}
_all = Counter(w for words in _STOP.values() for w in set(words.split()))
for _lang, _words in _STOP.items():
    STOPWORDS[_lang] = frozenset(w for w in _words.split() if _all[w] == 1 and w not in _AMBIGUOUS)

_WORD_RE = re.compile(r"[^\W\d_]+")


def language_ok(text: str, lang: str) -> bool:
    """False when another language's (unambiguous) stop words outnumber ``lang``'s and there are at least
    two of them: an English line in a German file, a German quote in an English one. Short texts with
    no telling stop words (proverbs, one-liners) pass."""
    counts = Counter()
    for w in _WORD_RE.findall(text.lower()):
        for code, words in STOPWORDS.items():
            if w in words:
                counts[code] += 1
    own = counts.pop(lang, 0)
    other = max(counts.values(), default=0)
    return not (other >= 2 and other > own)


# ------------------------------------------------------------------------------------------- filters

_ATTRIBUTION_RE = re.compile(r"^\s*--\s*\S")
_CHAT_RE = re.compile(r"^\s*(<[^>\s]{1,30}>|\*\s+\w+\s|-:-|\[\d\d?:\d\d|>(?!>))")  # IRC, e-mail quotes
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# a lone < or > (">>" and "<<" are quotation marks in German texts)
_CODE_CHARS_RE = re.compile(r"[{}\\|^~]|(?<![<>])[<>](?![<>])")
_RUN_RE = re.compile(r"([^\w\s.!?¡¿'\"])\1{2,}")  # ___ /// === ***: art and rulers, not "..." or "!!!"
_CODE_WORDS_RE = re.compile(
    r"(#include|#!/|\bprintf\(|\becho \$|\$[A-Za-z_]\w*|\bsudo\b|apt-get|\bdef \w+\(|\bint main|==|!=|&&"
    r"|\w\+\+|\w+\(\)|/\*|\*/|://)")
_WS_RE = re.compile(r"\s+")


def split_records(raw: str) -> list[str]:
    """Records of a fortune file: the text between lines that hold only ``%``."""
    records, cur = [], []
    for line in raw.splitlines():
        if line.strip() == "%":
            records.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    records.append("\n".join(cur))
    return [r.strip("\n") for r in records if r.strip()]


def split_attribution(record: str) -> tuple[str, str]:
    """``(body, attribution)``: the attribution starts at the first line that begins with ``--``."""
    lines = record.splitlines()
    for i, line in enumerate(lines):
        if i > 0 and _ATTRIBUTION_RE.match(line):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    return record, ""


def looks_like_code(text: str) -> bool:
    """Code, shell sessions, ASCII art or tables: tell-tale characters and tokens, or too few letters."""
    if _CODE_CHARS_RE.search(text) or _RUN_RE.search(text) or _CODE_WORDS_RE.search(text):
        return True
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return True
    if sum(c.isalnum() for c in visible) / len(visible) < 0.65:
        return True
    # columns: two or more lines with a run of 4+ spaces inside them (after the indentation)
    return sum(bool(re.search(r"\S {4,}\S", line)) for line in text.splitlines()) >= 2


def collapse(text: str) -> str:
    return _WS_RE.sub(" ", text).strip()


def clean_record(record: str, lang: str) -> tuple[str | None, str]:
    """The collapsed text of a record worth keeping, or ``(None, reason)``."""
    if _CONTROL_RE.search(record):
        return None, "control_chars"
    body, attribution = split_attribution(record)
    if not body.strip():
        return None, "mostly_attribution"
    if re.search(r"\n\s*\n", body.strip("\n")):
        return None, "multi_paragraph"
    if any(_CHAT_RE.match(line) for line in body.splitlines()):
        return None, "chat_log"
    if _EMAIL_RE.search(record):
        return None, "email"
    if looks_like_code(body):
        return None, "code_or_art"
    b, a = collapse(body), collapse(attribution)
    if len(b) < MIN_BODY_SHARE * (len(a) + len(b)):
        return None, "mostly_attribution"
    text = f"{b} {a}" if a else b
    if not MIN_CHARS <= len(text) <= MAX_CHARS:
        return None, "length"
    if not language_ok(b, lang):
        return None, "language"
    return text, "kept"


def dedup_key(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


# ------------------------------------------------------------------------------------------- packages

def package_version(pkg: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout:
        sys.exit(f"build_ood: Debian package {pkg!r} is not installed: "
                 "apt-get install fortunes fortunes-de fortunes-es fortunes-it")
    return out.stdout


def package_files(pkg: str) -> list[Path]:
    """The fortune text files ``pkg`` installs: plain files (no symlinks, no ``.dat`` index), sorted,
    none in an ``off/`` directory."""
    out = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True, check=True)
    files = []
    for line in out.stdout.splitlines():
        if not line.startswith(FORTUNE_ROOT):
            continue
        p = Path(line)
        rel = line[len(FORTUNE_ROOT):]
        if (p.is_symlink() or not p.is_file() or p.suffix in (".dat", ".u8") or "/off/" in f"/{rel}"
                or rel.endswith(".fortunes-pre")):
            continue
        files.append(p)
    return sorted(files)


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# ------------------------------------------------------------------------------------------- build

def file_quotas(sizes: list[int], budget: int) -> list[int]:
    """Per-file quotas summing to ``min(budget, sum(sizes))``, about proportional to the square root of a
    file's size and never above it: file ``i`` gets ``min(size_i, t * sqrt(size_i))`` for the level ``t``
    that fills the budget, rounded down, the rest going to the largest remainders. Big files give more
    rows than small ones, but one long, formulaic file does not fill a source."""
    if sum(sizes) <= budget:
        return list(sizes)
    roots = [s ** 0.5 for s in sizes]
    lo, hi = 0.0, float(max(sizes))
    for _ in range(100):
        mid = (lo + hi) / 2
        if sum(min(s, mid * r) for s, r in zip(sizes, roots)) <= budget:
            lo = mid
        else:
            hi = mid
    shares = [min(s, lo * r) for s, r in zip(sizes, roots)]
    quotas = [int(x) for x in shares]
    left = budget - sum(quotas)
    order = sorted(range(len(sizes)), key=lambda i: (-(shares[i] - quotas[i]), i))
    for i in order:
        if left <= 0:
            break
        if quotas[i] < sizes[i]:
            quotas[i] += 1
            left -= 1
    return quotas


def build(stats: bool = False) -> tuple[pl.DataFrame, dict]:
    rng = np.random.default_rng(SEED)
    seen: set[str] = set()
    frames = []
    info: dict = {"versions": {}, "files": {}, "reasons": {}, "candidates": {}, "skipped": {}}
    for source, (pkgs, lang, kind) in SOURCES.items():
        reasons: Counter = Counter()
        per_file: list[tuple[str, list[str]]] = []
        for pkg in pkgs:
            info["versions"][pkg] = package_version(pkg)
            for path in package_files(pkg):
                rel = str(path)[len(FORTUNE_ROOT):]
                if rel in SKIP_FILES:
                    info["skipped"].setdefault(source, []).append(rel)
                    continue
                kept = []
                for record in split_records(read_text(path)):
                    text, why = clean_record(record, lang)
                    if text is not None:
                        key = dedup_key(text)
                        if key in seen:
                            text, why = None, "duplicate"
                        else:
                            seen.add(key)
                            kept.append(text)
                    reasons[why] += 1
                per_file.append((rel, kept))
        # spread the source's budget over its files, random records within a file, file order kept
        texts: list[str] = []
        quotas = file_quotas([len(kept) for _, kept in per_file], PER_SOURCE)
        info["candidates"][source] = sum(len(kept) for _, kept in per_file)
        for (rel, kept), quota in zip(per_file, quotas):
            n_candidates = len(kept)
            if quota < n_candidates:
                idx = np.sort(rng.choice(n_candidates, size=quota, replace=False))
                kept = [kept[i] for i in idx]
            info["files"][rel] = (source, n_candidates, len(kept))
            texts.extend(kept)
        info["reasons"][source] = dict(reasons)
        frames.append(pl.DataFrame({
            "text": texts,
            "source": [source] * len(texts),
            "kind": [kind] * len(texts),
            "lang": [lang] * len(texts),
        }, schema={"text": pl.Utf8, "source": pl.Utf8, "kind": pl.Utf8, "lang": pl.Utf8}))
    df = pl.concat(frames, how="vertical")
    if stats:
        for source, reasons in info["reasons"].items():
            print(source, info["candidates"][source], dict(sorted(reasons.items())))
        for rel, (_, n, k) in info["files"].items():
            print(f"  {rel}: {k} of {n}")
    return df, info


# ------------------------------------------------------------------------------------------- docs

#: licence of each source's texts, in one line (the notices themselves go to COPYRIGHT)
LICENCES = {
    "fortunes": "BSD licence of fortune-mod (Copyright (c) 1991 The Regents of the University of California; "
                "advertising clause deleted)",
    "fortunes-de": "GPL-2+ (Copyright 1999-2012 Andreas Tille); upstream: compiled from Usenet postings, "
                   "open mailing lists and web pages",
    "fortunes-es": "the fortunes' texts \"are presumed to be in the public domain\" (collection: 1999 Agustín "
                   "Martín Domingo, 2000 Javier Fernández-Sanguino Peña; its programs GPL)",
    "fortunes-it": "\"freeware (public domain)\": may be freely copied, modified and redistributed",
}
REASONS = ("kept", "duplicate", "length", "multi_paragraph", "mostly_attribution", "code_or_art",
           "chat_log", "email", "control_chars", "language")


def write_copyright(path: Path, versions: dict[str, str]) -> None:
    parts = [
        "Copyright and licence notices for uimdata/data/ood/ood.parquet",
        "=" * 62,
        "",
        "ood.parquet holds fortune-cookie texts selected (and their whitespace collapsed) by uimdata's",
        "pipelines/build_ood.py from the Debian packages below. Each package's copyright file follows",
        "verbatim, as shipped in /usr/share/doc/<package>/copyright, then the full text of the GNU General",
        "Public License version 2 that covers the fortunes-de texts.",
        "",
    ]
    seen_text: dict[str, str] = {}
    for pkg, version in versions.items():
        text = Path(f"/usr/share/doc/{pkg}/copyright").read_text(encoding="utf-8")
        parts += ["", "-" * 100, f"Debian package {pkg} {version}: /usr/share/doc/{pkg}/copyright", "-" * 100, ""]
        if text in seen_text:
            parts.append(f"(identical to the copyright file of {seen_text[text]} above)")
            continue
        seen_text[text] = pkg
        parts.append(text.rstrip("\n"))
        if pkg == "fortunes-de":
            readme = Path("/usr/share/doc/fortunes-de/README").read_text(encoding="utf-8")
            parts += ["", f"From /usr/share/doc/{pkg}/README:", "", readme.rstrip("\n")]
    parts += ["", "-" * 100, "GNU General Public License, version 2 (/usr/share/common-licenses/GPL-2)",
              "-" * 100, "", Path("/usr/share/common-licenses/GPL-2").read_text(encoding="utf-8").rstrip("\n")]
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def readme(df: pl.DataFrame, info: dict, size: int) -> str:
    v = info["versions"]
    rows = []
    for source, (pkgs, lang, kind) in SOURCES.items():
        n = df.filter(pl.col("source") == source).height
        pk = ", ".join(f"`{p}` {v[p]}" for p in pkgs)
        rows.append(f"| `{source}` | {pk} | `{lang}` | `{kind}` | {n:,} | {info['candidates'][source]:,} "
                    f"| {LICENCES[source]} |")
    reason_rows = []
    for source in SOURCES:
        r = info["reasons"][source]
        reason_rows.append(f"| `{source}` | {sum(r.values()):,} | "
                           + " | ".join(f"{r.get(k, 0):,}" for k in REASONS) + " |")
    per_file = []
    for source in SOURCES:
        files = [f"{rel.split('/')[-1].removesuffix('.fortunes')} {k}/{n}"
                 for rel, (src, n, k) in info["files"].items() if src == source]
        skipped = ", ".join(f"`{r}`" for r in info["skipped"].get(source, [])) or "none"
        per_file.append(f"- `{source}`: " + ", ".join(files) + f". Files left out: {skipped}.")
    kinds = df.group_by("kind").len().sort("kind")
    kind_line = ", ".join(f"`{k}` {n:,}" for k, n in kinds.iter_rows())
    nl = "\n"
    return f"""# Out-of-distribution texts (fortune cookies)

Real texts that do **not** belong in an English text-classification corpus, for uimdata's OOD benchmarks
(`uimdata.synth.labels.plant_ood`): {df.height:,} short, single-paragraph fortune cookies from Debian's
fortune packages. {kind_line}.

- `other_language`: German, Spanish and Italian fortunes (`fortunes-de`, `fortunes-es`, `fortunes-it`):
  proverbs, quotations, jokes.
- `other_domain`: English fortunes (`fortunes` + `fortunes-min`): jokes, quotations, aphorisms, one-liners
  (a different register from encyclopaedic or news text, same language).

`ood.parquet` ({size:,} bytes, zstd), one row per text:

| column | meaning |
|---|---|
| `text` | the fortune, whitespace collapsed to single spaces; an attribution stays at the end (`... -- Seneca`) |
| `source` | `fortunes` (English), `fortunes-de`, `fortunes-es`, `fortunes-it` |
| `kind` | `other_language` or `other_domain` |
| `lang` | `en`, `de`, `es`, `it` |

Rows are grouped by source, in the packages' file order.

## Sources and licences

| source | Debian package(s) | lang | kind | rows | candidates | licence of the texts |
|---|---|---|---|---|---|---|
{nl.join(rows)}

The full copyright and licence notices of the four packages, and the GPL-2 text, are in
[`COPYRIGHT`](COPYRIGHT); keep it with every copy of `ood.parquet`. The fortunes-de texts are under the GPL
(version 2 or later): whoever redistributes `ood.parquet` does so under its terms for that part. The
English fortunes are under fortune-mod's BSD licence, whose notice must be kept. fortunes-it asks that a
modified copy say who changed what: this selection was made by the uimdata project, which only chose
records and collapsed their whitespace (no text was otherwise edited).

The texts are fortune cookies, some of them decades-old jokes; the packages' "offensive" collections
(`off/` directories, ROT13) were not used.

## How it was built

`python -m pipelines.build_ood` (deterministic: fixed seed {SEED}, same packages, same file; `--stats`
prints per-file counts). It needs the packages: `apt-get install fortunes fortunes-de fortunes-es fortunes-it`.
Every plain fortune file of the packages is read (no symlinks, no `off/` directory, no `.dat` index) except
the files listed below as left out (ASCII art and banners; recipes, phrase tables and quizzes; and, to be
safe, files that are mostly excerpts of one copyrighted work: Discworld novels, Zippy comics, Star Trek
scripts, song lyrics, Douglas Adams' books, one comedian's act), split into records at lines holding only
`%`, and a record is kept when

1. its body (the record less its `-- author` lines) is one paragraph (no blank line) with no control
   characters (overstrike), no chat-log or e-mail-quote lines (`<nick>`, `> `), no e-mail address, and
   nothing that looks like code, ASCII art or a table (braces, backslashes, pipes, a lone `<` / `>`, runs
   of `___` / `===`, code tokens such as `$var`, `==`, `/*`, `://`; under 65% letters and digits; two or
   more lines with column gaps);
2. its body makes up at least {int(MIN_BODY_SHARE * 100)}% of its characters (not mostly attribution);
3. its collapsed text is {MIN_CHARS}-{MAX_CHARS} characters long;
4. a stop-word test does not find it to be in another of the four languages (at least two unambiguous
   stop words of another language, more than of its own: English lines in the German files and so on);
5. it does not repeat (case folded, letters and digits only) a record kept before it (sources read in the
   order en, de, es, it).

Then at most {PER_SOURCE:,} rows per source are drawn at random, spread over the source's files about in
proportion to the square root of their sizes (so that a long, formulaic file such as `de/namen` or
`es/refranes` does not fill a source), file order kept.

Records read and what became of them:

| source | records | {' | '.join(REASONS)} |
|---|---|{'---|' * len(REASONS)}
{nl.join(reason_rows)}

Rows kept / candidates per file:

{nl.join(per_file)}
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="the parquet file; README.md and COPYRIGHT go beside it")
    ap.add_argument("--stats", action="store_true", help="print per-source and per-file counts")
    args = ap.parse_args(argv)
    df, info = build(stats=args.stats)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out, compression="zstd", compression_level=22, statistics=False)
    size = out.stat().st_size
    write_copyright(out.parent / "COPYRIGHT", info["versions"])
    (out.parent / "README.md").write_text(readme(df, info, size), encoding="utf-8")
    print(f"wrote {out} ({size:,} bytes, {df.height} rows), README.md, COPYRIGHT")
    print(df.group_by("source", "kind", "lang", maintain_order=True).len())
    print("packages:", info["versions"])


if __name__ == "__main__":
    main()
