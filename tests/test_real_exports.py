"""Real exports: what CRM and shop exports contain (FACTS.md, "Real exports") is read right or
refused with the option that settles it, never read wrong.

The files are CDNOW_sample written the way such exports write it; "with the option set" each
must load exactly the values of the shipped file.
"""

import bz2
import gzip
import lzma
import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from urm_models.core.errors import DataValidationError
from urm_models.data import datasets

COLS = {"user_id": "customer", "ts": "order_date", "amount": "total"}


@pytest.fixture(scope="module")
def orders(cdnow_sample):
    """CDNOW_sample as (customer, order_date as text, total as text)."""
    out = pd.DataFrame(
        {
            "customer": cdnow_sample["user_id"],
            "order_date": cdnow_sample["ts"].dt.strftime("%Y-%m-%d"),
            "total": cdnow_sample["amount"].map(lambda v: f"{v:.2f}"),
        }
    )
    return out


def refused(path, *, column, n_rows, option, **kwargs):
    """Loading ``path`` raises one DataValidationError naming the file, column, count and option."""
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(path, columns=COLS, duplicates="keep", **kwargs)
    msg = str(ei.value)
    assert str(path) in msg, msg
    assert f"column {column}" in msg, msg
    assert re.search(rf"\b{n_rows:,} of [\d,]+ rows\b", msg), msg
    assert option in msg, msg
    return msg


def same_as_shipped(tx, cdnow_sample):
    assert len(tx) == len(cdnow_sample)
    assert tx["user_id"].tolist() == cdnow_sample["user_id"].tolist()
    assert (tx["ts"].to_numpy() == cdnow_sample["ts"].to_numpy()).all()
    assert np.allclose(tx["amount"].to_numpy(), cdnow_sample["amount"].to_numpy(), rtol=0, atol=1e-9)


def test_comma_decimals_are_refused_then_read_with_decimal_comma(tmp_path, orders, cdnow_sample):
    p = tmp_path / "orders_de.csv"
    de = orders.assign(total=orders["total"].str.replace(".", ",", regex=False))
    de.to_csv(p, sep=";", index=False)
    n_comma = int(de["total"].str.contains(",").sum())
    msg = refused(p, column="amount (file column 'total')", n_rows=n_comma, option="decimal=','")
    assert "'12,50'" in msg or re.search(r"'\d+,\d\d' \(\d", msg)  # an example with its reading
    same_as_shipped(datasets.load_transactions(p, columns=COLS, duplicates="keep", decimal=","), cdnow_sample)


def test_thousands_separators_and_currency(tmp_path):
    p = tmp_path / "eu.csv"
    p.write_text("user_id;ts;amount\nA;2024-01-02;1.234,50\nB;2024-01-03;€ 7,00\nC;2024-01-04;12\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"thousands='\.'"):
        datasets.load_transactions(p, decimal=",")
    # € not stripped, and the check names the option that would
    with pytest.raises(
        DataValidationError,
        match=r"column amount, check 'numeric \(a currency sign: currency='€' "
        r"removes it\)': 1 rows",
    ):
        datasets.load_transactions(p, decimal=",", thousands=".")
    tx = datasets.load_transactions(p, decimal=",", thousands=".", currency="€")
    assert tx["amount"].tolist() == [1234.5, 7.0, 12.0]
    us = tmp_path / "us.csv"
    us.write_text('user_id,ts,amount\nA,2024-01-02,"1,234.00"\nB,2024-01-03,"$7.00"\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"thousands=','"):
        datasets.load_transactions(us)
    assert datasets.load_transactions(us, thousands=",", currency="$")["amount"].tolist() == [1234.0, 7.0]


def test_one_offset_among_naive_times_is_refused_then_read_in_the_given_zone(tmp_path, orders, cdnow_sample):
    p = tmp_path / "orders_tz.csv"
    tz = orders.copy()
    tz["order_date"] = tz["order_date"] + "T12:00:00"
    tz.loc[0, "order_date"] = "1997-01-01T10:00:00+05:00"
    tz.to_csv(p, index=False)
    refused(p, column="ts (file column 'order_date')", n_rows=1, option='tz="')
    tx = datasets.load_transactions(p, columns=COLS, duplicates="keep", tz="UTC")
    # the naive times are read as written in UTC, the one with an offset converted to UTC
    assert tx["ts"].iloc[0] == pd.Timestamp("1997-01-01 05:00:00")
    assert (tx["ts"].iloc[1:].dt.normalize().to_numpy() == cdnow_sample["ts"].iloc[1:].to_numpy()).all()
    assert (tx["ts"].iloc[1:].dt.hour == 12).all()  # no naive time was shifted
    # two different offsets without a zone: refused too
    p2 = tmp_path / "two_offsets.csv"
    p2.write_text("user_id,ts,amount\nA,2024-03-30T10:00:00+01:00,1\nA,2024-04-02T10:00:00+02:00,1\n")
    with pytest.raises(DataValidationError, match=r"2 different UTC offsets \(\+01:00, \+02:00\)"):
        datasets.load_transactions(p2)
    berlin = datasets.load_transactions(p2, tz="Europe/Berlin")
    assert berlin["ts"].tolist() == [pd.Timestamp("2024-03-30 10:00"), pd.Timestamp("2024-04-02 10:00")]


def test_day_first_dates_are_refused_then_read_with_date_format(tmp_path, orders, cdnow_sample):
    p = tmp_path / "orders_fr.csv"
    fr = orders.assign(order_date=cdnow_sample["ts"].dt.strftime("%d/%m/%Y"))
    fr.to_csv(p, index=False)
    d, m = cdnow_sample["ts"].dt.day, cdnow_sample["ts"].dt.month
    ambiguous = int(((d <= 12) & (d != m)).sum())
    msg = refused(p, column="ts (file column 'order_date')", n_rows=ambiguous, option='date_format="%d/%m/%Y"')
    # two conflicting examples: one that reads two ways, one that only reads day-first
    assert re.search(r"'\d\d/\d\d/1997' is 1997-\d\d-\d\d day-first and 1997-\d\d-\d\d month-first", msg), msg
    assert re.search(r"'(1[3-9]|2\d|3[01])/\d\d/199\d' is a date only day-first", msg), msg
    same_as_shipped(
        datasets.load_transactions(p, columns=COLS, duplicates="keep", date_format="%d/%m/%Y"), cdnow_sample
    )


def test_duplicated_header_names_are_refused_then_named_with_names(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("user_id,ts,amount,amount\nA,2024-01-02,10,12\nB,2024-01-03,1,2\n")
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(p)
    msg = str(ei.value)
    assert str(p) in msg and "duplicated column name(s): 'amount' in columns 3, 4, over 2 rows" in msg
    assert "pass names=['user_id', 'ts', 'amount', 'amount_2']" in msg
    # the first amount column was the net, the second the gross amount: say which one is meant
    tx = datasets.load_transactions(p, names=["user_id", "ts", "net", "gross"], columns={"amount": "gross"})
    assert tx["amount"].tolist() == [12.0, 2.0]
    p2 = tmp_path / "dup2.csv"
    p2.write_text("user_id,ts,amount, Amount\nA,2024-01-02,10,12\n")  # distinct names: fine
    assert datasets.load_transactions(p2)["amount"].tolist() == [10.0]


def test_a_local_time_in_a_dst_gap_or_fold_is_rejected_with_its_row_then_resolved_on_request(tmp_path):
    p = tmp_path / "berlin.csv"
    p.write_text("user_id,ts,amount\nA,2024-03-31 02:30,1\nB,2024-10-27 02:30,2\nC,2024-05-01 10:00,3\n")
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(p, tz="Europe/Berlin")
    msg = str(ei.value)
    assert "exists_in_Europe/Berlin" in msg and "line 2: '2024-03-31 02:30'" in msg
    assert "unambiguous_in_Europe/Berlin" in msg and "line 3: '2024-10-27 02:30'" in msg
    tx = datasets.load_transactions(p, tz="Europe/Berlin", dst="shift")
    assert tx["ts"].tolist() == [
        pd.Timestamp("2024-03-31 03:00"),
        pd.Timestamp("2024-10-27 02:30"),
        pd.Timestamp("2024-05-01 10:00"),
    ]
    # without a zone, local times are taken as written: there is no DST to check
    assert len(datasets.load_transactions(p)) == 3


def test_dates_before_the_floor_and_absurd_amounts_are_rejected_rows(tmp_path, home):
    p = tmp_path / "odd.csv"
    p.write_text("user_id,ts,amount\nA,1900-01-01,1\nB,2024-01-02,1e12\nC,2024-01-03,1e999\nD,2024-01-04,5\n")
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(p)
    msg = str(ei.value)
    assert "not_before_1970-01-01 (min_date= moves the floor)': 1 rows" in msg
    assert "magnitude_at_most_1e+09 (max_amount)': 1 rows" in msg
    assert "finite': 1 rows" in msg
    tx = datasets.load_transactions(p, errors="quarantine", min_date="1800-01-01", max_amount=1e13)
    assert tx["user_id"].tolist() == ["A", "B", "D"]
    assert len(list((home / "data" / "quarantine").iterdir())) == 1  # in the project home, not the checkout


@pytest.mark.parametrize(
    "suffix,compress",
    [
        (".csv.gz", gzip.compress),
        (".csv.bz2", bz2.compress),
        (".csv.xz", lzma.compress),
        (".csv.zst", lambda b: zstandard.ZstdCompressor().compress(b)),
        (".tsv.gz", gzip.compress),
    ],
)
def test_compressed_csv_loads(tmp_path, suffix, compress):
    sep = "\t" if suffix.startswith(".tsv") else ","
    body = sep.join(["user_id", "ts", "amount"]) + "\n" + sep.join(["007", "2024-01-02", "3.5"]) + "\n"
    p = tmp_path / f"orders{suffix}"
    p.write_bytes(compress(body.encode()))
    tx = datasets.load_transactions(p)
    assert tx["user_id"].tolist() == ["007"] and tx["amount"].tolist() == [3.5]


def test_a_corrupt_or_misnamed_compressed_file_is_one_clear_error(tmp_path):
    good = gzip.compress(b"user_id,ts,amount\nA,2024-01-02,1\n" * 50)
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataValidationError, match=r"cut\.csv\.gz: cannot decompress \(gz\).*corrupt or truncated"):
        datasets.load_transactions(truncated)
    plain = tmp_path / "plain.csv.gz"
    plain.write_text("user_id,ts,amount\n")
    with pytest.raises(DataValidationError, match="named .gz but its bytes are not gz-compressed"):
        datasets.load_transactions(plain)
    zst = tmp_path / "bad.csv.zst"
    zst.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(40))
    with pytest.raises(DataValidationError, match=r"cannot decompress \(zst\)"):
        datasets.load_transactions(zst)


def test_ragged_rows_name_their_lines_or_are_quarantined(tmp_path, home):
    p = tmp_path / "ragged.csv"
    p.write_text("user_id,ts,amount\nA,2024-01-02,1\nB,2024-01-03,1,234.00\nC,2024-01-04\nD,2024-01-05,2\n")
    with pytest.raises(DataValidationError) as ei:
        datasets.load_transactions(p)
    msg = str(ei.value)
    assert "2 row(s) do not have the header's 3 fields" in msg
    assert "line 3: 'B,2024-01-03,1,234.00' (4 fields where the header has 3)" in msg and "line 4" in msg
    tx = datasets.load_transactions(p, errors="quarantine")
    assert tx["user_id"].tolist() == ["A", "D"]
    rep = tx.attrs["validation"]
    assert rep["n_input"] == 4 and rep["n_rejected"] == 2
    q = pd.read_csv(rep["quarantine_path"], dtype=str)
    assert set(q["_location"]) == {"line 3", "line 4"} and q["_reasons"].str.contains("ragged row").all()


def test_a_stray_quote_is_one_clear_error(tmp_path):
    p = tmp_path / "quote.csv"
    p.write_text('user_id,ts,amount\nA,2024-01-02,1\n"B,2024-01-03,1\n')
    with pytest.raises(DataValidationError, match=r"quote\.csv: cannot parse as CSV at line \d+: .*quote"):
        datasets.load_transactions(p)


def test_quoted_line_breaks_keep_line_numbers_right(tmp_path):
    p = tmp_path / "multi.csv"
    p.write_text('user_id,ts,amount,category\nA,2024-01-02,1,"two\nlines"\n\nB,2024-02-30,1,x\n')
    with pytest.raises(DataValidationError, match=r"line 5: '2024-02-30'"):
        datasets.load_transactions(p, columns={"category": "category"})


def test_symlinks_and_special_files_are_refused(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("user_id,ts,amount\nA,2024-01-02,1\n")
    link = tmp_path / "link.csv"
    link.symlink_to("/etc/passwd")
    with pytest.raises(DataValidationError, match=r"link\.csv: is a symbolic link \(to /etc/passwd\)"):
        datasets.load_transactions(link, errors="quarantine")
    link2 = tmp_path / "link2.csv"
    link2.symlink_to(target)
    with pytest.raises(DataValidationError, match="is a symbolic link"):
        datasets.load_transactions(link2)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataValidationError, match="is not a regular file"):
        datasets.load_transactions(fifo)
    with pytest.raises(DataValidationError, match="is a directory"):
        datasets.load_transactions(tmp_path)


def test_header_only_and_whitespace_only_files(tmp_path):
    for name, text, what in [
        ("h.csv", "user_id,ts,amount\n", "header but no rows"),
        ("w.csv", "  \n\n \n", "no data"),
        ("hb.csv", "user_id,ts,amount\n\n\n", "header but no rows"),
    ]:
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(DataValidationError, match=re.escape(f"{p}: ") + ".*" + what):
            datasets.load_transactions(p)


def test_a_mapping_that_names_one_column_twice_is_refused(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("id,when,total\nA,2024-01-02,1\n")
    with pytest.raises(DataValidationError, match=r"names the same file column twice: 'id' for 'user_id', 'channel'"):
        datasets.load_transactions(p, columns={"user_id": "id", "ts": "when", "amount": "total", "channel": "id"})


def test_a_header_that_splits_two_ways_needs_sep(tmp_path):
    p = tmp_path / "two.csv"
    p.write_text("user_id;ts,amount;x\nA;2024-01-02,1;y\n")
    with pytest.raises(DataValidationError, match="splits on more than one delimiter"):
        datasets.load_transactions(p)


def test_ids_keep_leading_zeros_and_lose_only_surrounding_whitespace(tmp_path):
    p = tmp_path / "ids.csv"
    p.write_text(
        'user_id,ts,amount\n 007 ,2024-01-02,1\n"0042\t",2024-01-02,1\nA B,2024-01-02,1\n\u00a0x\u00a0,2024-01-02,1\n'
    )
    assert datasets.load_transactions(p)["user_id"].tolist() == ["007", "0042", "A B", "x"]
    pq_path = tmp_path / "ids.parquet"
    pd.DataFrame(
        {"user_id": [7, 42], "ts": pd.to_datetime(["2024-01-02", "2024-01-03"]), "amount": [1.0, 2.0]}
    ).to_parquet(pq_path)
    assert datasets.load_transactions(pq_path)["user_id"].tolist() == ["7", "42"]
    fl = tmp_path / "float_ids.parquet"
    pd.DataFrame(
        {"user_id": [7.0, 4.5], "ts": pd.to_datetime(["2024-01-02", "2024-01-03"]), "amount": [1.0, 2.0]}
    ).to_parquet(fl)
    with pytest.raises(DataValidationError, match="whole_number_id"):
        datasets.load_transactions(fl)


def test_parquet_duplicate_columns_zones_and_numeric_dates(tmp_path):
    dup = tmp_path / "dup.parquet"
    pq.write_table(
        pa.table(
            [pa.array(["a"]), pa.array(["2024-01-02"]), pa.array([1.0]), pa.array([2.0])],
            names=["user_id", "ts", "amount", "amount"],
        ),
        dup,
    )
    with pytest.raises(DataValidationError, match="duplicated column name"):
        datasets.load_transactions(dup)
    aware = tmp_path / "aware.parquet"
    pd.DataFrame(
        {"user_id": ["a"], "ts": pd.to_datetime(["2024-01-02 23:30"]).tz_localize("UTC"), "amount": [1.0]}
    ).to_parquet(aware)
    assert datasets.load_transactions(aware)["ts"].tolist() == [pd.Timestamp("2024-01-02 23:30")]
    assert datasets.load_transactions(aware, tz="Europe/Berlin")["ts"].tolist() == [pd.Timestamp("2024-01-03 00:30")]
    num = tmp_path / "num.parquet"
    pd.DataFrame({"user_id": ["a"], "ts": [45292], "amount": [1.0]}).to_parquet(num)
    with pytest.raises(DataValidationError, match='date_format="excel"'):
        datasets.load_transactions(num)
    assert datasets.load_transactions(num, date_format="excel")["ts"].tolist() == [pd.Timestamp("2024-01-01")]


def test_excel_serials_and_two_digit_years_name_their_option(tmp_path):
    p = tmp_path / "xl.csv"
    p.write_text("user_id,ts,amount\nA,45292,1\nB,45293.75,1\n")
    with pytest.raises(DataValidationError, match='date_format="excel"'):
        datasets.load_transactions(p)
    tx = datasets.load_transactions(p, date_format="excel")
    assert tx["ts"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02 18:00")]
    y2 = tmp_path / "y2.csv"
    y2.write_text("user_id,ts,amount\nA,05/01/24,1\n")
    with pytest.raises(DataValidationError, match="two-digit years"):
        datasets.load_transactions(y2)
    assert datasets.load_transactions(y2, date_format="%d/%m/%y")["ts"].tolist() == [pd.Timestamp("2024-01-05")]


def test_bom_crlf_and_latin1(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffuser_id;ts;amount\r\nM\u00fcller;2024-01-02;3,5\r\n".encode("utf-8"))
    tx = datasets.load_transactions(p, decimal=",")
    assert tx["user_id"].tolist() == ["Müller"] and tx["amount"].tolist() == [3.5]
    p2 = tmp_path / "latin.csv"
    p2.write_bytes("user_id;ts;amount\r\nM\u00fcller;2024-01-02;3,5\r\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match="encoding='latin-1'"):
        datasets.load_transactions(p2, decimal=",")
    assert datasets.load_transactions(p2, decimal=",", encoding="latin-1")["user_id"].tolist() == ["Müller"]
