"""The data contract: the tables the project reads, the columns of each (canonical names, how
their cells are read, which values they allow) and the checks across the columns of a row.

What the data must look like, written once; :mod:`urm_models.data.validation` enforces it at
the boundary, the loaders (:mod:`urm_models.data.datasets`, :mod:`urm_models.data.campaign_files`)
and the Parquet contract (:mod:`urm_models.data.parquet_contract`) read it. docs/architecture.md
("The data contract") describes it in prose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

#: what a loader does with rows that break the contract: refuse the file, or set them aside (data/quarantine/)
Errors = Literal["raise", "quarantine"]

#: Default bound on the magnitude of an amount or price (in the data's currency): larger values
#: are rejected rows, not numbers that overflow a model three notebooks later.
MAX_AMOUNT = 1e9

#: Default floor of event dates: earlier ones are rejected rows (an unset date field exported as
#: 1900-01-01 or 0001-01-01 is not a purchase).
MIN_DATE = "1970-01-01"


@dataclass(frozen=True)
class Field:
    """One column of a contract: its canonical name, how its cells are read (``kind``) and
    what values it allows. ``flag`` reads yes/no, true/false, 1/0 as 1 or 0."""

    name: str
    kind: Literal["id", "datetime", "number", "text", "flag"]
    required: bool = True  # the column must be present
    nullable: bool = False  # values may be empty
    minimum: float | None = None
    maximum: float | None = None
    event_time: bool = False  # checked against ``as_of`` (no dates in the future)
    amount: bool = False  # bounded by ``max_amount``
    whole: bool = False  # whole numbers only
    allowed: tuple | None = None  # the only values allowed


@dataclass(frozen=True)
class Rule:
    """A check across the columns of a row: ``bad(typed)`` is True where a row fails it. Its
    failures name ``column`` when given, else the row."""

    name: str
    bad: Callable[[pd.DataFrame], pd.Series]
    column: str | None = None


def _repeated_ids(d: pd.DataFrame) -> pd.Series:
    return d["user_id"].notna() & d["user_id"].duplicated()


#: the Telco services a customer may hold besides internet (Yes / No / No ... service)
TELCO_SERVICES = (
    "phoneservice",
    "multiplelines",
    "onlinesecurity",
    "onlinebackup",
    "deviceprotection",
    "techsupport",
    "streamingtv",
    "streamingmovies",
)
#: the categorical attributes of the IBM Telco customer table (text, never empty), in its order
TELCO_CATEGORICAL = (
    "gender",
    "partner",
    "dependents",
    *TELCO_SERVICES[:2],
    "internetservice",
    *TELCO_SERVICES[2:],
    "contract",
    "paperlessbilling",
    "paymentmethod",
)

TABLES: dict[str, tuple[Field, ...]] = {
    "transactions": (
        Field("user_id", "id"),
        Field("ts", "datetime", event_time=True),
        Field("amount", "number", minimum=0.0, amount=True),
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
        Field("price", "number", minimum=0.0, amount=True),
        Field("plan", "text", required=False, nullable=True),
    ),
    "feedback": (
        Field("user_id", "id"),
        Field("ts", "datetime", event_time=True),
        Field("score", "number", minimum=0.0, maximum=10.0),
        Field("text", "text", required=False, nullable=True),
    ),
    # campaigns (urm_models.data.campaign_files): the outcome columns are added per file, the
    # campaign-level checks (one arm per user, the control exists, ...) follow the row checks
    "campaign": (
        Field("user_id", "id"),
        Field("arm", "text"),
    ),
    "assignments": (
        Field("user_id", "id"),
        Field("arm", "text"),
        Field("sent_at", "datetime", event_time=True),
    ),
    # one row per customer of a subscription business (datasets.load_telco): tenure in whole
    # months, charges in the data's currency, churn yes/no
    "telco": (
        Field("user_id", "id"),
        *(Field(c, "text") for c in TELCO_CATEGORICAL),
        Field("seniorcitizen", "number", allowed=(0, 1)),
        Field("monthlycharges", "number", minimum=0.0),
        Field("totalcharges", "number", minimum=0.0, nullable=True),
        Field("tenure", "number", minimum=0.0, whole=True),
        Field("churn", "flag"),
    ),
}

#: checks across columns, per table
RULES: dict[str, tuple[Rule, ...]] = {
    "users": (Rule("unique_user_id", _repeated_ids),),
    "subscriptions": (Rule("end_ts_not_before_start_ts", lambda d: d["end_ts"] < d["start_ts"]),),
    "telco": (
        # a customer twice would land in two cross-validation folds and leak
        Rule("unique_user_id (is a second file, e.g. test.csv, concatenated?)", _repeated_ids),
        # blank total charges mean "not billed yet", which only a customer of tenure 0 can be
        Rule("blank_only_when_tenure_0", lambda d: d["totalcharges"].isna() & (d["tenure"] != 0), "totalcharges"),
    ),
}
