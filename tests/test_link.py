"""uim link: a planted mislabelled region must be the top slice, flagged as inherited label bias."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tests.conftest import POISONED_CONCEPT, WRONG, make_world
from uimdata.cli import app
from uimdata.errors import UimError
from uimdata.link import LinkConfig, link
from uimdata.stats import wilson


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("link")
    run, dpath, truth, down = make_world(tmp, poison=True)
    res = link(LinkConfig(run=str(run), downstream=str(dpath), slice_cols=("concept",)))
    return run, dpath, truth, down, res


def test_planted_region_is_the_top_slice_and_flagged(poisoned):
    run, _, truth, down, res = poisoned
    err = down.filter(pl.col("concept") == POISONED_CONCEPT).select(pl.col("label") != pl.col("prediction")).mean()
    assert err.item() > 0.5, "the downstream model must fail in the poisoned region for this test to mean anything"
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    top = con.sql("SELECT slice_id, kind, inherited_label_bias, bias_given_label, bias_downstream_label "
                  "FROM slices WHERE rank = 1").fetchall()[0]
    assert top[1] == "inherited_label_bias" and top[2]
    assert (top[3], top[4]) == (WRONG, "class_3")
    flagged = con.sql("SELECT f.id, f.inherited_label_bias_suggested_label FROM slices s "
                      "JOIN slice_rows r USING (slice_id) JOIN flags f USING (id) "
                      "WHERE s.rank = 1 AND f.is_inherited_label_bias_issue").fetchall()
    ids = {i for i, _ in flagged}
    assert len(ids & truth) / len(ids) >= 0.9
    assert len(ids & truth) / len(truth) >= 0.7
    assert {s for _, s in flagged} == {"class_3"}
    # flagged rows carry a reason, and the issues view lists them
    n_issue = con.sql("SELECT count(*) FROM issues WHERE issue = 'inherited_label_bias'").fetchall()[0][0]
    assert n_issue == con.sql("SELECT count(*) FROM flags WHERE is_inherited_label_bias_issue").fetchall()[0][0]
    assert con.sql("SELECT count(*) FROM flags WHERE is_inherited_label_bias_issue "
                   "AND inherited_label_bias_reason IS NULL").fetchall()[0][0] == 0


def test_clean_regions_are_not_ranked_on_top(poisoned):
    run, *_ = poisoned
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    top3 = con.sql("SELECT slice_id, error_rate FROM slices WHERE rank <= 3 ORDER BY rank").fetchall()
    # a slice of the user's --slice-col for a clean concept: low error, ranked below the poisoned region
    clean = con.sql("SELECT rank, error_rate FROM slices WHERE slice_id = 'concept:0.0'").fetchall()[0]
    assert clean[0] > 3 and clean[1] < 0.2
    assert top3[0][1] > 0.5


def test_attribution_finds_the_planted_issue_only(poisoned):
    _, _, _, _, res = poisoned
    att = {r["issue"]: r for r in res.attribution.iter_rows(named=True)}
    assert att["inherited_label_bias"]["significant"] and att["inherited_label_bias"]["odds_ratio"] > 1
    # nothing was duplicated: no fit, not significant
    assert not att["exact_duplicate"]["significant"] and att["exact_duplicate"]["odds_ratio"] is None


def test_slice_table_contract(poisoned):
    run, *_ = poisoned
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    cols = {r[0] for r in con.sql("DESCRIBE slices").fetchall()}
    assert {"slice_id", "kind", "key", "rank", "tier", "n_down", "n_err", "error_rate", "lift", "lift_lo",
            "lift_hi", "score", "n_pre", "density", "dominant_issue", "description", "top_terms", "examples",
            "inherited_label_bias", "bias_given_label", "bias_downstream_label"} <= cols
    row = con.sql("SELECT lift_lo, lift, lift_hi, len(examples), description FROM slices WHERE rank = 1").fetchall()[0]
    assert row[0] <= row[1] <= row[2] and row[3] == 3 and row[4]
    d = con.sql("SELECT len(neighbor_ids), error FROM downstream LIMIT 1").fetchall()[0]
    assert d[0] == 10 and d[1] in (0.0, 1.0)
    kinds = {r[0] for r in con.sql("SELECT DISTINCT kind FROM slices").fetchall()}
    assert kinds == {"cluster", "concept", "inherited_label_bias"}


def test_clean_corpus_gets_no_bias_flags_and_rerun_is_idempotent(tmp_path):
    run, dpath, _, _ = make_world(tmp_path, poison=False)
    res = link(LinkConfig(run=str(run), downstream=str(dpath)))
    assert res.bias_regions == 0
    res2 = link(LinkConfig(run=str(run), downstream=str(dpath)))
    assert res2.slices.equals(res.slices)
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    assert con.sql("SELECT count(*) FROM flags WHERE is_inherited_label_bias_issue").fetchall()[0][0] == 0
    flag_cols = [r[0] for r in con.sql("DESCRIBE flags").fetchall()]
    assert flag_cols.count("is_inherited_label_bias_issue") == 1


def test_downstream_without_labels_skips_bias_and_bad_input_is_refused(poisoned, tmp_path):
    run, dpath, *_ = poisoned
    down = pl.read_parquet(dpath)
    nolab = tmp_path / "nolab.parquet"
    down.with_columns((pl.col("label") == pl.col("prediction")).alias("correct")).drop("label", "prediction") \
        .write_parquet(nolab)
    before = (run / "flags.parquet").read_bytes()
    bad = tmp_path / "bad.parquet"
    down.drop("prediction").write_parquet(bad)
    with pytest.raises(UimError, match="no model outcome"):
        link(LinkConfig(run=str(run), downstream=str(bad)))
    textonly = tmp_path / "textonly.parquet"
    down.drop("embedding").write_parquet(textonly)
    with pytest.raises(UimError, match="no embedding column"):
        link(LinkConfig(run=str(run), downstream=str(textonly)))
    assert (run / "flags.parquet").read_bytes() == before  # refused input changes nothing
    res = link(LinkConfig(run=str(run), downstream=str(nolab)))
    assert res.outcome == "correct" and res.bias_regions == 0
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    summ = con.sql("SELECT summary::VARCHAR FROM detectors WHERE issue = 'inherited_label_bias'").fetchall()[0][0]
    assert "no true labels" in summ


def test_cli_link_prints_slices_and_attribution(poisoned, tmp_path):
    run, dpath, *_ = poisoned
    r = CliRunner().invoke(app, ["link", str(run), str(dpath), "--top", "3"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "inherited_label_bias:0" in r.output and "issue attribution" in r.output
    r = CliRunner().invoke(app, ["link", str(run), str(tmp_path / "missing.parquet")])
    assert r.exit_code == 2 and "not found" in r.output


def test_wilson_interval():
    lo, hi = wilson(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert lo[0] == 0 and lo[1] == pytest.approx(0.2366, abs=1e-4) and hi[1] == pytest.approx(0.7634, abs=1e-4)
    assert hi[2] == pytest.approx(1.0)


def test_regions_of_one_concept_split_by_the_graph_are_merged():
    from uimdata.link.bias import BiasRegion, merge_regions

    cluster = np.array([0] * 10 + [1] * 10 + [2] * 10)

    def region(rows, given="a", suggested="b"):
        return BiasRegion(np.array(rows), given, suggested, 10, 1, 0.6, 1e-4)

    merged = merge_regions([region(range(0, 5)), region(range(5, 12)), region(range(20, 26)),
                            region(range(12, 15), suggested="c")], cluster)
    assert sorted(len(r.rows) for r in merged) == [3, 6, 12]  # 0-11 merged (shared cluster 0)
    big = next(r for r in merged if len(r.rows) == 12)
    assert big.support == 20 and big.given_in_support == 2 and big.p_value < 1e-4


def test_neighbour_arithmetic_leaves_missing_neighbours_out():
    from uimdata.knn import (
        class_votes,
        neighbour_mean,
        neighbour_share,
        neighbour_values,
        vote_weights,
        weighted_vote,
    )

    rows = np.array([[1, 2, -1], [0, -1, -1], [-1, -1, -1]])
    cos = np.array([[0.9, 0.5, -1.0], [0.8, -1.0, -1.0], [-1.0, -1.0, -1.0]], np.float32)
    # density: the mean cosine over the neighbours that exist (a row without any gets `empty`)
    assert np.allclose(neighbour_mean(rows, cos, empty=1.0), [0.7, 0.8, 1.0])
    assert neighbour_mean(np.zeros((2, 0), np.int64), np.zeros((2, 0), np.float32)).tolist() == [0.0, 0.0]
    w = np.ones(rows.shape)
    member = np.array([False, True, False])
    assert np.allclose(neighbour_share(rows, w, member), [0.5, 0.0, 0.0])
    codes = neighbour_values(rows, np.array([2, 0, 1]))
    assert codes.tolist() == [[0, 1, -1], [2, -1, -1], [-1, -1, -1]]
    assert weighted_vote(codes, np.array([[1.0, 2.0, 9.0], [1.0, 9.0, 9.0], [9.0, 9.0, 9.0]])).tolist() == [1, 2, -1]
    votes = class_votes(codes, vote_weights(cos, codes >= 0), 3)
    assert np.allclose(votes.sum(axis=1), [1, 1, 0]) and votes[0, 0] > votes[0, 1]


def test_mislabelled_rows_are_the_noisy_the_poisoned_and_their_copies():
    """The benchmarks' measure of what a label flag is right about: every row whose given label is wrong,
    a planted copy of such a row included; clean rows and copies of clean rows are not."""
    import polars as pl

    from uimdata.evaluate import mislabelled_rows

    truth = pl.DataFrame({
        "id": ["n1", "p1", "p2", "c1", "c2", "d1", "o1"],
        "defect": ["label_noise", "label_noise", "label_noise", "near_duplicate", "exact_duplicate",
                   "near_duplicate", "ood"],
        "kind": ["uniform", "poisoned_concept", "poisoned_concept", "typo", "verbatim", "typo", "other_language"],
        "source_id": [None, None, None, "p1", "n1", "clean7", None],
    })
    assert mislabelled_rows(truth) == {"n1", "p1", "p2", "c1", "c2"}
    assert mislabelled_rows(truth.drop("source_id")) == {"n1", "p1", "p2"}
