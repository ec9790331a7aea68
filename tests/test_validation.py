"""Bad input gets one clear error naming the file, the column and the count; or a quarantine."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from urm_models.core import paths
from urm_models.core.errors import DataValidationError
from urm_models.data import datasets

GOOD = "user_id,ts,amount\nu1,2024-01-02,10.5\nu2,2024-01-03,3\nu1,2024-02-01,0\n"


def write(tmp_path, text, name="tx.csv", mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def raises(path, match_column, match_check, n_rows, **kwargs):
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(path, **kwargs)
    msg = str(ei.value)
    assert str(path) in msg, msg
    assert match_column in msg, msg
    assert match_check in msg, msg
    assert re.search(rf"\b{n_rows:,} rows\b", msg), msg
    return ei.value


def test_good_file_loads_with_canonical_types(tmp_path, home):
    tx = datasets.load_transactions(write(tmp_path, GOOD))
    assert list(tx.columns) == ["user_id", "ts", "amount"]
    assert tx["ts"].dtype == "datetime64[ns]" and tx["amount"].dtype == float
    assert tx.attrs["validation"]["n_rejected"] == 0
    assert not (home / "data" / "quarantine").exists()


def test_missing_required_column(tmp_path):
    p = write(tmp_path, "user_id,amount\nu1,3\n")
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(p)
    msg = str(ei.value)
    assert str(p) in msg and "'ts'" in msg and "missing required column" in msg
    assert "['user_id', 'amount']" in msg  # says what the file does have
    # without an amount column the file is an activity log (issue 28): events, said so
    events = datasets.load_transactions(write(tmp_path, "user_id,ts\nu1,2024-01-02\n"))
    assert events.attrs["amounts"] == "none" and events["amount"].tolist() == [1.0]


def test_missing_mapped_column_names_both_names(tmp_path):
    p = write(tmp_path, "customer,when,total\nu1,2024-01-02,1\n")
    with pytest.raises(DataValidationError, match=r"'amount' \(mapped from 'value'\)"):
        datasets.load_transactions(p, columns={"user_id": "customer", "ts": "when", "amount": "value"})


def test_unparseable_dates(tmp_path):
    p = write(tmp_path, GOOD + "u3,2024-13-45,1\nu4,yesterday,2\n")
    err = raises(p, "column ts", "parseable_datetime", 2)
    assert "line 5: '2024-13-45'" in str(err) and "line 6: 'yesterday'" in str(err)


def test_null_or_empty_user_ids(tmp_path):
    p = write(tmp_path, GOOD + ",2024-01-05,1\n   ,2024-01-05,2\n")
    raises(p, "column user_id", "not_missing", 2)


def test_non_numeric_amounts(tmp_path):
    p = write(tmp_path, GOOD + "u3,2024-01-05,ten\nu4,2024-01-05,12.3.4\n")
    raises(p, "column amount", "numeric", 2)


def test_nan_and_inf_amounts(tmp_path):
    p = write(tmp_path, GOOD + "u3,2024-01-05,NaN\nu4,2024-01-05,inf\nu5,2024-01-05,-Infinity\n")
    raises(p, "column amount", "finite", 3)


def test_negative_amounts_rejected_by_default_and_kept_on_request(tmp_path):
    p = write(tmp_path, GOOD + "u1,2024-01-05,-4.5\n")
    raises(p, "column amount", "non_negative", 1)
    tx = datasets.load_transactions(p, returns="keep")
    assert len(tx) == 4 and tx["amount"].min() == -4.5


def test_timestamps_after_as_of_are_in_the_future(tmp_path):
    p = write(tmp_path, GOOD + "u1,2024-03-01,1\nu2,2024-03-02,1\n")
    raises(p, "column ts", "not_after_as_of", 2, as_of="2024-02-15")
    p2 = write(tmp_path, GOOD + "u1,2100-01-01,1\n", name="future.csv")
    raises(p2, "column ts", "not_after_as_of", 1)  # default as_of: now


def test_exact_duplicate_rows(tmp_path):
    p = write(tmp_path, GOOD + "u2,2024-01-03,3\nu2,2024-01-03,3\n")
    err = raises(p, "(row)", "no_exact_duplicates", 2)
    assert "line 5" in str(err)
    assert len(datasets.load_transactions(p, duplicates="keep")) == 5


def test_empty_file(tmp_path):
    p = write(tmp_path, "")
    with pytest.raises(DataValidationError, match=re.escape(f"{p}: the file is empty")):
        datasets.load_transactions(p)
    p2 = write(tmp_path, "user_id,ts,amount\n", name="header_only.csv")
    with pytest.raises(DataValidationError, match="header but no rows"):
        datasets.load_transactions(p2)


@pytest.mark.parametrize(
    "name,content",
    [
        ("tx.xlsx", b"PK\x03\x04" + b"\x00" * 100),
        ("tx.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50),
        ("tx.json", b'[{"user_id": "u1"}]'),
        ("tx.parquet", b"user_id,ts,amount\nu1,2024-01-01,1\n"),
    ],
)
def test_not_csv_or_parquet(tmp_path, name, content):
    p = write(tmp_path, content, name=name, mode="wb")
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(p)
    assert str(p) in str(ei.value)
    assert re.search(r"not a (CSV or )?Parquet|unsupported file type", str(ei.value))


def test_non_utf8_bytes_raise_with_line_numbers(tmp_path):
    body = GOOD.encode() + "u9,2024-01-04,5\nM\xfcller,2024-01-04,5\n".encode("latin-1")
    p = write(tmp_path, body, mode="wb")
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(p)
    msg = str(ei.value)
    assert str(p) in msg and "1 line(s) are not valid utf-8" in msg and "line 6" in msg
    assert "encoding='latin-1'" in msg
    # the right encoding loads it
    tx = datasets.load_transactions(p, encoding="latin-1")
    assert "Müller" in set(tx["user_id"])


def test_quarantine_keeps_valid_rows_and_writes_every_rejected_row(tmp_path, home):
    bad = (
        "u3,2024-13-45,1\n"  # unparseable date
        ",2024-01-05,1\n"  # empty id
        "u4,2024-01-05,abc\n"  # non-numeric
        "u5,2024-01-05,inf\n"  # inf
        "u6,2024-01-05,-2\n"  # negative
        "u7,2100-01-01,1\n"  # future
        "u2,2024-01-03,3\n"
    )  # exact duplicate of line 3
    body = GOOD.encode() + bad.encode() + "\xe9t\xe9,2024-01-04,5\n".encode("latin-1")
    p = write(tmp_path, body, mode="wb")
    n_input = 3 + 7 + 1
    tx = datasets.load_transactions(p, errors="quarantine")
    rep = tx.attrs["validation"]
    assert rep["n_input"] == n_input
    assert rep["n_valid"] == len(tx) == 3
    assert rep["n_valid"] + rep["n_rejected"] == n_input
    qpath = Path(rep["quarantine_path"])
    assert qpath.parent == paths.quarantine_dir() == home / "data" / "quarantine"
    q = pd.read_csv(qpath, dtype=str, keep_default_na=False)
    assert len(q) == rep["n_rejected"] == 8
    reasons = " | ".join(q["_reasons"])
    for check in (
        "parseable_datetime",
        "not_missing",
        "numeric",
        "finite",
        "non_negative",
        "not_after_as_of",
        "no_exact_duplicates",
        "utf-8",
    ):
        assert check in reasons, check
    assert set(q["_location"]) >= {"line 5", "line 6", "line 11", "line 12"}
    # failures table: one row per (column, check) with counts adding up
    assert sum(f["n_rows"] for f in rep["failures"]) == 8


def test_quarantine_never_leaves_a_partial_file(tmp_path, home):
    p = write(tmp_path, GOOD + "u3,bad-date,1\n")
    datasets.load_transactions(p, errors="quarantine")
    files = list((home / "data" / "quarantine").iterdir())
    assert len(files) == 1 and not files[0].name.startswith(".")


def test_column_mapping_date_format_and_time_zone(tmp_path):
    p = write(
        tmp_path,
        "Customer;Order date;Total;Shop\nA;31/12/2023 23:30;5,00;web\nB;01/01/2024 01:15;7;store\n",
        name="orders.csv",
    )
    tx = datasets.load_transactions(
        p,
        sep=";",
        date_format="%d/%m/%Y %H:%M",
        decimal=",",
        columns={"user_id": "Customer", "ts": "Order date", "amount": "Total", "channel": "Shop"},
    )
    assert list(tx["user_id"]) == ["A", "B"]
    assert tx["ts"].iloc[0] == pd.Timestamp("2023-12-31 23:30")
    assert list(tx["amount"]) == [5.0, 7.0]
    assert list(tx["channel"]) == ["web", "store"]
    # aware timestamps are converted to the given zone (wall clock there)
    p2 = write(
        tmp_path, "user_id,ts,amount\nA,2024-01-01T00:30:00+00:00,1\nB,2024-01-01T12:00:00Z,2\n", name="aware.csv"
    )
    tx2 = datasets.load_transactions(p2, tz="America/New_York")
    assert tx2["ts"].iloc[0] == pd.Timestamp("2023-12-31 19:30")
    assert tx2["ts"].iloc[1] == pd.Timestamp("2024-01-01 07:00")


def test_parquet_input_with_native_types(tmp_path):
    df = pd.DataFrame(
        {
            "cust": ["a", "b", None],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "amount": [1.0, np.inf, 2.0],
        }
    )
    p = tmp_path / "tx.parquet"
    df.to_parquet(p)
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(p, columns={"user_id": "cust"})
    msg = str(ei.value)
    assert "user_id (file column 'cust')" in msg and "not_missing" in msg and "finite" in msg
    assert "row 2" in msg


def test_other_canonical_tables(tmp_path):
    users = write(tmp_path, "user_id,signup_ts\na,2024-01-01\na,2024-01-02\n", name="users.csv")
    with pytest.raises(DataValidationError, match="unique_user_id"):
        datasets.load_users(users)
    subs = write(
        tmp_path,
        "user_id,start_ts,end_ts,price,plan\na,2024-01-01,,9.9,basic\nb,2024-02-01,2024-01-01,9.9,basic\n",
        name="subs.csv",
    )
    with pytest.raises(DataValidationError, match=r"end_ts_not_before_start_ts': 1 rows"):
        datasets.load_subscriptions(subs)
    fb = write(tmp_path, "user_id,ts,score\na,2024-01-01,9\nb,2024-01-01,11\n", name="fb.csv")
    with pytest.raises(DataValidationError, match=r"column score, check 'at_most_10': 1 rows"):
        datasets.load_feedback(fb)
    ok = datasets.load_subscriptions(
        write(tmp_path, "user_id,start_ts,end_ts,price\na,2024-01-01,,9.9\n", name="subs2.csv")
    )
    assert ok["end_ts"].isna().all()  # null end = still active


def test_validate_in_memory_frame():
    df = pd.DataFrame({"user_id": ["a", "b"], "ts": ["2024-01-01", "nope"], "amount": [1, 2]})
    with pytest.raises(DataValidationError, match=r"<DataFrame>: 1 of 2 rows"):
        datasets.validate(df, "transactions")


def test_telco_duplicate_customers_are_caught(tmp_path, home):
    src = (paths.raw_data_dir() / "telco_churn.csv").read_text().splitlines()
    # test.csv of the source wheel is rows of train.csv again: simulate concatenating it
    p = write(tmp_path, "\n".join(src + src[1:101]) + "\n", name="telco_concat.csv")
    with pytest.raises(DataValidationError) as ei:
        datasets.load_telco(p)
    assert "unique_user_id" in str(ei.value) and "100 rows" in str(ei.value)
    te = datasets.load_telco(p, errors="quarantine")
    rep = te.attrs["validation"]
    assert len(te) == 4_930 and rep["n_rejected"] == 100 and rep["n_input"] == 5_030


def test_telco_blank_totalcharges_only_allowed_when_never_billed(tmp_path):
    lines = (paths.raw_data_dir() / "telco_churn.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    cols = header.split(",")
    i_tc, i_ten = cols.index("totalcharges"), cols.index("tenure")
    broken = rows[0].split(",")
    assert broken[i_ten] != "0"
    broken[i_tc] = " "
    p = write(tmp_path, "\n".join([header, ",".join(broken), *rows[1:]]) + "\n", name="telco.csv")
    with pytest.raises(DataValidationError, match=r"column totalcharges, check 'blank_only_when_tenure_0': 1 rows"):
        datasets.load_telco(p)


def test_unknown_errors_mode(tmp_path):
    with pytest.raises(ValueError, match="errors must be"):
        datasets.load_transactions(write(tmp_path, GOOD), errors="ignore")


def test_parse_number_called_directly_refuses_what_the_loaders_refuse():
    """``parse_number``'s default is the loaders' (decimal=None): dotted groups of three are
    refused with the two readings named, not read as decimals; plain decimals and an explicit
    convention still read."""
    from urm_models.core.errors import ConventionError
    from urm_models.data.parsing import parse_number

    with pytest.raises(ConventionError, match="decimal='.' or thousands='.'"):
        parse_number(pd.Series(["2.933", "1.250"]))
    assert parse_number(pd.Series(["2.933", "1.250"]), decimal=".").tolist() == [2.933, 1.25]
    assert parse_number(pd.Series(["2.933", "1.250"]), thousands=".").tolist() == [2933.0, 1250.0]
    assert parse_number(pd.Series(["2.5", "1.25", ""])).tolist()[:2] == [2.5, 1.25]


def test_read_options_are_one_object_built_by_name_with_the_loaders_defaults(tmp_path, home):
    """Every loader takes one ``ReadOptions`` whole, or its fields by name (the same object);
    an unknown name is refused with the known ones; a bad choice is refused when the options
    are made, before any file is read; the loaders' signatures list no option of their own."""
    import inspect

    from urm_models.data import campaign_files, validation
    from urm_models.data.options import CampaignOptions, ReadOptions, option_names

    text = "customer;day;total\nu1;02/01/2024;10,5\nu2;03/01/2024;3\nu1;01/02/2024;0\n"
    path = write(tmp_path, text)
    by_name = dict(columns={"user_id": "customer", "ts": "day", "amount": "total"}, date_format="%d/%m/%Y", decimal=",")
    whole = datasets.load_transactions(path, ReadOptions(**by_name))
    assert whole.equals(datasets.load_transactions(path, **by_name))
    assert whole["amount"].tolist() == [10.5, 3.0, 0.0] and whole["ts"].dt.month.tolist() == [1, 1, 2]
    # a field changed by name on top of a whole object
    later = datasets.load_transactions(path, ReadOptions(**by_name), as_of="2024-01-15", errors="quarantine")
    assert len(later) == 2 and later.attrs["validation"]["n_rejected"] == 1
    with pytest.raises(TypeError, match=r"unknown option 'date_fmt'; known: \[.*'date_format'"):
        datasets.load_transactions(path, date_fmt="%d/%m/%Y")
    # the mapping where the options go (the second argument was columns= before): said, not a traceback
    with pytest.raises(TypeError, match=r"options must be a ReadOptions .*, not dict: .* goes in columns="):
        datasets.load_transactions(path, by_name["columns"])
    for bad, match in (
        ({"errors": "ignore"}, "errors must be 'raise' or 'quarantine'"),
        ({"null_ids": "skip"}, "null_ids must be 'refuse', 'drop' or 'keep'"),
        ({"max_amount": 0}, "max_amount must be positive"),
        ({"columns": ["user_id"]}, "columns must map"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            ReadOptions(**bad)
    # the defaults live in ReadOptions alone: no loader repeats an option in its signature
    names = set(option_names(ReadOptions)) | set(option_names(CampaignOptions))
    for fn in (
        datasets.load_table,
        datasets.load_transactions,
        validation.validate_table,
        campaign_files.load_campaign,
        campaign_files.validate_campaign,
        campaign_files.load_assignments,
    ):
        assert not names & set(inspect.signature(fn).parameters) - {"control", "arms"}, fn.__name__


def test_a_campaign_file_refuses_the_options_of_transactions(tmp_path, home):
    from urm_models.data import campaign_files
    from urm_models.data.options import CampaignOptions, ReadOptions

    rows = "".join(f"u{i};{'none' if i % 2 else 'mail'};{i % 3 == 0:d}\n" for i in range(12))
    path = write(tmp_path, "user_id;group;visit\n" + rows, "camp.csv")
    spec = CampaignOptions(control="none", outcomes="visit")
    camp = campaign_files.load_campaign(path, spec, ReadOptions(columns={"arm": "group"}))
    assert camp.arms == ("none", "mail") and camp.outcomes == ("visit",) and len(camp.data) == 12
    same = campaign_files.load_campaign(path, control="none", outcomes=["visit"], columns={"arm": "group"}, sep=";")
    assert same.data.equals(camp.data)
    for option in ({"duplicates": "keep"}, {"value_per_event": 2.0}, {"returns": "keep"}):
        with pytest.raises(ValueError, match=f"{next(iter(option))}.*apply to transactions, not to a campaign"):
            campaign_files.load_campaign(path, spec, columns={"arm": "group"}, **option)
