"""Which member of a duplicate cluster curation keeps: ``keep = "first"`` (the default) or ``"longest"``."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.conftest import CLEAN, random_embeddings
from uimdata.curate import decide, load_policy
from uimdata.rundir import RunDir
from uimdata.scan import ScanConfig, scan

SOURCE = CLEAN[0][0]  # "dog: a domesticated carnivorous mammal ..."
#: the planted group: r00 (the source, earliest), r30 (a typo copy, one character longer), r31 (the
#: longest: a suffix added) and r32 (an exact copy of r31: as long, later)
PLANTED = {
    "r30": SOURCE.replace("domesticated", "domessticated"),
    "r31": SOURCE + " (see also: wolf)",
    "r32": SOURCE + " (see also: wolf)",
}
GROUP = ["r00", *PLANTED]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunDir:
    """The clean texts plus the planted group, scanned once with given embeddings that agree within it."""
    tmp = tmp_path_factory.mktemp("keep")
    texts = [t for t, _ in CLEAN] + list(PLANTED.values())
    labels = [lab for _, lab in CLEAN] + [CLEAN[0][1]] * len(PLANTED)
    emb = random_embeddings(len(texts), dim=64)
    noise = random_embeddings(len(PLANTED), dim=64, seed=9)
    for k in range(len(PLANTED)):
        emb[len(CLEAN) + k] = emb[0] + 0.3 * noise[k]
    emb[-1] = emb[-2]  # the exact copy
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    corpus = tmp / "corpus.parquet"
    pl.DataFrame({"id": [f"r{i:02d}" for i in range(len(texts))], "text": texts, "label": labels,
                  "embedding": pl.Series(emb, dtype=pl.Array(pl.Float32, emb.shape[1]))}).write_parquet(corpus)
    out = tmp / "run"
    scan(ScanConfig(corpus=str(corpus), out=str(out), detectors=("exact_duplicate", "near_duplicate")))
    return RunDir(out)


def _policy(tmp_path, body: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text('base = "default"\n' + body)
    return str(path)


def _group(run: RunDir, policy: str) -> dict[str, tuple[str, str | None]]:
    m = decide(run, policy).manifest.filter(pl.col("id").is_in(GROUP))
    return {i: (a, r) for i, a, r in m.select("id", "action", "reason").rows()}


def test_the_planted_group_is_one_duplicate_cluster(run):
    f = pl.read_parquet(run.flags).filter(pl.col("id").is_in(GROUP))
    assert f["duplicate_cluster"].n_unique() == 1 and f["duplicate_cluster"].null_count() == 0
    assert dict(f.filter(pl.col("is_near_duplicate_issue")).select("id", "near_duplicate_of").rows()) == {
        "r30": "r00", "r31": "r00"}
    assert dict(f.filter(pl.col("is_exact_duplicate_issue")).select("id", "duplicate_of").rows()) == {"r32": "r31"}


def test_keep_longest_keeps_the_longest_member(run, tmp_path):
    got = _group(run, _policy(tmp_path, '[near_duplicate]\naction = "drop"\nkeep = "longest"\n'))
    # r31 and r32 are equally long: the earlier one is kept
    assert got["r31"] == ("kept", "kept as its duplicate cluster's member (longest surviving row)")
    for i in ("r00", "r30", "r32"):
        assert got[i][0] == "dropped" and got[i][1].endswith("a duplicate of kept row r31"), (i, got[i])


def test_keep_defaults_to_the_first_member(run, tmp_path):
    for policy in (_policy(tmp_path, '[near_duplicate]\naction = "drop"\n'), "aggressive"):
        assert load_policy(policy)[1]["near_duplicate"]["keep"] == "first"
        got = _group(run, policy)
        assert got["r00"] == ("kept", None), policy
        for i in PLANTED:
            assert got[i][0] == "dropped" and got[i][1].endswith("a duplicate of kept row r00"), (policy, i, got[i])


def test_default_policy_keeps_near_duplicates_and_the_first_exact_copy(run):
    got = _group(run, "default")
    assert {i: a for i, (a, _) in got.items()} == {"r00": "kept", "r30": "kept", "r31": "kept", "r32": "dropped"}
    assert got["r32"][1] == "exact_duplicate: dropped, a duplicate of kept row r31"
