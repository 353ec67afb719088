"""Build the corpora shipped in ``uimdata/data`` from WordNet 3.0 (Debian's ``wordnet-base``).

1. ``uimdata/data/wordnet/glosses.parquet``: one row per synset, ``text = "<lemma>: <definition>"``,
   ``label`` = the synset's lexicographer file (45 classes, long-tailed), exact duplicate texts dropped.
2. ``uimdata/data/demo/corpus.parquet`` + ``truth.parquet``: ~2,700 clean glosses with planted exact
   duplicates, near duplicates and corrupted texts (``uimdata.synth``), shuffled, ids renumbered.

Deterministic: fixed seeds, same input, same files. Run: ``python -m pipelines.build_corpora``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl

from uimdata import synth

ROOT = Path(__file__).resolve().parents[1]

WORDNET_DIR = Path("/usr/share/wordnet")
OUT_WORDNET = ROOT / "uimdata" / "data" / "wordnet"
OUT_DEMO = ROOT / "uimdata" / "data" / "demo"

LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change",
    "verb.cognition", "verb.communication", "verb.competition", "verb.consumption", "verb.contact",
    "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social",
    "verb.stative", "verb.weather", "adj.ppl",
)
POS_FILES = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))

SEED = 20240611
DEMO_CLEAN = 2700
DEMO_MIN_PER_CLASS = 3
DEMO_EXACT, DEMO_NEAR, DEMO_CORRUPTED = 60, 90, 70
# clean demo rows are kept apart from each other: no two with an Indel similarity >= this (in %)
DEMO_CLEAN_MAX_RATIO = 85

_MARKER_RE = re.compile(r"\((?:a|p|ip)\)$")


# ------------------------------------------------------------------------------------------- parsing

def parse_data_file(path: Path, pos_file: str) -> list[dict[str, str]]:
    """Rows of one ``data.<pos>`` file: synset, lemma, text, label, pos."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.rstrip("\n").partition(" | ")
            fields = head.split()
            offset, lex_filenum, ss_type = fields[0], int(fields[1]), fields[2]
            w_cnt = int(fields[3], 16)
            if w_cnt < 1:
                continue
            lemma = _MARKER_RE.sub("", fields[4]).replace("_", " ")
            definition = gloss.split('; "', 1)[0].strip().rstrip(";").strip()
            if not definition:
                continue
            rows.append({
                "synset": f"{pos_file}.{offset}",
                "lemma": lemma,
                "text": f"{lemma}: {definition}",
                "label": LEXNAMES[lex_filenum],
                "pos": ss_type,
            })
    return rows


def licence_text(path: Path) -> str:
    """The WordNet 3.0 licence, as the header of the data files carries it."""
    lines = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.startswith("  "):
                break
            lines.append(re.sub(r"^\s+\d+\s?", "", line).rstrip())
    return "\n".join(lines).strip() + "\n"


def build_glosses(wordnet_dir: Path) -> tuple[pl.DataFrame, int]:
    """All synsets, exact duplicate texts dropped; and the number of synsets read."""
    rows: list[dict[str, str]] = []
    for name, pos in POS_FILES:
        rows += parse_data_file(wordnet_dir / f"data.{name}", pos)
    df = pl.DataFrame(rows, schema={"synset": pl.Utf8, "lemma": pl.Utf8, "text": pl.Utf8,
                                     "label": pl.Utf8, "pos": pl.Utf8})
    return df.unique(subset="text", keep="first", maintain_order=True), df.height


def write_parquet(df: pl.DataFrame, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path, compression="zstd", compression_level=22, statistics=False,
                     row_group_size=max(1, df.height))
    return path.stat().st_size


# ------------------------------------------------------------------------------------------- demo

def sample_clean(glosses: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """``n`` rows in their natural class distribution, >= DEMO_MIN_PER_CLASS per class, no two of them
    near duplicates of each other (so the only duplicates in the demo are the planted ones)."""
    from rapidfuzz import fuzz, process

    labels = glosses["label"].to_list()
    texts = glosses["text"].to_list()
    perm = [int(i) for i in rng.permutation(glosses.height)]
    chosen: list[int] = []
    chosen_texts: list[str] = []

    def take(i: int) -> bool:
        t = texts[i]
        if chosen_texts and process.extractOne(t, chosen_texts, scorer=fuzz.ratio,
                                               score_cutoff=DEMO_CLEAN_MAX_RATIO) is not None:
            return False
        chosen.append(i)
        chosen_texts.append(t)
        return True

    per_class = dict.fromkeys(LEXNAMES, 0)  # first, the guaranteed rows of every class
    short = len(LEXNAMES)
    for i in perm:
        if short == 0:
            break
        c = labels[i]
        if per_class[c] < DEMO_MIN_PER_CLASS and take(i):
            per_class[c] += 1
            short -= per_class[c] == DEMO_MIN_PER_CLASS
    taken = set(chosen)
    for i in perm:  # then the natural distribution
        if len(chosen) >= n:
            break
        if i not in taken:
            take(i)
    out = glosses[np.sort(np.asarray(chosen))].select("text", "label")
    counts = out["label"].value_counts()
    if counts.height != len(LEXNAMES) or counts["count"].min() < DEMO_MIN_PER_CLASS:
        raise RuntimeError("demo sample lost a class; change SEED")
    return out


def pick_donors(glosses: pl.DataFrame, clean: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """Glosses outside the demo, and not close to any demo row, for the corrupted rows to garble: a
    corrupted row then has no clean near duplicate in the corpus."""
    from rapidfuzz import fuzz, process

    rest = glosses.join(clean.select("text"), on="text", how="anti").select("text", "label")
    clean_texts = clean["text"].to_list()
    keep: list[int] = []
    for i in rng.permutation(rest.height):
        if len(keep) == n:
            break
        t = rest["text"][int(i)]
        if process.extractOne(t, clean_texts, scorer=fuzz.ratio, score_cutoff=DEMO_CLEAN_MAX_RATIO) is None:
            keep.append(int(i))
    return rest[np.asarray(keep)]


def build_demo(glosses: pl.DataFrame, seed: int = SEED) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    clean = sample_clean(glosses, DEMO_CLEAN, rng)
    clean = clean.with_columns(pl.Series("id", [f"tmp-{k:05d}" for k in range(1, clean.height + 1)]))
    clean = clean.select("id", "text", "label")
    donors = pick_donors(glosses, clean, 2 * DEMO_CORRUPTED, rng)
    df, truth = synth.plant_all(clean, n_exact=DEMO_EXACT, n_near=DEMO_NEAR, n_corrupted=DEMO_CORRUPTED,
                                rng=rng, donors=donors)
    df = df[rng.permutation(df.height)]
    df, truth = synth.renumber_ids(df, truth, prefix="demo-", width=5)
    return df, truth.sort("id")


# ------------------------------------------------------------------------------------------- READMEs

def _table(df: pl.DataFrame) -> str:
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join(lines)


def _class_counts(df: pl.DataFrame) -> pl.DataFrame:
    return df["label"].value_counts().sort(["count", "label"], descending=[True, False])


def glosses_readme(df: pl.DataFrame, size: int, n_synsets: int) -> str:
    counts = _class_counts(df)
    return f"""# WordNet 3.0 glosses

One row per WordNet 3.0 synset: a short English definition, labelled with its lexicographer file.
A small, clean, long-tailed text-classification corpus for uimdata's tests, benchmarks and demo.

- Source: WordNet 3.0, Princeton University (<https://wordnet.princeton.edu/>), as packaged by Debian
  (`wordnet-base`: `/usr/share/wordnet/data.{{noun,verb,adj,adv}}`).
- Licence: the WordNet 3.0 licence (permissive, BSD-like), see [`LICENSE`](LICENSE); the copyright notice
  must stay with every copy. "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved."
- Built by `pipelines/build_corpora.py` (deterministic).

## Columns

| column | meaning |
|---|---|
| `synset` | `<pos>.<offset>`, the synset's id in WordNet 3.0, e.g. `n.02084071` (dog) |
| `lemma` | the synset's first word, underscores as spaces, adjective markers (`(a)`, `(p)`, `(ip)`) removed |
| `text` | `"<lemma>: <definition>"`; the definition is the gloss before its first example (`; "`) |
| `label` | the lexicographer file (`noun.animal`, `verb.motion`, ...): 45 classes |
| `pos` | WordNet's synset type: `n`, `v`, `a`, `s` (satellite adjective), `r` |

Rows whose `text` repeats an earlier row's verbatim are dropped (first kept; files read in the order
noun, verb, adj, adv): {n_synsets:,} synsets read, {n_synsets - df.height} dropped.

## Counts

{df.height:,} rows, {counts.height} classes; `glosses.parquet` is {size / 1e6:.2f} MB (zstd level 22).

{_table(counts)}
"""


def demo_readme(df: pl.DataFrame, truth: pl.DataFrame) -> str:
    by_defect = truth["defect"].value_counts().sort("defect")
    by_kind = (truth.filter(pl.col("defect") != "near_duplicate")
               .group_by("defect", "kind").len().rename({"len": "rows"}).sort("defect", "kind"))
    near = truth.filter(pl.col("defect") == "near_duplicate")
    edits = (near.select(pl.col("kind").str.split("+").alias("edit")).explode("edit")
             .group_by("edit").len().rename({"len": "copies"}).sort("edit"))
    n_edits = (near.select(pl.col("kind").str.split("+").list.len().alias("edits"))
               .group_by("edits").len().rename({"len": "copies"}).sort("edits"))
    counts = _class_counts(df)
    clean = df.height - truth.height
    return f"""# uimdata demo corpus

A small corpus with **known** defects, to try `uim scan` on and to check what it finds:
{df.height:,} rows (`id`, `text`, `label`) of which {clean:,} are clean WordNet 3.0 glosses
(`"<lemma>: <definition>"`, labelled with their lexicographer file, 45 classes, long-tailed) and
{truth.height} carry a planted defect, listed in `truth.parquet`.

- `corpus.parquet`: `id` (`demo-00001` ...), `text`, `label`; shuffled.
- `truth.parquet`: one row per planted row: `id`, `defect` (`exact_duplicate`, `near_duplicate`,
  `corrupted`), `kind`, `source_id` (the clean row a duplicate copies; null for corrupted rows).
  Every row not in `truth.parquet` is clean.

Built by `pipelines/build_corpora.py` (fixed seed {SEED}) from `../wordnet/glosses.parquet`:
{clean:,} glosses sampled in their natural class distribution (at least {DEMO_MIN_PER_CLASS} per class, and
no two with an Indel similarity >= {DEMO_CLEAN_MAX_RATIO / 100:.2f}, so that the only duplicates are the
planted ones), then defects planted by `uimdata.synth.plant_all`. A planted row copies a clean row's `label`
and gets an ordinary id: nothing but its text gives it away. The corrupted rows garble glosses that are not
otherwise in the demo (with their own label), so no clean row is a near duplicate of a corrupted one.

- exact duplicate: a verbatim copy of a clean row;
- near duplicate: a copy with 1-3 small edits (typo, word deleted / inserted / replaced by a synonym,
  casing, punctuation, whitespace, a short suffix); `kind` lists them joined by `+`; Indel similarity to
  the source >= {synth.MIN_NEAR_SIMILARITY};
- corrupted: corrupted text of one `kind`: `mojibake`, `markup`, `boilerplate`, `stub`, `repetition`,
  `symbols`, `replacement_chars` (several templates per kind, random lengths).

## Licence

The texts come from WordNet 3.0 and are under the WordNet 3.0 licence, see [`LICENSE`](LICENSE).
"WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved."

## Planted defects

{_table(by_defect)}

### Exact duplicates and corrupted rows by kind

{_table(by_kind)}

### Near duplicates: edits applied (a copy can have several)

{_table(edits)}

{_table(n_edits)}

## Classes (all rows)

{_table(counts)}
"""


# ------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wordnet-dir", type=Path, default=WORDNET_DIR)
    args = ap.parse_args(argv)
    wn = args.wordnet_dir
    if not (wn / "data.noun").exists():
        print(f"WordNet data files not found in {wn} (install Debian's wordnet-base or pass --wordnet-dir)",
              file=sys.stderr)
        return 2

    glosses, n_synsets = build_glosses(wn)
    licence = licence_text(wn / "data.noun")
    size = write_parquet(glosses, OUT_WORDNET / "glosses.parquet")
    (OUT_WORDNET / "LICENSE").write_text(licence, encoding="utf-8")
    (OUT_WORDNET / "README.md").write_text(glosses_readme(glosses, size, n_synsets), encoding="utf-8")
    n_classes = glosses["label"].n_unique()
    print(f"glosses: {glosses.height:,} rows, {n_classes} classes, {size / 1e6:.2f} MB")

    demo, truth = build_demo(glosses)
    dsize = write_parquet(demo, OUT_DEMO / "corpus.parquet")
    tsize = write_parquet(truth, OUT_DEMO / "truth.parquet")
    (OUT_DEMO / "LICENSE").write_text(licence, encoding="utf-8")
    (OUT_DEMO / "README.md").write_text(demo_readme(demo, truth), encoding="utf-8")
    print(f"demo: {demo.height:,} rows, {demo['label'].n_unique()} classes, {dsize / 1e3:.0f} kB; "
          f"truth: {truth.height} rows, {tsize / 1e3:.0f} kB")
    print(truth.group_by("defect").len().sort("defect"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
