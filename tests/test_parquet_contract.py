"""The transactions contract for Parquet files read as they are (DuckDB here; Spark gives the
same answers: tests/test_spark.py): every check of the pandas contract, counted exactly, with
the option that settles it; types that two engines would read differently refused."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from urm_models.core.errors import DataValidationError
from urm_models.data import datasets, parquet_contract

NOW = "2026-12-01 12:00"


def write(tmp_path, name, **columns) -> str:
    """A Parquet file of the given pyarrow arrays (microsecond times, as Spark reads them)."""
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table(columns), path)
    return str(path)


def clean(n=6):
    return {
        "user_id": pa.array(np.arange(n) % 3 + 1, pa.int64()),
        "ts": pa.array(pd.date_range("1997-01-01", periods=n, freq="7D").astype("datetime64[us]")),
        "amount": pa.array(np.linspace(5.0, 30.0, n)),
    }


def broken():
    """One row breaking each check, plus one exact copy of a clean row; ids as text."""
    ts = list(pd.date_range("1997-01-01", periods=10, freq="7D").astype("datetime64[us]"))
    ts[3] = None  # ts missing
    ts[4] = pd.Timestamp("1960-06-01")  # before 1970
    ts[5] = pd.Timestamp("2030-01-01")  # in the future
    amount = [10.0] * 10
    amount[6], amount[7], amount[8], amount[9] = None, float("nan"), -3.0, 2e9  # NaN: missing, as in pandas
    amount[2] = float("inf")
    ids = ["a", " ", "b", "c", "d", "e", "f", "g", "h", "i"]
    ids[1] = " "  # an id that is only blank
    rows = {
        "user_id": pa.array(ids + ["a"]),
        "ts": pa.array(ts + [ts[0]], pa.timestamp("us")),
        "amount": pa.array(amount + [10.0], pa.float64()),
    }
    return rows


EXPECTED = {
    ("user_id", "not_missing"): 1,
    ("ts", "not_missing"): 1,
    ("ts", "not_before_1970-01-01"): 1,
    ("ts", "not_after_now (2026-12-01 12:00)"): 1,
    ("amount", "not_missing"): 2,
    ("amount", "finite"): 1,
    ("amount", "magnitude_at_most_1e+09"): 1,
    ("amount", "non_negative"): 1,
    ("(row)", "no_exact_duplicates"): 1,
}


def test_a_clean_file_passes_and_counts_its_rows(tmp_path):
    assert parquet_contract.check_transactions(write(tmp_path, "ok", **clean()), now=NOW) == {"n_rows": 6}


def test_every_broken_row_is_counted_under_its_check_with_the_option(tmp_path):
    path = write(tmp_path, "bad", **broken())
    with pytest.raises(DataValidationError) as info:
        parquet_contract.check_transactions(path, now=NOW)
    err = info.value
    got = {(r.column, r.check): r.n_rows for r in err.failures.itertuples()}
    assert got == EXPECTED
    msg = str(err)
    assert msg.startswith(f"{path}: 11 rows read")
    assert "column amount, check 'non_negative': 1 rows; returns='keep' (--returns keep)" in msg
    assert "duplicates='keep' (--duplicates keep)" in msg and "errors='quarantine'" in msg
    # the options settle those two checks, and only those
    with pytest.raises(DataValidationError) as again:
        parquet_contract.check_transactions(path, now=NOW, duplicates="keep", returns="keep")
    left = {(r.column, r.check) for r in again.value.failures.itertuples()}
    assert left == set(EXPECTED) - {("amount", "non_negative"), ("(row)", "no_exact_duplicates")}
    # a smaller bound and a later floor count more rows
    with pytest.raises(DataValidationError) as tight:
        parquet_contract.check_transactions(path, now=NOW, max_amount=5.0, min_date="1997-02-01")
    counts = {(r.column, r.check): r.n_rows for r in tight.value.failures.itertuples()}
    assert counts[("amount", "magnitude_at_most_5")] == 7 and counts[("ts", "not_before_1997-02-01")] == 5


def test_the_same_file_loaded_in_pandas_fails_the_same_checks(tmp_path):
    """The SQL contract and validate_table agree on which rows are bad (same checks, same counts,
    the pandas one read with the same "now")."""
    path = write(tmp_path, "bad", **broken())
    with pytest.raises(DataValidationError) as pandas_err:
        datasets.load_transactions(path, as_of=NOW)
    pandas_checks = {
        (r.column, r.check.split(" (")[0].replace("not_after_as_of", "not_after_now")): r.n_rows
        for r in pandas_err.value.failures.itertuples()
    }
    ours = {(c, k.split(" (")[0]): n for (c, k), n in EXPECTED.items()}
    assert pandas_checks == ours


@pytest.mark.parametrize(
    "case, column, said",
    [
        ("float ids", "user_id", "column user_id is stored as float: it must hold whole numbers or text"),
        ("zoned times", "ts", "column ts is stored as timestamp with a time zone"),
        ("text dates", "ts", "column ts is stored as text"),
        ("text amounts", "amount", "column amount is stored as text: it must hold numbers"),
    ],
)
def test_types_two_engines_would_read_differently_are_refused(tmp_path, case, column, said):
    cols = clean()
    cols[column] = {
        "float ids": lambda: pa.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0]),
        "zoned times": lambda: cols["ts"].cast(pa.timestamp("us", tz="Europe/Berlin")),
        "text dates": lambda: pa.array(["01/02/1997"] * 6),
        "text amounts": lambda: pa.array(["1,50"] * 6),
    }[case]()
    path = write(tmp_path, "typed", **cols)
    with pytest.raises(DataValidationError, match=said) as info:
        parquet_contract.check_transactions(path, now=NOW)
    assert str(info.value).startswith(path)
    if case != "float ids":  # the others can be read in pandas with an option
        assert "datasets.load_transactions(path, " in str(info.value)
    assert list(info.value.failures["column"]) == [column]


def test_a_missing_column_names_what_the_file_has(tmp_path):
    cols = clean()
    cols["order_total"] = cols.pop("amount")
    path = write(tmp_path, "renamed", **cols)
    with pytest.raises(
        DataValidationError,
        match=r"missing required column\(s\) \['amount'\]; the file has "
        r"\['order_total', 'ts', 'user_id'\]",
    ):
        parquet_contract.check_transactions(path, now=NOW)


def test_an_index_pandas_wrote_into_the_file_is_not_data(tmp_path):
    """pandas stores a non-default index as a column (__index_level_0__); copies of rows are
    copies whatever their index labels, as validate_table sees them."""
    df = pd.DataFrame(
        {
            "user_id": [1, 2, 1],
            "ts": pd.to_datetime(["1997-01-01", "1997-01-02", "1997-01-01"]),
            "amount": [5.0, 6.0, 5.0],
        },
        index=[10, 20, 30],
    ).astype({"ts": "datetime64[us]"})
    df.to_parquet(tmp_path / "indexed.parquet")
    assert "__index_level_0__" in pq.read_schema(tmp_path / "indexed.parquet").names
    with pytest.raises(DataValidationError) as info:
        parquet_contract.check_transactions(str(tmp_path / "indexed.parquet"), now=NOW)
    assert info.value.failures[["column", "check", "n_rows"]].values.tolist() == [["(row)", "no_exact_duplicates", 1]]
