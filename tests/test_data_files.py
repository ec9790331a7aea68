"""The shipped data sets are the files data/README.md describes, and load as documented."""

import hashlib

import pandas as pd
import pytest

from urm_models import datasets, paths

SHA256 = {
    "CDNOW_master.txt": "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef",
    "CDNOW_sample.txt": "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a",
    "telco_churn.csv": "940dbc020bc7482dd30444b7baec644c91e96bb633bce2fdf9419f0a2ce90ebc",
    "hillstrom.csv": "0e5893329d8b93cefecc571777672028290ab69865718020c78c7284f291aece",
    "donations.csv": "82c25f26a201ff047e1cd5fe3d7967a45db92a025ecedee72ff8940e50104544",
    "../examples/orders_de.csv": "e9a76068e72b3ac4a9e71e347ffdeb14771d18fa83cbf30f2e59e2f1d80674c6",
    "../examples/campaign_orders.csv.gz": "72dbfc53f60bade35f83de465e6bb13d0efc62608047b0d9bbbfe7a7c4fce1c0",
    "../examples/campaign_sends.csv": "444f31a12a63da2076ceb27174f64ea10afa32c4f232737d37a184c27de9f7f2",
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
