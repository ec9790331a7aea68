"""A new user's export through the loader and the refresh's snapshot (issue 28): date hints that
read the values they came from, activity without amounts, and a snapshot re-read never stricter
than the file's own check."""

import re

import pandas as pd
import pytest

from urm_models.data import datasets
from urm_models.jobs import pipeline


def _write(tmp_path, frame, name="export.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "values",
    [
        ["12/1/2010 8:26", "1/13/2011 10:05", "2/3/2011 17:59"],  # the UCI Online Retail layout
        ["12/1/2010 08:26:10", "1/13/2011 10:05:00", "2/3/2011 17:59:59"],
        ["12/1/2010T08:26:10", "1/13/2011T10:05:00", "2/3/2011T17:59:59"],
        ["12/1/2010", "1/13/2011", "2/3/2011"],
        ["1.12.2010 8:26", "13.1.2011 10:05", "3.2.2011 17:59"],  # day first, dots
    ],
)
def test_a_date_hint_reads_the_values_it_was_made_from(tmp_path, values):
    path = _write(tmp_path, pd.DataFrame({"c": ["1", "2", "3"], "t": values, "a": ["1", "2", "3"]}))
    cols = {"user_id": "c", "ts": "t", "amount": "a"}
    with pytest.raises(datasets.DataValidationError, match="day_or_month_first") as ei:
        datasets.load_transactions(path, columns=cols)
    hint = re.search(r'pass date_format="([^"]+)"', str(ei.value)).group(1)
    tx = datasets.load_transactions(path, columns=cols, date_format=hint)
    assert len(tx) == 3 and tx["ts"].notna().all()
    assert tx["ts"].iloc[1].month == 1 and tx["ts"].iloc[1].day == 13


def test_activity_without_amounts_reads_as_events(tmp_path):
    path = _write(tmp_path, pd.DataFrame({"who": ["a", "a", "b"], "when": ["2024-01-02", "2024-01-05", "2024-01-03"]}))
    tx = datasets.load_transactions(path, columns={"user_id": "who", "ts": "when"})
    assert tx.attrs["amounts"] == "none" and (tx["amount"] == 1.0).all()
    valued = datasets.load_transactions(path, columns={"user_id": "who", "ts": "when"}, value_per_event=12.5)
    assert valued.attrs["amounts"] == "value_per_event" and (valued["amount"] == 12.5).all()
    # an amount column beside a value per event: which one counts? refused
    both = _write(tmp_path, pd.DataFrame({"who": ["a"], "when": ["2024-01-02"], "amount": ["3"]}), "both.csv")
    with pytest.raises(datasets.DataValidationError, match="leave one out"):
        datasets.load_transactions(both, columns={"user_id": "who", "ts": "when"}, value_per_event=2.0)
    with pytest.raises(ValueError, match="value_per_event must be a positive amount"):
        datasets.load_transactions(path, columns={"user_id": "who", "ts": "when"}, value_per_event=-1)
    # a mapped amount column that is missing stays an error, not an activity log
    with pytest.raises(datasets.DataValidationError, match="not in the file"):
        datasets.load_transactions(path, columns={"user_id": "who", "ts": "when", "amount": "total"})


def test_the_snapshot_is_reread_no_stricter_than_the_file(tmp_path):
    """Two invoices of one customer, minute and amount under different numbers: distinct rows of
    the file (the invoice column), copies of each other in the snapshot (user_id, ts, amount)."""
    frame = pd.DataFrame({"inv": ["1", "2"], "c": ["7", "7"], "t": ["2024-01-02 10:00"] * 2, "a": ["5", "5"]})
    path = _write(tmp_path, frame)
    tx = datasets.load_transactions(path, columns={"user_id": "c", "ts": "t", "amount": "a"})
    assert len(tx) == 2
    snap = tmp_path / "snapshot.parquet"
    tx.to_parquet(snap, index=False)
    with pytest.raises(datasets.DataValidationError, match="no_exact_duplicates"):
        datasets.load_transactions(snap)  # what notebook 01 did with the snapshot
    read = pipeline._snapshot_read({"returns": "keep", "date_format": "%Y", "value_per_event": 3.0})
    assert read == {"returns": "keep", "value_per_event": 3.0, "duplicates": "keep"}
    again = datasets.load_transactions(snap, **{k: v for k, v in read.items() if k != "value_per_event"})
    assert len(again) == 2
