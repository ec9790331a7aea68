"""Turning the text of a cell into an id, a number or a timestamp, without guessing.

Each parser returns the parsed values (missing where a cell is blank or cannot be parsed) and
leaves the row-level checks (not missing, parseable, finite, in range) to the validator. A
column that can only be read by guessing a convention is refused as a whole with
:class:`ConventionError`, which the validator turns into a ``DataValidationError`` naming the
file, the column, the number of rows and the option that settles it.

**Ids** stay strings exactly as written, after removing surrounding whitespace (``str.strip``:
spaces, tabs, non-breaking spaces); leading zeros are kept. Integer columns (Parquet) become
their decimal digits; a floating-point id is accepted only when it is a whole number below
2**53 (``17.0`` -> ``"17"``).

**Null words** (:data:`NULL_WORDS`: ``NULL``, ``N/A``, ``NA``, ``None``, ``-`` ...) in an id column
are what an export writes for "no user" (a guest checkout), not a user: the validator refuses them
by default with their count, ``null_ids="drop"`` leaves their rows out (counted) and
``null_ids="keep"`` reads them as ids.

**Numbers** follow one convention per column: ``decimal`` (``"."`` default, or ``","``) and an
optional ``thousands`` separator (``,`` ``.`` space, ``'``, non-breaking space). A value that does
not fit the chosen convention but fits another one (``12,50`` under ``decimal="."``) fails the
whole column; a value that fits none (``ten``, ``12.3.4``) is an unparseable row. ``currency``
(e.g. ``"€"`` or ``"USD"``) is removed when it leads or trails a value; any other symbol makes the
value unparseable. Nothing else is stripped. With neither ``decimal`` nor ``thousands`` given, a
column whose every dotted value is digits in groups of three (``2.933``, ``1.250.000``) is refused:
``2.933`` is 2.933 with a decimal point and 2,933 with a thousands dot (German integers), and the
values without a dot (``933``) fit both; ``decimal="."`` or ``thousands="."`` settles it.

**Dates** without ``date_format``: every value must have the same layout (ISO ``2024-01-05``,
compact ``20240105``, ``05/01/2024``-style with ``/ . -``, or ``05 Jan 2024`` / ``Jan 5, 2024``),
optionally followed by a time and an offset. Day-first and month-first are never guessed: if any
value reads as two different dates (``05/01/2024``) the column is refused with both readings and
the ``date_format`` that fits every value. Two-digit years and numbers (Excel serial days) are
refused with the option that reads them (``date_format="%d/%m/%y"``, ``date_format="excel"``;
Unix seconds or milliseconds: ``date_format="epoch"``, ``"epoch_ms"``, UTC instants).

**Time zones** (the result is always a naive wall-clock time):

* ``tz`` given: naive values are local times in ``tz``; values with an offset are converted to
  ``tz``. A local time that does not exist (DST gap) or exists twice (DST fold) in ``tz`` is
  rejected with its row named (``dst="reject"``, default) or, with ``dst="shift"``, moved
  forward to the end of the gap / read as the first occurrence.
* ``tz`` not given: naive values are taken as written; values that all carry the same offset
  are taken as written at that offset; several offsets, or offsets mixed with naive values, are
  refused: ``tz=`` must say which zone to convert to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.errors import ConventionError

MAX_EXAMPLES = 5
#: Options that settle a number convention, most common first.
DECIMALS = (".", ",")
THOUSANDS = (None, ",", ".", " ", "'", "\u00a0", "\u202f", "\u2019")
#: names of the separators a command line cannot type (``--thousands nbsp``); the functions take
#: them too
THOUSANDS_NAMES = {"space": " ", "apostrophe": "'", "nbsp": "\u00a0", "narrow-nbsp": "\u202f", "rsquo": "\u2019"}
#: what ``--thousands`` accepts
THOUSANDS_OPTIONS = (",", ".", " ", "'", *THOUSANDS_NAMES)
#: minus signs besides '-': the typographic minus (U+2212), the en dash, the small and fullwidth
#: hyphen-minus: read as '-' (no other reading of a sign before a number exists)
_MINUS_SIGNS = "\u2212\u2013\ufe63\uff0d"
_SIGN_LIKE = set("+-()" + _MINUS_SIGNS)
EXACT_INT_FLOAT = 2**53


def blank(s: pd.Series) -> pd.Series:
    """Missing, empty or whitespace-only cells."""
    if not (s.dtype == object or pd.api.types.is_string_dtype(s)):
        return s.isna()
    arr = _as_arrow_text(s)
    if arr is not None:
        import pyarrow.compute as pc

        empty = pc.equal(pc.utf8_trim_whitespace(arr), "").fill_null(True)
        return pd.Series(empty.to_numpy(zero_copy_only=False), index=s.index, dtype=bool)
    return s.isna() | s.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)


def _as_arrow_text(s: pd.Series):
    """``s`` as an Arrow string array when it holds only strings and missing values, else None."""
    import pyarrow as pa

    try:
        return pa.array(s, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return None


def _on_unique(s: pd.Series, fn) -> pd.Series:
    """Apply ``fn`` (Series of unique non-missing values -> Series aligned to it) and map back."""
    vals = s.dropna()
    if vals.empty:
        return pd.Series(np.nan, index=s.index, dtype=float)
    codes, uniques = pd.factorize(vals, sort=False)
    out = fn(pd.Series(uniques, dtype=object))
    mapped = pd.Series(np.asarray(out)[codes], index=vals.index)
    return mapped.reindex(s.index)


# ------------------------------------------------------------------------------------ ids


#: Excel's formula errors: a cell whose formula failed holds no user (compared without case)
EXCEL_ERRORS = frozenset(
    {
        "#value!",
        "#n/a",
        "#ref!",
        "#div/0!",
        "#name?",
        "#num!",
        "#null!",
        "#spill!",
        "#calc!",
        "#field!",
        "#blocked!",
        "#connect!",
        "#busy!",
        "#unknown!",
        "#getting_data",
        "#python!",
    }
)
#: What exports write for "no user" in an id column (compared without case and surrounding
#: space), Excel's formula errors included
NULL_WORDS = (
    frozenset(
        {
            "null",
            "(null)",
            "<null>",
            "none",
            "nil",
            "na",
            "n/a",
            "nan",
            "-",
            "--",
            "?",
            "undefined",
            "unknown",
            "(blank)",
            "(empty)",
        }
    )
    | EXCEL_ERRORS
)

#: a character that makes an id need more than the checks SQL runs as well (docs/reliability.md,
#: "User ids"): anything but printable ASCII other than space, '"', '#' and '='
ID_NOT_PLAIN = r"[^!$-<>-~]"
#: the spellings of numbers the column rules look at (RE2 and Java agree on them)
ID_SCIENTIFIC = r"^[+-]?[0-9]+([.][0-9]+)?[eE][+-][0-9]+$"
ID_ZERO_FRACTION = r"^[+-]?[0-9]+[.]0+$"
ID_WHOLE = r"^[+-]?[0-9]+$"
ID_DECIMAL = r"^[+-]?[0-9]*[.][0-9]+$"
_EXCEL_GUARD = re.compile(r'="(.*)"', re.DOTALL)
#: spaces other than U+0020 (no-break, narrow, ideographic, ...): one space inside an id
_SPACES = {cp: " " for cp in (0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000)}

#: why a row's id is no id (a rejected row; errors="quarantine" sets it aside)
ID_NOT_WHOLE = "whole_number_id (a fractional or too large number)"
ID_CONTROL = "id_without_control_characters (a line break, tab, NUL or other control character inside)"
ID_NOT_UTF8 = "id_is_text (bytes that are not UTF-8)"
ID_LOST = "id_without_lost_characters (U+FFFD: a character lost in an encoding conversion)"
ID_EMPTY = "not_missing (nothing but invisible characters)"


def null_words(ids: pd.Series) -> pd.Series:
    """Rows whose id is one of :data:`NULL_WORDS`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _as_arrow_text(ids)
    if arr is None:
        arr = pa.array(ids.map(lambda v: None if v is None else str(v)).tolist(), type=pa.string())
    hit = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(arr)), value_set=pa.array(sorted(NULL_WORDS)))
    return pd.Series(np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool), index=ids.index)


def normalise_id_text(v: str) -> tuple[str, str | None]:
    """The id a cell's text holds (Unicode NFC; invisible format characters such as zero-width
    spaces removed; surrounding whitespace removed; Excel's text guard ``="00123"`` unwrapped;
    other spaces inside made one plain space) and, when it is no usable id, why."""
    import unicodedata

    t = unicodedata.normalize("NFC", v)
    if any(unicodedata.category(c) == "Cf" for c in t):
        t = "".join(c for c in t if unicodedata.category(c) != "Cf")
    t = t.strip()
    guard = _EXCEL_GUARD.fullmatch(t)
    if guard:
        t = guard.group(1).replace('""', '"').strip()
    t = t.translate(_SPACES)
    cats = {unicodedata.category(c) for c in t}
    if not t:
        return t, ID_EMPTY
    if cats & {"Cc", "Zl", "Zp"}:
        return t, ID_CONTROL
    if "Cs" in cats:
        return t, ID_NOT_UTF8
    if "\ufffd" in t:
        return t, ID_LOST
    return t, None


def _id_of_value(v) -> tuple[str | None, str | None, str | None]:
    """(text, row problem, column problem) of one value of an object column."""
    import datetime as dt
    import decimal

    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None, None, None
    if isinstance(v, str):
        return v, None, None
    if isinstance(v, (bytes, bytearray, memoryview)):
        try:
            return bytes(v).decode("utf-8"), None, None
        except UnicodeDecodeError:
            return None, ID_NOT_UTF8, None
    if isinstance(v, (bool, np.bool_)):
        return None, None, "true/false values"
    if isinstance(v, (int, np.integer)):
        return str(int(v)), None, None
    if isinstance(v, (float, np.floating, decimal.Decimal)):
        whole = np.isfinite(float(v)) and v == int(v) and abs(int(v)) < EXACT_INT_FLOAT
        return (str(int(v)), None, None) if whole else (None, ID_NOT_WHOLE, None)
    if isinstance(v, (dt.date, dt.time, dt.timedelta, np.datetime64, np.timedelta64)):
        return None, None, "dates or times"
    return None, None, f"{type(v).__name__} values (nested: which of their fields is the id?)"


def parse_id(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``(ids, problems)``: each row's id as text (None where blank or no id) and, for the
    rows whose non-blank value is no usable id, why (a rejected row's reason; None elsewhere).

    The rules (docs/reliability.md, "User ids"): integers are their decimal digits; floats and
    decimals only when whole (``17.0`` -> ``"17"``); bytes as UTF-8 text; text by
    :func:`normalise_id_text`; then the column's rules (:func:`check_id_forms`). A column whose
    ids cannot be read without guessing raises :class:`ConventionError`."""
    problems = pd.Series(None, index=s.index, dtype=object)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_bool_dtype(s) and s.notna().any():
        raise _id_type_error(s, "true/false values")
    if (pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s)) and s.notna().any():
        raise _id_type_error(s, "dates or times")
    if pd.api.types.is_integer_dtype(s):
        out = s.astype("string").astype(object)
        out[out.isna()] = None
        return out.astype(object), problems
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(v) & (np.mod(v, 1) == 0) & (np.abs(v) < EXACT_INT_FLOAT)
        out = pd.Series([str(int(x)) if good else None for x, good in zip(v, ok, strict=True)], index=s.index)
        problems[~ok & ~np.isnan(v)] = ID_NOT_WHOLE
        return out.astype(object), problems
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        text = s.where(s.notna(), None)
    else:
        rows = [_id_of_value(v) for v in s.tolist()]
        kinds = [k for _, _, k in rows if k]
        if kinds:
            raise _id_type_error(s, kinds[0], n=len(kinds))
        text = pd.Series([t for t, _, _ in rows], index=s.index, dtype=object)
        problems = pd.Series([p for _, p, _ in rows], index=s.index, dtype=object)
    present = text.notna()
    if not present.any():
        return pd.Series([None] * len(s), index=s.index, dtype=object), problems
    codes, uniques = pd.factorize(text[present], sort=False)
    canon, why = _normalise_unique(pd.Series(uniques, dtype=object))
    counts = np.bincount(codes, minlength=len(uniques))
    canon = check_id_forms(canon, counts, why.isna().to_numpy(), n_rows=len(s))
    # back to the rows through the codes (an empty id always has a problem: ID_EMPTY)
    canon_u, why_u = canon.to_numpy(dtype=object), why.to_numpy(dtype=object)
    canon_u[pd.notna(why_u)] = None
    rows = present.to_numpy()
    out = np.full(len(s), None, dtype=object)
    out[rows] = canon_u[codes]
    why_rows = why_u[codes]
    earlier = problems.to_numpy(dtype=object)
    earlier[rows] = np.where(pd.isna(why_rows), earlier[rows], why_rows)
    out[pd.notna(earlier)] = None
    return pd.Series(out, index=s.index, dtype=object), pd.Series(earlier, index=s.index, dtype=object)


def _normalise_unique(u: pd.Series) -> tuple[pd.Series, pd.Series]:
    """:func:`normalise_id_text` of distinct texts, in Python only for those that need it (a
    character outside :data:`ID_NOT_PLAIN`'s set): (ids, problems)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(u.tolist(), type=pa.string())
    odd = pc.or_(pc.match_substring_regex(arr, ID_NOT_PLAIN), pc.equal(pc.utf8_length(arr), 0))
    odd = np.asarray(odd.to_numpy(zero_copy_only=False), dtype=bool)
    canon = u.copy()
    why = pd.Series(None, index=u.index, dtype=object)
    for i in np.flatnonzero(odd):
        canon.iat[i], why.iat[i] = normalise_id_text(u.iat[i])
    return canon, why


def _id_type_error(s: pd.Series, what: str, n: int | None = None) -> ConventionError:
    n = int(s.notna().sum()) if n is None else n
    return ConventionError(
        f"the ids are stored as {what}, not as text or whole numbers: nothing says which user each row "
        "is. Map the column that holds the user's id (columns={'user_id': ...}), or write it as text or "
        "integers in the export (a nested value: its id field as a column of its own)",
        n_rows=n,
        option="columns={'user_id': ...}",
        check="id_type",
    )


def check_id_forms(canon: pd.Series, counts: np.ndarray, usable: np.ndarray, *, n_rows: int) -> pd.Series:
    """The column rules over a column's distinct ids (``canon``, normalised; ``counts``: rows
    each; ``usable``: not a rejected row's): refuse ids in scientific notation (digits a
    spreadsheet rounded away), whole numbers written both with and without a zero decimal part
    (``123.0`` beside ``123``) and ids that differ only in Unicode compatibility forms
    (fullwidth ``１２３`` beside ``123``); read a column whose whole numbers all carry a zero
    decimal part (a float export, ``123.0``) as their digits. Returns the ids."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(canon.tolist(), type=pa.string())

    def hits(pattern: str) -> np.ndarray:
        m = pc.match_substring_regex(arr, pattern).to_numpy(zero_copy_only=False)
        return np.asarray(m, dtype=bool) & usable

    sci = hits(ID_SCIENTIFIC)
    if sci.any():
        raise refuse_scientific_ids(int(counts[sci].sum()), canon[sci].tolist())
    frac, whole = hits(ID_ZERO_FRACTION), hits(ID_WHOLE)
    if frac.any() and whole.any():
        raise refuse_two_spellings(
            int(counts[frac].sum()), int(counts[whole].sum()), canon[frac].tolist(), canon[whole].tolist()
        )
    if frac.any() and not (hits(ID_DECIMAL) & ~frac).any():  # a float export: 123.0 is 123
        canon = canon.copy()
        canon[frac] = canon[frac].str.replace(r"\.0+$", "", regex=True)
    plain = np.asarray(pc.string_is_ascii(arr).to_numpy(zero_copy_only=False), dtype=bool)
    wide = canon[~plain & usable].tolist()
    groups = compatibility_groups(wide, set(canon[usable])) if wide else []
    if groups:
        n = int(counts[canon.isin({v for g in groups for v in g}).to_numpy() & usable].sum())
        raise refuse_compatibility_forms(n, groups)
    return canon


def compatibility_groups(non_ascii: list[str], present: set) -> list[list[str]]:
    """Groups of two or more ids (of ``present``) that Unicode's compatibility normalisation
    (NFKC) makes one: fullwidth digits and letters, ligatures, superscripts."""
    import unicodedata

    by_key: dict[str, set] = {}
    for v in non_ascii:
        k = unicodedata.normalize("NFKC", v)
        if k != v:
            by_key.setdefault(k, {k} & present).add(v)
    return [sorted(g) for g in by_key.values() if len(g) > 1]


def refuse_scientific_ids(n: int, examples: list[str]) -> ConventionError:
    ex = examples[0]
    try:
        lo, hi = _rounding_range(ex)
        span = f" ({ex} stands for every number from {lo:,} to {hi:,})"
    except (ValueError, OverflowError):
        span = ""
    return ConventionError(
        f"{n:,} ids are numbers in scientific notation, e.g. {', '.join(map(repr, examples[:3]))}: a "
        f"spreadsheet's display of long numbers, rounded{span}, so different users share one id. The digits "
        "are gone from this file: export the id column again as text (in Excel: format the column as Text "
        "before saving)",
        n_rows=n,
        option="an export with the ids as text",
        check="scientific_notation_id",
    )


def _rounding_range(text: str) -> tuple[int, int]:
    from decimal import Decimal

    mantissa, exp = text.lower().split("e")
    digits = len(mantissa.lstrip("+-").split(".")[1]) if "." in mantissa else 0
    half = Decimal(1).scaleb(int(exp) - digits) / 2
    value = Decimal(text)
    return int((value - half).to_integral_value(rounding="ROUND_CEILING")), int(
        (value + half).to_integral_value(rounding="ROUND_FLOOR")
    ) - 1


def refuse_two_spellings(n_frac: int, n_whole: int, frac: list[str], whole: list[str]) -> ConventionError:
    return ConventionError(
        f"{n_frac:,} ids are whole numbers written with a decimal part (e.g. {', '.join(map(repr, frac[:2]))}) "
        f"and {n_whole:,} without (e.g. {', '.join(map(repr, whole[:2]))}): the same user written two ways (a "
        "float column of one export beside text of another) or two different ids cannot be told. Write the ids "
        "one way in the export (as text, without '.0')",
        n_rows=n_frac,
        option="ids written one way (without '.0')",
        check="whole_number_id_written_two_ways",
    )


def refuse_compatibility_forms(n: int, groups: list[list[str]]) -> ConventionError:
    shown = "; ".join(" and ".join(map(repr, g[:3])) for g in groups[:3])
    return ConventionError(
        f"{n:,} rows have ids that differ only in Unicode compatibility forms (fullwidth digits, ligatures, "
        f"superscripts), e.g. {shown}: one user typed two ways or two users cannot be told. Write the ids one "
        "way in the export",
        n_rows=n,
        option="ids written one way",
        check="id_compatibility_forms",
    )


# -------------------------------------------------------------------------------- numbers


def _number_pattern(decimal: str, thousands: str | None) -> re.Pattern:
    d = re.escape(decimal)
    plain = rf"(?:\d+(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?"
    if thousands is None:
        body = plain
    else:
        t = re.escape(thousands)
        body = rf"(?:\d{{1,3}}(?:{t}\d{{3}})+(?:{d}\d*)?|{plain})"
    return re.compile(rf"^[+-]?{body}$")


def _convention_name(decimal: str, thousands: str | None) -> str:
    return f"decimal={decimal!r}" + (f", thousands={thousands!r}" if thousands else "")


def _convention_cli(decimal: str, thousands: str | None) -> str:
    """The same convention as command-line options (``--decimal , --thousands nbsp``)."""
    if thousands is None:
        return f"--decimal {decimal}"
    names = {v: k for k, v in THOUSANDS_NAMES.items()}
    return f"--decimal {decimal} --thousands {thousands if thousands in ',.' else names[thousands]}"


def thousands_separator(thousands: str | None) -> str | None:
    """``thousands`` itself, or the separator it names (:data:`THOUSANDS_NAMES`)."""
    return THOUSANDS_NAMES.get(thousands, thousands) if isinstance(thousands, str) else thousands


def normal_signs(u: pd.Series) -> pd.Series:
    """Negative amounts in every spelling as a leading '-': the typographic minus signs
    (``−12.50``), a trailing minus (``12.50-``, SAP and mainframe exports) and accounting
    parentheses (``(12.50)``). A value with two signs stays unreadable."""
    signed = u.str.contains(f"[-(){_MINUS_SIGNS}]", regex=True).fillna(False).astype(bool)
    if not signed.any():  # most columns: nothing to rewrite, one scan
        return u
    v = u[signed]
    v = v.str.replace(f"^([{_MINUS_SIGNS}])", "-", regex=True)
    v = v.str.replace(f"([{_MINUS_SIGNS}])$", "-", regex=True)
    v = v.str.replace(r"^\((.+)\)$", r"-\1", regex=True)
    v = v.str.replace(r"^(?=.*\d)([^+\-].*?)\s*-$", r"-\1", regex=True)
    u = u.copy()
    u[signed] = v
    return u


def _strip_currency(u: pd.Series, currency: str | None) -> pd.Series:
    if not currency:
        return u
    c = re.escape(currency)
    # "€12,50", "€ 12,50", "-€12,50", "12,50 €", "12,50€"
    u = u.str.replace(rf"^([+-]?)\s*{c}\s*", r"\1", regex=True)
    return u.str.replace(rf"\s*{c}$", "", regex=True)


def parse_number(
    s: pd.Series, *, decimal: str | None = None, thousands: str | None = None, currency: str | None = None
) -> pd.Series:
    """Floats (NaN where blank or unparseable; ``inf``/``nan`` literals as such, for the
    validator to reject). Raises :class:`ConventionError` when some values fit another
    decimal/thousands convention than the one chosen. ``decimal=None`` (the default, as in
    ``load_table``): ``"."``, unless the column's dotted values are all digit groups of three
    (ambiguous: refused, module docstring); called directly it refuses ``2.933`` as the loaders do."""
    unsaid = decimal is None and thousands is None
    thousands = thousands_separator(thousands)
    if decimal is None:  # thousands='.' alone (the dotted-groups hint) means a decimal comma
        decimal = "," if thousands == "." else "."
    if decimal not in DECIMALS:
        raise ValueError(f"decimal must be '.' or ',', not {decimal!r}")
    if thousands not in THOUSANDS:
        raise ValueError(
            f"thousands must be one of {THOUSANDS[1:]} (or their names {sorted(THOUSANDS_NAMES)}) or None, "
            f"not {thousands!r}"
        )
    if thousands == decimal:
        raise ValueError(f"thousands and decimal are both {decimal!r}")
    if currency is not None and (not str(currency).strip() or set(str(currency)) <= _SIGN_LIKE | set("0123456789.,' ")):
        raise ValueError(
            f"currency={currency!r} is not a currency sign or code: signs are read as signs (12.50- and "
            "\u221212.50 are negative amounts), digits and marks as numbers"
        )
    if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
        raise ConventionError(
            f"the amounts are stored as {s.dtype} values (dates or durations), not numbers: write them as "
            "numbers in the export",
            n_rows=int(s.notna().sum()),
            option="numbers in the export",
            check="amounts_are_numbers",
        )
    if pd.api.types.is_bool_dtype(s):
        return pd.Series(np.nan, index=s.index, dtype=float)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    text = s.where(~blank(s))
    if text.dropna().map(lambda v: not isinstance(v, str)).any():
        # Parquet decimals, Python numbers in an object column
        def conv(v):
            if isinstance(v, str):
                return v
            try:
                return float(v)
            except (TypeError, ValueError):
                return None

        text = text.map(conv, na_action="ignore")
        numeric = text.map(lambda v: isinstance(v, float)).astype(bool) & text.notna()
        if numeric.all():
            return text.astype(float)
    chosen = _number_pattern(decimal, thousands)

    def parse(u: pd.Series) -> pd.Series:
        num = u.map(lambda v: v if isinstance(v, float) else np.nan)
        txt = u.map(lambda v: v if isinstance(v, str) else None).astype("string").str.strip()
        txt = _strip_currency(normal_signs(txt), currency)
        ok = txt.str.match(chosen).fillna(False).astype(bool)
        normal = txt.where(ok)
        if thousands:
            normal = normal.str.replace(thousands, "", regex=False)
        normal = normal.str.replace(decimal, ".", regex=False)
        # float(), not to_numeric: 1e999 is inf (rejected as not finite), not a parse failure
        val = pd.Series(
            [float(v) if isinstance(v, str) else np.nan for v in normal.astype(object)], index=normal.index, dtype=float
        )
        lit = txt.str.lower().str.fullmatch(r"[+-]?(nan|inf|infinity)").fillna(False).astype(bool)
        val = val.where(~lit, pd.to_numeric(txt.where(lit).str.lower().str.replace("infinity", "inf"), errors="coerce"))
        return val.where(num.isna(), num)

    values = _on_unique(text, parse)
    _check_convention(text, values, decimal, thousands, currency)
    if unsaid:
        _check_dotted_groups(text, currency)
    return values.astype(float)


_GROUPED = re.compile(r"[+-]?\d{1,3}(\.\d{3})+")


def _check_dotted_groups(text: pd.Series, currency: str | None) -> None:
    """Refuse a column whose every dotted value is digit groups of three (``2.933``): a decimal
    point and a thousands dot read it as different numbers, and nothing in the column tells."""
    raw = pd.Series(pd.unique(text.dropna().to_numpy(dtype=object)), dtype=object)  # distinct values decide
    raw = raw[raw.map(lambda v: isinstance(v, str))]
    vals = _strip_currency(normal_signs(raw.astype("string").str.strip()), currency)
    has_dot = vals.str.contains(".", regex=False).fillna(False).astype(bool)
    dotted = vals[has_dot]
    if dotted.empty:
        return
    grouped = dotted.str.fullmatch(_GROUPED).fillna(False).astype(bool)
    if not grouped.all():
        return
    examples = list(dict.fromkeys(dotted.tolist()))[:2]
    first = examples[0]
    n_rows = int(text.isin(set(raw[has_dot])).sum())
    raise ConventionError(
        f"every one of the {n_rows:,} value(s) with a dot is digits in groups of three, e.g. "
        f"{', '.join(map(repr, examples))}: {first!r} is {_to_float(first, '.', None):g} with a decimal point and "
        f"{_to_float(first, ',', '.'):g} with a thousands dot (German integers), and values without a dot fit both. "
        f"Say which: decimal='.' or thousands='.'",
        n_rows=n_rows,
        option="decimal='.' or thousands='.'",
        check="decimal_or_thousands_dot",
    )


def _check_convention(text: pd.Series, values: pd.Series, decimal, thousands, currency) -> None:
    failed = text.notna() & values.isna()
    if not failed.any():
        return
    cand = text[failed].map(lambda v: v if isinstance(v, str) else None).dropna().astype("string").str.strip()
    cand = _strip_currency(normal_signs(cand), currency)
    cand = cand[cand.str.contains(r"\d[,.'\s\u00a0\u202f\u2019]\d|^[+-]?[,.]\d").fillna(False).astype(bool)]
    others = [(d, t) for d in DECIMALS for t in THOUSANDS if t != d and (d, t) != (decimal, thousands)]
    fits: dict[tuple, pd.Series] = {}
    for d, t in others:
        m = cand.str.match(_number_pattern(d, t)).fillna(False).astype(bool)
        if m.any():
            fits[(d, t)] = m
    if not fits:
        return
    mismatched = pd.concat(fits.values(), axis=1).any(axis=1)
    n = int(mismatched.sum())
    examples = list(dict.fromkeys(cand[mismatched].tolist()))[:MAX_EXAMPLES]
    # the option to suggest: the simplest convention that fits the most of these values
    best = max(fits, key=lambda k: (int(fits[k].sum()), k[1] is None))
    option = _convention_name(*best)
    readings = []
    for ex in examples[:2]:
        alt = [(d, t) for (d, t) in fits if re.match(_number_pattern(d, t), ex)]
        by_value = {}
        for d, t in sorted(alt, key=lambda k: k[1] is not None):
            by_value.setdefault(_to_float(ex, d, t), _convention_name(d, t))
        r = ", ".join(f"{v:g} with {name}" for v, name in list(by_value.items())[:2])
        readings.append(f"{ex!r} ({r})")
    raise ConventionError(
        f"{n:,} value(s) do not fit {_convention_name(decimal, thousands)} but do fit another number "
        f"convention, e.g. {'; '.join(readings)}. Nothing is stripped or guessed: pass {option} "
        f"({_convention_cli(*best)}; or the convention of the file) to read them.",
        n_rows=int(text.index.isin(cand[mismatched].index).sum()),
        option=option,
        check="number_convention",
    )


def _to_float(v: str, decimal: str, thousands: str | None) -> float:
    if thousands:
        v = v.replace(thousands, "")
    return float(v.replace(decimal, "."))


# ---------------------------------------------------------------------------------- dates

#: a UTC offset in any of its spellings: Z, UTC, GMT, +05, +0530, +05:30, +5:30, UTC+05:30,
#: GMT+0100, UTC-3 (whether it is a real offset, -14:00 to +14:00, is checked apart)
_OFFSET = r"Z|(?:UTC|GMT)(?:[+-]\d{1,2}(?::?\d{2})?)?|[+-]\d{1,2}:\d{2}|[+-]\d{2}(?:\d{2})?"
_ZONE = rf"(?:\s*(?P<z>{_OFFSET}))?"
# a time, optionally followed by a UTC offset (an offset without a time is not a layout)
_TIME = rf"(?:[T ](?P<H>\d{{1,2}}):(?P<M>\d{{2}})(?::(?P<S>\d{{2}})(?:\.(?P<f>\d{{1,9}}))?)?{_ZONE})?"
_MONTH_RE = r"(?P<mon>[A-Za-z]{3,9})"
_FULL_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
#: layout name -> (regex, how it is shown to the user)
LAYOUTS = {
    "iso": (rf"^(?P<Y>\d{{4}})-(?P<m>\d{{1,2}})-(?P<d>\d{{1,2}}){_TIME}$", "%Y-%m-%d"),
    "ymd_slash": (rf"^(?P<Y>\d{{4}})/(?P<m>\d{{1,2}})/(?P<d>\d{{1,2}}){_TIME}$", "%Y/%m/%d"),
    "ymd_dot": (rf"^(?P<Y>\d{{4}})\.(?P<m>\d{{1,2}})\.(?P<d>\d{{1,2}}){_TIME}$", "%Y.%m.%d"),
    "compact": (
        rf"^(?P<Y>\d{{4}})(?P<m>\d{{2}})(?P<d>\d{{2}})"
        rf"(?:T(?P<H>\d{{2}})(?P<M>\d{{2}})(?P<S>\d{{2}})?{_ZONE})?$",
        "%Y%m%d",
    ),
    "ab_slash": (rf"^(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}})/(?P<Y>\d{{4}}){_TIME}$", "dd/mm/yyyy or mm/dd/yyyy"),
    "ab_dot": (rf"^(?P<a>\d{{1,2}})\.(?P<b>\d{{1,2}})\.(?P<Y>\d{{4}}){_TIME}$", "dd.mm.yyyy or mm.dd.yyyy"),
    "ab_dash": (rf"^(?P<a>\d{{1,2}})-(?P<b>\d{{1,2}})-(?P<Y>\d{{4}}){_TIME}$", "dd-mm-yyyy or mm-dd-yyyy"),
    "d_mon_y": (rf"^(?P<d>\d{{1,2}})[ -]{_MONTH_RE}[ -](?P<Y>\d{{4}}){_TIME}$", "%d %b %Y"),
    "mon_d_y": (rf"^{_MONTH_RE} (?P<d>\d{{1,2}}),? (?P<Y>\d{{4}}){_TIME}$", "%b %d, %Y"),
}
_TWO_DIGIT_YEAR = re.compile(r"^\d{1,2}([/.-])\d{1,2}\1\d{2}(?:[T ].*)?$")
_SERIAL = re.compile(r"^\d{1,6}(?:\.\d+)?$")
_EPOCH = re.compile(r"^\d{9,10}(?:\.\d+)?$")  # Unix seconds: 1973-03 .. 2286-11
_EPOCH_MS = re.compile(r"^\d{12,13}$")  # Unix milliseconds
_OFFSET_AT_END = rf"({_OFFSET})$"
#: offsets in use lie between UTC-12:00 and UTC+14:00; -14:00 is allowed for symmetry
MAX_OFFSET_MINUTES = 14 * 60
#: the offset of an impossible offset (``+25:00``, ``+05:99``) while parsing: the row is rejected
_BAD_OFFSET = -np.inf


@dataclass
class ParsedDates:
    """Naive wall-clock timestamps and the rows a DST rule rejected."""

    values: pd.Series
    dst_gap: pd.Series
    dst_fold: pd.Series
    #: an offset that is no real one (``+25:00``, ``+05:99``)
    bad_offset: pd.Series | None = None
    #: a stored time pandas cannot hold (before 1678 or after 2261: a year-2999 timestamp)
    out_of_range: pd.Series | None = None


def _offset_minutes(z: pd.Series) -> pd.Series:
    """Minutes east of UTC of offset strings (``Z``, ``UTC``, ``+05:00``, ``-0330``, ``+05``,
    ``+5:30``, ``GMT+0100``); NaN where there is none, ``_BAD_OFFSET`` where it is no real offset
    (hours beyond 14, minutes beyond 59). Computed once per distinct string."""

    def one(v):
        if not isinstance(v, str) or not v:
            return np.nan
        v = v.upper().strip()
        if v.startswith(("UTC", "GMT")):
            v = v[3:]
        if v in ("Z", ""):
            return 0.0
        m = re.fullmatch(r"([+-])(\d{1,2}):?(\d{2})?", v)
        if not m:
            return _BAD_OFFSET
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        total = hours * 60 + minutes
        if minutes > 59 or total > MAX_OFFSET_MINUTES:
            return _BAD_OFFSET
        return float(-total if m.group(1) == "-" else total)

    codes, uniques = pd.factorize(z, sort=False)
    table = np.array([one(v) for v in uniques] + [np.nan])
    return pd.Series(table[codes], index=z.index)


def _arrow_strings(u: pd.Series):
    import pyarrow as pa

    return pa.array(u.astype(object).where(u.notna(), None).tolist(), type=pa.string())


def _ints(col) -> np.ndarray:
    """A string array of digits (a group of an ``extract_regex`` result) as float, NaN where empty."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
    return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False).astype(float)


def _assemble(Y, m, d, H=None, M=None, S=None, ns=None) -> np.ndarray:
    """datetime64[ns] from component arrays (floats, NaN = absent); NaT where invalid."""
    n = len(Y)
    zero = np.zeros(n)
    H = zero if H is None else np.nan_to_num(H, nan=0.0)
    M = zero if M is None else np.nan_to_num(M, nan=0.0)
    S = zero if S is None else np.nan_to_num(S, nan=0.0)
    ns = zero if ns is None else np.nan_to_num(ns, nan=0.0)
    with np.errstate(invalid="ignore"):
        ok = (
            np.isfinite(Y)
            & np.isfinite(m)
            & np.isfinite(d)
            & (Y >= 1678)
            & (Y <= 2261)
            & (m >= 1)
            & (m <= 12)
            & (d >= 1)
            & (H <= 23)
            & (M <= 59)
            & (S <= 59)
        )
    Yc, mc, dc = (np.where(ok, x, 1).astype(np.int64) for x in (np.where(ok, Y, 1970), m, d))
    month = (Yc - 1970) * 12 + (mc - 1)
    start = month.astype("datetime64[M]").astype("datetime64[D]")
    length = ((month + 1).astype("datetime64[M]").astype("datetime64[D]") - start).astype(np.int64)
    ok &= dc <= length
    day = start + (np.where(ok, dc, 1) - 1).astype("timedelta64[D]")
    out = (
        day.astype("datetime64[ns]")
        + (H.astype(np.int64) * 3600 + M.astype(np.int64) * 60 + S.astype(np.int64))
        * np.timedelta64(1_000_000_000, "ns")
        + ns.astype(np.int64).astype("timedelta64[ns]")
    )
    out[~ok] = np.datetime64("NaT")
    return out


def _layout_of(arr) -> np.ndarray:
    """The index (into LAYOUTS) of the layout of each value; -1 when it fits none."""
    import pyarrow.compute as pc

    names = np.full(len(arr), -1)
    for i, (_, (rx, _)) in enumerate(LAYOUTS.items()):
        todo = names < 0
        if not todo.any():
            break
        hit = pc.match_substring_regex(arr, rx, ignore_case=True).to_numpy(zero_copy_only=False)
        hit = np.asarray(hit, dtype=object) == True  # noqa: E712 (nulls are not hits)
        names[todo & hit] = i
    return names


def _parts(arr, layout: str) -> dict[str, np.ndarray]:
    import pyarrow.compute as pc

    struct = pc.extract_regex(arr, "(?i)" + LAYOUTS[layout][0])
    groups = {f.name for f in struct.type}
    out = {g: _ints(struct.field(g)) for g in groups if g in ("Y", "m", "d", "a", "b", "H", "M", "S")}
    if "f" in groups:
        out["ns"] = _ints(pc.utf8_rpad(struct.field("f"), 9, "0"))
    if "mon" in groups:
        mon = pd.Series(struct.field("mon").to_numpy(zero_copy_only=False), dtype=object)

        def month(v):  # "Jan", "January" (any case); nothing else is read as a month
            v = str(v).lower()
            for i, name in enumerate(_FULL_MONTHS, start=1):
                if v in (name, name[:3]):
                    return float(i)
            return np.nan

        codes, uniques = pd.factorize(mon, sort=False)
        out["m"] = np.array([month(v) for v in uniques] + [np.nan])[codes]
    out["z"] = (
        pd.Series(struct.field("z").to_numpy(zero_copy_only=False), dtype=object)
        if "z" in groups
        else pd.Series([None] * len(arr), dtype=object)
    )
    return out


def _examples(values, k=2) -> str:
    return ", ".join(repr(str(v)) for v in list(dict.fromkeys(values))[:k])


def _refuse(message: str, option: str, check: str, mask) -> ConventionError:
    """A ConventionError whose row count is filled in from ``mask`` over the unique values."""
    err = ConventionError(message, n_rows=-1, option=option, check=check)
    err.unique_mask = np.asarray(mask, dtype=bool)
    return err


def _infer(u: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse unique text values with one layout for the column; return (wall-clock naive
    timestamps as written, offset minutes or NaN). Raise ConventionError if that needs a guess."""
    arr = _arrow_strings(u)
    layout_idx = _layout_of(arr)
    names = list(LAYOUTS)
    found = layout_idx >= 0
    if not found.any():
        _refuse_unknown(u)
        return pd.Series(pd.NaT, index=u.index, dtype="datetime64[ns]"), pd.Series(np.nan, index=u.index)
    kinds = list(dict.fromkeys(layout_idx[found].tolist()))
    if len(kinds) > 1:
        shown = "; ".join(f"{_examples(u[layout_idx == k], 1)} ({LAYOUTS[names[k]][1]})" for k in kinds[:3])
        raise _refuse(
            f"the dates are written in {len(kinds)} different layouts ({shown}): one column, one "
            f"format. Pass date_format= with the layout of the file; rows in another layout are then "
            f"rejected.",
            'date_format="..."',
            "one_date_layout",
            found,
        )
    layout = names[kinds[0]]
    p = _parts(arr, layout)
    if layout.startswith("ab_"):
        wall = _day_or_month_first(u, p, found, sep={"ab_slash": "/", "ab_dot": ".", "ab_dash": "-"}[layout])
    else:
        wall = _assemble(p["Y"], p["m"], p["d"], p.get("H"), p.get("M"), p.get("S"), p.get("ns"))
        if "mon" not in p:
            _refuse_year_day_month(u, p, found, wall, layout)
    wall = np.where(found, wall, np.datetime64("NaT"))
    offsets = _offset_minutes(p["z"]).to_numpy()
    wall = np.where(offsets == _BAD_OFFSET, np.datetime64("NaT"), wall)
    return (
        pd.Series(wall, index=u.index, dtype="datetime64[ns]"),
        pd.Series(np.where(found, offsets, np.nan), index=u.index),
    )


#: what may follow the date in a value, tried in order by :func:`_fitting_format`
_TIME_SUFFIXES = (
    "",
    " %H:%M",
    " %H:%M:%S",
    " %H:%M:%S.%f",
    "T%H:%M",
    "T%H:%M:%S",
    "T%H:%M:%S.%f",
    " %I:%M %p",
    " %I:%M:%S %p",
)


def _fitting_format(values: pd.Series, date_fmt: str) -> str:
    """The layout a hint suggests: ``date_fmt`` with the time part that reads every one of
    ``values`` (``12/1/2010 8:26`` needs ``%m/%d/%Y %H:%M``, not ``%m/%d/%Y``): a hint is tested
    on the values it was made from. ``date_fmt`` alone when no suffix reads them all."""
    sample = values.astype(str).str.strip()
    sample = pd.concat([sample.head(200), sample.tail(200)]).drop_duplicates()
    if sample.empty:
        return date_fmt
    for suffix in _TIME_SUFFIXES:
        fmt = date_fmt + suffix
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().all():
            return fmt
    return date_fmt


def _refuse_year_day_month(u: pd.Series, p: dict, found: np.ndarray, wall: np.ndarray, layout: str) -> None:
    """A year-first column some of whose dates are impossible as year-month-day but fit
    year-day-month (``2024-13-01``): the column may be year-day-month, and then its other dates
    read swapped. Refused whole, never row by row (setting the impossible ones aside would
    read the rest swapped)."""
    swapped = _assemble(p["Y"], p["d"], p["m"])
    only_swapped = found & np.isnat(wall) & ~np.isnat(swapped)
    if not only_swapped.any():
        return
    fmt = LAYOUTS[layout][1]
    ydm = fmt.replace("%m", "%M_").replace("%d", "%m").replace("%M_", "%d")
    # each hint with the time part that reads the values (tested on the values it came from)
    fmt, ydm = _fitting_format(u[found & ~only_swapped], fmt), _fitting_format(u[found], ydm)
    both = found & ~np.isnat(wall) & ~np.isnat(swapped) & (wall.astype("datetime64[D]") != swapped)
    i = int(np.flatnonzero(only_swapped)[0])
    said = f"{u.iloc[i]!r} is no date as {fmt} but is {pd.Timestamp(swapped[i]):%Y-%m-%d} as {ydm}"
    if both.any():
        j = int(np.flatnonzero(both)[0])
        said += f", and {u.iloc[j]!r} reads as {pd.Timestamp(wall[j]):%Y-%m-%d} or {pd.Timestamp(swapped[j]):%Y-%m-%d}"
    raise _refuse(
        f"year-month-day or year-day-month is not guessed: {said}. Setting the impossible dates aside would read "
        f'the others in the wrong order if the file is year-day-month: pass date_format="{ydm}" if it is, or '
        f'date_format="{fmt}" to read it as year-month-day and reject those rows.',
        f'date_format="{ydm}" or "{fmt}"',
        "year_month_or_day_first",
        only_swapped | both,
    )


def _day_or_month_first(u: pd.Series, p: dict, found: np.ndarray, sep: str) -> np.ndarray:
    rest = (p.get("H"), p.get("M"), p.get("S"), p.get("ns"))
    day_first = _assemble(p["Y"], p["b"], p["a"], *rest)
    month_first = _assemble(p["Y"], p["a"], p["b"], *rest)
    df_ok, mf_ok = ~np.isnat(day_first) & found, ~np.isnat(month_first) & found
    both = df_ok & mf_ok & (day_first != month_first)
    only_day, only_month = df_ok & ~mf_ok, mf_ok & ~df_ok
    if not both.any() and not (only_day.any() and only_month.any()):
        return np.where(df_ok, day_first, month_first)
    fmt_d = _fitting_format(u[df_ok], f"%d{sep}%m{sep}%Y")
    fmt_m = _fitting_format(u[mf_ok], f"%m{sep}%d{sep}%Y")
    said = []
    if both.any():
        i = int(np.flatnonzero(both)[0])
        said.append(
            f"{u.iloc[i]!r} is {pd.Timestamp(day_first[i]):%Y-%m-%d} day-first and "
            f"{pd.Timestamp(month_first[i]):%Y-%m-%d} month-first"
        )
    if only_day.any():
        said.append(f"{u.iloc[int(np.flatnonzero(only_day)[0])]!r} is a date only day-first")
    if only_month.any():
        said.append(f"{u.iloc[int(np.flatnonzero(only_month)[0])]!r} is a date only month-first")
    if only_day.any() and only_month.any():
        option = f'date_format="{fmt_d}"'
        advice = (
            f"the column mixes both orders: pass the format of the file ({option} or "
            f'date_format="{fmt_m}"); the rows in the other order are then rejected'
        )
        mask = only_day | only_month | both
    elif only_month.any():
        option = f'date_format="{fmt_m}"'
        advice = f"every date fits month-first: pass {option}"
        mask = both
    else:
        option = f'date_format="{fmt_d}"'
        advice = (
            f"every date fits day-first: pass {option}"
            if only_day.any()
            else f'pass {option} (day first) or date_format="{fmt_m}" (month first)'
        )
        mask = both
    raise _refuse(
        f"day-first or month-first is not guessed: {'; '.join(said)}. {advice[0].upper()}{advice[1:]}.",
        option,
        "day_or_month_first",
        mask,
    )


def _refuse_unknown(u: pd.Series) -> None:
    """No value fits a known layout: say why when the values look like something nameable."""
    txt = u.astype(str).str.strip()
    if txt.str.match(_TWO_DIGIT_YEAR).all():
        raise _refuse(
            f"the dates have two-digit years ({_examples(txt)}): the century and the day/month order "
            f'are not guessed. Pass date_format= (e.g. date_format="%d/%m/%y").',
            'date_format="%d/%m/%y"',
            "two_digit_year",
            np.ones(len(u), bool),
        )
    if txt.str.match(_EPOCH).all() or txt.str.match(_EPOCH_MS).all():
        ms = bool(txt.str.match(_EPOCH_MS).all())
        raise _refuse(
            f"the dates are {'13' if ms else '10'}-digit numbers ({_examples(txt)}): Unix epoch "
            f"{'milliseconds' if ms else 'seconds'}, by their size, but not read by guessing. Pass "
            f'date_format="{"epoch_ms" if ms else "epoch"}" (UTC instants: with tz= converted to that zone).',
            f'date_format="{"epoch_ms" if ms else "epoch"}"',
            "epoch_dates",
            np.ones(len(u), bool),
        )
    if txt.str.match(_SERIAL).all():
        raise _refuse(
            f"the dates are plain numbers ({_examples(txt)}): Excel serial days, Unix seconds or "
            f'yyyymmdd are not told apart by guessing. Pass date_format="excel" for Excel serial '
            f'days or date_format="%Y%m%d".',
            'date_format="excel"',
            "numeric_dates",
            np.ones(len(u), bool),
        )


def _explicit(u: pd.Series, date_format: str) -> tuple[pd.Series, pd.Series]:
    txt = u.astype("string").str.strip()
    none = pd.Series(np.nan, index=u.index)
    if date_format in ("epoch", "epoch_ms"):
        pattern = _EPOCH_MS if date_format == "epoch_ms" else re.compile(r"^\d{1,11}(?:\.\d+)?$")
        num = pd.to_numeric(txt.where(txt.str.match(pattern).fillna(False).astype(bool)), errors="coerce")
        wall = pd.to_datetime(num, unit="ms" if date_format == "epoch_ms" else "s", errors="coerce")
        # an instant in UTC: offset 0, so that tz= converts it like any time with an offset
        return wall.astype("datetime64[ns]"), pd.Series(np.where(wall.notna(), 0.0, np.nan), index=u.index)
    if date_format == "excel":
        num = pd.to_numeric(txt.where(txt.str.match(_SERIAL).fillna(False).astype(bool)), errors="coerce")
        num = num.where((num >= 1) & (num < 2958466))
        wall = pd.Timestamp("1899-12-30") + pd.to_timedelta((num * 86_400_000).round(), unit="ms")
        return pd.Series(wall, index=u.index).astype("datetime64[ns]"), none
    if "%z" in date_format or "%Z" in date_format:
        inst = pd.to_datetime(txt, format=date_format, errors="coerce", utc=True)
        off = _offset_minutes(txt.str.extract(_OFFSET_AT_END, flags=re.IGNORECASE)[0])
        bad = off == _BAD_OFFSET
        shift = pd.to_timedelta(off.where(~bad).fillna(0), unit="min")
        wall = (inst.dt.tz_localize(None) + shift).where(inst.notna() & ~bad)
        return wall.astype("datetime64[ns]"), off.where(inst.notna() | bad)
    return pd.to_datetime(txt, format=date_format, errors="coerce").astype("datetime64[ns]"), none


def parse_datetime(
    s: pd.Series, *, date_format: str | None = None, tz: str | None = None, dst: str = "reject"
) -> ParsedDates:
    """Parse a column to naive wall-clock timestamps (see the module's rules)."""
    if dst not in ("reject", "shift"):
        raise ValueError(f"dst must be 'reject' or 'shift', not {dst!r}")
    if tz is not None:
        _check_tz(tz)
    none = pd.Series(False, index=s.index)
    bad, oor = none, none
    if pd.api.types.is_datetime64_any_dtype(s):
        col_tz = getattr(s.dt, "tz", None)
        if col_tz is not None:  # aware column: one zone, converted to tz if given
            wall, oor = _as_ns(s.dt.tz_convert(tz or col_tz).dt.tz_localize(None))
            return _with(ParsedDates(wall, none, none), bad, oor)
        wall, oor = _as_ns(s)
        return _with(ParsedDates(wall, none, none) if tz is None else _localize(wall, tz, dst), bad, oor)
    kind = "" if pd.api.types.is_numeric_dtype(s) else pd.api.types.infer_dtype(s, skipna=True)
    if pd.api.types.is_timedelta64_dtype(s) or kind in ("time", "timedelta"):
        raise ConventionError(
            "the dates are stored as times of day or durations, not dates: which day each is on is not said. "
            "Store them as dates or timestamps (or text with the day) in the export.",
            n_rows=int(s.notna().sum()),
            option="dates in the export",
            check="dates_not_times_of_day",
        )
    if (
        pd.api.types.is_numeric_dtype(s)
        and not pd.api.types.is_bool_dtype(s)
        and date_format in ("excel", "epoch", "epoch_ms")
    ):
        s = (
            s.astype(object)
            .where(s.notna(), None)
            .map(lambda v: f"{v:.0f}" if isinstance(v, float) and v == int(v) else str(v), na_action="ignore")
        )
    elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        raise ConventionError(
            f"the dates are stored as {s.dtype} values, not text or timestamps: Excel serial days, Unix "
            f'seconds or yyyymmdd are not told apart by guessing. Pass date_format="excel" for Excel '
            f'serial days, date_format="epoch" (or "epoch_ms") for Unix seconds (milliseconds), or store '
            f"them as text or timestamps.",
            n_rows=int(s.notna().sum()),
            option='date_format="excel" or "epoch"',
            check="numeric_dates",
        )
    vals = s[~blank(s)]
    if vals.empty:
        return _with(ParsedDates(pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]"), none, none), bad, oor)
    # distinct cells first, then their stripped text (two cells may strip to one value)
    raw_codes, raw_uniques = pd.factorize(vals, sort=False)
    stripped = [v.strip() if isinstance(v, str) else str(v) for v in raw_uniques]
    strip_codes, uniques = pd.factorize(pd.Series(stripped, dtype=object), sort=False)
    codes = strip_codes[raw_codes]
    u = pd.Series(uniques, dtype="string")
    try:
        wall_u, off_u = _infer(u) if date_format is None else _explicit(u, date_format)
    except ConventionError as err:
        if err.n_rows < 0:
            err.n_rows = int(err.unique_mask[codes].sum())
        raise
    wall = pd.Series(wall_u.to_numpy()[codes], index=vals.index).reindex(s.index).astype("datetime64[ns]")
    off = pd.Series(off_u.to_numpy(dtype=float)[codes], index=vals.index).reindex(s.index)
    bad = (off == _BAD_OFFSET).fillna(False).astype(bool)
    off, off_u = off.where(~bad), off_u.where(off_u != _BAD_OFFSET)
    aware_u = wall_u.notna() & off_u.notna()
    naive_u = wall_u.notna() & off_u.isna()
    parsed = wall.notna()
    aware, naive = parsed & off.notna(), parsed & off.isna()
    if not aware.any():
        return _with(ParsedDates(wall, none, none) if tz is None else _localize(wall, tz, dst), bad, oor)
    if tz is None:
        if naive.any():
            raise ConventionError(
                f"{int(aware.sum()):,} timestamp(s) carry a UTC offset (e.g. {_examples(u[aware_u])}) and "
                f"{int(naive.sum()):,} do not (e.g. {_examples(u[naive_u])}): the zone of the naive ones "
                f'is not guessed. Pass tz= (e.g. tz="UTC" or tz="Europe/Berlin"): naive times are '
                f"read in it and the others converted to it.",
                n_rows=int(aware.sum()),
                option='tz="..."',
                check="offsets_mixed_with_naive",
            )
        distinct = sorted(set(off[aware].tolist()))
        if len(distinct) > 1:
            shown = ", ".join(_fmt_offset(m) for m in distinct[:4])
            raise ConventionError(
                f"the timestamps carry {len(distinct)} different UTC offsets ({shown}): converting them "
                f'to one zone is not guessed. Pass tz= (e.g. tz="Europe/Berlin" or tz="UTC"); every '
                f"timestamp is then converted to it.",
                n_rows=int(aware.sum()),
                option='tz="..."',
                check="one_utc_offset",
            )
        return _with(ParsedDates(wall, none, none), bad, oor)  # one offset: the wall clock as written at that offset
    instant = (wall - pd.to_timedelta(off.fillna(0), unit="min")).where(aware)
    converted = instant.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    local = _localize(wall.where(naive), tz, dst)
    out = local.values.where(naive, converted)
    return _with(ParsedDates(out.astype("datetime64[ns]"), local.dst_gap, local.dst_fold), bad, oor)


def _with(parsed: ParsedDates, bad: pd.Series, oor: pd.Series) -> ParsedDates:
    parsed.bad_offset, parsed.out_of_range = bad, oor
    return parsed


def _as_ns(wall: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Naive times in nanoseconds, and the rows whose time nanoseconds cannot hold (a Parquet
    time in another unit before 1678 or after 2261: missing here, rejected by the validator)."""
    if wall.dtype == "datetime64[ns]":
        return wall, pd.Series(False, index=wall.index)
    lo, hi = pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s")
    out = wall.notna() & ((wall < lo) | (wall > hi))
    return wall.where(~out).astype("datetime64[ns]"), out


def _check_tz(tz: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone tz={tz!r}; give an IANA name such as 'Europe/Berlin' or 'UTC'") from None


def _fmt_offset(minutes: float) -> str:
    m = int(minutes)
    return f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"


def _localize(wall: pd.Series, tz: str, dst: str) -> ParsedDates:
    """Check naive local times against ``tz``'s DST transitions (see the module's rules)."""
    present = wall.notna()
    none = pd.Series(False, index=wall.index)
    if not present.any():
        return ParsedDates(wall, none, none)
    summer = np.ones(len(wall), dtype=bool)
    strict = wall.dt.tz_localize(tz, nonexistent="NaT", ambiguous="NaT")
    first = wall.dt.tz_localize(tz, nonexistent="NaT", ambiguous=summer)
    gap = present & first.isna()
    fold = present & strict.isna() & ~gap
    if dst == "shift" and (gap.any() or fold.any()):
        fixed = wall.dt.tz_localize(tz, nonexistent="shift_forward", ambiguous=summer).dt.tz_localize(None)
        return ParsedDates(fixed.where(present).astype("datetime64[ns]"), none, none)
    return ParsedDates(wall, gap, fold)
