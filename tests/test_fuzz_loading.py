"""Fuzzing the loaders: generated exports with wrong types, mixed encodings, random bytes,
extreme numbers, duplicate headers, missing and extra columns, ragged rows and date strings in
many layouts. For every input, ``load_transactions`` either returns a validated table whose
every value equals an independent parse of its source row (written here in plain Python, from
the cell's text), or raises ``DataValidationError``; never another exception, never a partial
file in ``data/quarantine/``.

``make test`` draws a fixed set of examples (the ``repeatable`` profile); ``HYPOTHESIS_PROFILE=
explore`` draws more, new ones (see conftest.py).
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import os
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from urm_models.core.errors import DataValidationError
from urm_models.data import datasets


@pytest.fixture(scope="module", autouse=True)
def private_home(tmp_path_factory):
    """A project home of this module's own: the quarantine files go to its data/quarantine/."""
    home = tmp_path_factory.mktemp("fuzz_home")
    old = os.environ.get("URM_HOME")
    os.environ["URM_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("URM_HOME", None)
    else:
        os.environ["URM_HOME"] = old


AS_OF = dt.datetime(2026, 1, 1)
FLOOR = dt.datetime(1970, 1, 1)
MAX_AMOUNT = 1e9
DATE_LAYOUTS = [
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%Y%m%d",
    "%d %b %Y",
    "%Y/%m/%d %H:%M",
]
OFFSETS = ["", "Z", "+05:00", "-03:30", "+01:00"]
ZONES = [None, "UTC", "Europe/Berlin"]
BUDGET = int(os.environ.get("URM_FUZZ_EXAMPLES", "0")) or None


# ------------------------------------------------------------------------------ generation


@dataclass
class Export:
    """A generated file: its header, its rows (cells as text) and how to load it."""

    header: list[str]
    rows: list[list[str]]
    sep: str
    fmt: str  # csv, csv.gz, tsv, parquet
    options: dict
    latin1_rows: set[int] = field(default_factory=set)  # rows written in latin-1
    raw_bytes: bytes | None = None  # random bytes instead of a table
    parquet_types: dict = field(default_factory=dict)  # column -> "float" / "timestamp"


id_text = st.one_of(
    st.from_regex(r"0{0,3}[1-9][0-9]{0,5}", fullmatch=True),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,7}", fullmatch=True),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=0, max_size=6),
    # what spreadsheets and copy-paste do to ids (docs/reliability.md, "User ids")
    st.sampled_from(
        ["1.23457E+11", "123.0", "123", '="00123"', "A\u200b1", "Jose\u0301", "Jos\u00e9", "#N/A", "#VALUE!"]
        + ["\uff11\uff12", "12", "A\u00a01", "A\u20281", "M\ufffdller", "\u200b"]
    ),
)


@st.composite
def padded(draw, s):
    return draw(st.sampled_from(["", " ", "  ", "\t"])) + s + draw(st.sampled_from(["", " ", "\u00a0"]))


@st.composite
def amount_text(draw, decimal: str, thousands: str | None):
    kind = draw(st.sampled_from(["plain", "plain", "plain", "grouped", "sci", "special", "garbage", "huge", "neg"]))
    if kind == "special":
        return draw(st.sampled_from(["NaN", "inf", "-Infinity", "", " ", "n/a", "1e999"]))
    if kind == "garbage":
        return draw(st.text(alphabet="0123456789,.- €$'aZ", min_size=1, max_size=8))
    if kind == "sci":
        return draw(st.sampled_from(["1e3", "2.5E-2", "7e+1"])).replace(".", decimal)
    value = draw(st.floats(min_value=0, max_value=5e9 if kind == "huge" else 99999, allow_nan=False))
    if kind == "neg":
        value = -value
    digits = draw(st.integers(0, 3))
    txt = f"{value:.{digits}f}"
    if kind == "grouped" and thousands:
        whole, _, frac = txt.partition(".")
        sign = "-" if whole.startswith("-") else ""
        whole = whole.lstrip("-")
        groups = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        groups.insert(0, whole)
        txt = sign + thousands.join(groups) + ((decimal + frac) if frac else "")
    else:
        txt = txt.replace(".", decimal)
    return txt


@st.composite
def date_text(draw, layout: str, offset_pool: list[str]):
    kind = draw(st.sampled_from(["ok"] * 8 + ["garbage", "other", "blank", "impossible"]))
    if kind == "garbage":
        return draw(st.text(alphabet="0123456789/-.: TZ+abJan", min_size=1, max_size=12))
    if kind == "blank":
        return draw(st.sampled_from(["", " "]))
    if kind == "impossible":
        return draw(st.sampled_from(["2024-02-30", "31/04/2024", "2024-13-01", "00/00/0000"]))
    if kind == "other":
        layout = draw(st.sampled_from(DATE_LAYOUTS))
    when = draw(st.datetimes(min_value=dt.datetime(1960, 1, 1), max_value=dt.datetime(2030, 12, 31)))
    txt = when.strftime(layout)
    if ("%H" in layout) and offset_pool:
        txt += draw(st.sampled_from(offset_pool))
    return txt


@st.composite
def exports(draw):
    decimal = draw(st.sampled_from([".", ","]))
    thousands = draw(st.sampled_from([None, None, ",", ".", " "]))
    if thousands == decimal:
        thousands = None
    layout = draw(st.sampled_from(DATE_LAYOUTS))
    offset_pool = draw(st.sampled_from([[""], ["Z"], ["+05:00"], ["", "+05:00"], ["+01:00", "+05:00"]]))
    fmt = draw(st.sampled_from(["csv", "csv", "csv", "csv.gz", "tsv", "parquet"]))
    sep = {"tsv": "\t"}.get(fmt) or draw(st.sampled_from([",", ";", "|"]))
    header = ["user_id", "ts", "amount"]
    extra = draw(st.sampled_from([None, None, "channel", "note"]))
    if extra:
        header.append(extra)
    header = draw(st.permutations(header))
    header = list(header)
    mutation = draw(st.sampled_from([None] * 6 + ["drop", "duplicate", "rename", "padded"]))
    if mutation == "drop":
        header.pop(draw(st.integers(0, len(header) - 1)))
    elif mutation == "duplicate":
        header.append(header[draw(st.integers(0, len(header) - 1))])
    elif mutation == "rename":
        header[draw(st.integers(0, len(header) - 1))] = "Amount"
    elif mutation == "padded":
        header = [f" {h} " for h in header]
    n = draw(st.integers(1, 12))
    rows = []
    for _ in range(n):
        row = []
        for h in header:
            name = h.strip()
            if name == "user_id":
                row.append(draw(padded(draw(id_text))))
            elif name == "ts":
                row.append(draw(date_text(layout, offset_pool)))
            elif name in ("amount", "Amount"):
                row.append(draw(amount_text(decimal, thousands)))
            else:
                row.append(draw(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)))
        shape = draw(st.sampled_from(["ok"] * 10 + ["short", "long"]))
        if shape == "short" and len(row) > 1:
            row = row[:-1]
        elif shape == "long":
            row = row + ["x"]
        rows.append(row)
    latin1 = set()
    if draw(st.booleans()) and fmt != "parquet":
        latin1 = set(draw(st.lists(st.integers(0, n - 1), max_size=2)))
    right = draw(st.booleans())
    options = {
        "decimal": decimal if right else draw(st.sampled_from([".", ","])),
        "thousands": thousands if right else None,
        "date_format": draw(st.sampled_from([None, layout])) if right else draw(st.sampled_from([None] + DATE_LAYOUTS)),
        "tz": draw(st.sampled_from(ZONES)),
        "errors": draw(st.sampled_from(["raise", "quarantine"])),
        "encoding": draw(st.sampled_from(["utf-8", "utf-8", "latin-1"])),
    }
    if options["thousands"] == options["decimal"]:
        options["thousands"] = None
    types = {}
    if fmt == "parquet":
        types = {"amount": draw(st.sampled_from(["text", "float"])), "ts": draw(st.sampled_from(["text", "timestamp"]))}
    raw = draw(st.binary(min_size=1, max_size=64)) if draw(st.integers(0, 19)) == 0 else None
    return Export(header, rows, sep, fmt, options, latin1, raw, types)


# ------------------------------------------------------------------------------ writing


def _quote(cell: str, sep: str) -> str:
    if any(c in cell for c in (sep, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write(export: Export, folder: Path) -> tuple[Path, list[int]]:
    """Write the export; return its path and the line where each data row starts."""
    name = {"csv": "orders.csv", "csv.gz": "orders.csv.gz", "tsv": "orders.tsv", "parquet": "orders.parquet"}
    path = folder / name[export.fmt]
    if export.raw_bytes is not None:
        path.write_bytes(export.raw_bytes)
        return path, []
    if export.fmt == "parquet":
        cols = []
        names = [h.strip() for h in export.header]
        for j, h in enumerate(names):
            cells = [r[j] if j < len(r) else None for r in export.rows]
            kind = export.parquet_types.get(h, "text")
            if kind == "float":
                cols.append(pa.array([_float_or_none(c) for c in cells], type=pa.float64()))
            elif kind == "timestamp":
                cols.append(pa.array([_naive_or_none(c) for c in cells], type=pa.timestamp("us")))
            else:
                cols.append(pa.array([c if c else None for c in cells], type=pa.string()))
        pq.write_table(pa.table(cols, names=names), path)
        return path, list(range(len(export.rows)))
    starts, line_no = [], 2
    body = export.sep.join(_quote(h, export.sep) for h in export.header).encode("utf-8") + b"\n"
    for i, row in enumerate(export.rows):
        text = export.sep.join(_quote(c, export.sep) for c in row)
        starts.append(line_no)
        line_no += len(re.findall(r"\r\n|\r|\n", text)) + 1
        body += text.encode(_written_encoding(export, i), errors="replace") + b"\n"
    path.write_bytes(gzip.compress(body) if export.fmt == "csv.gz" else body)
    return path, starts


def _written_encoding(export: Export, i: int) -> str:
    return "latin-1" if i in export.latin1_rows else "utf-8"


def _float_or_none(c: str | None):
    try:
        return float(c)
    except (TypeError, ValueError):
        return None


def _naive_or_none(c: str | None):
    try:
        return dt.datetime.strptime((c or "").strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:
            return dt.datetime.strptime((c or "").strip(), "%Y-%m-%d")
        except ValueError:
            return None


# ------------------------------------------------------------------------------ the oracle


def _id_text(cell):
    """docs/reliability.md's id rules, written out here: NFC, invisible format characters
    dropped, surrounding whitespace dropped, Excel's ="..." unwrapped, other spaces one space."""
    if not isinstance(cell, str):
        return cell
    text = "".join(c for c in unicodedata.normalize("NFC", cell) if unicodedata.category(c) != "Cf").strip()
    if len(text) >= 3 and text.startswith('="') and text.endswith('"'):
        text = text[2:-1].replace('""', '"').strip()
    return "".join(" " if unicodedata.category(c) == "Zs" else c for c in text)


def oracle_id(cell, column):
    """The id of a kept row: its text by the rules, and whole numbers written as 123.0 read as
    123 when no id of the column is written otherwise (no 123, no 1.5)."""
    text = _id_text(cell)
    if not isinstance(text, str) or not re.fullmatch(r"[+-]?\d+\.0+", text):
        return text
    others = [_id_text(c) for c in column if isinstance(c, str)]
    if any(
        re.fullmatch(r"[+-]?\d+", o) or re.fullmatch(r"[+-]?\d*\.\d+", o) and not re.fullmatch(r"[+-]?\d+\.0+", o)
        for o in others
    ):
        return text
    return text.split(".")[0]


def oracle_amount(cell, decimal: str, thousands: str | None):
    """The number a cell holds under the convention, or None when it is not one."""
    if cell is None or isinstance(cell, float):
        return cell
    t = cell.strip()
    d = re.escape(decimal)
    pats = [rf"[+-]?(\d+({d}\d*)?|{d}\d+)([eE][+-]?\d+)?"]
    if thousands:
        pats.append(rf"[+-]?\d{{1,3}}({re.escape(thousands)}\d{{3}})+({d}\d*)?")
    if not any(re.fullmatch(p, t) for p in pats):
        return None
    if thousands:
        t = t.replace(thousands, "")
    return float(t.replace(decimal, "."))


#: the date parts of every layout, by family; a family is what one inferred column may hold
FAMILIES = {
    "iso": ["%Y-%m-%d"],
    "ymd_slash": ["%Y/%m/%d"],
    "ymd_dot": ["%Y.%m.%d"],
    "compact": ["%Y%m%d"],
    "dmy_slash": ["%d/%m/%Y"],
    "mdy_slash": ["%m/%d/%Y"],
    "dmy_dot": ["%d.%m.%Y"],
    "mdy_dot": ["%m.%d.%Y"],
    "dmy_dash": ["%d-%m-%Y"],
    "mdy_dash": ["%m-%d-%Y"],
    "d_mon_y": ["%d %b %Y", "%d-%b-%Y", "%d %b-%Y", "%d-%b %Y", "%d %B %Y", "%d-%B-%Y", "%d %B-%Y", "%d-%B %Y"],
    "mon_d_y": ["%b %d, %Y", "%b %d %Y", "%B %d, %Y", "%B %d %Y"],
}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?")


_ZONE_TXT = r"(?:\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?"


def _split(text: str):
    """(date part, clock part or None, offset or None) of a cell; an offset only follows a
    clock; compact times (20240105T101112) unfolded."""
    m = re.fullmatch(rf"(\d{{8}})T(\d{{2}})(\d{{2}})(\d{{2}})?{_ZONE_TXT}", text, re.IGNORECASE)
    if m:
        return m.group(1), f"{m.group(2)}:{m.group(3)}" + (f":{m.group(4)}" if m.group(4) else ""), m.group(5)
    m = re.fullmatch(rf"(.+?)[T ](\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d{{1,9}})?)?){_ZONE_TXT}", text, re.IGNORECASE)
    if m:
        return m.group(1), m.group(2), m.group(3)
    return text, None, None


def oracle_date(cell, family: list[str] | str, tz: str | None):
    """The naive wall-clock time a cell holds, read with the formats of ``family`` (or one
    date_format) and converted as the zone rules say; None when it is not a date."""
    if cell is None:
        return None
    if isinstance(cell, dt.datetime):
        return cell
    text = cell.strip()
    if isinstance(family, str):  # an explicit date_format: strptime, offset by %z if present
        try:
            got = dt.datetime.strptime(text, family)
        except ValueError:
            return None
        if got.tzinfo is None:
            return got
        off = got.utcoffset()
        wall = got.replace(tzinfo=None)
        return wall if tz is None else _convert(wall, off, tz)
    date_part, clock, offset = _split(text)
    day = None
    for f in family:
        try:
            day = dt.datetime.strptime(date_part, f)
            break
        except ValueError:
            continue
    if day is None:
        return None
    wall = day
    if clock:
        h, mi, se, frac = _CLOCK.fullmatch(clock).groups()
        if int(h) > 23 or int(mi) > 59 or int(se or 0) > 59:
            return None
        ns = int((frac or "0").ljust(9, "0"))
        wall = pd.Timestamp(day) + pd.Timedelta(hours=int(h), minutes=int(mi), seconds=int(se or 0), nanoseconds=ns)
    if offset is None or tz is None:
        return wall
    o = offset.upper()
    minutes = (
        0
        if o in ("Z", "UTC", "GMT")
        else (int(o[1:3]) * 60 + int(o[-2:] if len(o) > 3 else 0)) * (1 if o[0] == "+" else -1)
    )
    return _convert(wall, dt.timedelta(minutes=minutes), tz)


def _convert(wall, offset: dt.timedelta, tz: str):
    instant = pd.Timestamp(wall) - pd.Timedelta(offset)
    return instant.tz_localize("UTC").tz_convert(tz).tz_localize(None)


def exists_once(wall, tz: str) -> bool:
    wall = pd.Timestamp(wall).to_pydatetime()
    z = zoneinfo.ZoneInfo(tz)
    a, b = wall.replace(tzinfo=z, fold=0), wall.replace(tzinfo=z, fold=1)
    back = a.astimezone(dt.timezone.utc).astimezone(z).replace(tzinfo=None)
    return back == wall and a.utcoffset() == b.utcoffset()


def _loaded_family(cells: list[str]) -> list[list[str]]:
    """The families an inferred column may have been read with: those that read every cell
    that some family reads (day- and month-first both, when they agree on every cell)."""
    if any(isinstance(c, dt.datetime) for c in cells):  # a Parquet timestamp column: no layout
        return [FAMILIES["iso"]]
    cells = [c.strip() for c in cells if isinstance(c, str) and c.strip()]
    datelike = [c for c in cells if any(oracle_date(c, f, None) is not None for f in FAMILIES.values())]
    return [f for f in FAMILIES.values() if datelike and all(oracle_date(c, f, None) is not None for c in datelike)]


# ------------------------------------------------------------------------------ the property


def _check(export: Export, tmp: Path):
    qdir = Path(os.environ["URM_HOME"]) / "data" / "quarantine" / tmp.name  # a folder of its own per export
    path, starts = write(export, tmp)
    opts = export.options
    try:
        tx = datasets.load_transactions(path, quarantine_dir=qdir, as_of=AS_OF, duplicates="keep", **opts)
    except DataValidationError as exc:
        assert str(path) in str(exc)
        assert not qdir.exists() or not any(qdir.iterdir())  # never a partial file
        return "refused"
    leftovers = [p.name for p in qdir.iterdir()] if qdir.exists() else []
    assert not [n for n in leftovers if n.endswith(".tmp") or n.startswith(".")], leftovers
    rep = tx.attrs["validation"]
    rejected_at = set()
    if rep["n_rejected"]:
        assert opts["errors"] == "quarantine" and len(leftovers) == 1
        q = pd.read_csv(rep["quarantine_path"], dtype=str, keep_default_na=False)
        assert len(q) == rep["n_rejected"]
        rejected_at = set(q["_location"])
    else:
        assert leftovers == []
    assert export.raw_bytes is None  # random bytes never make a table
    names = [h.strip() for h in export.header]
    j_id, j_ts = names.index("user_id"), names.index("ts")
    # a file without an amount column is an activity log (issue 28): every purchase worth 1, no money
    j_amt = names.index("amount") if "amount" in names else None
    assert tx.attrs["amounts"] == ("file" if j_amt is not None else "none")
    where = (lambda i: f"row {i}") if export.fmt == "parquet" else (lambda i: f"line {starts[i]}")
    kept = [i for i in range(len(export.rows)) if where(i) not in rejected_at]
    assert len(tx) == len(kept) == rep["n_valid"]
    assert rep["n_valid"] + rep["n_rejected"] == rep["n_input"] == len(export.rows)
    seen = [_as_loaded(export, i, names) for i in range(len(export.rows))]
    families = (
        [opts["date_format"]]
        if opts["date_format"]
        else _loaded_family([c[j_ts] for c in seen if len(c) == len(names)])
    )
    assert families or not kept, "an inferred date column was accepted although no layout reads all its dates"
    for out_row, i in enumerate(kept):
        cells = seen[i]
        assert len(cells) == len(names), export.rows[i]
        assert tx["user_id"].iloc[out_row] == oracle_id(cells[j_id], [c[j_id] for c in seen if len(c) > j_id]) != ""
        got = tx["amount"].iloc[out_row]
        if j_amt is None:
            assert got == 1.0
        else:
            amount = oracle_amount(cells[j_amt], opts["decimal"], opts["thousands"])
            assert amount is not None and math.isfinite(amount) and 0 <= amount <= MAX_AMOUNT, (cells[j_amt], got)
            assert got == amount, (cells[j_amt], got, amount)
        readings = {oracle_date(cells[j_ts], f, opts["tz"]) for f in families}
        assert len(readings) == 1 and None not in readings, (cells[j_ts], readings)
        when = readings.pop()
        assert tx["ts"].iloc[out_row] == pd.Timestamp(when), (cells[j_ts], tx["ts"].iloc[out_row], when)
        assert pd.Timestamp(FLOOR) <= pd.Timestamp(when) <= pd.Timestamp(AS_OF)
        naive = not (isinstance(cells[j_ts], str) and _split(cells[j_ts].strip())[2])
        if opts["tz"] == "Europe/Berlin" and naive:
            assert exists_once(when, opts["tz"]), cells[j_ts]
    return "loaded"


def _as_loaded(export: Export, i: int, names: list[str]):
    """The cells of row i as the loader must have seen them: text re-decoded with the load's
    encoding (None where a line cannot be decoded), empty cells missing; Parquet typed
    columns hold floats and timestamps."""
    row = list(export.rows[i])
    if export.fmt == "parquet":
        cells = [c if c != "" else None for c in row[: len(names)]] + [None] * (len(names) - len(row))
        for j, h in enumerate(names):
            kind = export.parquet_types.get(h, "text")
            if kind == "float":
                cells[j] = _float_or_none(row[j]) if j < len(row) else None
            elif kind == "timestamp":
                cells[j] = _naive_or_none(row[j]) if j < len(row) else None
        return cells
    enc = _written_encoding(export, i)
    out = []
    for c in row:
        try:
            c = c.encode(enc, errors="replace").decode(export.options["encoding"])
        except UnicodeDecodeError:
            return [None] * (len(names) + 1)  # an undecodable line is never kept
        out.append(c if c != "" else None)
    return out


@settings(
    max_examples=BUDGET or 150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(export=exports())
# found by the explore profile: a lone carriage return inside a value split a quarantined row
@example(
    export=Export(
        ["channel", "ts", "amount", "user_id"],
        [["", "0", "0", "1"], ["\r", "2026-01-02", "0", "1"], ["", "2000-01-01", "0", "1"]],
        ",",
        "csv",
        {
            "decimal": ".",
            "thousands": None,
            "date_format": None,
            "tz": None,
            "errors": "quarantine",
            "encoding": "utf-8",
        },
    )
)
# an undecodable line next to a blank date: nothing is kept, nothing is inferred
@pytest.mark.slow
@example(
    export=Export(
        ["amount", "user_id", "ts"],
        [["0", "1", ""], ["0", "1\xa0", "2000-01-01"]],
        ",",
        "csv",
        {
            "decimal": ".",
            "thousands": None,
            "date_format": None,
            "tz": None,
            "errors": "quarantine",
            "encoding": "utf-8",
        },
        latin1_rows={1},
    )
)
def test_every_generated_export_loads_exactly_or_is_refused(export, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    _check(export, tmp)


def test_the_fuzzer_reaches_both_outcomes(tmp_path_factory):
    """The property above is only worth something if generated files both load and fail: the
    generator reaches each outcome (``find`` searches for one of each, then it is checked again).
    Counting outcomes among a fixed number of examples proved flaky: hypothesis draws other
    files for the same derandomized test when other tests ran before it in the process (4
    loadable of 60 after test_btyd_plots.py, 13 alone; the same file always had the same
    outcome)."""
    from hypothesis import Phase, find

    cfg = settings(
        max_examples=300,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    for outcome in ("loaded", "refused"):
        found = find(exports(), lambda e, o=outcome: _check(e, tmp_path_factory.mktemp("reach")) == o, settings=cfg)
        assert _check(found, tmp_path_factory.mktemp("again")) == outcome
