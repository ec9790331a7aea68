"""Hostile inputs and the outcome each must have: loaded as stated, or refused with one
``DataValidationError`` whose message names the file and says what it must say. Nothing silent,
never another exception.

A case is a generator (it writes its file into a folder and returns the path), how to load it
and the expected outcome. Add a case for every new hostile file: a family gets one case per
member (every id form, every offset spelling, every Parquet type, every number spelling).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

AS_OF = "2025-01-01"
HEADER = "user_id,ts,amount"


@dataclass(frozen=True)
class Case:
    """``write(folder) -> path``; ``options`` for ``datasets.load_transactions`` (or, for a
    campaign case, for ``experiments.campaign.check_campaign``); ``loaded``: the columns and
    values the table must have (``refused`` empty), or ``refused``: what the message must hold."""

    name: str
    family: str
    write: Callable[[Path], Path]
    options: dict = field(default_factory=dict)
    loaded: dict | None = None
    refused: tuple[str, ...] = ()
    error: str = "DataValidationError"  # ValueError for an argument no file can make right


def csv(rows: list[str], header: str = HEADER, name: str = "orders.csv", prefix: str = "", encoding="utf-8"):
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes((prefix + "\n".join([header, *rows]) + "\n").encode(encoding))
        return path

    return write


def parquet(name: str = "orders.parquet", n: int = 3, **columns):
    """A Parquet file of ``columns`` (pyarrow arrays), with plain ``ts`` and ``amount`` unless given."""

    def write(folder: Path) -> Path:
        cols = {
            "user_id": pa.array([f"u{i}" for i in range(n)]),
            "ts": pa.array([dt.datetime(2024, 1, 1 + i) for i in range(n)], pa.timestamp("us")),
            "amount": pa.array([1.0 + i for i in range(n)]),
        }
        cols.update(columns)
        path = folder / name
        pq.write_table(pa.table(cols), path)
        return path

    return write


def rows(ids: list[str], start: int = 1) -> list[str]:
    """One purchase per id on consecutive days of January 2024, amounts 1, 2, ..."""
    return [f"{u},2024-01-{start + i:02d},{i + 1}" for i, u in enumerate(ids)]


def quoted(ids: list[str]) -> list[str]:
    return [f'"{u}",2024-01-{1 + i:02d},{i + 1}' for i, u in enumerate(ids)]


# ----------------------------------------------------------------------------------- ids
IDS = [
    Case(
        "binary_parquet_ids",
        "ids",
        parquet(user_id=pa.array([b"00004", b"00005", b"00004"])),
        loaded={"user_id": ["00004", "00005", "00004"]},
    ),
    Case(
        "binary_ids_not_utf8",
        "ids",
        parquet(user_id=pa.array([b"00004", b"\xff\xfe", b"00006"])),
        refused=("id_is_text (bytes that are not UTF-8)", "1 rows"),
    ),
    Case(
        "binary_ids_not_utf8_quarantined",
        "ids",
        parquet(user_id=pa.array([b"00004", b"\xff\xfe", b"00006"])),
        options={"errors": "quarantine"},
        loaded={"user_id": ["00004", "00006"]},
    ),
    Case(
        "struct_ids",
        "ids",
        parquet(user_id=pa.array([{"id": "a"}, {"id": "b"}, {"id": "a"}])),
        refused=("column user_id holds nested values of type struct<id: string>", "3 rows", "columns="),
    ),
    Case("list_ids", "ids", parquet(user_id=pa.array([["a"], ["b"], ["a"]])), refused=("nested values of type list",)),
    Case(
        "map_ids",
        "ids",
        parquet(user_id=pa.array([[("k", "a")], [("k", "b")], [("k", "a")]], pa.map_(pa.string(), pa.string()))),
        refused=("nested values of type map",),
    ),
    Case(
        "excel_scientific_ids",
        "ids",
        csv(rows(["1.23457E+11", "1.23457E+11", "123456789012", "8.1E+05"])),
        refused=("scientific notation", "'1.23457E+11'", "3 of 4 rows", "export the id column again as text"),
    ),
    Case(
        "zero_width_and_invisible_ids",
        "ids",
        csv(rows(["A1", "A1\u200b", "\u200dA1", "A\u00ad1", "\ufeffA1", "A1\u2060", "\u200eA1"])),
        loaded={"user_id": ["A1"] * 7},
    ),
    Case("nfd_beside_nfc_ids", "ids", csv(rows(["Jos\u00e9", "Jose\u0301"])), loaded={"user_id": ["Jos\u00e9"] * 2}),
    Case(
        "dot_zero_beside_whole_ids",
        "ids",
        csv(rows(["123.0", "123", "77"])),
        refused=("written with a decimal part", "'123.0'", "'123'", "1 of 3 rows"),
    ),
    Case("dot_zero_only_ids", "ids", csv(rows(["123.0", "124.00", "77.0"])), loaded={"user_id": ["123", "124", "77"]}),
    Case(
        "excel_text_guard_ids",
        "ids",
        csv(['="00123",2024-01-01,1', '"=""00124""",2024-01-02,2', "00123,2024-01-03,3"]),
        loaded={"user_id": ["00123", "00124", "00123"]},
    ),
    Case(
        "excel_error_ids",
        "ids",
        csv(rows(["#VALUE!", "#REF!", "#DIV/0!", "#NAME?", "u1"])),
        refused=("4 of 5 rows have a user id that is a null word", "'#VALUE!'", "null_ids='drop'"),
    ),
    Case(
        "excel_error_ids_dropped",
        "ids",
        csv(rows(["#VALUE!", "#N/A", "u1"])),
        options={"null_ids": "drop"},
        loaded={"user_id": ["u1"]},
    ),
    Case(
        "line_break_inside_ids",
        "ids",
        csv(quoted(["A\r\n1", "A1", "B\n2"])),
        refused=("id_without_control_characters", "2 rows"),
    ),
    Case(
        "line_break_inside_ids_quarantined",
        "ids",
        csv(quoted(["A\r\n1", "A1", "B\r2"])),
        options={"errors": "quarantine"},
        loaded={"user_id": ["A1"]},
    ),
    Case("tab_inside_ids", "ids", csv(quoted(["A\t1", "A1"])), refused=("id_without_control_characters",)),
    Case(
        "unicode_line_separator_inside_ids",
        "ids",
        csv(rows(["A\u20281", "A1"])),
        refused=("id_without_control_characters",),
    ),
    Case(
        "late_nul_byte",
        "ids",
        csv([f"u{i},2024-01-{1 + i % 28:02d},1" for i in range(600)] + ["u\x002,2024-02-01,1"]),
        refused=("line 602", "NUL byte", "errors='quarantine'"),
    ),
    Case(
        "late_nul_byte_quarantined",
        "ids",
        csv([f"u{i},2024-01-{1 + i % 28:02d},1" for i in range(600)] + ["u\x002,2024-02-01,1"]),
        options={"errors": "quarantine"},
        loaded={"user_id": [f"u{i}" for i in range(600)]},
    ),
    Case(
        "nul_inside_parquet_id",
        "ids",
        parquet(user_id=pa.array(["u1", "u\x002", "u3"])),
        refused=("id_without_control_characters",),
    ),
    Case(
        "fullwidth_beside_ascii_ids",
        "ids",
        csv(rows(["\uff11\uff12\uff13", "123", "9"])),
        refused=("compatibility forms", "'123' and '１２３'"),
    ),
    Case(
        "fullwidth_alone_ids",
        "ids",
        csv(rows(["\uff11\uff12\uff13", "9"])),
        loaded={"user_id": ["\uff11\uff12\uff13", "9"]},
    ),
    Case(
        "no_break_space_inside_ids", "ids", csv(rows(["A\u00a01", "A 1", "A\u202f1"])), loaded={"user_id": ["A 1"] * 3}
    ),
    Case("true_false_ids", "ids", parquet(user_id=pa.array([True, False, True])), refused=("true/false values",)),
    Case("date_ids", "ids", parquet(user_id=pa.array([dt.date(2020, 1, 1)] * 3)), refused=("dates or times",)),
    Case(
        "fractional_float_ids",
        "ids",
        parquet(user_id=pa.array([1.0, 2.5, 3.0])),
        refused=("whole_number_id (a fractional or too large number)': 1 rows",),
    ),
    Case(
        "whole_decimal_ids",
        "ids",
        parquet(user_id=pa.array([1, 2, 1], pa.decimal128(12, 2))),
        loaded={"user_id": ["1", "2", "1"]},
    ),
    Case(
        "dictionary_ids",
        "ids",
        parquet(user_id=pa.array(["a", "b", "a"]).dictionary_encode()),
        loaded={"user_id": ["a", "b", "a"]},
    ),
    Case("lost_character_ids", "ids", csv(rows(["M\ufffdller", "Miller"])), refused=("U+FFFD",)),
    Case("only_invisible_id", "ids", csv(rows(["\u200b", "u1"])), refused=("nothing but invisible characters",)),
    Case("leading_zeros_kept", "ids", csv(rows(["00123", "123"])), loaded={"user_id": ["00123", "123"]}),
    Case("surrounding_whitespace_ids", "ids", csv(rows([" u1", "u1\u00a0", "\tu1"])), loaded={"user_id": ["u1"] * 3}),
]


# ------------------------------------------------------------------------------- numbers
NUMBERS = [
    Case(
        "trailing_minus",
        "numbers",
        csv(["a,2024-01-01,12.50-", "b,2024-01-02,3.00"]),
        refused=("non_negative (returns='keep'",),
    ),
    Case(
        "trailing_minus_kept",
        "numbers",
        csv(["a,2024-01-01,12.50-", "b,2024-01-02,3.00"]),
        options={"returns": "keep"},
        loaded={"amount": [-12.5, 3.0]},
    ),
    Case(
        "unicode_minus",
        "numbers",
        csv(["a,2024-01-01,\u221212.50", "b,2024-01-02,3.00"]),
        options={"returns": "keep"},
        loaded={"amount": [-12.5, 3.0]},
    ),
    Case(
        "en_dash_and_fullwidth_minus",
        "numbers",
        csv(["a,2024-01-01,\u20133.00", "b,2024-01-02,\uff0d2"]),
        options={"returns": "keep"},
        loaded={"amount": [-3.0, -2.0]},
    ),
    Case(
        "accounting_parentheses",
        "numbers",
        csv(["a,2024-01-01,(12.50)", "b,2024-01-02,3"]),
        options={"returns": "keep"},
        loaded={"amount": [-12.5, 3.0]},
    ),
    Case(
        "currency_and_trailing_minus",
        "numbers",
        csv(["a;2024-01-01;12,50 €-", "b;2024-01-02;3,00 €"], header="user_id;ts;amount"),
        options={"returns": "keep", "decimal": ",", "currency": "€"},
        loaded={"amount": [-12.5, 3.0]},
    ),
    Case("two_signs", "numbers", csv(["a,2024-01-01,-12.50-", "b,2024-01-02,3"]), refused=("check 'numeric'",)),
    Case(
        "a_sign_as_currency",
        "numbers",
        csv(["a,2024-01-01,12.50-", "b,2024-01-02,3"]),
        options={"currency": "-"},
        refused=("is not a currency sign",),
        error="ValueError",
    ),
    Case(
        "no_break_space_thousands",
        "numbers",
        csv(["a;2024-01-01;1\u00a0234,50", "b;2024-01-02;3,00"], header="user_id;ts;amount"),
        refused=("--thousands nbsp",),
    ),
    Case(
        "no_break_space_thousands_named",
        "numbers",
        csv(["a;2024-01-01;1\u00a0234,50", "b;2024-01-02;3,00"], header="user_id;ts;amount"),
        options={"decimal": ",", "thousands": "nbsp"},
        loaded={"amount": [1234.5, 3.0]},
    ),
    Case(
        "narrow_no_break_space_thousands",
        "numbers",
        csv(["a;2024-01-01;1\u202f234,50", "b;2024-01-02;3,00"], header="user_id;ts;amount"),
        refused=("--thousands narrow-nbsp",),
    ),
    Case(
        "typographic_apostrophe_thousands",
        "numbers",
        csv(["a,2024-01-01,1\u2019234.50", "b,2024-01-02,3.00"]),
        refused=("--thousands rsquo",),
    ),
    Case(
        "ascii_apostrophe_thousands",
        "numbers",
        csv(["a,2024-01-01,1'234.50", "b,2024-01-02,3.00"]),
        refused=("--thousands apostrophe",),
    ),
    Case("true_false_amounts", "numbers", parquet(amount=pa.array([True, False, True])), refused=("check 'numeric'",)),
    Case(
        "duration_amounts", "numbers", parquet(amount=pa.array([dt.timedelta(1)] * 3)), refused=("dates or durations",)
    ),
    Case(
        "date_amounts", "numbers", parquet(amount=pa.array([dt.date(2024, 1, 1)] * 3)), refused=("dates or durations",)
    ),
    Case(
        "struct_amounts", "numbers", parquet(amount=pa.array([{"v": 1.0}] * 3)), refused=("column amount holds nested",)
    ),
    Case(
        "decimal_amounts",
        "numbers",
        parquet(amount=pa.array([1, 2, 3], pa.decimal128(10, 2))),
        loaded={"amount": [1.0, 2.0, 3.0]},
    ),
    Case(
        "binary_amounts", "numbers", parquet(amount=pa.array([b"1.5", b"2", b"3"])), loaded={"amount": [1.5, 2.0, 3.0]}
    ),
]


# --------------------------------------------------------------------------------- times
#: every spelling of a real offset, and the time in UTC of 2024-01-01 10:00:00 written with it
OFFSETS = {
    "Z": "2024-01-01 10:00",
    "UTC": "2024-01-01 10:00",
    "GMT": "2024-01-01 10:00",
    "+05": "2024-01-01 05:00",
    "+0530": "2024-01-01 04:30",
    "+05:30": "2024-01-01 04:30",
    "+5:30": "2024-01-01 04:30",
    "UTC+05:30": "2024-01-01 04:30",
    "GMT+0100": "2024-01-01 09:00",
    "UTC-3": "2024-01-01 13:00",
    "-14:00": "2024-01-02 00:00",
    "+14:00": "2023-12-31 20:00",
    "-00:00": "2024-01-01 10:00",
    " +05:30": "2024-01-01 04:30",
    "-12:45": "2024-01-01 22:45",
    "z": "2024-01-01 10:00",
}
IMPOSSIBLE_OFFSETS = ["+25:00", "+99:99", "+14:01", "-14:30", "+05:60", "GMT-15", "UTC+24"]


TIMES = [
    *(
        Case(
            f"offset_{o.strip()}",
            "times",
            csv([f"a,2024-01-01 10:00:00{o},1"]),
            options={"tz": "UTC"},
            loaded={"ts": [t]},
        )
        for o, t in OFFSETS.items()
    ),
    *(
        Case(
            f"impossible_offset_{o}",
            "times",
            csv([f"a,2024-01-01 10:00{o},1", "b,2024-01-02 10:00+01:00,1"]),
            options={"tz": "UTC"},
            refused=("real_utc_offset", "1 rows"),
        )
        for o in IMPOSSIBLE_OFFSETS
    ),
    Case(
        "impossible_offset_without_tz",
        "times",
        csv(["a,2024-01-01 10:00+99:99,1", "b,2024-01-02 10:00+99:99,1"]),
        refused=("real_utc_offset", "2 rows"),
    ),
    Case(
        "impossible_offset_with_format",
        "times",
        csv(["a,2024-01-01T10:00:00+1500,1"]),
        options={"tz": "UTC", "date_format": "%Y-%m-%dT%H:%M:%S%z"},
        refused=("real_utc_offset",),
    ),
    Case(
        "year_day_month_quarantined",
        "times",
        csv(["u1,2024-13-01,1", "u2,2024-05-01,1", "u3,2024-25-02,1"]),
        options={"errors": "quarantine"},
        refused=("year-month-day or year-day-month is not guessed", "3 of 3 rows", 'date_format="%Y-%d-%m"'),
    ),
    Case("year_day_month_compact", "times", csv(["u1,20241301,1", "u2,20240501,1"]), refused=('date_format="%Y%d%m"',)),
    Case(
        "year_day_month_read",
        "times",
        csv(["u1,2024-13-01,1", "u2,2024-05-01,1"]),
        options={"date_format": "%Y-%d-%m"},
        loaded={"ts": ["2024-01-13", "2024-01-05"]},
    ),
    Case(
        "year_2999_timestamp",
        "times",
        parquet(
            ts=pa.array([dt.datetime(2024, 1, 1), dt.datetime(2999, 1, 1), dt.datetime(2024, 1, 3)], pa.timestamp("us"))
        ),
        refused=("date_between_1678_and_2261", "1 rows"),
    ),
    Case(
        "year_2999_timestamp_quarantined",
        "times",
        parquet(
            ts=pa.array([dt.datetime(2024, 1, 1), dt.datetime(2999, 1, 1), dt.datetime(2024, 1, 3)], pa.timestamp("ms"))
        ),
        options={"errors": "quarantine"},
        loaded={"user_id": ["u0", "u2"]},
    ),
    Case(
        "year_1_date",
        "times",
        parquet(ts=pa.array([dt.date(2024, 1, 1), dt.date(1, 1, 1), dt.date(2024, 1, 3)])),
        refused=("date_between_1678_and_2261",),
    ),
    Case(
        "date32_dates",
        "times",
        parquet(ts=pa.array([dt.date(2024, 1, 1 + i) for i in range(3)])),
        loaded={"ts": ["2024-01-01", "2024-01-02", "2024-01-03"]},
    ),
    Case(
        "zoned_timestamps",
        "times",
        parquet(ts=pa.array([dt.datetime(2024, 1, 1 + i, 12) for i in range(3)], pa.timestamp("us", tz="UTC"))),
        options={"tz": "Asia/Tokyo"},
        loaded={"ts": ["2024-01-01 21:00", "2024-01-02 21:00", "2024-01-03 21:00"]},
    ),
    Case("times_of_day", "times", parquet(ts=pa.array([dt.time(1, 2)] * 3)), refused=("times of day",)),
    Case(
        "durations_as_dates",
        "times",
        parquet(ts=pa.array([dt.timedelta(1)] * 3)),
        refused=("times of day or durations",),
    ),
    Case("nested_dates", "times", parquet(ts=pa.array([["2024-01-01"]] * 3)), refused=("column ts holds nested",)),
]


# ----------------------------------------------------------------------------- structure
STRUCTURE = [
    Case(
        "excel_sep_line",
        "structure",
        csv(["u1;2024-01-01;1,5", "u2;2024-01-02;2"], header="user_id;ts;amount", prefix="sep=;\n"),
        options={"decimal": ","},
        loaded={"user_id": ["u1", "u2"], "amount": [1.5, 2.0]},
    ),
    Case(
        "excel_sep_line_named_rows",
        "structure",
        csv(["u1;2024-01-01;x"], header="user_id;ts;amount", prefix="sep=;\r\n"),
        refused=("line 3: 'x'",),
    ),
    Case(
        "excel_sep_line_contradicted",
        "structure",
        csv(["u1;2024-01-01;1"], header="user_id;ts;amount", prefix="sep=;\n"),
        options={"sep": ","},
        refused=("says the delimiter is ';'",),
    ),
    Case(
        "unused_nested_column",
        "structure",
        parquet(extra=pa.array([{"a": 1}, {"a": 2}, None])),
        loaded={"user_id": ["u0", "u1", "u2"]},
    ),
    Case(
        "mapped_nested_column",
        "structure",
        parquet(extra=pa.array([[1], [2], [3]])),
        options={"columns": {"channel": "extra"}},
        refused=("channel (file column 'extra') holds nested",),
    ),
]

CASES = [*IDS, *NUMBERS, *TIMES, *STRUCTURE]

#: the id files of the parity test across pandas, DuckDB and Spark (tests/test_spark.py): a
#: Parquet column each, as the file's ``user_id``
ID_COLUMNS = {
    "plain": pa.array(["a", "b", "a"]),
    "integers": pa.array([7, 8, 7]),
    "binary": pa.array([b"00004", b"00005", b"00004"]),
    "binary_not_ascii": pa.array([b"00004", "\u00e91".encode(), b"00004"]),
    "scientific": pa.array(["1.23457E+11", "1.23457E+11", "5"]),
    "dot_zero_beside_whole": pa.array(["123.0", "123", "4"]),
    "dot_zero_only": pa.array(["123.0", "124.0", "4.0"]),
    "zero_width": pa.array(["A1\u200b", "A1", "b"]),
    "nfd": pa.array(["Jose\u0301", "Jos\u00e9", "x"]),
    "nfc_non_ascii": pa.array(["Jos\u00e9", "M\u00fcller", "x"]),
    "surrounding_space": pa.array([" a", "a", "b"]),
    "line_break": pa.array(["a\r\nb", "a", "b"]),
    "nul": pa.array(["a\x00", "b", "c"]),
    "excel_text_guard": pa.array(['="00123"', "00123", "x"]),
    "excel_error": pa.array(["#VALUE!", "a", "b"]),
    "fullwidth_beside_ascii": pa.array(["\uff11\uff12\uff13", "123", "x"]),
    "fullwidth_alone": pa.array(["\uff11\uff12\uff13", "z", "x"]),
    "null_word": pa.array(["NULL", "a", "b"]),
    "list": pa.array([["a"], ["b"], ["a"]]),
    "struct": pa.array([{"id": "a"}, {"id": "b"}, {"id": "a"}]),
    "floats": pa.array([1.0, 2.0, 1.0]),
}


# ----------------------------------------------------------------------------- campaigns
def campaign_transactions():
    """The transactions the campaign cases are checked against: users u00-u39 buy every two
    weeks from 2024-01-01 to 2024-06-30; s0-s4 sign up after the send (first purchase in March)."""
    import pandas as pd

    days = pd.date_range("2024-01-01", "2024-06-30", freq="14D")
    regular = [(f"u{i:02d}", d, 10.0 + i) for i in range(40) for d in days[i % 2 :: 2]]
    late = [(f"s{i}", pd.Timestamp("2024-03-05") + pd.Timedelta(days=i), 5.0) for i in range(5)]
    return pd.DataFrame(regular + late, columns=["user_id", "ts", "amount"])


def assignments(users=None, arms=None, sent="2024-03-01", header="user_id,arm,sent_at"):
    users = users if users is not None else [f"u{i:02d}" for i in range(40)]
    arms = arms if arms is not None else ["control", "email"] * (len(users) // 2)
    return csv([f"{u},{a},{sent}" for u, a in zip(users, arms, strict=True)], header=header, name="sends.csv")


_U = [f"u{i:02d}" for i in range(40)]
CAMPAIGNS = [
    Case(
        "campaign_ok",
        "campaigns",
        assignments(),
        {"window": 4, "control": "control"},
        loaded={"users": 40, "new_users": 0, "never_bought": 0},
    ),
    Case(
        "new_sign_ups",
        "campaigns",
        assignments(_U + ["s0", "s1", "n0", "n1"], ["control", "email"] * 22),
        {"window": 4, "control": "control"},
        loaded={"users": 44, "new_users": 4, "never_bought": 2},
    ),
    Case(
        "control_beside_Control",
        "campaigns",
        assignments(arms=["control", "email"] * 18 + ["Control"] * 4),
        {"window": 4, "control": "control"},
        refused=("differ only in case", "'Control' (4 users)", "arms="),
    ),
    Case(
        "null_arm",
        "campaigns",
        assignments(arms=["control", "email"] * 17 + ["NULL"] * 6),
        {"window": 4, "control": "control"},
        refused=("arm that is a null word", "'NULL': 6"),
    ),
    Case(
        "n_a_arm",
        "campaigns",
        assignments(arms=["control", "email"] * 17 + ["N/A"] * 6),
        {"window": 4, "control": "control"},
        refused=("null word",),
    ),
    Case(
        "one_user_arm",
        "campaigns",
        assignments(arms=["control", "email"] * 19 + ["email", "sms"]),
        {"window": 4, "control": "control"},
        refused=("'sms' (1 users)", "fewer than 5 users"),
    ),
    *(
        Case(
            f"window_{w}",
            "campaigns",
            assignments(),
            {"window": w, "control": "control"},
            refused=("is not a positive number of periods",),
        )
        for w in (0, -2, float("nan"), "four", 0.01)
    ),
    Case(
        "late_sends",
        "campaigns",
        assignments(sent="2024-06-20"),
        {"window": 4, "control": "control"},
        refused=("outcome window ends after the last purchase", "40 of 40 users"),
    ),
    Case(
        "sends_before_any_purchase",
        "campaigns",
        assignments(sent="2023-12-01"),
        {"window": 4, "control": "control"},
        refused=("on or before the first purchase",),
    ),
    Case(
        "ids_matching_no_purchase",
        "campaigns",
        assignments([f"x{i}" for i in range(40)]),
        {"window": 4, "control": "control"},
        refused=("none of the 40 users",),
    ),
    Case(
        "ids_written_otherwise",
        "campaigns",
        assignments([u.upper() for u in _U[:10]] + _U[10:]),
        {"window": 4, "control": "control"},
        refused=("10 users of the campaign match no customer", "'U00'"),
    ),
]
