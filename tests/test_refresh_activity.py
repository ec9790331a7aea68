"""The refresh on activity files nobody here shipped (issue 28): the gift shop's invoices with
copies that only the unmapped invoice number told apart, and the grocer's purchase days without
amounts, through the whole job. (Every vendored file at two cut-offs: docs/benchmarks.md and
the issue's report; each of those runs takes a minute or two, too long for make test.)"""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from urm_models.core import paths
from urm_models.jobs import pipeline

RAW = paths.source_root() / "data" / "raw"


@pytest.mark.slow
def test_refresh_of_an_activity_log_without_amounts(home):
    manifest = pipeline.refresh(
        {
            "path": str(RAW / "grocery.csv.gz"),
            "read": {"columns": {"user_id": "cust", "ts": "date"}},
            "cutoff": "2007-03-31",
            "fast": True,
        },
        notebooks=["01_explore_data", "03_model_churn", "05_model_clv", "06_score_users"],
        run_id="grocery",
        progress=False,
    )
    assert manifest["status"] == "ok"
    table = pd.read_parquet(manifest["predictions"]["path"])
    assert len(table) == 1_525 and table["clv"].isna().all() and table["value_at_risk"].isna().all()
    assert table["expected_purchases"].gt(0).all() and table["p_alive"].between(0, 1).all()
    assert table["tier"].value_counts().to_dict() == {"bronze": 610, "silver": 457, "gold": 306, "platinum": 152}
    by_tier = table.groupby("tier")["expected_purchases"].min()
    assert by_tier["platinum"] >= table.loc[table["tier"] == "gold", "expected_purchases"].max()  # tiers by activity
    meta = json.loads(pq.read_schema(manifest["predictions"]["path"]).metadata[b"urm_models"])
    assert meta["columns"]["clv"].startswith("empty: the data have no amounts")
    assert "26 W" in meta["columns"]["p_churn"] or "13 W" in meta["columns"]["p_churn"]
    clv_nb = (home / "reports" / "runs" / "grocery" / "05_model_clv.ipynb").read_text()
    assert "the transactions have no amounts: money columns are left empty" in clv_nb
    assert "chosen on " in clv_nb and "inner window" in clv_nb


@pytest.mark.slow
def test_the_snapshot_keeps_invoices_only_their_number_told_apart(home):
    """The 2009 gift-shop file has three invoices that share customer, minute and amount: the
    loader accepts the file (the invoice column tells them apart); mapped without the invoice
    number, the snapshot holds them as copies, and 01 read it stricter than the loader did."""
    cols = {"user_id": "customer_id", "ts": "invoice_time", "amount": "amount"}
    manifest = pipeline.refresh(
        {
            "path": str(RAW / "online_retail_2009.csv.gz"),
            "read": {"columns": cols},
            "cutoff": "2010-06-30",
            "fast": True,
        },
        notebooks=["01_explore_data"],
        run_id="giftshop",
        progress=False,
    )
    assert manifest["status"] == "ok" and manifest["data"]["rows"] == 19_248
