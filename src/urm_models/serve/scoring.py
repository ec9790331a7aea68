"""The relationship table: one row per user from the champion models, features and segments.

``score_users(dataset, as_of)`` loads the champion models from the registry (through
``tracking``) and calls :func:`score_transactions` (non-contractual data: an RFM table scored by
the ``urm-clv`` model) or :func:`score_customers` (contractual data: the ``urm-churn`` classifier
and the ``urm-survival`` model). Both take fitted models directly, too, so the same code scores
from a notebook, a benchmark or a Spark job. :func:`write_predictions` stores the table as
``data/predictions/<dataset>/<as_of>/user_scores.parquet`` (written to a temporary name and
renamed into place) and points ``data/predictions/<dataset>/latest`` at it.

The columns, their order, types and units are :mod:`~urm_models.serve.schema`'s (docs/architecture.md,
"The predictions table"). Times (``expected_remaining_lifetime``) are in months, restricted to the model's horizon;
``p_churn`` is the probability of leaving within the horizon (``churn_horizon`` in the table's
attrs and the Parquet metadata): on transactions, of no purchase in the churn window, from the
data set's ``urm-churn`` classifier when it ranked an inner window before the cut-off better than the CLV model's
purchase model (docs/architecture.md, "Churn on transactions"; ``p_churn_source`` says which).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import segments
from ..core import clock, paths, sql
from ..core.io import atomic_path, make_dirs
from ..core.units import FREQ, UNIT_DAYS
from ..data import datasets
from ..data.erasure import not_erased
from ..features import activity_features, cohort_of
from ..features.churn import activity_features_sql
from . import schema, tracking
from .tracking import store_label


def _model_inputs(model, df: pd.DataFrame) -> pd.DataFrame:
    """The columns a logged model declares in its signature (all of ``df`` otherwise)."""
    meta = getattr(model, "metadata", None)
    signature = meta.get_input_schema() if meta is not None else None
    if signature is None:
        return df
    names = signature.input_names()
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"the model needs columns {missing} that the data lack")
    return df[names]


def _predict_frame(model, X: pd.DataFrame) -> pd.DataFrame:
    import inspect

    X_in = _model_inputs(model, X).reset_index(drop=True)
    if "context" in inspect.signature(model.predict).parameters:  # an unlogged mlflow PythonModel
        out = model.predict(None, X_in)
    else:
        out = model.predict(X_in)
    out = pd.DataFrame(out)
    out.index = X.index
    return out


def _positive_probability(model, X: pd.DataFrame) -> np.ndarray:
    """P(class 1) from a fitted classifier or a pyfunc whose predict is predict_proba."""
    if hasattr(model, "predict_proba"):
        p = model.predict_proba(X)
    else:
        p = model.predict(_model_inputs(model, X).reset_index(drop=True))
    p = np.asarray(p, float)
    return p[:, -1] if p.ndim == 2 else p


@dataclass(frozen=True)
class ScoringOptions:
    """The choices that make a relationship table, in one object for every way of computing it
    (:func:`score_transactions`, :func:`score_to_parquet`, the Spark engine, customers and
    campaigns).

    freq : the time unit of the activity features, ``"D"``, ``"W"`` or ``"M"``: the unit the
        CLV model was fitted in (transactions only).
    period : a user younger than ``period`` is new, one quiet for ``period`` is at risk of
        lapsing (:func:`segments.lifecycle_stages`); default 13 periods of ``freq`` (a quarter
        in weeks) for transactions, 3 months of tenure for customers.
    lapse_after : quiet this long, a user is lapsed and scores at most R = 3; default 26
        periods of ``freq`` for transactions, ``max(period, 1)`` months for customers.
    at_risk : the churn risk from which an active user is "at risk".
    tier_shares, tier_amounts : the value tiers (:func:`segments.value_tiers`): shares of users
        (default 10/20/30/40%) or minimum values, not both.
    rules, playbook : the RFM segment rules and the action playbook (defaults:
        :data:`segments.SEGMENT_RULES`, :data:`segments.PLAYBOOK`).
    """

    freq: str = FREQ
    period: float | None = None
    lapse_after: float | None = None
    at_risk: float = 0.5
    tier_shares: Mapping | None = None
    tier_amounts: Mapping | None = None
    rules: object = None
    playbook: object = None

    def checked(self, kind: str = "transactions") -> ScoringOptions:
        """These options with the defaults of ``kind`` filled in, refused when they cannot make a
        table (before any data is read or any Spark job starts)."""
        if kind == "transactions" and self.freq not in UNIT_DAYS:
            raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)}, not {self.freq!r}")
        if self.tier_shares is not None and self.tier_amounts is not None:
            raise ValueError("give tier_shares or tier_amounts, not both")
        period = float(self.period if self.period is not None else (13 if kind == "transactions" else 3))
        lapse = float(
            self.lapse_after if self.lapse_after is not None else (26 if kind == "transactions" else max(period, 1.0))
        )
        if not (period > 0 and lapse > 0 and 0 <= self.at_risk <= 1):
            raise ValueError(
                f"period and lapse_after must be positive and at_risk within [0, 1]; got {period}, "
                f"{lapse}, {self.at_risk}"
            )
        segments.tier_bounds(1, self.tier_shares, self.tier_amounts)
        return replace(
            self,
            period=period,
            lapse_after=lapse,
            rules=segments.segment_rules(self.rules),
            playbook=segments.playbook_table(self.playbook),
        )


#: what the row-wise step hands to the ranks, which pass it on to the last step: columns of the
#: table (serve/schema.py) and what the quintiles and tiers read, with their kinds. The DuckDB and
#: Spark paths read this list (the SQL of the ranks, the Spark step's schema)
ROW_COLUMNS = (
    "p_alive",
    "p_churn",
    "expected_purchases",
    "expected_remaining_lifetime",
    "clv",
    "value_at_risk",
    "lifecycle_stage",
    "cohort",
)
RANK_INPUTS = (("time_since_last", "number"), ("frequency", "count"), ("monetary", "number"))


class TransactionScoring:
    """The relationship table of transactions, as steps every engine runs: what :func:`setup`
    returns. :meth:`rows` is row-wise (any batch of users' activity features), the ranks need
    every user (in pandas inside :meth:`table`, the in-memory path; :meth:`ranks_sql` in DuckDB
    or Spark: the same rule, :func:`segments.tier_bounds` and the quintiles of
    :func:`segments.rfm_scores`), and :meth:`finish` is row-wise again. ``facts`` are what the
    table's attrs record."""

    def __init__(self, clv_model, churn_model, churn_window: str, model_versions: str, options: ScoringOptions):
        self.clv_model, self.churn_model, self.options = clv_model, churn_model, options
        self.model_versions = model_versions
        scorer = _scorer(clv_model)
        # the columns the CLV model reads: an RFM table's, or more (a shifted-window purchase model)
        self.clv_inputs = list(getattr(scorer, "inputs", ["frequency", "recency", "T", "monetary"]))
        self.facts = {"churn_horizon": churn_window if churn_model is not None else _horizon_label(scorer)}
        if getattr(scorer, "horizon", None) is not None:
            self.facts["clv_horizon"] = f"{scorer.horizon} {scorer.freq}"
        self.facts["columns"] = schema.units(
            self.facts["churn_horizon"],
            self.facts.get("clv_horizon", ""),
            getattr(getattr(scorer, "spend_model", None), "value", 0.0) is None,
        )

    @property
    def windows(self) -> tuple:
        """The activity windows the features need (4, 13, 26 and ``period`` periods)."""
        return (4, 13, 26, int(self.options.period))

    def rows(self, act: pd.DataFrame, as_of) -> pd.DataFrame:
        """Scores of some users' activity features (indexed by user id): the CLV model's, the
        churn classifier's ``p_churn``, lifecycle stage and cohort, and what the ranks need."""
        return pd.DataFrame(self._rows(act, as_of), index=act.index, copy=False)

    def table(self, act: pd.DataFrame, as_of) -> pd.DataFrame:
        """The whole table of every user's activity features, in memory: :meth:`rows`, the
        ranks in pandas, :meth:`finish`, on columns (no intermediate frame of a million rows)."""
        cols = self._rows(act, as_of)
        o = self.options
        sc = segments.rfm_scores(pd.DataFrame({c: cols[c] for c in ("frequency", "monetary", "time_since_last")}))
        cols.update({c: sc[c].to_numpy() for c in ("R", "F", "M")})
        cols["tier"] = segments.value_tiers(
            pd.Series(cols["tier_value"], index=act.index), o.tier_shares, o.tier_amounts
        ).to_numpy(object)
        return self._finish(cols, act.index, as_of)

    def _rows(self, act: pd.DataFrame, as_of) -> dict:
        o = self.options
        if "as_of" in self.clv_inputs:  # a model with a season calendar scores at a date
            act = act.assign(as_of=pd.Timestamp(as_of).normalize())
        t = _predict_frame(self.clv_model, act[self.clv_inputs])
        p_churn = (
            _positive_probability(self.churn_model, act)
            if self.churn_model is not None
            else t["p_churn"].to_numpy(float)
        )
        stage = segments.lifecycle_stages(
            act["T"],
            since_last=act["time_since_last"],
            gap_before_last=act["gap_last"],
            risk=p_churn,
            period=o.period,
            lapse_after=o.lapse_after,
            at_risk=o.at_risk,
        )
        cols = {
            c: t[c].to_numpy(float)
            for c in ("p_alive", "p_churn", "expected_purchases", "expected_remaining_lifetime", "clv")
        }
        cols["value_at_risk"] = _value_at_risk(t)
        # tiers by CLV; by expected purchases where the data have no money (an activity log: CLV empty)
        cols["tier_value"] = np.where(np.isnan(cols["clv"]), cols["expected_purchases"], cols["clv"])
        cols.update(
            p_churn=p_churn,
            lifecycle_stage=stage.to_numpy(object),
            cohort=cohort_of(act["T"], as_of, o.freq).to_numpy(object),
            time_since_last=act["time_since_last"].to_numpy(float),
            frequency=act["frequency"].to_numpy("int64"),
            monetary=act["monetary"].to_numpy(float),
        )
        return cols

    def ranks_sql(self, view: str, n: int) -> str:
        """The ranks as one SQL query over ``view`` (``n`` users of :meth:`rows`, with a
        ``user_id`` column), for DuckDB and Spark: ``RANK`` is pandas' "min" rank, the tier
        position ``ROW_NUMBER`` over CLV descending, then user id (the order of value_tiers)."""
        o = self.options

        def quintile(rank: str, count: str) -> str:
            return f"LEAST(5, GREATEST(1, 1 + CAST(FLOOR(5 * ({rank} - 1) / GREATEST({count}, 1)) AS BIGINT)))"

        bounds = segments.tier_bounds(n, o.tier_shares, o.tier_amounts)
        if o.tier_amounts is not None:
            cases = " ".join(f"WHEN tier_value >= {float(v)!r} THEN '{t}'" for t, v in bounds[:-1])
            tier = f"CASE {cases} ELSE '{bounds[-1][0]}' END"
        else:
            cases = " ".join(f"WHEN pos <= {int(b)} THEN '{t}'" for t, b in bounds)
            tier = f"CASE {cases} END"
        return f"""
WITH counted AS (
    SELECT s.*, c.n_all, c.n_repeat
    FROM {view} s CROSS JOIN (SELECT COUNT(*) AS n_all, SUM(CASE WHEN frequency > 0 THEN 1 ELSE 0 END) AS n_repeat
                              FROM {view}) c
),
ranked AS (
    SELECT *,
        RANK() OVER (ORDER BY -time_since_last) AS r_rank,
        RANK() OVER (PARTITION BY frequency > 0 ORDER BY frequency) AS f_rank,
        RANK() OVER (PARTITION BY frequency > 0 ORDER BY monetary) AS m_rank,
        ROW_NUMBER() OVER (ORDER BY tier_value DESC, user_id) AS pos
    FROM counted
)
SELECT user_id, {", ".join([*ROW_COLUMNS, *(name for name, _ in RANK_INPUTS)])},
       {quintile("r_rank", "n_all")} AS R,
       CASE WHEN frequency > 0 THEN {quintile("f_rank", "n_repeat")} ELSE 0 END AS F,
       CASE WHEN frequency > 0 THEN {quintile("m_rank", "n_repeat")} ELSE 0 END AS M,
       {tier} AS tier
FROM ranked"""

    def finish(self, ranked: pd.DataFrame, as_of) -> pd.DataFrame:
        """Rows with their scores, quintiles and tier (indexed by user id) -> rows of the table:
        the lapse cap and segment names, value at risk, actions, types. Row-wise: any batch."""
        return self._finish({c: ranked[c].to_numpy() for c in ranked.columns}, ranked.index, as_of)

    def _finish(self, cols: dict, index: pd.Index, as_of) -> pd.DataFrame:
        o = self.options
        rows = pd.RangeIndex(len(index))  # positions: no million-id index to check or align
        scores = pd.DataFrame({c: np.asarray(cols.pop(c), "int64") for c in ("R", "F", "M")}, index=rows)
        sc = segments.rfm.finish_scores(
            scores, pd.Series(np.asarray(cols.pop("time_since_last"), float), index=rows), o.lapse_after
        )
        cols.pop("frequency"), cols.pop("monetary"), cols.pop("tier_value", None)
        cols["rfm_segment"] = segments.rfm.segment_of(sc, o.rules).to_numpy(object)
        return _finish_rows(cols, index, as_of, o.playbook, self.model_versions)


def setup(
    clv_model,
    *,
    churn_model=None,
    churn_window: str = "",
    model_versions: str = "",
    options: ScoringOptions | None = None,
) -> TransactionScoring:
    """The one setup of every transactions path: the options checked (defaults filled in), the
    CLV model's time unit against ``options.freq``, the facts the table records.

    ``clv_model`` scores RFM tables (a :class:`~urm_models.models.CLVScorer` or the logged
    ``urm-clv`` pyfunc); ``churn_model``, when given, is the shifted-window classifier whose
    window ``churn_window`` names (e.g. ``"13 W"``) and gives ``p_churn``; ``model_versions``
    is written in every row."""
    options = (options or ScoringOptions()).checked("transactions")
    scorer = _scorer(clv_model)
    scorer_freq = getattr(scorer, "rfm_freq", None)
    if scorer_freq is not None and scorer_freq != options.freq:
        raise ValueError(f"the CLV model scores RFM tables in {scorer_freq!r} units, not {options.freq!r}")
    if "trend" in getattr(scorer, "inputs", ()) and int(options.period) < 4:
        # the activity features' trend compares the shortest window with the one before it
        raise ValueError(
            f"the CLV model's purchase model (ShiftedWindowPurchases) learned from activity "
            f"windows of 4, 13 and 26 {options.freq}; a period of {options.period:g} would change "
            f"its trend feature: use period >= 4"
        )
    return TransactionScoring(clv_model, churn_model, churn_window, model_versions, options)


def _finish_rows(cols: Mapping, index: pd.Index, as_of, playbook, model_versions: str) -> pd.DataFrame:
    """Value at risk, the playbook's action and the table's types, row by row; ``cols`` are the
    columns so far (Series or arrays in the order of the user ids ``index``)."""
    cols = dict(cols)
    rows = pd.RangeIndex(len(index))  # positions: no million-id index to check or align
    actions = segments.recommend_actions(
        pd.Series(np.asarray(cols["tier"], object), index=rows),
        pd.Series(np.asarray(cols["lifecycle_stage"], object), index=rows),
        playbook,
    )
    cols["recommended_action"] = actions["recommended_action"].to_numpy(object)
    cols["action_channel"] = actions["channel"].to_numpy(object)
    cols["action_priority"] = actions["priority"].to_numpy("int64")
    return schema.frame({**cols, "model_versions": model_versions}, index, as_of)


def score_transactions(
    transactions,
    as_of,
    clv_model,
    *,
    churn_model=None,
    churn_window: str = "",
    model_versions: str = "",
    options: ScoringOptions | None = None,
) -> pd.DataFrame:
    """The relationship table of a transactions data set at ``as_of``, in memory.

    Features use only purchases on or before ``as_of``, in ``options.freq`` units (the unit the
    CLV model was fitted in); the models and options are those of :func:`setup`. ``p_churn``
    comes from ``churn_model`` when given, else from the CLV model.
    """
    s = setup(
        clv_model, churn_model=churn_model, churn_window=churn_window, model_versions=model_versions, options=options
    )
    act = activity_features(transactions, as_of, freq=s.options.freq, windows=s.windows)
    out = s.table(act, as_of)
    out.attrs.update(s.facts)
    return out


def score_to_parquet(
    transactions,
    as_of,
    clv_model,
    path,
    *,
    churn_model=None,
    churn_window: str = "",
    model_versions: str = "",
    options: ScoringOptions | None = None,
    batches: int = 10,
    batch_rows: int = 500_000,
    metadata: Mapping | None = None,
    dataset: str | None = None,
) -> dict:
    """The relationship table of :func:`score_transactions`, streamed: memory grows with a batch
    of users, not with the user count (the one-box path for tens of millions of users).

    Pass 1 scores ``batches`` slices of the users (by a hash of the id; each slice's activity
    features from DuckDB) into a temporary Parquet file; pass 2 ranks them all in DuckDB
    (:meth:`TransactionScoring.ranks_sql`, spilling under its memory limit) and streams the
    ranked rows, ``batch_rows`` at a time, through :meth:`TransactionScoring.finish` into
    ``path`` (written atomically; ``metadata`` and the facts go into its schema as
    :func:`write_predictions` puts them). Same table, value for value, as the in-memory scoring
    (tested). Returns the facts the table's attrs hold. Users erased (``urm forget``)
    everywhere or in ``dataset`` are left out.
    """
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    s = setup(
        clv_model, churn_model=churn_model, churn_window=churn_window, model_versions=model_versions, options=options
    )
    if int(batches) != batches or batches < 1:
        raise ValueError(f"batches must be a positive whole number, got {batches}")
    stamp = pd.Timestamp(as_of)
    path = Path(path)
    make_dirs(path.parent)
    fd, scored_file = tempfile.mkstemp(prefix=f".{path.name}.scored.", suffix=".tmp", dir=path.parent)
    os.close(fd)  # a scratch file of pass 1, removed at the end (a killed run's: by pipeline.recover)
    keep = not_erased(dataset)  # a file read as it is may still hold users erased since it was written
    con = sql.connect()
    try:
        sql.expose(con, transactions)
        writer = None
        for b in range(int(batches)):
            part = f"(SELECT * FROM transactions WHERE hash(CAST(user_id AS VARCHAR)) % {int(batches)} = {b})"
            act = con.execute(activity_features_sql(stamp, s.options.freq, s.windows, source=part)).df()
            act = act.set_index("user_id")
            for c in act.columns:  # as activity_features types them
                if c.startswith("purchases_") or c in ("frequency", "trend"):
                    act[c] = act[c].astype("int64")
            if keep is not None:
                act = act[keep(act.index.to_numpy())]
            if act.empty:
                continue
            arrow = pa.Table.from_pandas(s.rows(act, stamp).reset_index(), preserve_index=False)
            writer = writer or pq.ParquetWriter(scored_file, arrow.schema)
            writer.write_table(arrow)
            del act, arrow
        if writer is None:
            raise ValueError(f"no user has a purchase on or before {stamp:%Y-%m-%d}")
        writer.close()
        escaped = str(scored_file).replace("'", "''")
        con.execute(f"CREATE VIEW scored AS SELECT * FROM read_parquet('{escaped}')")
        n, bad = con.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE clv IS NULL OR isnan(clv)) FROM scored"
        ).fetchall()[0]
        if bad:
            raise ValueError(f"the CLV model returned {bad} missing values of {n}")
        reader = con.sql(s.ranks_sql("scored", n) + " ORDER BY user_id").to_arrow_reader(batch_rows)
        with atomic_path(path) as tmp:
            out_writer = None
            for batch in reader:
                out = s.finish(batch.to_pandas().set_index("user_id"), stamp)
                arrow = pa.Table.from_pandas(out, preserve_index=False)
                if out_writer is None:
                    meta = {
                        **(arrow.schema.metadata or {}),
                        b"urm_models": json.dumps(
                            {"as_of": f"{stamp:%Y-%m-%d}", "rows": int(n), **s.facts, **(metadata or {})}, default=str
                        ).encode(),
                    }
                    out_writer = pq.ParquetWriter(tmp, arrow.schema.with_metadata(meta))
                out_writer.write_table(arrow.cast(out_writer.schema))
            out_writer.close()
    finally:
        con.close()
        Path(scored_file).unlink(missing_ok=True)
    return {**s.facts, "rows": int(n)}


def _value_at_risk(scores: pd.DataFrame) -> np.ndarray:
    """The model's ``value_at_risk`` (expected value lost to leaving over the CLV horizon,
    ``schema.units``); empty for a model logged before it gave one (its table says
    nothing rather than something of another horizon)."""
    if "value_at_risk" in scores.columns:
        return scores["value_at_risk"].to_numpy(float)
    return np.full(len(scores), np.nan)


def _scorer(clv_model):
    """The CLVScorer inside a loaded pyfunc, a CLVPyfunc, or the scorer itself."""
    inner = clv_model.unwrap_python_model() if hasattr(clv_model, "unwrap_python_model") else clv_model
    return getattr(inner, "scorer", inner)


def _horizon_label(scorer) -> str:
    """The window of the CLV scorer's ``p_churn``, e.g. ``"13 W"``."""
    window = getattr(scorer, "churn_window", None)
    if window is not None:
        return f"{window:g} {scorer.rfm_freq}"
    h, f = getattr(scorer, "horizon", None), getattr(scorer, "freq", None)
    return f"{h} {f}" if h is not None else ""


def score_customers(
    customers: pd.DataFrame,
    as_of,
    churn_model,
    survival_model,
    *,
    duration_col: str = "tenure",
    event_col: str = "churn",
    model_versions: str = "",
    options: ScoringOptions | None = None,
) -> pd.DataFrame:
    """The relationship table of a contractual (customers) data set such as Telco.

    ``churn_model`` gives ``p_churn`` (the classifier, or the logged ``urm-churn`` model);
    ``survival_model`` (the logged ``urm-survival`` pyfunc, or a SurvivalPyfunc) gives the
    expected remaining lifetime and the contractual CLV given the tenure reached. Customers whose
    contract has ended (``event_col`` = 1) are ``lapsed`` with P(alive) 0 and no remaining value;
    for the others P(alive) is 1 (the contract is observed to be running). There are no
    purchases, so ``rfm_segment`` and ``expected_purchases`` are missing. New = tenure below
    ``options.period`` months (default 3).
    """
    o = (options or ScoringOptions()).checked("customers")
    for c in ("user_id", duration_col, event_col):
        if c not in customers.columns:
            raise ValueError(f"customers lack column {c!r}")
    df = customers.set_index("user_id")
    churned = df[event_col].astype(int).to_numpy() == 1
    X = df.drop(columns=[event_col])
    table = pd.DataFrame(index=df.index)
    table["p_churn"] = np.where(churned, 1.0, _positive_probability(churn_model, X))
    surv = _predict_frame(survival_model, X)
    if "clv" not in surv.columns:
        raise ValueError("the survival model does not return clv: log it with charge_col")
    table["p_alive"] = np.where(churned, 0.0, 1.0)
    table["expected_purchases"] = np.nan
    table["expected_remaining_lifetime"] = np.where(churned, 0.0, surv["expected_remaining_lifetime"])
    table["clv"] = np.where(churned, 0.0, surv["clv"])
    table["value_at_risk"] = np.where(churned, 0.0, _value_at_risk(surv))  # gone: nothing left to keep
    table["rfm_segment"] = pd.NA
    table["lifecycle_stage"] = segments.lifecycle_stages(
        df[duration_col].astype(float),
        lapsed=pd.Series(churned, index=df.index),
        risk=table["p_churn"],
        period=o.period,
        lapse_after=o.lapse_after,
        at_risk=o.at_risk,
    )
    band = (df[duration_col].astype(int) // 12) * 12
    table["cohort"] = [f"tenure {b}-{b + 11} months" for b in band]
    table["tier"] = segments.value_tiers(table["clv"], o.tier_shares, o.tier_amounts)
    out = _finish_rows({c: table[c] for c in table}, table.index, as_of, o.playbook, model_versions)
    out.attrs["churn_horizon"] = "the churn label's window"
    inner = survival_model.unwrap_python_model() if hasattr(survival_model, "unwrap_python_model") else survival_model
    if getattr(inner, "clv_horizon", None) is not None:
        out.attrs["clv_horizon"] = f"{inner.clv_horizon} M"  # Telco's tenure is in months
    h = out.attrs.get("clv_horizon", "the survival model's horizon")
    out.attrs["columns"] = {
        "p_alive": "1 for a running contract, 0 for an ended one (observed, not modelled)",
        "p_churn": "probability of leaving within the churn label's window (the classifier's)",
        "expected_purchases": "empty: a contract has no purchases to count",
        "expected_remaining_lifetime": "months with the contract, from the survival model",
        "clv": f"the data's currency; discounted expected charges in the next {h}",
        "value_at_risk": f"the data's currency; discounted charges of the next {h} lost if the customer leaves: "
        "every month's charge for a customer who stays, less clv (0 for an ended contract)",
    }
    return out


def score_campaign(
    campaign,
    as_of,
    uplift_model,
    *,
    model_versions: str = "",
    options: ScoringOptions | None = None,
    channel: str = "campaign",
) -> pd.DataFrame:
    """The relationship table of a campaign data set (one row per user with pre-campaign
    features, such as Hillstrom): each user's ``recommended_arm`` (the control: no contact) and
    ``expected_incremental_value`` from the ``urm-uplift`` model (an
    :class:`~urm_models.experiments.policy.UpliftPolicy` or its logged pyfunc), and the tier of
    the campaign's pre-campaign value (``campaign.value_feature``, Hillstrom: dollars spent in the
    past year). ``recommended_action`` names the arm to send (``no contact`` for the control),
    ``action_priority`` ranks the contacts by expected value (1 = the top quarter ... 4; 5 =
    no contact). What a campaign table cannot know (P(alive), churn risk, CLV, RFM segment,
    lifecycle stage, cohort) stays empty. Of ``options``, the tiers apply."""
    o = (options or ScoringOptions()).checked("campaign")
    X = campaign.X
    scores, decision = recommend_arms(uplift_model, X)
    table = pd.DataFrame(index=X.index)  # the columns a campaign does not score stay empty (schema.frame)
    value = getattr(campaign, "value_feature", "")
    table["tier"] = (
        segments.value_tiers(X[value].astype(float), shares=o.tier_shares, amounts=o.tier_amounts) if value else pd.NA
    )
    arm = scores["recommended_arm"].astype(str)
    gain = scores["expected_incremental_value"].astype(float)
    contact = arm != str(campaign.control)
    table["recommended_arm"] = arm
    table["expected_incremental_value"] = gain
    table["recommended_action"] = np.where(contact, "send " + arm, "no contact")
    table["action_channel"] = np.where(contact, channel, "none")
    priority = np.full(len(table), 5, dtype="int64")
    if contact.any():
        ranks = gain[contact].rank(ascending=False, method="first") / contact.sum()
        priority[contact.to_numpy()] = np.minimum(4, np.ceil(ranks * 4)).astype("int64")
    table["action_priority"] = priority
    out = schema.frame({**{c: table[c] for c in table}, "model_versions": model_versions}, table.index, as_of)
    out.attrs["uplift_decision"] = decision
    out.attrs["tier_basis"] = (
        f"{value}, the value each user brought before the campaign"
        if value
        else "nothing: the campaign names no pre-campaign value (value_feature)"
    )
    return out


def score_users(
    dataset: str,
    as_of=None,
    *,
    path: str | Path = "",
    read: dict | None = None,
    models_from: str | None = None,
    options: ScoringOptions | None = None,
) -> pd.DataFrame:
    """Score a data set with the champion models of the registry: a shipped one by name, or
    your own transactions file (``path``, read with ``read`` as in
    :func:`urm_models.data.datasets.load_dataset`) under the name ``dataset``.

    ``as_of`` defaults to today for customer tables; transactions need it (the cut-off).
    The models are the champions of ``dataset`` itself: a data set without them is an error
    naming the data sets that have some; ``models_from`` names another data set whose champions
    should score this one (e.g. ``cdnow_sample``'s for ``cdnow``). The table's attrs (and
    Parquet metadata) record ``models_trained_on`` and ``model_store``. ``options``: the
    table's choices (:class:`ScoringOptions`; ``freq`` must be the CLV model's time unit).
    """
    out = _score_users(dataset, as_of, path=path, read=read, source=models_from or dataset, options=options)
    out.attrs.update(model_facts(models_from or dataset))
    return out


def model_facts(source: str) -> dict:
    """What a table records about its models beside their versions: the data set they were
    trained on and the tracking store they came from (without a password)."""
    return {"models_trained_on": source, "model_store": store_label()}


def _score_users(dataset, as_of, *, path, read, source, options) -> pd.DataFrame:
    kind = datasets.dataset_kind(dataset, path)
    data = datasets.load_dataset(dataset, path, **(read or {}))
    if kind == "campaign":
        model, info = _load(tracking, "uplift", source)
        versions = f"{info['name']}/{info['version']}"
        out = score_campaign(data, as_of or clock.current_day(), model, model_versions=versions, options=options)
        out.attrs["uplift_source"] = f"{versions} ({info['tags'].get('learner', '')} learner)"
        return out
    if kind == "transactions":
        if as_of is None:
            raise ValueError("as_of is required for transactions (the date to score at)")
        m = transaction_champions(source)
        out = score_transactions(
            data,
            as_of,
            m["clv_model"],
            churn_model=m["churn_model"],
            churn_window=m["churn_window"],
            model_versions=m["versions"],
            options=options,
        )
        out.attrs["p_churn_source"] = m["p_churn_source"]
        uplift = uplift_champion(source)
        if uplift is not None:
            out = add_campaign_columns(out, data, as_of, *uplift)
        return out
    as_of = as_of or clock.current_day()
    churn, c_info = _load(tracking, "churn", source)
    surv, s_info = _load(tracking, "survival", source)
    versions = f"{c_info['name']}/{c_info['version']};{s_info['name']}/{s_info['version']}"
    out = score_customers(data, as_of, churn, surv, model_versions=versions, options=options)
    out.attrs["p_churn_source"] = f"{versions.split(';')[0]} (classifier)"
    return out


def uplift_champion(dataset: str):
    """``(model, info)`` of the data set's ``urm-uplift`` champion (a measured campaign), or None."""
    try:
        info = tracking.champion("uplift", dataset)
    except LookupError:
        return None
    return tracking.load_version(info), info


def add_campaign_columns(table: pd.DataFrame, transactions, as_of, uplift_model, info: dict) -> pd.DataFrame:
    """The measured campaign's columns of a transactions table: each user's ``recommended_arm``
    and ``expected_incremental_value`` from the uplift model, on the campaign features computed
    at ``as_of`` by the code that built its training set (``experiments.campaign.features_at``)."""
    # lazy: the experiments and models packages cost ~0.7 s; only a campaign's table needs them
    from ..experiments.campaign import features_at

    inner = uplift_model.unwrap_python_model() if hasattr(uplift_model, "unwrap_python_model") else uplift_model
    policy = getattr(inner, "policy", inner)
    spec = getattr(policy, "features_spec", {})
    if not spec:
        raise ValueError(
            f"{info['name']} v{info['version']} was trained on a campaign table's own features, not on "
            "transactions: it cannot score this data set"
        )
    X = features_at(transactions, as_of, table["user_id"], **spec)
    pred, decision = recommend_arms(uplift_model, X)
    out = table.copy()
    out["recommended_arm"] = pred["recommended_arm"].astype(str).to_numpy()
    out["recommended_arm"] = out["recommended_arm"].astype("string")
    out["expected_incremental_value"] = pred["expected_incremental_value"].astype(float).to_numpy()
    out["model_versions"] = (out["model_versions"].astype(str) + f";{info['name']}/{info['version']}").astype("string")
    out.attrs.update(table.attrs)
    out.attrs["uplift_decision"] = decision
    out.attrs["uplift_source"] = f"{info['name']}/{info['version']} ({info['tags'].get('learner', '')} learner)"
    return out


def recommend_arms(uplift_model, X: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Each user's recommended arm and expected incremental value from the ``urm-uplift``
    decision (an :class:`~urm_models.experiments.policy.UpliftPolicy` or its logged pyfunc) on
    features ``X`` indexed by user id, with the decision's budget applied across these users, and
    the decision in words (mode, reason, value per unit, budget: the table's metadata)."""
    inner = uplift_model.unwrap_python_model() if hasattr(uplift_model, "unwrap_python_model") else uplift_model
    policy = getattr(inner, "policy", inner)
    if not hasattr(policy, "recommend"):
        return _predict_frame(uplift_model, X), {}
    pred = policy.recommend(X[policy.features])
    return pred, policy.describe()


def refuse_measured_campaign(dataset: str, path_name: str) -> None:
    """The streamed and Spark paths do not score a measured campaign yet: say so instead of
    publishing a table without its recommended arms."""
    try:
        info = tracking.champion("uplift", dataset)
    except LookupError:
        return
    raise ValueError(
        f"{dataset} has a measured campaign ({info['name']} v{info['version']}): {path_name} does not "
        "score its recommended arms; run `urm score` without --batches and --engine spark"
    )


def transaction_champions(dataset: str) -> dict:
    """The champion models that score a transactions data set: ``clv_model``, ``churn_model``
    (None when the CLV model's risk ranked the inner window better), ``churn_window``, ``versions``
    and ``p_churn_source`` (what the table's attrs say)."""
    model, info = _load(tracking, "clv", dataset)
    versions = f"{info['name']}/{info['version']}"
    churn, source = None, f"{versions} (P(no purchase) of its purchase model)"
    try:
        c_info = tracking.champion("churn", dataset)
    except LookupError:
        c_info = None  # no shifted-window classifier for this data set: the CLV model's risk
    if c_info is not None and c_info["tags"].get("p_churn_source") == "urm-churn":
        churn = tracking.load_version(c_info)  # the version whose tags were read
        versions += f";{c_info['name']}/{c_info['version']}"
        source = (
            f"{c_info['name']}/{c_info['version']} (shifted-window classifier, better on the inner window before "
            "the cut-off)"
        )
    elif c_info is not None:
        source += f"; it ranked the inner window before the cut-off better than {c_info['name']}/" + str(
            c_info["version"]
        )
    window = f"{c_info['tags'].get('churn_window')} {c_info['tags'].get('churn_freq')}" if churn is not None else ""
    return {
        "clv_model": model,
        "churn_model": churn,
        "churn_window": window,
        "versions": versions,
        "p_churn_source": source,
    }


def _load(tracking, family: str, dataset: str):
    """The champion of ``family`` for ``dataset``; a ValueError naming the refresh to run if none."""
    try:
        return tracking.load_champion(family, dataset)
    except LookupError as exc:
        raise ValueError(str(exc)) from None


def predictions_path(dataset: str, as_of) -> Path:
    return paths.predictions_dir() / dataset / f"{pd.Timestamp(as_of):%Y-%m-%d}" / "user_scores.parquet"


def write_predictions(table: pd.DataFrame, dataset: str, as_of, *, metadata: Mapping | None = None) -> Path:
    """Write the table atomically to ``data/predictions/<dataset>/<as_of>/user_scores.parquet``
    and point ``data/predictions/<dataset>/latest`` at its folder (an atomic symlink swap)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    missing = [c for c in schema.COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the predictions table lacks columns {missing}")
    n = len(table)
    dup = int(table["user_id"].duplicated().sum())
    if dup:
        raise ValueError(f"the predictions table has {dup} duplicate user_id rows of {n}")
    path = predictions_path(dataset, as_of)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = {
        **(arrow.schema.metadata or {}),
        b"urm_models": json.dumps(
            {
                "dataset": dataset,
                "as_of": f"{pd.Timestamp(as_of):%Y-%m-%d}",
                "rows": n,
                **table.attrs,
                **(metadata or {}),
            },
            default=str,
        ).encode(),
    }
    with atomic_path(path) as tmp:
        pq.write_table(arrow.replace_schema_metadata(meta), tmp)
    point_latest(path.parent)
    return path


def point_latest(folder: Path) -> Path:
    """Point ``<dataset>/latest`` at ``folder`` (an atomic symlink swap)."""
    link = folder.parent / "latest"
    tmp = folder.parent / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(folder.name, target_is_directory=True)
    os.replace(tmp, link)
    return link


def read_predictions(dataset: str, as_of=None) -> pd.DataFrame:
    """The predictions table of ``as_of`` (default: ``latest``)."""
    folder = (
        (paths.predictions_dir() / dataset / "latest") if as_of is None else predictions_path(dataset, as_of).parent
    )
    path = folder / "user_scores.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no predictions at {path}: run `urm refresh --dataset {dataset}`")
    return pd.read_parquet(path)
