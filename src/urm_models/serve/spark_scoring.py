"""The relationship table computed in Spark: the same table as :func:`scoring.score_transactions`,
from the same steps (:func:`scoring.setup`).

Four steps, none of which collects the users to the driver:

1. the activity features at ``as_of``: the feature SQL on Spark (:mod:`urm_models.core.spark`);
2. per partition (``mapInPandas``), the champion models (pickled to the workers with the
   function) and the row-wise rules: CLV scores, ``p_churn``, lifecycle stage, cohort;
3. what needs every user, in Spark SQL: the R, F and M quintiles (``RANK`` = pandas' "min"
   rank) and the value tiers (``ROW_NUMBER`` over CLV descending, then user id, the order of
   :func:`segments.value_tiers`, cut at the same rounded shares);
4. per partition again, the segment names, actions and final types (``TransactionScoring.finish``).

:func:`write_table` writes it as Parquet partitioned by ``as_of`` into
``data/predictions/<dataset>/spark/``: into a temporary folder first, whose ``as_of=<date>``
partition then replaces the published one by renames. The parity test is tests/test_spark.py.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..core import paths
from ..core import spark as engine
from ..core.io import make_dirs
from ..data import datasets, parquet_contract
from ..data.erasure import not_erased
from ..features.churn import activity_features_sql
from . import schema, scoring

#: the row-wise step's table in Spark (step 2): scoring's row columns, the quintiles' inputs, the tier's value
_SCORED = schema.spark_ddl(["user_id", *scoring.ROW_COLUMNS, *scoring.RANK_INPUTS, ("tier_value", "number")])


def score_transactions_in_spark(
    transactions,
    as_of,
    clv_model,
    *,
    churn_model=None,
    churn_window: str = "",
    model_versions: str = "",
    options: scoring.ScoringOptions | None = None,
    dataset: str | None = None,
):
    """The relationship table of ``transactions`` (a Spark DataFrame, a pandas DataFrame or a
    Parquet path) at ``as_of`` as a lazy Spark DataFrame, from the steps of
    :func:`scoring.setup` (the models and options of :func:`scoring.score_transactions`); the
    facts (horizons) are returned beside it as a dict. Users erased (``urm forget``) everywhere
    or in ``dataset`` are left out."""
    s = scoring.setup(
        clv_model, churn_model=churn_model, churn_window=churn_window, model_versions=model_versions, options=options
    )  # refused before Spark starts working
    if "as_of" in s.clv_inputs:
        raise ValueError(
            "the CLV model's purchase model follows a season calendar (a TimeVaryingParetoNBD, or a "
            "ShiftedWindowPurchases given season=), which the Spark engine does not score: use urm score --batches N "
            "(streamed on one machine) or the in-process path"
        )
    act = engine.sql_frame(transactions, activity_features_sql(as_of, s.options.freq, s.windows))
    keep = not_erased(dataset)  # a file read as it is may still hold users erased since it was written
    stamp = pd.Timestamp(as_of)

    def score_rows(batches):
        for pdf in batches:
            if keep is not None:
                pdf = pdf[keep(pdf["user_id"].to_numpy())]
            yield s.rows(pdf.set_index("user_id"), stamp).reset_index()

    scored = act.mapInPandas(score_rows, _SCORED)
    session = scored.sparkSession
    view = f"urm_scored_{uuid.uuid4().hex[:8]}"
    scored.createOrReplaceTempView(view)
    n = scored.count()
    bad = scored.filter("isnan(clv) OR clv IS NULL").count()
    if bad:
        raise ValueError(f"the CLV model returned {bad} missing values of {n}")
    ranked = session.sql(s.ranks_sql(view, n))

    def finish(batches):
        for pdf in batches:
            out = s.finish(pdf.set_index("user_id"), stamp)
            out["as_of"] = stamp.date()
            yield out.astype({c: object for c in out.columns if str(out[c].dtype) == "string"})

    return ranked.mapInPandas(finish, schema.spark_ddl()), dict(s.facts)


def score_users_in_spark(
    dataset: str,
    as_of,
    *,
    path: str | Path = "",
    read: dict | None = None,
    models_from: str | None = None,
    options: scoring.ScoringOptions | None = None,
):
    """Score a transactions data set in Spark with its champion models (as
    :func:`scoring.score_users`): a Parquet file or folder (``path``) is read by Spark itself,
    columns ``user_id, ts, amount`` as the data contract names them, and held to the contract
    in Spark (:mod:`urm_models.data.parquet_contract`; of ``read``, only ``duplicates`` and
    ``returns`` apply); a shipped data set or another file is loaded and validated in pandas
    first. Returns the lazy table and its facts."""
    if as_of is None:
        raise ValueError("as_of is required for transactions (the date to score at)")
    kind = datasets.dataset_kind(dataset, path)
    if kind != "transactions":
        raise ValueError(
            f"the Spark engine scores transactions data sets; {dataset!r} is a {kind} table: "
            f"score it with the local engine (urm score without --engine spark)"
        )
    source = models_from or dataset
    scoring.refuse_measured_campaign(source, "the Spark engine")
    p = Path(path) if path else None
    if p is not None and (p.is_dir() or p.suffix.lower() in {".parquet", ".pq"}):
        others = sorted(set(read or {}) - {"duplicates", "returns"})
        if others:
            raise ValueError(
                f"reading options ({', '.join('--' + o.replace('_', '-') for o in others)}) apply to "
                f"files read in pandas; Spark reads the Parquet file's own user_id, ts and amount "
                f"columns (of the options, only --duplicates and --returns apply)"
            )
        data = str(p)
        parquet_contract.check_transactions(data, engine="spark", **(read or {}))
    else:
        data = datasets.load_dataset(dataset, path, **(read or {}))
    m = scoring.transaction_champions(source)
    table, facts = score_transactions_in_spark(
        data,
        as_of,
        m["clv_model"],
        churn_model=m["churn_model"],
        churn_window=m["churn_window"],
        model_versions=m["versions"],
        options=options,
        dataset=dataset,
    )
    facts["p_churn_source"] = m["p_churn_source"]
    facts["model_versions"] = m["versions"]
    facts.update(scoring.model_facts(source))
    return table, facts


def table_root(dataset: str) -> Path:
    return paths.predictions_dir() / dataset / "spark"


def write_table(table, dataset: str, as_of, *, metadata: Mapping | None = None) -> Path:
    """Write the Spark table as Parquet partitioned by ``as_of`` under
    ``data/predictions/<dataset>/spark/``; returns the partition folder. A temporary folder
    first, then renames: readers see the old partition or the new one, never half of one."""
    root = table_root(dataset)
    make_dirs(root)
    day = f"{pd.Timestamp(as_of):%Y-%m-%d}"
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    try:
        table.write.partitionBy("as_of").parquet(str(tmp))
        written = tmp / f"as_of={day}"
        if not written.is_dir():
            raise RuntimeError(f"Spark wrote no partition as_of={day} under {tmp}")
        facts = {"dataset": dataset, "as_of": day, **(metadata or {})}
        (written / "_urm_models.json").write_text(json.dumps(facts, default=str, indent=1))
        dest = root / f"as_of={day}"
        old = root / f".old-{uuid.uuid4().hex}"
        if dest.exists():
            dest.rename(old)
        written.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def read_table(dataset: str, as_of) -> pd.DataFrame:
    """A published Spark partition as pandas, in the local table's columns, order and types."""
    folder = table_root(dataset) / f"as_of={pd.Timestamp(as_of):%Y-%m-%d}"
    if not folder.is_dir():
        raise FileNotFoundError(f"no Spark predictions at {folder}: run `urm score --engine spark`")
    df = pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True)
    return schema.from_parquet(df, as_of)
