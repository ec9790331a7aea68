"""The data contract, enforced at the boundary.

Every table that enters the project passes through :func:`validate_table`: raw columns are
mapped onto the canonical names of ARCHITECTURE.md, parsed, and checked with a pandera
schema. Two modes:

* ``errors="raise"`` (default): any bad row raises one :class:`DataValidationError` that names
  the file, each failing column and check, how many rows fail it and up to five examples.
* ``errors="quarantine"``: the valid rows go on; every rejected row is written, with the
  reasons it was rejected, to ``data/quarantine/`` and the counts are returned in a
  :class:`ValidationReport` (also in ``df.attrs["validation"]``) and logged. No row is dropped
  without a trace.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa

from . import paths
from .io import write_csv

log = logging.getLogger(__name__)

Errors = Literal["raise", "quarantine"]
MAX_EXAMPLES = 5
_NAN_LITERALS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".dat"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


class DataValidationError(ValueError):
    """Input data breaks the data contract. ``failures`` holds one row per (column, check)."""

    def __init__(self, message: str, *, source: str | None = None,
                 failures: pd.DataFrame | None = None):
        super().__init__(message)
        self.source = source
        self.failures = failures if failures is not None else pd.DataFrame()


@dataclass
class ValidationReport:
    """What validation did to one input: counts in, out and rejected, and why.

    Loaders put ``report.to_dict()`` in ``df.attrs["validation"]``.
    """

    source: str
    table: str
    n_input: int
    n_valid: int
    n_rejected: int
    failures: pd.DataFrame = field(repr=False)  # column, check, n_rows, examples
    quarantine_path: Path | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source, "table": self.table, "n_input": self.n_input,
            "n_valid": self.n_valid, "n_rejected": self.n_rejected,
            "quarantine_path": str(self.quarantine_path) if self.quarantine_path else None,
            "failures": self.failures.to_dict("records"),
        }


@dataclass(frozen=True)
class Field:
    name: str
    kind: Literal["id", "datetime", "number", "text"]
    required: bool = True   # the column must be present
    nullable: bool = False  # values may be empty
    minimum: float | None = None
    maximum: float | None = None
    event_time: bool = False  # checked against ``as_of`` (no dates in the future)


TABLES: dict[str, tuple[Field, ...]] = {
    "transactions": (
        Field("user_id", "id"),
        Field("ts", "datetime", event_time=True),
        Field("amount", "number", minimum=0.0),
        Field("channel", "text", required=False, nullable=True),
        Field("category", "text", required=False, nullable=True),
    ),
    "users": (
        Field("user_id", "id"),
        Field("signup_ts", "datetime", event_time=True),
    ),
    "subscriptions": (
        Field("user_id", "id"),
        Field("start_ts", "datetime", event_time=True),
        Field("end_ts", "datetime", nullable=True),
        Field("price", "number", minimum=0.0),
        Field("plan", "text", required=False, nullable=True),
    ),
    "feedback": (
        Field("user_id", "id"),
        Field("ts", "datetime", event_time=True),
        Field("score", "number", minimum=0.0, maximum=10.0),
        Field("text", "text", required=False, nullable=True),
    ),
}


# --------------------------------------------------------------------------- reading


@dataclass
class RawTable:
    """A file read with every cell as written (strings for CSV), before any parsing."""

    source: str
    frame: pd.DataFrame
    fmt: Literal["csv", "parquet", "frame"]
    rejected_lines: list[tuple[int, str]] = field(default_factory=list)  # (line, text)

    def location(self, index) -> str:
        if self.fmt == "csv":
            return f"line {int(index) + 2}"  # header is line 1
        return f"row {index}"


def _sniff_format(path: Path) -> Literal["csv", "parquet"]:
    with open(path, "rb") as fh:
        head = fh.read(8192)
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in {".gz", ".bz2", ".zip", ".xz", ".zst"}
    suffix = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if head.startswith(b"PAR1"):
        if suffix in CSV_SUFFIXES:
            raise DataValidationError(
                f"{path}: the file is named like a CSV but its bytes are Parquet; rename it to "
                f"{path.stem}.parquet", source=str(path))
        return "parquet"
    if suffix in PARQUET_SUFFIXES:
        raise DataValidationError(
            f"{path}: not a Parquet file (it does not start with the Parquet magic bytes 'PAR1')",
            source=str(path))
    if compressed:
        return "csv"
    looks_binary = b"\x00" in head or head.startswith((b"PK\x03\x04", b"\x89PNG", b"%PDF", b"\x1f\x8b"))
    if looks_binary:
        raise DataValidationError(
            f"{path}: not a CSV or Parquet file (binary content: zip/xlsx, image, PDF or "
            f"compressed bytes). Export it as CSV (UTF-8) or Parquet.", source=str(path))
    if suffix not in CSV_SUFFIXES:
        raise DataValidationError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; give a CSV "
            f"({', '.join(sorted(CSV_SUFFIXES))}) or Parquet ({', '.join(sorted(PARQUET_SUFFIXES))}) "
            f"file", source=str(path))
    return "csv"


def read_raw(path: str | Path, *, sep: str | None = None, encoding: str = "utf-8",
             errors: Errors = "raise", header: bool = True,
             names: list[str] | None = None) -> RawTable:
    """Read a CSV or Parquet file without interpreting any value.

    CSV cells are kept as strings (empty cells become missing), so that parsing failures can
    be reported with the text the file actually holds.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise DataValidationError(f"{path}: is a directory, not a CSV or Parquet file", source=source)
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: the file is empty (0 bytes), no rows to load", source=source)
    fmt = _sniff_format(path)
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DataValidationError(f"{path}: cannot read as Parquet: {exc}", source=source) from exc
        frame = frame.reset_index(drop=True)
        if frame.empty:
            raise DataValidationError(f"{path}: the file has a header but no rows", source=source)
        return RawTable(source, frame, "parquet")

    data = path.read_bytes()
    if path.suffix.lower() in {".gz", ".bz2", ".xz", ".zip", ".zst"}:
        import pandas.io.common as pic  # decompress with pandas' own handlers
        with pic.get_handle(path, "rb", compression="infer") as h:
            data = h.handle.read()
    rejected: list[tuple[int, str]] = []
    keep_line_numbers: list[int] | None = None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        good, keep_line_numbers = [], []
        for number, line in enumerate(data.splitlines(keepends=True), start=1):
            try:
                good.append(line.decode(encoding))
                keep_line_numbers.append(number)
            except UnicodeDecodeError as exc:
                rejected.append((number, f"{line.rstrip()!r} ({exc.reason} at byte {exc.start})"))
        if errors == "raise" or (header and 1 in {n for n, _ in rejected}):
            examples = "; ".join(f"line {n}: {t}" for n, t in rejected[:MAX_EXAMPLES])
            raise DataValidationError(
                f"{path}: {len(rejected)} line(s) are not valid {encoding} text, e.g. {examples}. "
                f"Pass encoding='latin-1' (or the file's real encoding), or errors='quarantine' "
                f"to set these lines aside.", source=source,
                failures=pd.DataFrame([{"column": "(line)", "check": f"{encoding}_text",
                                        "n_rows": len(rejected)}]))
        text = "".join(good)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise DataValidationError(f"{path}: the file holds no data (only whitespace)", source=source)
    read_kw = dict(dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True)
    try:
        if sep is None:
            frame = pd.read_csv(io.StringIO(text), sep=None, engine="python",
                                header=0 if header else None, names=names, **read_kw)
        else:
            engine = "c" if (len(sep) == 1 or sep == r"\s+") else "python"
            frame = pd.read_csv(io.StringIO(text), sep=sep, engine=engine,
                                header=0 if header else None, names=names, **read_kw)
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"{path}: the file holds no data", source=source) from exc
    except (pd.errors.ParserError, csv_error()) as exc:
        raise DataValidationError(f"{path}: cannot parse as CSV: {exc}", source=source) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataValidationError(f"{path}: the file has a header but no rows", source=source)
    raw = RawTable(source, frame, "csv", rejected)
    if keep_line_numbers is not None and rejected:
        # Re-index rows by their original line so that reports point at the right place.
        data_lines = keep_line_numbers[1:] if header else keep_line_numbers
        if len(data_lines) == len(frame):
            frame.index = pd.Index([n - 2 for n in data_lines])
    return raw


def csv_error():
    import csv
    return csv.Error


# --------------------------------------------------------------------------- parsing


def _blank(s: pd.Series) -> pd.Series:
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        return s.isna() | (s.astype("string").str.strip() == "")
    return s.isna()


def parse_id(s: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(s):
        # ids read as floats by an upstream tool: 17.0 -> "17"
        out = s.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    else:
        out = s.astype("string").str.strip()
    out = out.astype(object)
    out[_blank(s).to_numpy()] = None
    return out


def parse_datetime(s: pd.Series, *, date_format: str | None = None, tz: str | None = None) -> pd.Series:
    """Parse to naive wall-clock timestamps.

    Aware values (an offset in the text, or a tz-aware column) are converted to ``tz`` (UTC
    when ``tz`` is None) and the zone dropped; naive values are taken to be in ``tz`` already.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        if getattr(s.dt, "tz", None) is not None:
            return s.dt.tz_convert(tz or "UTC").dt.tz_localize(None)
        return s.astype("datetime64[ns]")
    text = s.astype("string").str.strip()
    fmt = date_format
    if fmt is None:
        fmt = "ISO8601" if text.dropna().head(100).str.match(r"^\d{4}-\d{2}-\d{2}").all() else "mixed"
    parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    aware = text.str.contains(_TZ_SUFFIX, na=False).to_numpy()
    out = parsed.dt.tz_localize(None)  # naive values: wall clock as written
    if aware.any():
        conv = parsed.dt.tz_convert(tz or "UTC").dt.tz_localize(None)
        out = out.where(~aware, conv)
    return out.astype("datetime64[ns]")


def parse_number(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    text = s.astype("string").str.strip().str.replace(",", "", regex=False)
    return pd.to_numeric(text, errors="coerce").astype(float)


def _nan_literal(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s):
        return pd.Series(np.isnan(s.astype(float)) & s.notna(), index=s.index)
    return s.astype("string").str.strip().str.lower().isin(_NAN_LITERALS).fillna(False).astype(bool)


# --------------------------------------------------------------------------- validation


def _check(fn, name: str, **kw) -> pa.Check:
    return pa.Check(fn, name=name, ignore_na=False, **kw)


def validate_table(
    raw: RawTable,
    table: str,
    *,
    columns: dict[str, str] | None = None,
    errors: Errors = "raise",
    date_format: str | None = None,
    tz: str | None = None,
    as_of=None,
    returns: Literal["reject", "keep"] = "reject",
    duplicates: Literal["reject", "keep"] = "reject",
    quarantine_dir: str | Path | None = None,
    extra_fields: tuple[Field, ...] = (),
) -> pd.DataFrame:
    """Map, parse and check one raw table; return the canonical table of the valid rows.

    Parameters
    ----------
    raw : RawTable
        From :func:`read_raw`, or :func:`raw_from_frame` for an in-memory DataFrame.
    table : {"transactions", "users", "subscriptions", "feedback"}
    columns : dict, optional
        ``{canonical_name: name_in_file}`` for columns whose names differ. Mapped columns that
        are not part of the contract are kept as extra attributes.
    errors : {"raise", "quarantine"}
    date_format : str, optional
        strptime format of the date columns (e.g. ``"%d/%m/%Y"``); inferred when omitted.
    tz : str, optional
        Time zone that timestamps are expressed in (see :func:`parse_datetime`).
    as_of : date-like, optional
        When the extract was taken: event timestamps after it are in the future and
        rejected. Defaults to now.
    returns : {"reject", "keep"}
        Negative transaction amounts (returns, refunds): reject them or keep them as negative.
    duplicates : {"reject", "keep"}
        Exact duplicate rows: reject all but the first, or keep them (for files without an
        order id, where two identical orders on one day are real).
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of {sorted(TABLES)}")
    if errors not in ("raise", "quarantine"):
        raise ValueError(f"errors must be 'raise' or 'quarantine', not {errors!r}")
    source = raw.source
    fields = TABLES[table] + tuple(extra_fields)
    columns = dict(columns or {})
    frame = raw.frame
    # canonical name -> column in the file
    mapping: dict[str, str] = {}
    for f in fields:
        src = columns.get(f.name, f.name)
        if src in frame.columns:
            mapping[f.name] = src
    missing = [f"{f.name!r}" + (f" (mapped from {columns[f.name]!r})" if f.name in columns else "")
               for f in fields if f.required and f.name not in mapping]
    unknown_maps = [c for c in columns.values() if c not in frame.columns]
    if missing or unknown_maps:
        parts = []
        if missing:
            parts.append(f"missing required column(s) {', '.join(missing)}")
        if unknown_maps:
            parts.append(f"mapped column(s) {unknown_maps} not in the file")
        raise DataValidationError(
            f"{source}: {table} table: {'; '.join(parts)}. The file has columns "
            f"{list(map(str, frame.columns))}; map yours with columns={{'user_id': ..., ...}}.",
            source=source,
            failures=pd.DataFrame([{"column": m, "check": "column_present", "n_rows": len(frame)}
                                   for m in missing]))
    extra_cols = {c: s for c, s in columns.items() if c not in mapping and s in frame.columns}

    as_of_ts = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(datetime.now())
    typed = pd.DataFrame(index=frame.index)
    col_schemas: dict[str, pa.Column] = {}
    for f in fields:
        if f.name not in mapping:
            continue
        rawcol = frame[mapping[f.name]]
        blank = _blank(rawcol)
        checks = []
        if not f.nullable:
            checks.append(_check(lambda s, b=blank: ~b.reindex(s.index), "not_missing"))
        if f.kind == "id":
            typed[f.name] = parse_id(rawcol)
        elif f.kind == "text":
            typed[f.name] = rawcol.where(~blank, None).astype(object)
        elif f.kind == "datetime":
            val = parse_datetime(rawcol, date_format=date_format, tz=tz)
            typed[f.name] = val
            fmt_txt = f" (format {date_format!r})" if date_format else ""
            checks.append(_check(lambda s, b=blank: ~(s.isna() & ~b.reindex(s.index)),
                                 f"parseable_datetime{fmt_txt}"))
            if f.event_time:
                checks.append(_check(lambda s, t=as_of_ts: ~(s > t),
                                     f"not_after_as_of ({as_of_ts:%Y-%m-%d %H:%M})"))
        elif f.kind == "number":
            val = parse_number(rawcol)
            typed[f.name] = val
            lit = _nan_literal(rawcol)
            checks.append(_check(lambda s, b=blank, l=lit: ~(s.isna() & ~b & ~l), "numeric"))
            checks.append(_check(lambda s, l=lit: ~(l | np.isinf(s.fillna(0.0))), "finite"))
            lo = f.minimum
            if table == "transactions" and f.name == "amount" and returns == "keep":
                lo = None
            if lo is not None:
                checks.append(_check(lambda s, lo=lo: ~(s < lo), f"at_least_{lo:g}"
                                     if lo else "non_negative"))
            if f.maximum is not None:
                checks.append(_check(lambda s, hi=f.maximum: ~(s > hi), f"at_most_{f.maximum:g}"))
        col_schemas[f.name] = pa.Column(nullable=True, checks=checks, required=True)
    for name, src in extra_cols.items():
        typed[name] = frame[src]

    frame_checks = []
    if duplicates == "reject":
        dup = frame.duplicated(keep="first")
        frame_checks.append(pa.Check(lambda d, m=dup: ~m.reindex(d.index), name="no_exact_duplicates"))
    if table == "users":
        frame_checks.append(pa.Check(lambda d: ~(d["user_id"].notna() & d["user_id"].duplicated()),
                                     name="unique_user_id"))
    if table == "subscriptions" and "end_ts" in typed:
        frame_checks.append(pa.Check(lambda d: ~(d["end_ts"] < d["start_ts"]), name="end_ts_not_before_start_ts"))

    schema = pa.DataFrameSchema(col_schemas, checks=frame_checks, strict=False, coerce=False)
    return run_schema(raw, table, typed, schema, mapping, errors=errors, quarantine_dir=quarantine_dir)


def run_schema(raw: RawTable, table: str, typed: pd.DataFrame, schema: pa.DataFrameSchema,
               mapping: dict[str, str], *, errors: Errors = "raise",
               quarantine_dir=None) -> pd.DataFrame:
    """Validate ``typed`` (parsed from ``raw``, same index) with ``schema``; raise or quarantine.

    ``mapping`` maps canonical column names to the file's column names, for the examples.
    """
    failures = _failure_cases(schema, typed)
    return _finish(raw, table, typed, failures, errors=errors, quarantine_dir=quarantine_dir,
                   column_sources=mapping)


def _failure_cases(schema: pa.DataFrameSchema, typed: pd.DataFrame) -> pd.DataFrame:
    """Run the pandera schema; return (column, check, index) of every failure."""
    try:
        schema.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        broken = fc[fc["index"].isna()]
        if len(broken):
            # a check that raised, or a table-level failure without rows: a bug, never a pass
            raise RuntimeError(f"validation could not run: {broken.to_dict('records')}") from exc
        fc = fc.copy()
        frame_level = fc["schema_context"] == "DataFrameSchema"
        fc.loc[frame_level, "column"] = "(row)"
        fc["check"] = fc["check"].astype(str)
        return fc[["column", "check", "index"]].drop_duplicates().reset_index(drop=True)
    return pd.DataFrame(columns=["column", "check", "index"])


def _example(raw: RawTable, idx, column: str, mapping_col: str | None) -> str:
    where = raw.location(idx)
    if column == "(row)" or mapping_col is None:
        row = raw.frame.loc[idx]
        return f"{where}: {', '.join(map(str, row.tolist()))}"
    val = raw.frame.at[idx, mapping_col]
    return f"{where}: {val!r}"


def _finish(raw: RawTable, table: str, typed: pd.DataFrame, fc: pd.DataFrame, *,
            errors: Errors, quarantine_dir, column_sources: dict[str, str] | None = None,
            ) -> pd.DataFrame:
    source = raw.source
    n_lines_rejected = len(raw.rejected_lines)
    n_input = len(typed) + n_lines_rejected
    summary_rows = []
    # map canonical column back to the file's column, for examples
    colsrc = column_sources or {}
    for (col, check), grp in fc.groupby(["column", "check"], sort=False):
        idx = grp["index"].tolist()
        src = colsrc.get(col, col if col in raw.frame.columns else None)
        examples = [_example(raw, i, col, src) for i in idx[:MAX_EXAMPLES]]
        summary_rows.append({"column": col if src in (None, col) else f"{col} (file column {src!r})",
                             "check": check, "n_rows": len(idx), "examples": examples})
    if n_lines_rejected:
        summary_rows.append({"column": "(line)", "check": "utf-8 text", "n_rows": n_lines_rejected,
                             "examples": [f"line {n}: {t}" for n, t in raw.rejected_lines[:MAX_EXAMPLES]]})
    failures = pd.DataFrame(summary_rows, columns=["column", "check", "n_rows", "examples"])
    bad_index = pd.Index(fc["index"].unique()) if len(fc) else pd.Index([])
    n_bad_rows = len(bad_index) + n_lines_rejected

    if n_bad_rows and errors == "raise":
        lines = [f"{source}: {n_bad_rows:,} of {n_input:,} rows fail the {table} contract:"]
        for r in summary_rows:
            lines.append(f"  - column {r['column']}, check '{r['check']}': {r['n_rows']:,} rows, "
                         f"e.g. {'; '.join(r['examples'])}")
        lines.append("Fix the file, map its columns with columns={...}, or pass errors='quarantine' "
                     "to load the valid rows and set the rejected ones aside in data/quarantine/.")
        raise DataValidationError("\n".join(lines), source=source, failures=failures)

    valid = typed.drop(index=bad_index) if len(bad_index) else typed
    qpath = None
    if n_bad_rows:
        qdir = Path(quarantine_dir) if quarantine_dir is not None else paths.quarantine_dir()
        reasons = (fc.assign(reason=fc["column"].astype(str) + ": " + fc["check"])
                   .groupby("index", sort=True)["reason"].agg("; ".join))
        rejected = raw.frame.loc[bad_index].copy()
        rejected = rejected.astype(object)
        rejected.insert(0, "_location", [raw.location(i) for i in rejected.index])
        rejected["_reasons"] = reasons.reindex(rejected.index).to_numpy()
        if n_lines_rejected:
            extra = pd.DataFrame({"_location": [f"line {n}" for n, _ in raw.rejected_lines],
                                  "_reasons": ["(line): not utf-8 text"] * n_lines_rejected,
                                  "_raw_line": [t for _, t in raw.rejected_lines]})
            rejected = pd.concat([rejected, extra], ignore_index=True)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        stem = Path(source).name.replace(".", "_") if raw.fmt != "frame" else "frame"
        qpath = qdir / f"{table}-{stem}-{stamp}.csv"
        write_csv(rejected, qpath, index=False)
        log.warning("%s: quarantined %d of %d rows to %s (%s)", source, n_bad_rows, n_input, qpath,
                    ", ".join(f"{r['column']}/{r['check']}: {r['n_rows']}" for r in summary_rows))
    report = ValidationReport(source=source, table=table, n_input=n_input, n_valid=len(valid),
                              n_rejected=n_bad_rows, failures=failures, quarantine_path=qpath)
    valid = valid.reset_index(drop=True)
    valid.attrs["validation"] = report.to_dict()  # JSON-safe: attrs travel into Parquet metadata
    return valid


def raw_from_frame(df: pd.DataFrame, name: str = "<DataFrame>") -> RawTable:
    return RawTable(name, df.reset_index(drop=True), "frame")
