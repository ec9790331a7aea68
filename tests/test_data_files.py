"""The shipped data sets are the files data/README.md describes, and load as documented."""

import hashlib

import pandas as pd
import pytest

from urm_models.core import paths
from urm_models.data import datasets

SHA256 = {
    "CDNOW_master.txt": "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef",
    "CDNOW_sample.txt": "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a",
    "telco_churn.csv": "940dbc020bc7482dd30444b7baec644c91e96bb633bce2fdf9419f0a2ce90ebc",
    "hillstrom.csv": "0e5893329d8b93cefecc571777672028290ab69865718020c78c7284f291aece",
    "donations.csv": "82c25f26a201ff047e1cd5fe3d7967a45db92a025ecedee72ff8940e50104544",
    "../examples/orders_de.csv": "e9a76068e72b3ac4a9e71e347ffdeb14771d18fa83cbf30f2e59e2f1d80674c6",
    "../examples/campaign_orders.csv.gz": "72dbfc53f60bade35f83de465e6bb13d0efc62608047b0d9bbbfe7a7c4fce1c0",
    "../examples/campaign_sends.csv": "444f31a12a63da2076ceb27174f64ea10afa32c4f232737d37a184c27de9f7f2",
    "online_retail.csv.gz": "03907e0f32e0f7f0b4aec2deeab6fbf6f4724aa097c8e333a1ffd93e0aa9b6e2",
    "online_retail_2009.csv.gz": "30669ab195de37e997a47b35052c20d7939b7f4634f5e0a21d2679edeab80b80",
    "grocery.csv.gz": "24f4de76eef2b5d4a68a4955c2c8e8115c8c442c2f7f261ae743b86dc48115b8",
    "../examples/apparel.csv.gz": "65454273035fbf3470d9d1b8a5a55db05418720f0ab53c102a82b3fe511ba88a",
    "../examples/apparel_season.csv": "eca7802127762a3d051a56461c112b9c4b234029e9b4e7cbc214de34faa4ed9e",
}


@pytest.mark.parametrize("name", sorted(SHA256))
def test_sha256_matches_data_readme(name):
    digest = hashlib.sha256((paths.raw_data_dir() / name).resolve().read_bytes()).hexdigest()
    assert digest == SHA256[name]
    assert SHA256[name] in (paths.source_root() / "data" / "README.md").read_text()


def test_cdnow_master_loads_as_23570_customers(cdnow_master):
    tx = cdnow_master
    assert len(tx) == 69_659
    assert tx["user_id"].nunique() == 23_570
    assert tx["ts"].min() == pd.Timestamp("1997-01-01")
    assert tx["ts"].max() == pd.Timestamp("1998-06-30")
    first = tx.groupby("user_id")["ts"].min()
    assert first.max() <= pd.Timestamp("1997-03-31")  # the Q1-1997 cohort
    assert list(tx.columns) == ["user_id", "ts", "amount", "quantity"]
    assert tx.attrs["validation"]["n_rejected"] == 0


def test_cdnow_sample_loads_as_2357_customers(cdnow_sample, cdnow_master):
    assert cdnow_sample["user_id"].nunique() == 2_357
    assert len(cdnow_sample) == 6_919
    # the sample's ids are master ids: each sampled customer's history is in the master file
    assert set(cdnow_sample["user_id"]) <= set(cdnow_master["user_id"])


def test_telco_one_row_per_customer():
    te = datasets.load_telco()
    assert len(te) == 4_930 and te["user_id"].is_unique
    assert set(te["churn"].unique()) == {0, 1}
    assert te["churn"].sum() == 1_306
    assert te["tenure"].dtype == "int64"
    for col in ("monthlycharges", "totalcharges"):
        assert pd.api.types.is_float_dtype(te[col]) and te[col].notna().all()
    never_billed = te["tenure"] == 0
    assert never_billed.sum() == 8
    assert (te.loc[never_billed, "totalcharges"] == 0.0).all()
    assert (te.loc[~never_billed, "totalcharges"] > 0).all()
    assert list(te.columns[[0, -2, -1]]) == ["user_id", "tenure", "churn"]


def test_load_dataset_names():
    assert set(datasets.DATASETS) == {"cdnow", "cdnow_sample", "telco", "hillstrom"}
    assert datasets.dataset_kind("hillstrom") == "campaign"
    assert datasets.load_dataset("hillstrom").control == "No E-Mail"
    with pytest.raises(ValueError, match="unknown data set"):
        datasets.load_dataset("nope")


def test_the_german_example_export_is_cdnow_sample_and_needs_its_options(cdnow_sample, home):
    """data/examples/orders_de.csv (the README's own-data example) is CDNOW_sample as a German
    shop exports it, plus two broken rows: refused without decimal/date_format, equal with them."""
    path = paths.source_root() / "data" / "examples" / "orders_de.csv"
    cols = {"user_id": "customer", "ts": "order_date", "amount": "total"}
    with pytest.raises(datasets.DataValidationError, match="pass decimal=','") as ei:
        datasets.load_transactions(path, columns=cols, duplicates="keep")
    assert 'date_format="%d.%m.%Y"' in str(ei.value)
    tx = datasets.load_transactions(
        path,
        columns=cols,
        decimal=",",
        date_format="%d.%m.%Y",
        tz="Europe/Berlin",
        duplicates="keep",
        errors="quarantine",
    )
    rep = tx.attrs["validation"]
    assert (rep["n_input"], rep["n_valid"], rep["n_rejected"]) == (6_921, 6_919, 2)
    pd.testing.assert_frame_equal(
        tx,
        cdnow_sample.drop(columns="quantity"),
        check_like=False,
        check_dtype=True,
        check_exact=False,
        rtol=0,
        atol=1e-9,
    )


def test_online_retail_files_load_as_documented():
    """data/README.md's counts of the two gift-shop files; the 2009 file's invoice numbers keep the
    three invoices that share a customer, minute and amount apart."""
    tx = datasets.load_online_retail()
    assert (len(tx), tx["user_id"].nunique()) == (18_440, 4_338)
    assert (tx["ts"].min(), tx["ts"].max()) == (pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2011-12-09 12:50"))
    assert tx["amount"].gt(0).all() and tx.attrs["amounts"] == "file"
    tx9 = datasets.load_online_retail("2009")
    assert (len(tx9), tx9["user_id"].nunique()) == (19_248, 4_312)
    assert tx9.duplicated(["user_id", "ts", "amount"]).sum() == 3
    assert not tx9.duplicated(["user_id", "ts", "amount", "order_id"]).any()
    with pytest.raises(ValueError, match="period"):
        datasets.load_online_retail("2011")


def test_grocery_is_an_activity_log_without_amounts():
    tx = datasets.load_grocery()
    assert (len(tx), tx["user_id"].nunique()) == (10_483, 1_525)
    assert tx.attrs["amounts"] == "none" and (tx["amount"] == 1.0).all()
    assert tx.groupby("user_id")["ts"].min().max() <= pd.Timestamp("2006-03-31")  # the Q1-2006 cohort


def test_apparel_panel_and_its_season():
    tx = datasets.load_apparel()
    assert (len(tx), tx["user_id"].nunique()) == (3_187, 600)
    assert (tx.groupby("user_id")["ts"].min() == pd.Timestamp("2005-01-02")).all()
    cal = datasets.apparel_season()
    assert len(cal) == 407 and cal["period_start"].diff().dropna().eq(pd.Timedelta(days=7)).all()
    months = cal.loc[cal["high_season"] == 1, "period_start"].dt.month
    assert set(months) <= {5, 6, 9, 10, 11, 12}


def test_invoices_from_lines_cleans_and_groups():
    lines = pd.DataFrame(
        {
            "inv": ["1", "1", "2", "C3", "4", "5"],
            "cust": [17850.0, 17850.0, 17850.0, 17850.0, None, 12.0],
            "t": [
                "2010-12-01 08:26:10",
                "2010-12-01 08:26:50",
                "2010-12-01 08:26:30",
                "2010-12-02 09:00",
                "2010-12-02",
                "x",
            ],
            "q": [2, 1, 3, -1, 5, 1],
            "p": [1.5, 0.25, 1.0, 2.0, 1.0, 0.0],
        }
    )
    lines.loc[5, "t"] = "2010-12-03"
    by_number = datasets.invoices_from_lines(lines, customer="cust", time="t", quantity="q", price="p", invoice="inv")
    assert by_number[["invoice", "customer_id", "invoice_time", "amount", "lines"]].values.tolist() == [
        ["1", "17850", "2010-12-01 08:26", 3.25, 2],
        ["2", "17850", "2010-12-01 08:26", 3.0, 1],
    ]
    by_minute = datasets.invoices_from_lines(lines, customer="cust", time="t", quantity="q", price="p")
    assert by_minute[["customer_id", "amount", "lines"]].values.tolist() == [["17850", 6.25, 3]]
    with pytest.raises(ValueError, match="lack"):
        datasets.invoices_from_lines(lines, customer="nope", time="t", quantity="q", price="p")
