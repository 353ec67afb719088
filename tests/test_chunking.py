"""Long documents: texts longer than the model's window are embedded whole (token windows, pooled).
A document whose first window was replaced by another text keeps its original as nearest neighbour
with pooling; truncation to the first window loses it."""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import polars as pl
from typer.testing import CliRunner

from uimdata.cli import app
from uimdata.rundir import RunDir
from uimdata.stages.embed import CHUNK_MAX_WINDOWS, CHUNK_OVERLAP, EmbedStage
from uimdata.store import connect

runner = CliRunner()
CLASSES = ["noun.animal", "noun.plant", "noun.food", "noun.artifact", "verb.motion", "noun.location",
           "noun.feeling", "noun.body", "verb.communication", "noun.substance"]


def _docs(chars: int = 4000) -> list[str]:
    """One document per WordNet lexicographer class: its first glosses, up to ``chars`` characters."""
    g = pl.read_parquet(str(files("uimdata") / "data" / "wordnet" / "glosses.parquet"), columns=["text", "label"])
    out = []
    for c in CLASSES:
        texts = g.filter(pl.col("label") == c)["text"].head(2000).to_list()
        n = int(np.searchsorted(np.cumsum([len(t) + 1 for t in texts]), chars)) + 1
        out.append(" ".join(texts[:n]))
    return out


def _planted(docs: list[str], stage: EmbedStage) -> tuple[list[str], list[tuple[int, int]]]:
    """Documents 0-4 copied with their first window replaced by the start of documents 5-9."""
    out = list(docs)
    pairs = []
    for i in range(5):
        sp_orig = stage.spans([docs[i]])[0]
        sp_other = stage.spans([docs[5 + i]])[0]
        w = stage.window
        head = docs[5 + i][: sp_other[w - 1][1]]
        out.append(head + " " + docs[i][sp_orig[w][0]:])
        pairs.append((len(out) - 1, i))
    return out, pairs


def test_pooling_finds_the_planted_pairs_that_truncation_misses(tmp_path):
    stage = EmbedStage(chunking=True)
    docs = _docs()
    texts, pairs = _planted(docs, stage)
    assert all(len(s) > 2.5 * stage.window for s in stage.spans(texts))  # every document spans 3+ windows
    path = tmp_path / "long.parquet"
    pl.DataFrame({"text": texts}).write_parquet(path)
    found = {}
    for mode in ("auto", "none"):
        run = tmp_path / mode
        res = runner.invoke(app, ["scan", str(path), "-o", str(run), "--detectors", "exact_duplicate",
                                  "--k", "3", "--chunking", mode])
        assert res.exit_code == 0, res.output
        meta = json.loads((run / "run.json").read_text())
        assert meta["chunking"]["chunking"] is (mode == "auto")
        con = connect(RunDir(run))
        ids = [r[0] for r in con.execute("SELECT id FROM samples ORDER BY row").fetchall()]
        nn = dict(con.execute("SELECT id, neighbor_id FROM neighbors WHERE rank = 1").fetchall()
                  if "rank" in str(con.execute("DESCRIBE neighbors").fetchall()) else [])
        con.close()
        found[mode] = sum(nn[ids[p]] == ids[o] for p, o in pairs)
        if mode == "auto":
            assert meta["chunking"]["long_rows"] == len(texts)
            assert meta["embedding"]["embedded"] == len(texts)
        else:  # the cache keys name the chunking: only the long texts are embedded again
            assert meta["embedding"]["embedded"] == len(texts)
    assert found["auto"] == len(pairs), found      # pooling: every planted copy finds its original
    assert found["none"] <= 1, found               # truncation: the replaced first window decides


def test_windows_cover_the_document_and_short_texts_are_unchanged():
    stage = EmbedStage(chunking=True)
    doc = _docs(chars=40_000)[0]
    sp = stage.spans([doc])[0]
    wins = stage.windows(doc, sp)
    assert len(wins) == CHUNK_MAX_WINDOWS and len(sp) > CHUNK_MAX_WINDOWS * stage.window  # capped, spread out
    assert wins[0][0] == doc[: len(wins[0][0])] and doc.rstrip().endswith(wins[-1][0].rstrip()[-50:])
    short = _docs(chars=3000)[1]
    sp = stage.spans([short])[0]
    wins = stage.windows(short, sp)
    assert [n for _, n in wins][:-1] == [stage.window] * (len(wins) - 1)
    assert all(n > CHUNK_OVERLAP for _, n in wins)
    plain = EmbedStage(chunking=False)
    texts = ["a short text about cats", "another one, about the weather in spring"]
    assert np.allclose(stage.encode(texts), plain.encode(texts), atol=1e-5)
    keys_chunked, keys_plain = stage.cache_keys(texts + [short]), EmbedStage().cache_keys(texts + [short])
    assert keys_chunked[:2] == keys_plain[:2] and keys_chunked[2] != keys_plain[2]
