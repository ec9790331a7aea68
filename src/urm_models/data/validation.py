"""The data contract, enforced at the boundary.

Every table that enters the project passes through :func:`validate_table`: a file read by
:mod:`urm_models.data.reading` (cells as written), its columns mapped onto the canonical names of
``docs/architecture.md`` ("The data contract"), parsed by :mod:`urm_models.data.parsing` (one
convention per column, never guessed), and checked with a pandera schema. Two modes:

* ``errors="raise"`` (default): any bad row raises one :class:`DataValidationError` that names
  the file, each failing column and check, how many rows fail it and up to five examples.
* ``errors="quarantine"``: the valid rows go on; every rejected row is written, with the
  reasons it was rejected, to ``data/quarantine/`` and the counts are returned in a
  :class:`ValidationReport` (also in ``df.attrs["validation"]``) and logged. No row is dropped
  without a trace.

A column that can only be read by guessing a convention (decimal comma, day-first dates,
mixed UTC offsets) fails as a whole in both modes, with the option that settles it. Rows of
users erased with ``urm forget`` are dropped before anything else and counted (``n_erased``).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..core import clock, paths
from ..core.errors import ConventionError, DataValidationError
from ..core.io import write_csv
from ..core.privacy import pseudonym_map, pseudonymize
from . import erasure, parsing
from .contract import RULES, TABLES, Errors, Field
from .options import ReadOptions, build
from .parsing import normal_signs, null_words, parse_datetime, parse_id, parse_number
from .reading import RawTable

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5


@dataclass
class ValidationReport:
    """What validation did to one input: counts in, out, rejected and erased, and why.

    Loaders put ``report.to_dict()`` in ``df.attrs["validation"]``.
    """

    source: str
    table: str
    n_input: int
    n_valid: int
    n_rejected: int
    failures: pd.DataFrame = field(repr=False)  # column, check, n_rows, examples
    quarantine_path: Path | None = None
    n_erased: int = 0

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "table": self.table,
            "n_input": self.n_input,
            "n_valid": self.n_valid,
            "n_rejected": self.n_rejected,
            "n_erased": self.n_erased,
            "quarantine_path": str(self.quarantine_path) if self.quarantine_path else None,
            "failures": self.failures.to_dict("records"),
        }


_FLAGS = {"yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}


def _check(fn, name: str, **kw) -> pa.Check:
    return pa.Check(fn, name=name, ignore_na=False, **kw)


def validate_table(
    raw: RawTable,
    table: str,
    options: ReadOptions | None = None,
    *,
    extra_fields: tuple[Field, ...] = (),
    **by_name,
) -> pd.DataFrame:
    """Map, parse and check one raw table; return the canonical table of the valid rows.

    Parameters
    ----------
    raw : RawTable
        From :func:`urm_models.data.reading.read_raw`, or ``raw_from_frame`` for a DataFrame.
    table : {"transactions", "users", "subscriptions", "feedback"}
    options : ReadOptions, optional
        How to map, parse and check the table (:class:`urm_models.data.options.ReadOptions`,
        whose defaults apply); ``by_name`` changes its fields by name
        (``validate_table(raw, "transactions", tz="Europe/Berlin")``). The ones used here:
    columns : dict, optional
        ``{canonical_name: name_in_file}`` for columns whose names differ. Mapped columns that
        are not part of the contract are kept as extra attributes. One file column cannot be
        mapped twice.
    errors : {"raise", "quarantine"}
    date_format : str, optional
        strptime format of the date columns (e.g. ``"%d/%m/%Y"``), or ``"excel"`` for Excel
        serial day numbers. Without it one layout is inferred for the whole column, or the
        column is refused (:mod:`urm_models.data.parsing`).
    tz : str, optional
        IANA zone: naive times are local times there, times with an offset are converted to it.
        Required when a column mixes offsets, or offsets and naive times.
    dst : {"reject", "shift"}
        Local times in a DST gap or fold of ``tz``: rejected rows (default) or resolved
        (gap: moved to its end; fold: the first occurrence).
    decimal, thousands, currency : str
        The number convention of amount columns: ``decimal="."`` (the default when neither is
        given) or ``","``, an optional ``thousands`` separator, a currency symbol or code to
        remove. Values that fit another convention fail the column, and so does a column whose
        dotted values are all digit groups of three (``2.933``) when neither ``decimal`` nor
        ``thousands`` is given (:mod:`urm_models.data.parsing`).
    max_amount : float
        Amounts and prices above this magnitude are rejected rows (default 1e9).
    min_date : date-like
        Event dates before it are rejected rows (default 1970-01-01).
    as_of : date-like, optional
        When the extract was taken: event timestamps after it are in the future and
        rejected. Defaults to now.
    returns : {"reject", "keep"}
        Negative transaction amounts (returns, refunds): reject them or keep them as negative.
    duplicates : {"reject", "keep"}
        Exact duplicate rows: reject all but the first, or keep them (for files without an
        order id, where two identical orders on one day are real).
    dataset : str, optional
        The data set's name, for erasures scoped to it (``urm forget --dataset``).
    null_ids : {"refuse", "drop", "keep"}
        User ids that are null words (``NULL``, ``N/A``, ``NA``, ``-`` ...:
        :data:`urm_models.data.parsing.NULL_WORDS`), an export's "no user": refuse the column with
        their count (default), drop their rows (counted: ``n_null_ids``), or keep them as ids.
    """
    o = build(by_name, options or ReadOptions)
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of {sorted(TABLES)}")
    quarantine_folder(o.quarantine_dir)  # refused before any row is read
    fields = TABLES[table] + tuple(extra_fields)
    mapping, extras = map_columns(raw, table, fields, o.columns)
    refuse_nested(raw, {**mapping, **extras})
    ids, bad_ids = parse_ids(raw, mapping["user_id"])
    nulls = null_id_rows(raw, ids, mapping["user_id"], o.null_ids)
    erased = _erased_rows(ids, o.dataset).to_numpy()
    keep = ~(nulls | erased)
    if not keep.all():
        raw, ids, bad_ids = _subset(raw, keep), ids[keep], bad_ids[keep]
    # "now", when not given, is taken once here: every row is checked against the same instant
    o = replace(o, as_of=pd.Timestamp(o.as_of) if o.as_of is not None else clock.current_time())
    typed, checks = parse_columns(raw, table, fields, mapping, ids, bad_ids, o)
    for name, src in extras.items():
        typed[name] = raw.frame[src]
    on_columns, on_rows = row_checks(raw, table, typed, o.duplicates)
    for name, more in on_columns.items():
        checks[name] = checks.get(name, []) + more
    schema = pa.DataFrameSchema(
        {name: pa.Column(nullable=True, checks=c, required=True) for name, c in checks.items()},
        checks=on_rows,
        strict=False,
        coerce=False,
    )
    out = run_schema(
        raw, table, typed, schema, mapping, errors=o.errors, quarantine_dir=o.quarantine_dir, dataset=o.dataset
    )
    report = out.attrs["validation"]
    report["n_erased"] += int(erased.sum())
    report["n_null_ids"] = int(nulls.sum())
    report["n_input"] += int(erased.sum()) + int(nulls.sum())
    return out


def map_columns(
    raw: RawTable, table: str, fields: tuple[Field, ...], columns: dict[str, str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Step 1: each canonical column's column in the file (``columns`` maps those whose names
    differ), and the mapped columns outside the contract (kept as extra attributes). Refuses a
    file column mapped twice, a required column missing and a mapped column not in the file."""
    source, frame = raw.source, raw.frame
    columns = dict(columns or {})
    twice = {c for c in columns.values() if list(columns.values()).count(c) > 1}
    if twice:
        names = {c: [k for k, v in columns.items() if v == c] for c in twice}
        raise DataValidationError(
            f"{source}: the column mapping names the same file column twice: "
            + "; ".join(f"{c!r} for {', '.join(map(repr, ks))}" for c, ks in names.items())
            + ". Map each canonical column to its own file column.",
            source=source,
        )
    mapping: dict[str, str] = {}
    for f in fields:
        src = columns.get(f.name, f.name)
        if src in frame.columns and (f.name in columns or src not in columns.values()):
            mapping[f.name] = src
    missing = [
        f"{f.name!r}" + (f" (mapped from {columns[f.name]!r})" if f.name in columns else "")
        for f in fields
        if f.required and f.name not in mapping
    ]
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
            failures=pd.DataFrame([{"column": m, "check": "column_present", "n_rows": len(frame)} for m in missing]),
        )
    return mapping, {c: s for c, s in columns.items() if c not in mapping and s in frame.columns}


def refuse_nested(raw: RawTable, used: dict[str, str]) -> None:
    """Step 1b: a column the contract reads (or a mapped extra) cannot be a nested Parquet
    column (struct, list, map): a row needs one value, and which field holds it is not guessed."""
    bad = {name: src for name, src in used.items() if src in raw.nested}
    if not bad:
        return
    parts = [
        f"column {name if src == name else f'{name} (file column {src!r})'} holds nested values of type "
        f"{raw.nested[src]}, e.g. {raw.frame[src].dropna().iloc[0] if raw.frame[src].notna().any() else None!r}"
        for name, src in bad.items()
    ]
    raise DataValidationError(
        f"{raw.source}: {'; '.join(parts)}, over {len(raw.frame):,} rows: one value per row is needed and which "
        "field holds it is not guessed. Write that field as a column of its own in the export and map it "
        "with columns={...}",
        source=raw.source,
        failures=pd.DataFrame(
            [{"column": n, "check": "not_nested", "n_rows": len(raw.frame), "option": "columns="} for n in bad]
        ),
    )


def parse_ids(raw: RawTable, id_column: str) -> tuple[pd.Series, pd.Series]:
    """Step 2a: the user ids by the id rules (:func:`urm_models.data.parsing.parse_id`): the ids and
    each row's problem; a column that needs a guess is refused with the file, column, row count
    and what settles it."""
    try:
        return parse_id(raw.frame[id_column])
    except ConventionError as exc:
        col = "user_id" if id_column == "user_id" else f"user_id (file column {id_column!r})"
        raise DataValidationError(
            f"{raw.source}: column {col}: {exc.n_rows:,} of {len(raw.frame):,} rows cannot be read without "
            f"guessing ({exc.check}): {exc}",
            source=raw.source,
            failures=pd.DataFrame(
                [{"column": "user_id", "check": exc.check, "n_rows": exc.n_rows, "option": exc.option}]
            ),
        ) from None


def null_id_rows(raw: RawTable, ids: pd.Series, id_column: str, null_ids: str) -> np.ndarray:
    """Step 2: the rows whose user id is a null word (``NULL``, ``N/A``, ...: an export's "no
    user"), to leave out with ``null_ids="drop"``; refused with their count by default, none
    with ``null_ids="keep"``."""
    if null_ids == "keep":
        return np.zeros(len(ids), bool)
    nulls = (null_words(ids) & ids.notna()).to_numpy()
    n = int(nulls.sum())
    if n and null_ids == "refuse":
        col = "user_id" if id_column == "user_id" else f"user_id (file column {id_column!r})"
        counts = ids[nulls].value_counts().head(5).to_dict()
        raise DataValidationError(
            f"{raw.source}: column {col}: {n:,} of {len(ids):,} rows have a user id that is a null word "
            f"({', '.join(f'{k!r}: {v:,}' for k, v in counts.items())}): what an export writes for no user (a "
            "guest checkout), not one user. Pass null_ids='drop' (--null-ids drop) to leave those rows out, or "
            "null_ids='keep' to read them as ids",
            source=raw.source,
            failures=pd.DataFrame(
                [{"column": "user_id", "check": "not_a_null_word", "n_rows": n, "option": "null_ids"}]
            ),
        )
    if n:
        log.warning("%s: left out %d rows whose user id is a null word (null_ids='drop')", raw.source, n)
    return nulls


def parse_columns(
    raw: RawTable,
    table: str,
    fields: tuple[Field, ...],
    mapping: dict[str, str],
    ids: pd.Series,
    bad_ids: pd.Series,
    options: ReadOptions,
) -> tuple[pd.DataFrame, dict[str, list[pa.Check]]]:
    """Step 3: every mapped column parsed by its field's kind (:mod:`urm_models.data.parsing`), and
    the row checks of its values. A column that cannot be read without guessing a convention
    is refused, every such column in one error naming the option that settles it."""
    frame = raw.frame
    typed = pd.DataFrame(index=frame.index)
    checks: dict[str, list[pa.Check]] = {}
    guesses: list[tuple[str, dict]] = []
    for f in fields:
        if f.name not in mapping:
            continue
        file_col = mapping[f.name]
        rawcol = frame[file_col]
        is_blank = parsing.blank(rawcol)
        try:
            typed[f.name], column_checks = _parse_field(f, rawcol, is_blank, ids, bad_ids, table, options)
        except ConventionError as exc:
            shown = f.name if file_col == f.name else f"{f.name} (file column {file_col!r})"
            guesses.append(
                (
                    f"column {shown}: {exc.n_rows:,} of {len(frame):,} rows cannot be read "
                    f"without guessing ({exc.check}): {exc}",
                    {"column": f.name, "check": exc.check, "n_rows": exc.n_rows, "option": exc.option},
                )
            )
            continue
        checks[f.name] = ([] if f.nullable else [_mask_check(is_blank, "not_missing")]) + column_checks
    if guesses:  # every column that needs an option, in one error
        raise DataValidationError(
            f"{raw.source}: " + ("\n  - ".join(["", *(m for m, _ in guesses)]) if len(guesses) > 1 else guesses[0][0]),
            source=raw.source,
            failures=pd.DataFrame([g for _, g in guesses]),
        )
    return typed, checks


def _parse_field(f: Field, rawcol, is_blank, ids, bad_ids, table: str, o: ReadOptions):
    """One column's values and the checks on them."""
    checks = []
    if f.kind == "id":  # ``bad_ids``: each row's problem (parsing.parse_id), one check per kind
        return ids, [_mask_check(bad_ids == why, why) for why in bad_ids.dropna().unique()]
    if f.kind == "text":
        return rawcol.where(~is_blank, None).astype(object), []
    if f.kind == "flag":
        val = rawcol.astype("string").str.strip().str.lower().map(_FLAGS).astype(float)
        return val, [_mask_check(val.isna() & ~is_blank, "is_yes_or_no")]
    if f.kind == "datetime":
        parsed = parse_datetime(rawcol, date_format=o.date_format, tz=o.tz, dst=o.dst)
        val = parsed.values
        fmt_txt = f" (format {o.date_format!r})" if o.date_format else ""
        bad_offset = parsed.bad_offset if parsed.bad_offset is not None else pd.Series(False, index=val.index)
        too_far = parsed.out_of_range if parsed.out_of_range is not None else pd.Series(False, index=val.index)
        unread = val.isna() & ~is_blank & ~parsed.dst_gap & ~parsed.dst_fold & ~bad_offset & ~too_far
        checks.append(_mask_check(unread, f"parseable_datetime{fmt_txt}"))
        if bad_offset.any():
            checks.append(_mask_check(bad_offset, "real_utc_offset (between -14:00 and +14:00, minutes below 60)"))
        if too_far.any():
            checks.append(_mask_check(too_far, "date_between_1678_and_2261 (the range of times pandas holds)"))
        if parsed.dst_gap.any():
            checks.append(
                _mask_check(
                    parsed.dst_gap,
                    f"exists_in_{o.tz} (a local time in a DST gap; dst='shift' moves it to the gap's end)",
                )
            )
        if parsed.dst_fold.any():
            checks.append(
                _mask_check(
                    parsed.dst_fold,
                    f"unambiguous_in_{o.tz} (a local time in a DST fold; dst='shift' takes the first occurrence)",
                )
            )
        floor = pd.Timestamp(o.min_date) if o.min_date is not None else None
        if floor is not None and not (f.nullable and f.name == "end_ts"):
            checks.append(_mask_check(val < floor, f"not_before_{floor:%Y-%m-%d} (min_date= moves the floor)"))
        if f.event_time:
            checks.append(_mask_check(val > o.as_of, f"not_after_as_of ({o.as_of:%Y-%m-%d %H:%M})"))
        return val, checks
    # numbers
    val = parse_number(rawcol, decimal=o.decimal, thousands=o.thousands, currency=o.currency)
    unparseable = val.isna() & ~is_blank & ~_literal_nan(rawcol)
    sign = _currency_sign(rawcol[unparseable]) if unparseable.any() and not o.currency else None
    checks.append(
        _mask_check(unparseable, f"numeric (a currency sign: currency={sign!r} removes it)" if sign else "numeric")
    )
    checks.append(_mask_check(_literal_nan(rawcol) | np.isinf(val.fillna(0.0)), "finite"))
    lo = f.minimum
    refunds = table == "transactions" and f.name == "amount"
    if refunds and o.returns == "keep":
        lo = None
    if lo is not None:
        name = f"at_least_{lo:g}" if lo else "non_negative"
        checks.append(_mask_check(val < lo, name + (" (returns='keep' keeps returns and refunds)" if refunds else "")))
    if f.maximum is not None:
        checks.append(_mask_check(val > f.maximum, f"at_most_{f.maximum:g}"))
    if f.whole:
        checks.append(_mask_check(np.isfinite(val) & (val % 1 != 0), "whole_number"))
    if f.allowed is not None:
        checks.append(_mask_check(val.notna() & ~val.isin(f.allowed), f"one_of_{list(f.allowed)}"))
    if f.amount:
        checks.append(
            _mask_check(
                np.isfinite(val) & (val.abs() > o.max_amount), f"magnitude_at_most_{o.max_amount:g} (max_amount)"
            )
        )
    return val, checks


def row_checks(
    raw: RawTable, table: str, typed: pd.DataFrame, duplicates: str
) -> tuple[dict[str, list[pa.Check]], list[pa.Check]]:
    """Step 4: the checks across columns: no exact duplicate rows (unless ``duplicates="keep"``)
    and the table's rules (:data:`RULES`), as (checks per column, checks of whole rows)."""
    on_columns: dict[str, list[pa.Check]] = {}
    on_rows = []
    if duplicates == "reject":
        dup = raw.frame.duplicated(keep="first")
        on_rows.append(pa.Check(lambda d, m=dup: ~m.reindex(d.index), name="no_exact_duplicates"))
    for rule in RULES.get(table, ()):
        if rule.column is None:
            on_rows.append(pa.Check(lambda d, r=rule: ~r.bad(d).fillna(False).astype(bool), name=rule.name))
        elif rule.column in typed:
            on_columns.setdefault(rule.column, []).append(_mask_check(rule.bad(typed), rule.name))
    return on_columns, on_rows


def quarantine_folder(quarantine_dir=None) -> Path:
    """Where rejected rows go: ``data/quarantine/`` or a folder inside it. Rejected rows are raw
    rows: anywhere else they would escape the owner-only ``data/`` and ``urm forget``."""
    root = paths.quarantine_dir()
    qdir = Path(quarantine_dir).expanduser() if quarantine_dir is not None else root
    if not qdir.is_absolute():
        qdir = paths.project_root() / qdir
    if not qdir.resolve().is_relative_to(root.resolve()):
        raise ValueError(
            f"quarantine_dir {qdir} lies outside {root}: rejected rows are raw rows and stay in the "
            "project's data/quarantine/ (owner-only, where urm forget finds them); name a folder "
            "inside it or leave quarantine_dir out"
        )
    return qdir


#: a currency sign before or after digits: never a sign, a bracket or a digit mark
_NOT_CURRENCY = r"\d\s.,'+\-()\u2212\u2013\ufe63\uff0d\u00a0\u202f\u2019"
_SIGNED = (
    re.compile(rf"^[+-]?\s*([^{_NOT_CURRENCY}]{{1,3}})\s*[+-]?\d[\d.,'\u00a0\u202f\u2019 ]*$"),
    re.compile(rf"^[+-]?\d[\d.,'\u00a0\u202f\u2019 ]*\s*([^{_NOT_CURRENCY}]{{1,3}})$"),
)


def _currency_sign(text: pd.Series) -> str | None:
    """The sign most of these unreadable amounts carry before or after their digits (``€12,50``,
    ``12.50 USD``), if they carry one: what ``currency=`` would remove."""
    signs = []
    for v in normal_signs(text.dropna().astype("string").str.strip().head(1000)).dropna():
        for pattern in _SIGNED:
            m = pattern.match(v)
            if m:
                signs.append(m.group(1))
                break
    if not signs:
        return None
    top = max(set(signs), key=signs.count)
    return top if signs.count(top) * 2 >= len(text.dropna().head(1000)) else None


def _mask_check(mask: pd.Series, name: str) -> pa.Check:
    """A row-level check that fails where ``mask`` (aligned with the table) is True."""
    m = mask.fillna(False).astype(bool) if hasattr(mask, "fillna") else mask
    return _check(lambda s, m=m: ~m.reindex(s.index, fill_value=False), name)


def _literal_nan(s: pd.Series) -> pd.Series:
    """Cells that spell a NaN or an infinity (``nan``, ``-inf``, ``Infinity``, ...)."""
    if pd.api.types.is_numeric_dtype(s):
        return pd.Series(np.isnan(s.astype(float)) & s.notna(), index=s.index)
    codes, uniques = pd.factorize(s, sort=False)
    hit = np.array([isinstance(v, str) and v.strip().lower() in _NAN_LITERALS for v in uniques] + [False])
    return pd.Series(hit[codes], index=s.index)


_NAN_LITERALS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def _erased_rows(ids: pd.Series, dataset: str | None) -> pd.Series:
    """Rows whose user was erased (``urm forget``) globally or in ``dataset``."""
    gone = erasure.erased_pseudonyms(dataset)
    if not gone:
        return pd.Series(False, index=ids.index)

    present = ids.notna()
    hit = pd.Series(False, index=ids.index)
    hit[present] = pseudonym_map(ids[present], erasure.ERASURE).isin(gone).to_numpy()
    return hit


def _subset(raw: RawTable, keep: np.ndarray) -> RawTable:
    import dataclasses

    lines = raw.lines[keep] if raw.lines is not None else None
    return dataclasses.replace(raw, frame=raw.frame[keep], lines=lines)


def run_schema(
    raw: RawTable,
    table: str,
    typed: pd.DataFrame,
    schema: pa.DataFrameSchema,
    mapping: dict[str, str],
    *,
    errors: Errors = "raise",
    quarantine_dir=None,
    dataset: str | None = None,
) -> pd.DataFrame:
    """Validate ``typed`` (parsed from ``raw``, same index) with ``schema``; raise or quarantine.

    ``mapping`` maps canonical column names to the file's column names, for the examples.
    """
    failures = _failure_cases(schema, typed)
    return _finish(
        raw,
        table,
        typed,
        failures,
        errors=errors,
        quarantine_dir=quarantine_dir,
        column_sources=mapping,
        dataset=dataset,
    )


def _failure_cases(schema: pa.DataFrameSchema, typed: pd.DataFrame) -> pd.DataFrame:
    """Run the pandera schema; return (column, check, index) of every failure."""
    import warnings

    try:
        with warnings.catch_warnings():
            # pandera's own error formatter concatenates failure cases that are all missing
            # (e.g. the blank ids a not_missing check reports) and pandas warns about it: the
            # warning is about pandera's internals, the failures it reports are complete
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"pandera\.")
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
    return f"{where}: {'(empty)' if val is None or (isinstance(val, float) and np.isnan(val)) else repr(val)}"


def _finish(
    raw: RawTable,
    table: str,
    typed: pd.DataFrame,
    fc: pd.DataFrame,
    *,
    errors: Errors,
    quarantine_dir,
    column_sources: dict[str, str] | None = None,
    dataset: str | None = None,
) -> pd.DataFrame:
    source = raw.source
    rejected_lines, n_lines_erased = _drop_erased_lines(raw, dataset)
    n_lines_rejected = len(rejected_lines)
    n_input = len(typed) + n_lines_rejected
    summary_rows = []
    # map canonical column back to the file's column, for examples
    colsrc = column_sources or {}
    for (col, check), grp in fc.groupby(["column", "check"], sort=False):
        idx = grp["index"].tolist()
        src = colsrc.get(col, col if col in raw.frame.columns else None)
        examples = [_example(raw, i, col, src) for i in idx[:MAX_EXAMPLES]]
        summary_rows.append(
            {
                "column": col if src in (None, col) else f"{col} (file column {src!r})",
                "check": check,
                "n_rows": len(idx),
                "examples": examples,
            }
        )
    for why in dict.fromkeys(r.split(":")[0].split(" (")[0] for _, _, r in rejected_lines):
        these = [(n, t, r) for n, t, r in rejected_lines if r.split(":")[0].split(" (")[0] == why]
        summary_rows.append(
            {
                "column": "(line)",
                "check": why,
                "n_rows": len(these),
                "examples": [f"line {n}: {t} ({r})" for n, t, r in these[:MAX_EXAMPLES]],
            }
        )
    failures = pd.DataFrame(summary_rows, columns=["column", "check", "n_rows", "examples"])
    bad_index = pd.Index(fc["index"].unique()) if len(fc) else pd.Index([])
    n_bad_rows = len(bad_index) + n_lines_rejected

    if n_bad_rows and errors == "raise":
        lines = [f"{source}: {n_bad_rows:,} of {n_input:,} rows fail the {table} contract:"]
        for r in summary_rows:
            lines.append(
                f"  - column {r['column']}, check '{r['check']}': {r['n_rows']:,} rows, e.g. {'; '.join(r['examples'])}"
            )
        lines.append(
            "Fix the file, map its columns with columns={...}, or pass errors='quarantine' "
            "to load the valid rows and set the rejected ones aside in data/quarantine/."
        )
        raise DataValidationError("\n".join(lines), source=source, failures=failures)

    valid = typed.drop(index=bad_index) if len(bad_index) else typed
    qpath = None
    if n_bad_rows:
        qdir = quarantine_folder(quarantine_dir)
        reasons = (
            fc.assign(reason=fc["column"].astype(str) + ": " + fc["check"])
            .groupby("index", sort=True)["reason"]
            .agg("; ".join)
        )
        rejected = raw.frame.loc[bad_index].copy()
        rejected = rejected.astype(object)
        rejected.insert(0, "_location", [raw.location(i) for i in rejected.index])
        rejected.insert(
            1, "_user_id", typed["user_id"].reindex(rejected.index).to_numpy() if "user_id" in typed else None
        )
        rejected["_reasons"] = reasons.reindex(rejected.index).to_numpy()
        if n_lines_rejected:
            extra = pd.DataFrame(
                {
                    "_location": [f"line {n}" for n, _, _ in rejected_lines],
                    "_reasons": [f"(line): {r}" for _, _, r in rejected_lines],
                    "_raw_line": [t for _, t, _ in rejected_lines],
                }
            )
            rejected = pd.concat([rejected, extra], ignore_index=True)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        stem = Path(source).name.replace(".", "_") if raw.fmt != "frame" else "frame"
        qpath = qdir / f"{dataset or 'unnamed'}-{table}-{stem}-{stamp}.csv"
        # every field quoted: a lone carriage return inside a value must not split the row
        write_csv(rejected, qpath, index=False, quoting=csv.QUOTE_ALL)
        log.warning(
            "%s: quarantined %d of %d rows to %s (%s)",
            source,
            n_bad_rows,
            n_input,
            qpath,
            ", ".join(f"{r['column']}/{r['check']}: {r['n_rows']}" for r in summary_rows),
        )
    report = ValidationReport(
        source=source,
        table=table,
        n_input=n_input + n_lines_erased,
        n_valid=len(valid),
        n_rejected=n_bad_rows,
        failures=failures,
        quarantine_path=qpath,
        n_erased=n_lines_erased,
    )
    valid = valid.reset_index(drop=True)
    valid.attrs["validation"] = report.to_dict()  # JSON-safe: attrs travel into Parquet metadata
    return valid


def _drop_erased_lines(raw: RawTable, dataset: str | None) -> tuple[list, int]:
    """Rejected raw lines (undecodable, ragged) that hold an erased user's id as one of their
    fields are dropped, never quarantined: ``(kept lines, number dropped)``."""
    lines = list(raw.rejected_lines)
    if not lines:
        return lines, 0

    gone = erasure.erased_pseudonyms(dataset)
    if not gone:
        return lines, 0
    import re

    kept = []
    for n, text, why in lines:
        fields = [f.strip().strip("'\"").strip() for f in re.split(r"[,;\t|\s]", text) if f.strip()]
        if set(pseudonymize(fields, erasure.ERASURE)) & gone:
            continue
        kept.append((n, text, why))
    return kept, len(lines) - len(kept)
