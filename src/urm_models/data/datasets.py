"""Loaders for the shipped real data sets and for a user's own files, plus simulators.

Every loader returns a canonical table (docs/architecture.md, "The data contract") that has
passed validation (:mod:`urm_models.data.validation`); ``df.attrs["validation"]`` holds the report.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import pandas as pd

from ..core import paths
from ..core.errors import DataValidationError
from ..core.paths import dataset_name  # noqa: F401  (part of this surface: the name of your own file's data set)
from .campaign_files import load_hillstrom
from .contract import MAX_AMOUNT, TELCO_CATEGORICAL, Errors
from .options import ReadOptions, build
from .reading import RawTable, raw_from_frame, read_file, read_raw
from .simulate import simulate_rfm, simulate_transactions  # noqa: F401  (part of this surface)
from .validation import validate_table

__all__ = [
    "DataValidationError",
    "load_cdnow",
    "load_telco",
    "load_donations",
    "load_online_retail",
    "load_grocery",
    "load_apparel",
    "invoices_from_lines",
    "load_transactions",
    "load_users",
    "load_subscriptions",
    "load_feedback",
    "validate",
    "simulate_transactions",
    "simulate_rfm",
    "fingerprint",
    "file_sha256",
    "DATASETS",
    "load_dataset",
    "dataset_name",
    "dataset_kind",
]

CDNOW_MASTER = "CDNOW_master.txt"
CDNOW_SAMPLE = "CDNOW_sample.txt"
TELCO = "telco_churn.csv"
DONATIONS = "donations.csv"
#: UCI "Online Retail" (2010-12-01 to 2011-12-09) and the 2009-2010 sheet of "Online Retail II", one row
#: per invoice (invoices_from_lines; data/README.md has the source files and the cleaning)
ONLINE_RETAIL = {"2010": "online_retail.csv.gz", "2009": "online_retail_2009.csv.gz"}
GROCERY = "grocery.csv.gz"
APPAREL = "../examples/apparel.csv.gz"
APPAREL_SEASON = "../examples/apparel_season.csv"

#: name -> (file, kind): the shipped data sets, as the refresh and notebooks name them.
DATASETS = {
    "cdnow": (CDNOW_MASTER, "transactions"),
    "cdnow_sample": (CDNOW_SAMPLE, "transactions"),
    "telco": (TELCO, "customers"),
    "hillstrom": ("hillstrom.csv", "campaign"),
}
#: the currency of each shipped data set's amounts (CDNOW: US dollars; Telco: monthly charges in
#: US dollars); own files say "amount" unless a currency is given
CURRENCIES = {"cdnow": "USD", "cdnow_sample": "USD", "telco": "USD", "hillstrom": "USD"}


def currency(name: str, path: str | Path = "", given: str | None = None) -> str:
    """The unit to print amounts in: ``given`` (e.g. the ``currency=`` a file was read with),
    the shipped data set's currency, or ``"amount"``."""
    if given:
        return str(given)
    return "amount" if path else CURRENCIES.get(name, "amount")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(df: pd.DataFrame) -> str:
    """A short content hash of a DataFrame (values and column names, not the index)."""
    h = hashlib.sha256()
    h.update(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- generic loaders


def load_table(path: str | Path, table: str, options: ReadOptions | None = None, **by_name) -> pd.DataFrame:
    """Load a user's CSV (``.csv``, ``.tsv``, ``.txt``; plain or ``.gz``/``.bz2``/``.xz``/``.zst``)
    or Parquet file as one of the canonical tables.

    ``options`` (:class:`~urm_models.data.options.ReadOptions`; ``by_name`` changes its fields
    by name) says how to read the file (``sep``, ``encoding``, ``names``:
    :func:`urm_models.data.reading.read_raw`) and how to parse and check it
    (:func:`urm_models.data.validation.validate_table`). Its ``dataset`` (default: the file's
    data set name) scopes erasures made with ``urm forget --dataset``.

    Transactions without an amount (an activity log: user and time only, no ``amount`` column
    and none mapped) are read as events: ``amount`` is ``value_per_event`` when given (every event
    worth that much), else 1.0, and ``attrs["amounts"]`` says which (``"file"``,
    ``"value_per_event"`` or ``"none"``: money columns downstream are then left empty and tiers go
    by activity; docs/architecture.md, "Activity without money").
    """
    raw, o = read_file(path, build(by_name, options or ReadOptions))
    amounts = _amount_source(raw, table, o.columns, o.value_per_event)
    if amounts != "file":  # a placeholder every number convention reads, replaced after the checks
        raw.frame["amount"] = "0" if raw.fmt == "csv" else 0.0
    out = validate_table(raw, table, o)
    if table == "transactions":
        if amounts != "file":
            out["amount"] = float(o.value_per_event) if o.value_per_event is not None else 1.0
        out.attrs["amounts"] = amounts
    return out


def _amount_source(raw: RawTable, table: str, columns, value_per_event) -> str:
    """``"file"`` when the transactions have an amount column, else ``"value_per_event"`` or
    ``"none"``; a value per event beside an amount column is refused (which one counts?)."""
    if table != "transactions":
        if value_per_event is not None:
            raise ValueError(f"value_per_event applies to transactions, not to a {table} table")
        return "file"
    src = (columns or {}).get("amount", "amount")
    if src in raw.frame.columns or "amount" in (columns or {}):
        if value_per_event is not None:
            raise DataValidationError(
                f"{raw.source}: the file has an amount column ({src!r}) and value_per_event={value_per_event!r} "
                "was given: leave one out (value_per_event is for activity logs without amounts)",
                source=raw.source,
            )
        return "file"
    if value_per_event is not None:
        v = float(value_per_event)
        if not (v > 0 and v < MAX_AMOUNT):
            raise ValueError(f"value_per_event must be a positive amount below {MAX_AMOUNT:g}, not {value_per_event!r}")
        return "value_per_event"
    return "none"


def load_transactions(path: str | Path, options: ReadOptions | None = None, **by_name) -> pd.DataFrame:
    """Load transactions (``user_id``, ``ts``, ``amount``; optional ``channel``, ``category``).

    Examples
    --------
    >>> tx = load_transactions("orders.csv", columns={"user_id": "customer", "ts": "order_date",
    ...                        "amount": "total"}, date_format="%d/%m/%Y", tz="Europe/Berlin",
    ...                        decimal=",")

    or, the same, ``load_transactions("orders.csv", ReadOptions(columns=..., date_format=...))``.
    See :func:`load_table` and :class:`~urm_models.data.options.ReadOptions` for the options.
    """
    return load_table(path, "transactions", options, **by_name)


def load_users(path: str | Path, options: ReadOptions | None = None, **by_name) -> pd.DataFrame:
    return load_table(path, "users", options, **by_name)


def load_subscriptions(path: str | Path, options: ReadOptions | None = None, **by_name) -> pd.DataFrame:
    return load_table(path, "subscriptions", options, **by_name)


def load_feedback(path: str | Path, options: ReadOptions | None = None, **by_name) -> pd.DataFrame:
    return load_table(path, "feedback", options, **by_name)


def validate(df: pd.DataFrame, table: str, *, name: str = "<DataFrame>", **kwargs) -> pd.DataFrame:
    """Validate an in-memory DataFrame against a canonical table's contract."""
    return validate_table(raw_from_frame(df, name), table, **kwargs)


# --------------------------------------------------------------------------- CDNOW


def load_cdnow(sample: bool = False, *, path: str | Path | None = None) -> pd.DataFrame:
    """CDNOW transactions (Fader & Hardie): canonical ``user_id, ts, amount`` plus ``quantity``.

    ``sample=True`` loads the 1/10th sample (2,357 customers); otherwise the master file
    (23,570 customers). ``user_id`` is the master file's customer id in both. The files have
    no order id; 255 master rows are exact copies of another row (same customer, day, number of
    CDs and value): they are kept as separate orders, as in the published analyses.
    """
    if path is None:
        path = paths.raw_data_dir() / (CDNOW_SAMPLE if sample else CDNOW_MASTER)
    if sample:
        raw = read_raw(
            path, sep=r"\s+", header=False, names=["customer_id", "sample_id", "date", "number_of_cds", "dollar_value"]
        )
    else:
        raw = read_raw(path, sep=r"\s+")
    tx = validate_table(
        raw,
        "transactions",
        columns={"user_id": "customer_id", "ts": "date", "amount": "dollar_value", "quantity": "number_of_cds"},
        date_format="%Y%m%d",
        duplicates="keep",
        dataset="cdnow_sample" if sample else "cdnow",
    )
    report = tx.attrs["validation"]
    tx["quantity"] = pd.to_numeric(tx["quantity"]).astype("int64")
    tx = tx[["user_id", "ts", "amount", "quantity"]]
    tx.attrs["validation"] = report
    return tx


# --------------------------------------------------------------------------- Telco


def load_telco(
    path: str | Path | None = None, *, errors: Errors = "raise", quarantine_dir: str | Path | None = None
) -> pd.DataFrame:
    """IBM Telco customer churn: one row per customer.

    Columns: ``user_id``, the categorical attributes (strings), ``seniorcitizen`` (0/1),
    ``monthlycharges``, ``totalcharges`` (floats), ``tenure`` (whole months) and ``churn`` (0/1).

    ``totalcharges`` is blank on the rows with ``tenure == 0``: those customers have not been
    billed yet, so it is set to 0.0 there. A blank on any other row is an error. A customer id
    that appears twice is rejected (the copy would land in two CV folds and leak).
    """
    path = Path(path) if path is not None else paths.raw_data_dir() / TELCO
    raw = read_raw(path, sep=",", errors=errors)
    lowered = [c.lower() for c in raw.frame.columns]
    dup = sorted({c for c in lowered if lowered.count(c) > 1})
    if dup:
        raise DataValidationError(
            f"{path}: column name(s) {dup} appear twice once lower-cased; rename one of each", source=str(path)
        )
    raw.frame.columns = lowered
    return _validate_telco(raw, errors=errors, quarantine_dir=quarantine_dir)


def _validate_telco(raw: RawTable, *, errors: Errors, quarantine_dir) -> pd.DataFrame:
    """The Telco contract (:data:`contract.TABLES` ``["telco"]``, its rules in
    :data:`contract.RULES`) through the same steps as every table, then its types."""
    out = validate_table(
        raw, "telco", columns={"user_id": "customerid"}, errors=errors, quarantine_dir=quarantine_dir, dataset="telco"
    )
    never_billed = out["tenure"] == 0
    out.loc[never_billed & out["totalcharges"].isna(), "totalcharges"] = 0.0
    for c in ("tenure", "seniorcitizen", "churn"):
        out[c] = out[c].astype("int64")
    report = out.attrs["validation"]
    out = out[
        [
            "user_id",
            "gender",
            "seniorcitizen",
            *TELCO_CATEGORICAL[1:],
            "monthlycharges",
            "totalcharges",
            "tenure",
            "churn",
        ]
    ]
    out.attrs["validation"] = report
    return out


def load_donations(path: str | Path | None = None) -> pd.DataFrame:
    """The donations data of Fader, Hardie & Shang (2010), "Customer-Base Analysis in a
    Discrete-Time Noncontractual Setting", Marketing Science 29(6): the 11,104 people who first
    gave to a nonprofit in 1995 and, for each of the 6 years 1996-2001, whether they gave again,
    aggregated by history. Columns ``frequency`` (years with a repeat donation), ``recency``
    (the last such year, 1-6; 0 for none), ``n_periods`` (6) and ``weights`` (donors with that
    history): what :class:`~urm_models.models.BetaGeoBetaBinom` fits."""
    path = Path(path) if path is not None else paths.raw_data_dir() / DONATIONS
    try:
        table = pd.read_csv(path, dtype="int64")
    except (ValueError, OSError) as exc:
        raise DataValidationError(
            f"{path}: not the donations table (integer columns frequency, recency, periods, weights): {exc}"
        ) from None
    need = ["frequency", "recency", "periods", "weights"]
    if list(table.columns) != need:
        raise DataValidationError(f"{path}: columns {list(table.columns)}, expected {need}")
    return table.rename(columns={"periods": "n_periods"})


def invoices_from_lines(
    lines: pd.DataFrame,
    *,
    customer: str,
    time: str,
    quantity: str,
    price: str,
    invoice: str | None = None,
    country: str | None = None,
) -> pd.DataFrame:
    """One row per invoice from a shop's invoice lines (UCI "Online Retail", "Online Retail II"):
    how the shipped ``online_retail*.csv.gz`` files were made from the public files
    (data/README.md).

    Kept: lines with a customer id, a positive quantity and a positive unit price (a negative
    quantity is a cancellation or a return, a zero price a free item or an adjustment). An
    invoice is the ``invoice`` number when the lines have one, else the customer's lines with the
    same timestamp (the same minute in these files): two invoices of one customer in the same
    minute become one. Columns: ``invoice`` (when given), ``customer_id`` (the id without a
    trailing ``.0``), ``invoice_time`` (``YYYY-MM-DD HH:MM``), ``amount`` (sum of quantity x
    price, rounded to the cent), ``lines``, and ``country`` (when given); sorted by time, customer
    and invoice.
    """
    need = [c for c in (customer, time, quantity, price, invoice, country) if c is not None]
    missing = [c for c in need if c not in lines.columns]
    if missing:
        raise ValueError(f"the invoice lines lack column(s) {missing}; they have {list(lines.columns)}")
    d = lines[need].copy()
    qty = pd.to_numeric(d[quantity], errors="coerce")
    unit = pd.to_numeric(d[price], errors="coerce")
    cust = d[customer].astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    keep = cust.notna() & (cust != "") & (qty > 0) & (unit > 0)
    d = d.loc[keep].assign(
        customer_id=cust[keep],
        invoice_time=pd.to_datetime(d.loc[keep, time]).dt.floor("min"),
        value=(qty[keep] * unit[keep]).astype(float),
    )
    keys = ([invoice] if invoice else []) + ["customer_id", "invoice_time"]
    agg = {"amount": ("value", "sum"), "lines": ("value", "size")}
    if country:
        agg["country"] = (country, "first")
    out = d.groupby(keys, sort=False).agg(**agg).reset_index()
    if invoice:
        out = out.rename(columns={invoice: "invoice"})
        out["invoice"] = out["invoice"].astype(str)
    out["amount"] = out["amount"].round(2)
    out = out.sort_values(["invoice_time", "customer_id", *(["invoice"] if invoice else [])], kind="stable")
    out["invoice_time"] = out["invoice_time"].dt.strftime("%Y-%m-%d %H:%M")
    cols = (["invoice"] if invoice else []) + ["customer_id", "invoice_time", "amount", "lines"]
    return out[cols + (["country"] if country else [])].reset_index(drop=True)


#: how each shipped activity file maps onto the transactions table (``urm refresh --path F --columns ...``)
COLUMNS = {
    "online_retail": {"user_id": "customer_id", "ts": "invoice_time", "amount": "amount"},
    "online_retail_2009": {"user_id": "customer_id", "ts": "invoice_time", "amount": "amount", "order_id": "invoice"},
    "grocery": {"user_id": "cust", "ts": "date"},
    "apparel": {"user_id": "Id", "ts": "Date", "amount": "Price"},
}


def load_online_retail(period: Literal["2010", "2009"] = "2010", *, path: str | Path | None = None) -> pd.DataFrame:
    """A UK online gift shop's invoices (many customers are wholesalers), amounts in pounds
    sterling: ``period="2010"`` the UCI "Online Retail" data (2010-12-01 to 2011-12-09),
    ``"2009"`` the first sheet of "Online Retail II" (2009-12-01 to 2010-12-09, with invoice
    numbers, kept as ``order_id``). One row per invoice (:func:`invoices_from_lines`): canonical
    ``user_id, ts, amount`` plus ``lines``; data/README.md has the counts."""
    if period not in ONLINE_RETAIL:
        raise ValueError(f"period must be one of {sorted(ONLINE_RETAIL)}, not {period!r}")
    name = "online_retail" if period == "2010" else "online_retail_2009"
    path = Path(path) if path is not None else paths.raw_data_dir() / ONLINE_RETAIL[period]
    cols = {**COLUMNS[name], "lines": "lines"}
    return load_transactions(path, columns=cols, dataset=name)


def load_grocery(*, path: str | Path | None = None) -> pd.DataFrame:
    """An online grocer's purchase days without amounts (Platzer & Reutterer 2016; the R package
    BTYDplus's ``groceryElog``): 1,525 customers whose first purchase fell in the first quarter of
    2006, followed to the end of 2007. An activity log: ``amount`` is 1 per event and
    ``attrs["amounts"]`` is ``"none"`` (see :func:`load_table`)."""
    path = Path(path) if path is not None else paths.raw_data_dir() / GROCERY
    return load_transactions(path, columns=COLUMNS["grocery"], dataset="grocery", duplicates="keep")


def load_apparel(*, path: str | Path | None = None) -> pd.DataFrame:
    """A **simulated** apparel retailer (the R package CLVTools's ``apparelTrans``): 600 customers
    who first bought on 2005-01-02, followed weekly to the end of 2010, amounts in the package's
    unnamed currency. Its high season (late May to mid June, October to early December) moves
    purchases: :func:`apparel_season` is its weekly calendar. A seasonal panel for the season
    calendar, not a real shop."""
    path = Path(path) if path is not None else paths.raw_data_dir() / APPAREL
    return load_transactions(path, columns=COLUMNS["apparel"], dataset="apparel", duplicates="keep")


def apparel_season() -> pd.DataFrame:
    """The weekly high-season flag of :func:`load_apparel` (``period_start`` Sundays 2005-01-02
    to 2012-10-14, ``high_season`` 0/1): CLVTools's ``apparelDynCov`` and ``apparelDynCovFuture``,
    the flag being the same for every customer."""
    cal = pd.read_csv(paths.raw_data_dir() / APPAREL_SEASON, parse_dates=["period_start"])
    return cal.astype({"high_season": "int64"})


def load_dataset(name: str, path: str | Path = "", **read):
    """Load a data set by name: a shipped one (``cdnow``, ``cdnow_sample``, ``telco``; the
    campaign ``hillstrom`` comes as a :class:`~urm_models.data.campaign_files.Campaign`), or, with
    ``path``, your own transactions file under the name you give it; ``read`` goes to
    :func:`load_transactions` (``columns``, ``date_format``, ``tz``, ``errors``, ...)."""
    if path:
        if name in DATASETS:
            raise ValueError(f"{name!r} is a shipped data set; give the data set in {path} another name")
        return load_transactions(path, **{"dataset": name, **read})
    if read:
        raise ValueError(f"reading options {sorted(read)} need a path to your own file")
    if name == "cdnow":
        return load_cdnow(sample=False)
    if name == "cdnow_sample":
        return load_cdnow(sample=True)
    if name == "telco":
        return load_telco()
    if name == "hillstrom":
        return load_hillstrom()
    raise ValueError(
        f"unknown data set {name!r}; shipped ones are {sorted(DATASETS)} (your own transactions file: pass its path)"
    )


def dataset_kind(name: str, path: str | Path = "") -> str:
    """``"transactions"``, ``"customers"`` or ``"campaign"``: which notebooks and models apply."""
    if path:
        return "transactions"
    if name not in DATASETS:
        raise ValueError(
            f"unknown data set {name!r}; shipped ones are {sorted(DATASETS)} "
            "(your own transactions file: pass its path)"
        )
    return DATASETS[name][1]
