"""The detector contract, end to end: a detector defined in this file (``shouting``: texts that are mostly
capital letters) and registered is scanned, stored, summarised by ``uim summary``, shown by the report
and curated by a policy, without any other file knowing its name. This is the whole of "adding a
detector" (docs/architecture.md#adding-a-detector)."""

from __future__ import annotations

from typing import Any, ClassVar

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tests.conftest import CLEAN, random_embeddings
from uimdata.cli import app
from uimdata.curate import builtin_policies, decide, load_policy
from uimdata.detectors import REGISTRY, register, scan_detector, scan_names, unregister
from uimdata.detectors.base import Detector, DetectorResult, result_table
from uimdata.errors import UimError
from uimdata.report import render_report
from uimdata.rundir import RunDir
from uimdata.scan import ScanConfig, scan

SHOUTED = ["BUY NOW: THE BEST DEAL OF THE YEAR, LIMITED STOCK", "WARNING: DO NOT OPEN THIS DOOR UNDER ANY CIRCUMSTANCES",
           "FREE SHIPPING ON EVERY ORDER TODAY ONLY"]


class ShoutingDetector(Detector):
    """Texts whose letters are mostly capitals (a toy issue: everything it declares beyond ``detect`` is
    optional)."""

    issue: ClassVar[str] = "shouting"
    description: ClassVar[str] = "Texts written mostly in capital letters."
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"shouting_upper_share": pa.float64()}
    # curation: kept unless a policy says otherwise; the built-in `aggressive` policy drops it
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {"aggressive": {"action": "drop"}}
    # the report shows the share of capitals beside each example
    example_columns: ClassVar[tuple[tuple[str, str], ...]] = (("capitals", "shouting_upper_share"),)

    def __init__(self, max_share: float = 0.8) -> None:
        self.max_share = max_share

    @classmethod
    def summary_line(cls, summary: dict[str, Any]) -> str | None:
        return f"shouting: {summary['n_shouting']} texts mostly in capitals (above {summary['max_share']:.0%})"

    def detect(self, ctx: Any) -> DetectorResult:
        letters = [[c for c in t if c.isalpha()] for t in ctx.texts]
        share = np.array([sum(c.isupper() for c in ls) / len(ls) if ls else 0.0 for ls in letters])
        flagged = share > self.max_share
        table = result_table(self.issue, ctx.ids, flagged, 1.0 - share,
                             [f"{s:.0%} of its letters are capitals" for s in share],
                             {"shouting_upper_share": pa.array(share, pa.float64())})
        return DetectorResult(self.issue, table, {"n_shouting": int(flagged.sum()), "max_share": self.max_share})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The detector registered (and forgotten afterwards); the clean texts plus three shouted ones, scanned
    with given embeddings."""
    register(ShoutingDetector)
    try:
        tmp = tmp_path_factory.mktemp("shouting")
        texts = [t for t, _ in CLEAN] + SHOUTED
        labels = [lab for _, lab in CLEAN] + ["ad"] * len(SHOUTED)
        corpus = tmp / "corpus.parquet"
        pl.DataFrame({"id": [f"r{i:02d}" for i in range(len(texts))], "text": texts, "label": labels,
                      "embedding": random_embeddings(len(texts)).tolist()}).write_parquet(corpus)
        scan(ScanConfig(corpus=str(corpus), out=str(tmp / "run"), detectors=("exact_duplicate", "shouting")))
        yield tmp / "run"
    finally:
        unregister("shouting")
    assert "shouting" not in REGISTRY


def _shouted_ids() -> set[str]:
    return {f"r{len(CLEAN) + k:02d}" for k in range(len(SHOUTED))}


def test_its_flags_land_in_flags_and_the_database(run):
    flags = pl.read_parquet(run / "flags.parquet")
    assert list(flags.columns[-4:]) == ["is_shouting_issue", "shouting_score", "shouting_reason",
                                        "shouting_upper_share"]
    assert set(flags.filter(pl.col("is_shouting_issue"))["id"]) == _shouted_ids()
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    issues = con.execute("SELECT id, reason FROM issues WHERE issue = 'shouting'").fetchall()
    summary = con.execute("SELECT n_flagged, description FROM issue_summary WHERE issue = 'shouting'").fetchone()
    con.close()
    assert {i for i, _ in issues} == _shouted_ids() and all("capitals" in r for _, r in issues)
    assert summary == (len(SHOUTED), ShoutingDetector.description)


def test_uim_summary_prints_its_line(run):
    res = CliRunner().invoke(app, ["summary", str(run)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert f"shouting: {len(SHOUTED)} texts mostly in capitals (above 80%)" in res.output


def test_the_report_lists_it_with_its_columns(run):
    html = render_report(RunDir(run))
    assert f"shouting: {len(SHOUTED)} flagged" in html and 'id="examples-shouting"' in html
    assert ">capitals<" in html and SHOUTED[1] in html


def test_a_policy_can_drop_it(run, tmp_path):
    pol = tmp_path / "drop_shouting.toml"
    pol.write_text('base = "default"\n[shouting]\naction = "drop"\n')
    m = decide(RunDir(run), str(pol)).manifest
    dropped = m.filter(pl.col("action") == "dropped")
    assert set(dropped["id"]) == _shouted_ids() and (dropped["issue"] == "shouting").all()
    assert dropped["reason"].str.starts_with("shouting: dropped; ").all()
    # the built-in policies come from its declarations: kept by default, dropped by `aggressive`
    assert builtin_policies()["default"]["shouting"] == {"action": "keep"}
    kept = decide(RunDir(run), "default").manifest.filter(pl.col("id").is_in(list(_shouted_ids())))
    assert (kept["action"] == "kept").all() and kept["reason"].str.starts_with("shouting: kept by policy").all()
    aggressive = decide(RunDir(run), "aggressive").manifest.filter(pl.col("id").is_in(list(_shouted_ids())))
    assert (aggressive["action"] == "dropped").all()


def test_its_declared_actions_bound_a_policy(run, tmp_path):
    pol = tmp_path / "relabel.toml"
    pol.write_text('[shouting]\naction = "relabel"\n')
    with pytest.raises(UimError, match=r"\[shouting\]: action 'relabel' does not apply; expected drop \| keep \| "
                                       r"reweight"):
        load_policy(str(pol))


def test_a_detector_uim_link_writes_is_refused_by_the_scan():
    assert "inherited_label_bias" in REGISTRY and "inherited_label_bias" not in scan_names()
    with pytest.raises(UimError, match=r"detector 'inherited_label_bias' runs in `uim link`, not in `uim scan`"):
        scan_detector("inherited_label_bias")
    with pytest.raises(UimError, match="unknown detector 'shoutin'"):
        scan_detector("shoutin")


def test_declarations_that_cannot_hold_are_caught():
    class Muddled(Detector):
        issue: ClassVar[str] = "muddled"
        curate_rule: ClassVar[dict[str, Any]] = {"action": "relabel", "min_prob": 0.5}  # no relabel allowed

    register(Muddled)
    try:
        with pytest.raises(ValueError, match=r"detector 'muddled' declares curation it cannot have: \[\"a table "
                                             r"with action 'relabel'\"\]"):
            builtin_policies()
    finally:
        unregister("muddled")
    assert "muddled" not in builtin_policies()["default"]
