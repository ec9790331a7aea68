"""The transactions contract for a Parquet file that DuckDB or Spark reads as it is.

``urm score --engine spark --path F.parquet`` and ``urm score --batches N --path F.parquet``
never load the file into pandas (that is their point), so :func:`validation.validate_table`
does not see it. :func:`check_transactions` holds such a file to the same contract, in SQL
that both engines run (one pass of counts, plus one for exact duplicate rows): the column
types must be unambiguous (ids whole numbers or text, times without a zone, amounts numbers)
and no row may break a check of the pandas contract (missing values, non-finite, negative or
too large amounts, dates before ``min_date`` or in the future, exact copies). A file that
fails is refused whole, with the file, each column and check, the row count and the option
that settles it; there is no quarantine on this path (load the file with
``datasets.load_transactions(..., errors="quarantine")`` to set rows aside). Rows of erased
users are dropped where the users are scored (:func:`urm_models.data.erasure.not_erased`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..core import clock, spark, sql
from ..core import spark as spark_engine
from ..core.errors import DataValidationError
from . import parsing as P
from .contract import MAX_AMOUNT, MIN_DATE
from .parsing import NULL_WORDS

__all__ = ["check_transactions"]

COLUMNS = ("user_id", "ts", "amount")
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def _kind(type_name: str) -> str:
    """A column type (DuckDB's or Spark's name) as one of: integer, text, binary, float,
    decimal, date, timestamp, timestamp_tz, nested, other."""
    t = type_name.lower()
    if t.endswith("]") or t.startswith(("struct", "map", "array", "union", "list")):
        return "nested"  # DuckDB's VARCHAR[], STRUCT(...), MAP(...); Spark's array<...>, struct<...>
    if t in ("blob", "binary", "bytea", "varbinary"):
        return "binary"
    if t.startswith("timestamp with time zone") or t in ("timestamptz", "timestamp"):
        # DuckDB's naive type is TIMESTAMP (upper case, checked by the caller); Spark's
        # ``timestamp`` is TimestampType, an instant shown in the session's zone
        return "timestamp_tz"
    if t.startswith("timestamp") or t == "datetime":
        return "timestamp"
    if t == "date":
        return "date"
    if t.startswith("decimal"):
        return "decimal"
    if t in ("float", "double", "real", "float4", "float8"):
        return "float"
    if t in (
        "tinyint",
        "smallint",
        "integer",
        "int",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
        "long",
        "short",
        "byte",
    ):
        return "integer"
    if t in ("varchar", "string", "text") or t.startswith("varchar"):
        return "text"
    return "other"


def _types(source, engine: str) -> dict[str, str]:
    """Column name -> kind, of the file as the engine reads it."""
    if engine == "spark":
        df = spark.as_spark_dataframe(spark.session(), source)
        return {f.name: _kind(f.dataType.simpleString()) for f in df.schema.fields}

    con = sql.connect()
    try:
        sql.expose(con, source)
        rows = con.execute("DESCRIBE SELECT * FROM transactions").fetchall()
    finally:
        con.close()
    # DuckDB: TIMESTAMP is naive, TIMESTAMP WITH TIME ZONE an instant
    return {
        name: ("timestamp" if typ in ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS") else _kind(typ))
        for name, typ, *_ in rows
    }


_SHOWN = {"timestamp_tz": "timestamp with a time zone", "nested": "nested values (struct, list or map)"}
_WANT = {
    "user_id": (
        {"integer", "text", "binary"},
        "whole numbers or text (a float id reads differently in each engine: write it as int64 or string; "
        "a nested value: write the field that holds the id as a column of its own)",
    ),
    "ts": (
        {"timestamp", "date"},
        "dates or times without a zone (a time with a zone has no calendar day "
        "until a zone is chosen: write local times, naive, or load the file with "
        "datasets.load_transactions(path, tz=...); text dates: "
        "datasets.load_transactions(path, date_format=...))",
    ),
    "amount": (
        {"integer", "float", "decimal"},
        "numbers (text amounts: datasets.load_transactions(path, decimal=..., currency=...))",
    ),
}


def check_transactions(
    source,
    *,
    engine: str | None = None,
    duplicates: str = "reject",
    returns: str = "reject",
    max_amount: float = MAX_AMOUNT,
    min_date=MIN_DATE,
    now=None,
) -> dict:
    """Refuse a Parquet file (or folder, or Spark DataFrame) of transactions that breaks the
    contract; return ``{"n_rows": ...}`` when it holds. ``duplicates`` and ``returns`` are the
    options of :func:`validation.validate_table` (``"keep"`` accepts exact copies, negative
    amounts); ``now``: the latest allowed time (default: the current time)."""
    if duplicates not in ("reject", "keep") or returns not in ("reject", "keep"):
        raise ValueError(f"duplicates and returns are 'reject' or 'keep', got {duplicates!r}, {returns!r}")
    engine = spark_engine.resolve_engine(source, engine)
    name = str(source) if isinstance(source, (str, Path)) else f"<{type(source).__name__}>"
    types = _types(source, engine)
    missing = [c for c in COLUMNS if c not in types]
    if missing:
        raise DataValidationError(
            f"{name}: transactions table: missing required column(s) {missing}; the file has {sorted(types)}. "
            f"Rename them in the export, or load the file with datasets.load_transactions(path, "
            f"columns={{'user_id': ..., 'ts': ..., 'amount': ...}})",
            source=name,
            failures=pd.DataFrame([{"column": c, "check": "column_present", "n_rows": None} for c in missing]),
        )
    wrong = [(c, types[c], why) for c, (ok, why) in _WANT.items() if types[c] not in ok]
    if wrong:
        raise DataValidationError(
            f"{name}: "
            + "; ".join(
                f"column {c} is stored as {_SHOWN.get(kind, kind)}: it must hold {why}" for c, kind, why in wrong
            ),
            source=name,
            failures=pd.DataFrame([{"column": c, "check": f"type ({kind})", "n_rows": None} for c, kind, _ in wrong]),
        )

    floor = pd.Timestamp(min_date)
    latest = pd.Timestamp(now) if now is not None else clock.current_time()
    amount = "CAST(amount AS DOUBLE)"

    words = ", ".join("'" + w.replace("'", "''") + "'" for w in sorted(NULL_WORDS))
    checks = {  # (column, check, option) -> condition on a row
        ("user_id", "not_missing", ""): "user_id IS NULL OR TRIM(CAST(user_id AS VARCHAR)) = ''",
        # the refusal of validate_table's null_ids='refuse': a guest's "NULL" is no user
        (
            "user_id",
            "not_a_null_word",
            "load the file with datasets.load_transactions(path, null_ids='drop') to leave those rows out",
        ): f"LOWER(TRIM(CAST(user_id AS VARCHAR))) IN ({words})",
        ("ts", "not_missing", ""): "ts IS NULL",
        ("ts", f"not_before_{floor:%Y-%m-%d}", ""): f"CAST(ts AS DATE) < DATE '{floor:%Y-%m-%d}'",
        (
            "ts",
            f"not_after_now ({latest:%Y-%m-%d %H:%M})",
            "",
        ): f"CAST(ts AS TIMESTAMP) > TIMESTAMP '{latest:%Y-%m-%d %H:%M:%S}'",
        # NaN is a missing amount, as pandas reads it; infinities are not finite
        ("amount", "not_missing", ""): f"amount IS NULL OR isnan({amount})",
        ("amount", "finite", ""): f"NOT isnan({amount}) AND ABS({amount}) > 1e308",
        (
            "amount",
            f"magnitude_at_most_{max_amount:g}",
            "",
        ): f"NOT isnan({amount}) AND ABS({amount}) <= 1e308 AND ABS({amount}) > {float(max_amount)!r}",
    }
    if returns == "reject":
        checks[("amount", "non_negative", "returns='keep' (--returns keep) accepts refunds")] = f"{amount} < 0"
    sums = ",\n  ".join(f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS c{i}" for i, cond in enumerate(checks.values()))
    id_kind = types["user_id"] if types["user_id"] in ("text", "binary") else None
    if id_kind:  # the id rules' counts and two examples each, in the same pass
        sums += "".join(
            f",\n  SUM(CASE WHEN {c} THEN 1 ELSE 0 END) AS id_{k}, MIN(CASE WHEN {c} THEN {_IDT} END) AS lo_{k}, "
            f"MAX(CASE WHEN {c} THEN {_IDT} END) AS hi_{k}"
            for k, c in _id_conditions(id_kind).items()
        )
    counts = sql.run_sql(source, f"SELECT COUNT(*) AS n_rows,\n  {sums}\nFROM transactions", engine).iloc[0]
    n_rows = int(counts["n_rows"])
    failures = [
        (col, check, int(counts[f"c{i}"] or 0), option)
        for i, (col, check, option) in enumerate(checks)
        if int(counts[f"c{i}"] or 0)
    ]
    if duplicates == "reject":
        # copies over the data's columns: pandas writes a non-default index as __index_level_0__,
        # which is not data (read back, it is the index again)
        data = ", ".join('"' + c.replace('"', '""') + '"' for c in types if not _PANDAS_INDEX.fullmatch(c))
        distinct = int(
            sql.run_sql(
                source, f"SELECT COUNT(*) AS n FROM (SELECT DISTINCT {data} FROM transactions) AS d", engine
            ).iloc[0]["n"]
        )
        if distinct < n_rows:
            failures.append(
                (
                    "(row)",
                    "no_exact_duplicates",
                    n_rows - distinct,
                    "duplicates='keep' (--duplicates keep) keeps exact copies as separate orders",
                )
            )
    if id_kind:
        failures += _id_failures(source, engine, counts)
    if failures:
        lines = [f"{name}: {n_rows:,} rows read; some break the transactions contract:"]
        for col, check, n, option in failures:
            lines.append(f"  - column {col}, check '{check}': {n:,} rows" + (f"; {option}" if option else ""))
        lines.append(
            "This path reads the Parquet file as it is: fix the export, or load it with "
            "datasets.load_transactions(path, errors='quarantine') to set the rejected rows aside "
            "(urm score without --engine spark or --batches)."
        )
        raise DataValidationError(
            "\n".join(lines),
            source=name,
            failures=pd.DataFrame([{"column": c, "check": k, "n_rows": n} for c, k, n, _ in failures]),
        )
    return {"n_rows": n_rows}


#: what settles an id this path cannot take as it is
_THROUGH_PANDAS = (
    "this path reads the ids as they are and cannot rewrite them: load the file through pandas "
    "(urm score --path without --batches or --engine spark; datasets.load_transactions), which "
    "applies the id rules, or write the ids as the rules read them"
)


_IDT = "CAST(user_id AS VARCHAR)"


def _id_conditions(kind: str) -> dict[str, str]:
    """Conditions on a row's id: the spellings the column rules count (over ids of printable
    ASCII, where SQL sees what pandas sees) and the ids that need the pandas path's own function
    (``odd``: any other character)."""
    idt = _IDT
    plain = f"{idt} <> '' AND NOT regexp_matches({idt}, '{P.ID_NOT_PLAIN}')"
    conds = {
        "scientific": f"{plain} AND regexp_matches({idt}, '{P.ID_SCIENTIFIC}')",
        "zero_fraction": f"{plain} AND regexp_matches({idt}, '{P.ID_ZERO_FRACTION}')",
        "whole": f"{plain} AND regexp_matches({idt}, '{P.ID_WHOLE}')",
        "decimal": f"{plain} AND regexp_matches({idt}, '{P.ID_DECIMAL}') AND "
        f"NOT regexp_matches({idt}, '{P.ID_ZERO_FRACTION}')",
        "odd": f"{idt} = '' OR regexp_matches({idt}, '{P.ID_NOT_PLAIN}')",
    }
    if kind == "binary":  # DuckDB casts other bytes to escapes (\xC3), Spark decodes them: refused in both
        ascii_ = f"octet_length(user_id) = length({idt})"
        conds = {k: f"{ascii_} AND ({c})" for k, c in conds.items()}
        conds["not_ascii"] = f"NOT ({ascii_})"
    return conds


def _id_failures(source, engine: str, counts) -> list[tuple[str, str, int, str]]:
    """The id rules of the pandas path (:func:`urm_models.data.parsing.parse_id`, docs/reliability.md
    "User ids") on a file read as it is, from the counts of :func:`_id_conditions` (``counts``:
    the contract's pass): the same refusals, and a refusal of every id the rules would rewrite
    (this path cannot). The distinct ids that are not printable ASCII (few, as a rule) go
    through the pandas path's own function."""
    import unicodedata

    idt = _IDT
    n = {k[3:]: int(v or 0) for k, v in counts.items() if k.startswith("id_")}

    def examples(key: str) -> list[str]:
        return list(dict.fromkeys(str(counts[f"{e}_{key}"]) for e in ("lo", "hi")))

    out: list[tuple[str, str, int, str]] = []
    if n.get("not_ascii"):
        out.append(("user_id", "id_is_ascii_text (binary)", n["not_ascii"], "write the ids as strings (UTF-8 text)"))
        return out  # the other checks would read escapes
    rewritten, reasons, canon = [], {}, {}
    if n["odd"]:
        query = f"SELECT {idt} AS id, COUNT(*) AS n FROM transactions WHERE {_id_conditions('text')['odd']} GROUP BY 1"
        odd = sql.run_sql(source, query, engine)
        for raw, k in zip(odd["id"].astype(str), odd["n"].astype(int), strict=True):
            if not raw.strip(" "):
                continue  # counted by the not_missing check (TRIM: spaces)
            text, why = P.normalise_id_text(raw)
            if why is not None:
                reasons[why] = reasons.get(why, 0) + k
                continue
            canon[raw] = (text, k)
            if text != raw:
                rewritten.append((raw, text, k))
    for why, k in reasons.items():
        out.append(("user_id", why, k, "errors='quarantine' in datasets.load_transactions sets these rows aside"))
    if n["scientific"]:
        exc = P.refuse_scientific_ids(n["scientific"], examples("scientific"))
        out.append(("user_id", exc.check, exc.n_rows, str(exc)))
    if n["zero_fraction"] and n["whole"]:
        exc = P.refuse_two_spellings(n["zero_fraction"], n["whole"], examples("zero_fraction"), examples("whole"))
        out.append(("user_id", exc.check, exc.n_rows, str(exc)))
    elif n["zero_fraction"] and not n["decimal"]:
        ex = examples("zero_fraction")[0]
        rewritten.append((ex, ex.split(".")[0], n["zero_fraction"]))  # a float export: 123.0 is 123
    wide = [t for t, _ in canon.values() if not t.isascii()]
    ascii_forms = sorted({unicodedata.normalize("NFKC", t) for t in wide} - set(wide))
    found = pd.DataFrame({"id": [], "n": []})
    if ascii_forms:  # the plain ids some of them would be under NFKC: are they in the file?
        quoted = ", ".join("'" + k.replace("'", "''") + "'" for k in ascii_forms)
        query = f"SELECT {idt} AS id, COUNT(*) AS n FROM transactions WHERE {idt} IN ({quoted}) GROUP BY 1"
        found = sql.run_sql(source, query, engine)
    groups = P.compatibility_groups(wide, set(wide) | set(found["id"]))
    if groups:
        members = {v for g in groups for v in g}
        k = sum(c for t, c in canon.values() if t in members) + int(found.loc[found["id"].isin(members), "n"].sum())
        exc = P.refuse_compatibility_forms(k, groups)
        out.append(("user_id", exc.check, exc.n_rows, str(exc)))
    if rewritten:
        k = sum(c for _, _, c in rewritten)
        shown = ", ".join(f"{a!r} as {b!r}" for a, b, _ in rewritten[:3])
        out.append(("user_id", "id_as_the_rules_read_it", k, f"the rules read {shown}; {_THROUGH_PANDAS}"))
    return out
