"""Campaign data: the randomised experiments that measure what a contact does.

A campaign is one row per user with the **arm** the user was randomised to (any number of
arms, one of them named as the control: no contact, or the current practice), the
**outcomes** measured in a window after the send (a visit, a conversion, spend, purchases),
and **pre-campaign features** (what was known about the user before the send). Two ways in:

* a per-user file (:func:`load_campaign`; the shipped Hillstrom e-mail experiment:
  :func:`load_hillstrom`);
* an **assignment file** ``user_id, arm, sent_at`` (:func:`load_assignments`), joined to the
  data set's transactions by :func:`urm_models.experiments.campaign.from_transactions`, which
  counts the outcomes in a window after each send and computes the features as of the send
  with the package's feature code.

Both go through the data contract of :mod:`urm_models.data.validation` (rows that break it raise or
go to quarantine; erased users are dropped), then through the campaign's own checks, which
always raise one :class:`~urm_models.data.validation.DataValidationError` naming the file, the column,
how many users and the option that settles it: a user in two arms, a control arm that does not
exist, a declared arm without users, a campaign with fewer than two arms, outcomes dated
before the send.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import paths
from ..core.errors import ConventionError, DataValidationError
from .contract import Field
from .options import CampaignOptions, ReadOptions, build
from .parsing import NULL_WORDS, blank, parse_number
from .reading import RawTable, raw_from_frame, read_file, read_raw
from .validation import validate_table

__all__ = [
    "Campaign",
    "load_campaign",
    "load_hillstrom",
    "load_assignments",
    "campaign_from_frame",
    "HILLSTROM",
    "HILLSTROM_ARMS",
]

HILLSTROM = "hillstrom.csv"
#: the fewest users an arm may have: 07 values policies by 5-fold cross-fitting, and every fold
#: needs a user of every arm (a one-user arm used to fail there, after 01-05 had registered models)
MIN_USERS_PER_ARM = 5
#: Hillstrom's arms, control first (the file's ``segment`` column)
HILLSTROM_ARMS = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
#: Hillstrom's pre-campaign attributes. The file's ``history_segment`` is ``history`` cut into
#: seven bands (nothing more): the table keeps ``history`` itself.
HILLSTROM_FEATURES = ("recency", "history", "mens", "womens", "zip_code", "newbie", "channel")


@dataclass(frozen=True)
class Campaign:
    """A validated randomised campaign: ``data`` has one row per user (``user_id``, ``arm``,
    the outcomes, the features and, from an assignment file, ``sent_at``).

    ``arms`` lists the control first, then the treatment arms; ``window`` says in words when
    the outcomes were measured (e.g. "in the two weeks after the e-mail"); ``units`` gives
    each outcome's unit (e.g. ``{"spend": "USD"}``; binary outcomes are shares of users).
    """

    data: pd.DataFrame = field(repr=False)
    control: str
    arms: tuple[str, ...]
    outcomes: tuple[str, ...]
    features: tuple[str, ...]
    name: str = "campaign"
    window: str = ""
    units: dict = field(default_factory=dict)
    source: str = ""
    value_feature: str = ""  # a pre-campaign value per user (Hillstrom: past-year spend): the table's tiers
    #: from transactions: how to compute the same features at a scoring date
    #: (``experiments.campaign.features_at``'s options); empty for a per-user campaign table
    features_spec: dict = field(default_factory=dict)

    @property
    def treatments(self) -> tuple[str, ...]:
        return self.arms[1:]

    @property
    def arm(self) -> pd.Series:
        return self.data["arm"]

    @property
    def X(self) -> pd.DataFrame:
        """The pre-campaign features, one row per user (index: ``user_id``)."""
        return self.data.set_index("user_id")[list(self.features)]

    def binary(self, outcome: str) -> bool:
        """Whether ``outcome`` takes only the values 0 and 1 (a share of users, not an amount)."""
        values = self.data[self._outcome(outcome)]
        return bool(values.isin([0, 1]).all())

    def unit(self, outcome: str) -> str:
        """How to read ``outcome`` in a table or on an axis."""
        if self.binary(outcome):
            return "share of users"
        return self.units.get(outcome, "per user")

    def outcome(self, outcome: str) -> pd.Series:
        return self.data.set_index("user_id")[self._outcome(outcome)].astype(float)

    def _outcome(self, outcome: str) -> str:
        if outcome not in self.outcomes:
            raise ValueError(
                f"{outcome!r} is not an outcome of campaign {self.name!r}; its outcomes are {list(self.outcomes)}"
            )
        return outcome

    def restrict(self, arms) -> "Campaign":
        """The campaign with only ``arms`` (the control is always kept)."""
        keep = [self.control, *[a for a in arms if a != self.control]]
        unknown = [a for a in keep if a not in self.arms]
        if unknown:
            raise ValueError(f"arms {unknown} are not in campaign {self.name!r}: {list(self.arms)}")
        data = self.data[self.data["arm"].isin(keep)].reset_index(drop=True)
        return replace(self, data=data, arms=tuple(a for a in self.arms if a in keep))


# ------------------------------------------------------------------------------ checks


def _campaign_checks(df: pd.DataFrame, source: str, *, control: str, arms, arm_col: str = "arm") -> tuple:
    """The campaign-level contract of an assignment (``user_id``, ``arm``): one arm per user,
    the control exists, every declared arm has users, at least two arms. Returns the arms,
    control first. Raises one DataValidationError with every problem found."""
    problems, failures = [], []
    shown = "arm" if arm_col == "arm" else f"arm (file column {arm_col!r})"
    per_user = df.groupby("user_id", sort=False)["arm"].nunique()
    two = per_user[per_user > 1]
    if len(two):
        examples = (
            df[df["user_id"].isin(two.index[:3])]
            .groupby("user_id", sort=False)["arm"]
            .agg(lambda s: sorted(set(s)))
            .to_dict()
        )
        problems.append(
            f"column {shown}: {len(two):,} of {len(per_user):,} users are in two or more arms, e.g. "
            f"{'; '.join(f'user {u!r} in {a}' for u, a in examples.items())}. A user must get "
            "one arm: fix the assignment (the campaign is not randomised per user otherwise)"
        )
        failures.append({"column": "arm", "check": "one_arm_per_user", "n_rows": len(two)})
    else:
        repeated = df["user_id"].duplicated()
        if repeated.any():
            ids = df.loc[repeated, "user_id"].head(3).tolist()
            problems.append(
                f"column user_id: {int(repeated.sum()):,} users appear on more than one row "
                f"(same arm), e.g. {ids}: give one row per user"
            )
            failures.append({"column": "user_id", "check": "one_row_per_user", "n_rows": int(repeated.sum())})
    found = list(dict.fromkeys(df["arm"].astype(str)))
    declared = None if arms is None else [str(a) for a in arms]
    sizes = df["arm"].value_counts()
    _arm_labels(found, sizes, declared, control, shown, problems, failures)
    if control not in found:
        near = [a for a in found if a.strip().lower() == str(control).strip().lower()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        problems.append(
            f"column {shown}: the control arm {control!r} does not exist{hint}; the arms are "
            f"{sorted(found)} with {df['arm'].value_counts().to_dict()} users: pass "
            "control= naming one of them"
        )
        failures.append({"column": "arm", "check": "control_exists", "n_rows": len(df)})
    if arms is not None:
        declared = [str(a) for a in arms]
        empty = [a for a in declared if a not in found]
        extra = [a for a in found if a not in declared]
        if empty:
            problems.append(
                f"column {shown}: declared arm(s) {empty} have no users (arms found: "
                f"{sorted(found)}): fix the file or the arms= list"
            )
            failures.append({"column": "arm", "check": "every_arm_has_users", "n_rows": 0})
        if extra:
            n = int(df["arm"].isin(extra).sum())
            problems.append(
                f"column {shown}: {n:,} users are in arm(s) {extra} that arms= does not declare "
                f"({declared}): add them to arms= or remove those rows"
            )
            failures.append({"column": "arm", "check": "declared_arm", "n_rows": n})
    elif len(found) < 2:
        problems.append(
            f"column {shown}: only one arm ({found}) among {len(df):,} users: a campaign "
            "needs a control and at least one treatment arm"
        )
        failures.append({"column": "arm", "check": "two_or_more_arms", "n_rows": len(df)})
    small = sizes[sizes < MIN_USERS_PER_ARM]
    if len(small):
        problems.append(
            f"column {shown}: arm(s) {', '.join(f'{a!r} ({n:,} users)' for a, n in small.items())} "
            f"have fewer than {MIN_USERS_PER_ARM} users: an arm that small measures nothing (no interval, not a "
            "user in every cross-fitting fold): fix the arm labels, or leave those users out of the file"
        )
        failures.append(
            {"column": "arm", "check": f"at_least_{MIN_USERS_PER_ARM}_users_per_arm", "n_rows": int(small.sum())}
        )
    if problems:
        head = f"{source}: {len(df):,} rows, {df['user_id'].nunique():,} users: the campaign contract fails:"
        raise DataValidationError("\n  - ".join([head, *problems]), source=source, failures=pd.DataFrame(failures))
    order = [str(a) for a in arms] if arms is not None else sorted(found)
    return (control, *[a for a in order if a != control])


def _arm_labels(found, sizes, declared, control, shown, problems, failures) -> None:
    """Arm labels that are no arm (a null word: ``NULL``, ``N/A``, an empty text guard) and labels
    that differ only in case, spaces or Unicode form (``Control`` beside ``control``): one arm
    written two ways, or two arms, is not guessed. Labels declared with ``arms=`` are taken as
    they are."""
    import unicodedata

    said = set(declared or ())
    # "none" is a natural name for the arm that gets no contact: not a missing arm
    nulls = [a for a in found if a.strip().lower() in NULL_WORDS - {"none"} and a not in said]
    if nulls:
        problems.append(
            f"column {shown}: {int(sizes[nulls].sum()):,} users have an arm that is a null word "
            f"({', '.join(f'{a!r}: {int(sizes[a]):,}' for a in nulls)}): no arm was recorded for them, and as an "
            "arm of its own it would be measured and recommended. Fix the file or leave those users out (arms= "
            "declaring it takes it as an arm)"
        )
        failures.append({"column": "arm", "check": "arm_is_not_a_null_word", "n_rows": int(sizes[nulls].sum())})
    groups: dict[str, list[str]] = {}
    for a in found:
        key = " ".join(unicodedata.normalize("NFKC", a).casefold().split())
        groups.setdefault(key, []).append(a)
    twins = [g for g in groups.values() if len(g) > 1 and not set(g) <= said]
    if twins:
        shown_twins = "; ".join(" and ".join(f"{a!r} ({int(sizes[a]):,} users)" for a in g) for g in twins[:3])
        control_twin = any(control in g for g in twins)
        problems.append(
            f"column {shown}: arm labels that differ only in case or spaces: {shown_twins}. One arm written two "
            "ways or two arms is not guessed"
            + (f" (the control {control!r} is one of them)" if control_twin else "")
            + ": write each arm one way in the file, or declare both with arms= if they are different arms"
        )
        failures.append(
            {
                "column": "arm",
                "check": "arm_labels_differ_beyond_case",
                "n_rows": int(sum(sizes[a] for g in twins for a in g)),
            }
        )


def _features(frame: pd.DataFrame, names, source: str, *, categorical=(), decimal=None, thousands=None) -> pd.DataFrame:
    """Pre-campaign features as they go into a model: a column whose every value is a number
    (in the file's convention) is numeric, any other is a category (text); ``categorical``
    keeps numbers-as-codes (zip codes, plan ids) as text."""
    out = pd.DataFrame(index=frame.index)
    for name in names:
        col = frame[name]
        if name in categorical:
            out[name] = col.where(~blank(col), None).astype(object)
            continue
        try:
            values = parse_number(col, decimal=decimal, thousands=thousands)
        except ConventionError as exc:
            raise DataValidationError(
                f"{source}: feature column {name}: {exc.n_rows:,} of {len(col):,} rows "
                f"cannot be read without guessing: {exc}",
                source=source,
            ) from None
        numeric = values.notna() | blank(col)
        if numeric.all() and values.notna().any():
            if not np.isfinite(values.dropna()).all():
                raise DataValidationError(
                    f"{source}: feature column {name}: {int((~np.isfinite(values.dropna())).sum()):,} "
                    "rows hold an infinite value",
                    source=source,
                )
            out[name] = values
        else:
            out[name] = col.where(~blank(col), None).astype(object)
    return out


def validate_campaign(
    raw: RawTable,
    campaign: CampaignOptions | None = None,
    options: ReadOptions | None = None,
    *,
    name: str | None = None,
    **by_name,
) -> Campaign:
    """One raw per-user campaign table -> :class:`Campaign` (see :func:`load_campaign`)."""
    spec, o = build(by_name, campaign or CampaignOptions, options or ReadOptions)
    o = _campaign_read(o, raw.source)
    control, outcomes, features, arms = spec.control, list(spec.outcomes), spec.features, spec.arms
    if not outcomes:
        raise ValueError("a campaign needs at least one outcome column (outcomes=[...])")
    columns = dict(o.columns or {})
    file_cols = [str(c) for c in raw.frame.columns]
    contract = {"user_id", "arm", *outcomes, "sent_at", "outcome_at"}
    used = {columns.get(c, c) for c in contract}
    if features is None:
        features = [c for c in file_cols if c not in used and c not in columns]
    features = list(features)
    missing = [f for f in features if columns.get(f, f) not in file_cols]
    if missing:
        raise DataValidationError(
            f"{raw.source}: feature column(s) {missing} are not in the file; it has {file_cols}", source=raw.source
        )
    clash = [f for f in features if f in contract]
    if clash:
        raise ValueError(f"{clash} are campaign columns, not features")
    mapping = {**{f: columns.get(f, f) for f in features}, **columns}
    extra = [Field(o, "number") for o in outcomes]
    if columns.get("sent_at", "sent_at") in file_cols:
        extra.append(Field("sent_at", "datetime", event_time=True))
    if columns.get("outcome_at", "outcome_at") in file_cols:
        extra.append(Field("outcome_at", "datetime", nullable=True))
    table = validate_table(raw, "campaign", replace(o, columns=mapping), extra_fields=tuple(extra))
    report = table.attrs["validation"]
    if table.empty:
        raise DataValidationError(
            f"{raw.source}: no valid rows left ({report['n_rejected']:,} rejected)", source=raw.source
        )
    table["arm"] = table["arm"].astype(str).str.strip()
    arm_col = columns.get("arm", "arm")
    order = _campaign_checks(table, raw.source, control=str(control), arms=arms, arm_col=arm_col)
    if "outcome_at" in table and "sent_at" in table:
        early = table["outcome_at"].notna() & (table["outcome_at"] < table["sent_at"])
        if early.any():
            ex = table.loc[early, ["user_id", "sent_at", "outcome_at"]].head(3).to_dict("records")
            raise DataValidationError(
                f"{raw.source}: column outcome_at (file column {columns.get('outcome_at', 'outcome_at')!r}): "
                f"{int(early.sum()):,} of {len(table):,} users have their outcome dated before their send "
                f"(sent_at), e.g. {ex}: an outcome before the contact cannot be its effect; fix the dates or "
                "drop those outcomes",
                source=raw.source,
                failures=pd.DataFrame(
                    [{"column": "outcome_at", "check": "not_before_sent_at", "n_rows": int(early.sum())}]
                ),
            )
    feats = _features(
        table, features, raw.source, categorical=spec.categorical, decimal=o.decimal, thousands=o.thousands
    )
    keep = ["user_id", "arm", *outcomes, *[c for c in ("sent_at", "outcome_at") if c in table]]
    data = pd.concat([table[keep], feats], axis=1)
    data.attrs["validation"] = report
    return Campaign(
        data=data,
        control=str(control),
        arms=order,
        outcomes=tuple(outcomes),
        features=tuple(features),
        name=name or o.dataset or "campaign",
        window=spec.window,
        units=dict(spec.units),
        source=raw.source,
        value_feature=spec.value_feature,
    )


def _campaign_read(o: ReadOptions, source: str) -> ReadOptions:
    """The reading options of a campaign or assignment file: every exact duplicate row is
    refused (a user is randomised once), and the options of transactions alone are refused
    rather than ignored."""
    wrong = {
        "duplicates": o.duplicates != "reject",
        "value_per_event": o.value_per_event is not None,
        "returns": o.returns != "reject",
    }
    if any(wrong.values()):
        raise ValueError(
            f"{source}: option(s) {[k for k, v in wrong.items() if v]} apply to transactions, not to a campaign "
            "file: a user is randomised once (duplicate rows are refused) and outcomes are not amounts"
        )
    return o


def campaign_from_frame(
    df: pd.DataFrame,
    campaign: CampaignOptions | None = None,
    options: ReadOptions | None = None,
    *,
    name: str = "campaign",
    **by_name,
) -> Campaign:
    """A :class:`Campaign` from an in-memory table (``user_id``, ``arm``, outcomes, features),
    held to the same contract as a file."""
    raw = raw_from_frame(df.astype({c: object for c in df.columns}), name)
    return validate_campaign(raw, campaign, options, name=name, **by_name)


def load_campaign(
    path: str | Path, campaign: CampaignOptions | None = None, options: ReadOptions | None = None, **by_name
) -> Campaign:
    """A per-user campaign file (CSV or Parquet, as :func:`urm_models.data.datasets.load_transactions`
    reads them): ``user_id``, ``arm``, the ``outcomes`` and pre-campaign ``features`` (default:
    every other column), optionally ``sent_at`` and ``outcome_at`` (when the outcome happened;
    one before the send is refused).

    ``campaign`` (:class:`~urm_models.data.options.CampaignOptions`) says what the file holds:
    the control arm, the arms, outcomes, features and their units; ``options``
    (:class:`~urm_models.data.options.ReadOptions`) how to read it (``columns`` maps canonical
    names to the file's: ``{"arm": "segment"}``). ``by_name`` sets the fields of either by
    name: ``load_campaign(path, control="none", outcomes=["spend"], units={"spend": "EUR"},
    sep=";")``. Rows that break the contract raise (or, with ``errors="quarantine"``, go to
    ``data/quarantine/``); campaign-level problems always raise.
    """
    spec, o = build(by_name, campaign or CampaignOptions, options or ReadOptions)
    raw, o = read_file(path, o)
    return validate_campaign(raw, spec, o, name=o.dataset)


def load_hillstrom(path: str | Path | None = None) -> Campaign:
    """The MineThatData e-mail experiment (Hillstrom 2008; data/README.md): 64,000 customers
    randomised to a men's merchandise e-mail, a women's merchandise e-mail or no e-mail
    (the control), with ``visit``, ``conversion`` (0/1) and ``spend`` (US dollars) in the two
    weeks after. The file has no customer id: ``user_id`` is ``r`` and the row number in five
    digits (``r00001`` to ``r64000``, in file order)."""
    path = Path(path) if path is not None else paths.raw_data_dir() / HILLSTROM
    raw = read_raw(path, sep=",")
    if "user_id" in raw.frame.columns:
        raise DataValidationError(f"{path}: has a user_id column; load it with load_campaign()", source=str(path))
    numbers = (raw.lines - 1) if raw.lines is not None else np.arange(1, len(raw.frame) + 1)
    raw.frame.insert(0, "user_id", [f"r{int(n):05d}" for n in numbers])
    return validate_campaign(
        raw,
        CampaignOptions(
            control="No E-Mail",
            outcomes=("visit", "conversion", "spend"),
            features=HILLSTROM_FEATURES,
            arms=HILLSTROM_ARMS,
            categorical=("zip_code", "channel"),
            window="in the two weeks after the e-mail",
            units={"spend": "USD"},
            value_feature="history",
        ),
        ReadOptions(columns={"arm": "segment"}, dataset="hillstrom"),
        name="hillstrom",
    )


def load_assignments(
    path: str | Path, *, control: str, arms=None, options: ReadOptions | None = None, **by_name
) -> pd.DataFrame:
    """An assignment file ``user_id, arm, sent_at`` (who got which arm, when), validated: the
    data contract row by row (as transactions: dates read without guessing, no send in the
    future), then the campaign checks (one arm per user, the control exists, every declared arm
    has users). ``options`` (:class:`~urm_models.data.options.ReadOptions`, or its fields by
    name) says how to read the file. Returns ``user_id, arm, sent_at`` with
    ``attrs["campaign"]`` holding the control and the arms (control first)."""
    raw, o = read_file(path, build(by_name, options or ReadOptions))
    return assignments_from_raw(raw, control=control, arms=arms, options=o)


def assignments_from_raw(
    raw: RawTable, *, control: str, arms=None, options: ReadOptions | None = None, **by_name
) -> pd.DataFrame:
    o = _campaign_read(build(by_name, options or ReadOptions), raw.source)
    table = validate_table(raw, "assignments", o)
    if table.empty:
        raise DataValidationError(f"{raw.source}: no valid assignment rows", source=raw.source)
    table["arm"] = table["arm"].astype(str).str.strip()
    order = _campaign_checks(
        table, raw.source, control=str(control), arms=arms, arm_col=(o.columns or {}).get("arm", "arm")
    )
    out = table[["user_id", "arm", "sent_at"]].copy()
    out.attrs["validation"] = table.attrs["validation"]
    out.attrs["campaign"] = {"control": str(control), "arms": list(order), "source": raw.source}
    return out
