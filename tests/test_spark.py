"""Parity suite: every feature query run by Spark local[2] equals the DuckDB result (the same
SQL, transpiled by sqlglot): integers exactly, floats within 1e-9 relative, on 10,000 simulated
users and on CDNOW_sample. Needs the spark extra, which `make test` installs."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from urm_models import features
from urm_models.core import spark
from urm_models.data import simulate

pytestmark = pytest.mark.integration  # a Spark session (and its JVM) in every test of this file

CUTOFF = "1997-09-30"


@pytest.fixture(scope="module")
def session():
    s = spark.session()
    yield s
    s.stop()  # an idle local session still costs the other tests on this worker CPU


@pytest.fixture(scope="module")
def simulated():
    tx = simulate.simulate_transactions(10_000, "paretonbd", seed=11, holdout=26.0, cutoff="2021-06-30")
    assert tx["user_id"].nunique() == 10_000
    return tx


QUERIES = {
    "rfm_summary": lambda tx, cut, end, e: features.rfm_summary(tx, cut, freq="W", holdout_end=end, engine=e),
    "rfm_summary_daily": lambda tx, cut, end, e: features.rfm_summary(tx, cut, freq="D", engine=e),
    "activity_features": lambda tx, cut, end, e: features.activity_features(tx, cut, engine=e),
    "churn_labels": lambda tx, cut, end, e: features.churn_labels(tx, cut, 13, engine=e).to_frame(),
    "first_purchase": lambda tx, cut, end, e: features.first_purchase(tx, cut, engine=e),
    "period_summary": lambda tx, cut, end, e: features.period_summary(tx, cut, period="Q", holdout_end=end, engine=e),
    "cohort_retention": lambda tx, cut, end, e: features.cohort_retention(tx, "M", cut, engine=e),
    "kpis_weekly": lambda tx, cut, end, e: features.kpis(tx, "W", cut, engine=e),
    "kpis_by_cohort": lambda tx, cut, end, e: features.kpis(tx, "M", cut, by="cohort", engine=e),
}


def assert_same(local: pd.DataFrame, remote: pd.DataFrame, what: str):
    assert list(remote.columns) == list(local.columns), what
    assert remote.index.equals(local.index), what
    for c in local.columns:
        a, b = local[c], remote[c]
        assert a.dtype == b.dtype, (what, c, a.dtype, b.dtype)
        if pd.api.types.is_float_dtype(a):
            np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-9, atol=0, err_msg=f"{what}.{c}")
        else:
            assert (a == b).all(), (what, c)


@pytest.mark.parametrize("query", list(QUERIES))
def test_spark_equals_duckdb_on_simulated_users(session, simulated, query):
    local = QUERIES[query](simulated, "2021-06-30", "2021-12-31", "duckdb")
    remote = QUERIES[query](simulated, "2021-06-30", "2021-12-31", "spark")
    assert len(local) == 10_000 or query.startswith(("cohort", "kpis"))
    assert_same(local, remote, query)


@pytest.mark.parametrize("query", list(QUERIES))
def test_spark_equals_duckdb_on_cdnow_sample(session, cdnow_sample, query):
    end = "1998-06-30"
    local = QUERIES[query](cdnow_sample, CUTOFF, end, None)
    remote = QUERIES[query](cdnow_sample, CUTOFF, end, "spark")
    assert len(local) == 2_357 or query.startswith(("cohort", "kpis"))
    assert_same(local, remote, query)


def test_a_spark_dataframe_or_a_parquet_path_selects_spark(session, cdnow_sample, tmp_path):
    local = features.rfm_summary(cdnow_sample, CUTOFF, freq="W", holdout_end="1998-06-30")
    frame = cdnow_sample[["user_id", "ts", "amount"]].assign(ts=lambda d: d["ts"].astype("datetime64[us]"))
    sdf = session.createDataFrame(frame)
    assert spark.is_spark_dataframe(sdf) and not spark.is_spark_dataframe(frame)
    # URM_SPARK_JAVA_OPTIONS (tests/conftest.py) reaches the local session's JVM, after the project's own
    jvm = session.sparkContext.getConf().get("spark.driver.extraJavaOptions")
    assert "-Duser.timezone=UTC " in jvm and jvm.endswith(os.environ["URM_SPARK_JAVA_OPTIONS"])
    args = session.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()
    assert "-XX:TieredStopAtLevel=1" in list(args)
    assert_same(local, features.rfm_summary(sdf, CUTOFF, freq="W", holdout_end="1998-06-30"), "spark dataframe")
    path = tmp_path / "tx.parquet"
    frame.to_parquet(path)
    assert_same(
        local, features.rfm_summary(path, CUTOFF, freq="W", holdout_end="1998-06-30", engine="spark"), "parquet"
    )
    with pytest.raises(ValueError, match="is a Spark DataFrame: run it with engine='spark'"):
        features.rfm_summary(sdf, CUTOFF, engine="duckdb")
    with pytest.raises(ValueError, match=r"engine must be one of \['duckdb', 'spark'\]"):
        features.rfm_summary(frame, CUTOFF, engine="polars")


@pytest.mark.parametrize("case", ["no pyspark", "no java"])
def test_missing_pyspark_or_java_names_what_to_install(case, tmp_path):
    """In a fresh interpreter (no session yet): one message naming the extra or Java."""
    if case == "no pyspark":
        code = (
            "import sys; sys.modules['pyspark'] = None; sys.modules['pyspark.sql'] = None\n"
            "from urm_models.core import spark\ntry:\n    spark.session()\n"
            "except spark.SparkUnavailable as e:\n    print(e)"
        )
        env = None
    else:
        code = (
            "from urm_models.core import spark\ntry:\n    spark.session()\n"
            "except spark.SparkUnavailable as e:\n    print(e)"
        )
        env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "URM_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    expected = (
        "needs pyspark: install the extra 'urm-models[spark]'" if case == "no pyspark" else "needs Java 17 or later"
    )
    assert expected in out.stdout and out.stderr == ""


_FITTED: dict = {}


def _models(name: str, tx, as_of):
    """A CLV scorer and a churn classifier fitted on ``tx`` at ``as_of`` (once per data set in
    this module), and the scoring keywords that carry the classifier."""
    from urm_models.models import BetaGeo, ChurnClassifier, CLVScorer, GammaGamma

    if name not in _FITTED:
        rfm = features.rfm_summary(tx, as_of, freq="W")
        scorer = CLVScorer(BetaGeo().fit(rfm), GammaGamma().fit(rfm), rfm_freq="W", churn_window=13)
        X, y = features.shifted_window(tx, as_of, 13)
        churn = ChurnClassifier(random_state=0, n_bags=1).fit(X, y)
        _FITTED[name] = (
            scorer,
            {"churn_model": churn, "churn_window": "13 W", "model_versions": "urm-clv/1;urm-churn/1"},
        )
    return _FITTED[name]


def _same_table(local: pd.DataFrame, remote: pd.DataFrame):
    assert list(remote.columns) == list(local.columns)
    assert (remote.dtypes == local.dtypes).all(), remote.dtypes[remote.dtypes != local.dtypes]
    assert remote["user_id"].equals(local["user_id"])
    for c in local.columns:
        if pd.api.types.is_float_dtype(local[c]):
            np.testing.assert_allclose(remote[c], local[c], rtol=1e-9, atol=0, err_msg=c)
        else:
            assert (remote[c] == local[c]).all(), c


@pytest.mark.parametrize("data", ["cdnow_sample", "simulated"])
def test_the_relationship_table_from_spark_equals_the_local_one(session, data, cdnow_sample, simulated, home):
    """Features, both models (pickled to Spark's Python workers), R/F/M quintiles and tiers
    ranked in Spark, segments and actions: the same table, value for value, as the in-process
    scoring; written as Parquet partitioned by as_of, replaced whole by a second write."""
    from urm_models.serve import scoring, spark_scoring

    tx, as_of = (cdnow_sample, CUTOFF) if data == "cdnow_sample" else (simulated, "2021-06-30")
    scorer, kw = _models(data, tx, as_of)
    local = scoring.score_transactions(tx, as_of, scorer, **kw)
    table, facts = spark_scoring.score_transactions_in_spark(tx, as_of, scorer, **kw)
    assert facts == local.attrs
    folder = spark_scoring.write_table(table, data, as_of, metadata=facts)
    assert folder == home / "data" / "predictions" / data / "spark" / f"as_of={pd.Timestamp(as_of):%Y-%m-%d}"
    remote = spark_scoring.read_table(data, as_of)
    _same_table(local, remote)
    assert remote["tier"].value_counts().to_dict() == local["tier"].value_counts().to_dict()
    # a second write replaces the partition whole; nothing temporary is left beside it
    spark_scoring.write_table(table, data, as_of, metadata=facts)
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]
    assert '"churn_horizon": "13 W"' in (folder / "_urm_models.json").read_text()
    if data != "cdnow_sample":
        return  # the amounts rule and the erasure are the same code on any data: checked once
    # urm forget reaches the Spark partitions too
    from urm_models.jobs import forget

    gone = list(local["user_id"].iloc[[0, 5]])
    out = forget.forget(gone, dataset=data)
    assert all(r.get("predictions") == 1 for r in out["removed"].values())
    left = spark_scoring.read_table(data, as_of)
    assert len(left) == len(local) - 2 and not left["user_id"].isin(gone).any()
    # an export written before the erasure, read by Spark as it is: the erased users stay out of
    # a new table for this data set (and only erasures of this data set or of all apply)
    raw = home / "data" / "raw.parquet"
    tx[["user_id", "ts", "amount"]].astype({"ts": "datetime64[us]"}).to_parquet(raw)
    rescored, _ = spark_scoring.score_transactions_in_spark(str(raw), as_of, scorer, dataset=data, **kw)
    ids = rescored.select("user_id").toPandas()["user_id"]
    assert len(ids) == len(local) - 2 and not ids.isin(gone).any()
    other, _ = spark_scoring.score_transactions_in_spark(str(raw), as_of, scorer, dataset="another", **kw)
    assert other.count() == len(local)
    # tiers by amounts: a rule per row, the same too
    amounts = {"platinum": 100.0, "gold": 40.0, "silver": 10.0, "bronze": 0.0}
    by_amounts = scoring.ScoringOptions(tier_amounts=amounts)
    local_a = scoring.score_transactions(tx, as_of, scorer, options=by_amounts)
    spark_a, _ = spark_scoring.score_transactions_in_spark(tx, as_of, scorer, options=by_amounts)
    assert (
        spark_a.toPandas()
        .set_index("user_id")["tier"]
        .sort_index()
        .equals(local_a.set_index("user_id")["tier"].astype(object).sort_index())
    )


def test_the_parquet_contract_gives_the_same_answers_in_spark(session, tmp_path, home):
    """The contract's SQL on Spark: the same failures, counted the same, as on DuckDB
    (tests/test_parquet_contract.py); the same type refusals."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from test_parquet_contract import EXPECTED, NOW, broken, clean
    from urm_models.core.errors import DataValidationError
    from urm_models.data import parquet_contract

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(broken()), path)
    answers = {}
    for engine in ("duckdb", "spark"):
        with pytest.raises(DataValidationError) as info:
            parquet_contract.check_transactions(str(path), engine=engine, now=NOW)
        answers[engine] = info.value.failures
    pd.testing.assert_frame_equal(answers["spark"], answers["duckdb"])
    assert {(r.column, r.check): r.n_rows for r in answers["spark"].itertuples()} == EXPECTED
    zoned = clean()
    zoned["ts"] = zoned["ts"].cast(pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table(zoned), tmp_path / "zoned.parquet")
    with pytest.raises(DataValidationError, match="column ts is stored as timestamp with a time zone"):
        parquet_contract.check_transactions(str(tmp_path / "zoned.parquet"), engine="spark", now=NOW)
    pq.write_table(pa.table(clean()), tmp_path / "ok.parquet")
    assert parquet_contract.check_transactions(str(tmp_path / "ok.parquet"), engine="spark", now=NOW) == {"n_rows": 6}
    copies = pd.DataFrame(
        {"user_id": [1, 1], "ts": pd.to_datetime(["1997-01-01"] * 2).astype("datetime64[us]"), "amount": [5.0, 5.0]},
        index=[7, 8],
    )  # pandas writes the index as a column
    copies.to_parquet(tmp_path / "copies.parquet")
    with pytest.raises(DataValidationError, match="no_exact_duplicates': 1 rows"):
        parquet_contract.check_transactions(str(tmp_path / "copies.parquet"), engine="spark", now=NOW)
    # urm score --engine spark --path: held to the contract before any model is looked up; of the
    # reading options only --duplicates and --returns apply to a file Spark reads
    from urm_models.serve import spark_scoring

    with pytest.raises(DataValidationError, match="no_exact_duplicates"):
        spark_scoring.score_users_in_spark("mine", "1997-09-30", path=path, read={"returns": "keep"})
    with pytest.raises(ValueError, match=r"reading options \(--date-format\) apply to files read in pandas"):
        spark_scoring.score_users_in_spark(
            "mine", "1997-09-30", path=path, read={"date_format": "%Y", "duplicates": "keep"}
        )


def test_the_streamed_one_box_table_equals_the_in_memory_one(cdnow_sample, home, tmp_path):
    """score_to_parquet: users scored in hash slices, ranked in DuckDB, finished in record batches
    of 500 rows: the same table as score_transactions."""
    from urm_models.serve import scoring

    scorer, kw = _models("cdnow_sample", cdnow_sample, CUTOFF)
    local = scoring.score_transactions(cdnow_sample, CUTOFF, scorer, **kw)
    out = tmp_path / "out" / "table.parquet"
    facts = scoring.score_to_parquet(cdnow_sample, CUTOFF, scorer, out, batches=4, batch_rows=500, **kw)
    assert facts == {**local.attrs, "rows": 2_357}
    streamed = pd.read_parquet(out)
    assert (streamed["as_of"] == pd.Timestamp(CUTOFF)).all()
    _same_table(local, streamed.assign(as_of=streamed["as_of"].astype(local["as_of"].dtype)))
    assert sorted(p.name for p in out.parent.iterdir()) == ["table.parquet"]  # the scratch file is gone
    # users erased since the file was written stay out of it (here: erased from every data set)
    from urm_models.jobs import forget

    gone = list(local["user_id"].iloc[[3, 700]])
    forget.forget(gone)
    raw = tmp_path / "raw.parquet"
    cdnow_sample[["user_id", "ts", "amount"]].to_parquet(raw)
    facts = scoring.score_to_parquet(str(raw), CUTOFF, scorer, out, batches=3, **kw)
    left = pd.read_parquet(out)
    assert facts["rows"] == len(left) == 2_355 and not left["user_id"].isin(gone).any()


def test_the_shifted_window_champion_is_the_same_table_in_memory_streamed_and_in_spark(
    session, cdnow_master, home, tmp_path
):
    """CDNOW_master, cut-off 1997-09-30: by the one rule (lowest holdout RMSE of the mean) the
    shifted-window model beats the three BTYD models, is registered as the CLV model's purchase
    model, and the champion loaded from the registry scores the same table in process, streamed
    in slices and in Spark (at 1998-06-30, a date after the cut-off: its activity features
    there)."""
    from urm_models.evaluation import holdout
    from urm_models.models import BetaGeo, CLVScorer, GammaGamma, ModifiedBetaGeo, ParetoNBD, ShiftedWindowPurchases
    from urm_models.serve import scoring, spark_scoring, tracking

    rfm = features.rfm_summary(cdnow_master, CUTOFF, freq="W", holdout_end="1998-06-30")
    shifted = ShiftedWindowPurchases(random_state=0).fit(cdnow_master, CUTOFF)
    candidates = {m.__name__: m().fit(rfm) for m in (BetaGeo, ModifiedBetaGeo, ParetoNBD)}
    preds = {f"{n} mean": m.conditional_expected_purchases(39, rfm) for n, m in candidates.items()}
    preds["ShiftedWindowPurchases mean"] = shifted.predict(cdnow_master, 39)
    comparison = holdout.holdout_table(preds, rfm["frequency_holdout"])
    assert holdout.choose_purchase_model(comparison, [*candidates, "ShiftedWindowPurchases"]) == (
        "ShiftedWindowPurchases"
    )  # RMSE 1.6626 against Pareto/NBD's 1.7262
    assert holdout.choose_purchase_model(comparison, candidates) == "ParetoNBD"
    scorer = CLVScorer(shifted, GammaGamma().fit(rfm), rfm_freq="W", churn_window=13)
    activity = features.activity_features(cdnow_master, CUTOFF, freq="W")
    with tracking.start_run("clv", run_name="clv-ShiftedWindowPurchases-cdnow"):
        logged = tracking.log_clv_model(scorer, activity)
    rmse = float(comparison.loc["ShiftedWindowPurchases mean", "rmse"])
    tracking.register_model(logged.model_uri, "clv", metric_value=rmse, dataset="cdnow")
    champ = scoring.transaction_champions("cdnow")
    assert champ["versions"] == "urm-clv/1" and champ["churn_model"] is None
    model = champ["clv_model"]  # the pyfunc, its signature the activity features the booster reads
    assert model.metadata.get_input_schema().input_names() == scorer.inputs
    as_of = "1998-06-30"
    kw = {"model_versions": champ["versions"]}
    local = scoring.score_transactions(cdnow_master, as_of, model, **kw)
    assert len(local) == 23_570
    # the table holds what the scorer in hand says of each user's activity at as_of
    direct = scorer.predict(features.activity_features(cdnow_master, as_of, freq="W")[scorer.inputs])
    mine = local.set_index("user_id")
    for c in ("expected_purchases", "p_churn", "clv", "p_alive"):
        np.testing.assert_allclose(mine[c].to_numpy(float), direct[c].reindex(mine.index), rtol=1e-12, err_msg=c)
    out = tmp_path / "table.parquet"
    facts = scoring.score_to_parquet(cdnow_master, as_of, model, out, batches=3, **kw)
    assert facts == {**local.attrs, "rows": 23_570}
    streamed = pd.read_parquet(out)
    _same_table(local, streamed.assign(as_of=streamed["as_of"].astype(local["as_of"].dtype)))
    table, facts = spark_scoring.score_transactions_in_spark(cdnow_master, as_of, model, **kw)
    assert facts == local.attrs
    spark_scoring.write_table(table, "cdnow", as_of, metadata=facts)
    _same_table(local, spark_scoring.read_table("cdnow", as_of))


#: the id files whose whole verdict Spark gives too (a Spark query costs about a second here);
#: every id condition of the contract is compared on all files in one query below
SPARK_VERDICTS = ("binary", "zero_width", "fullwidth_beside_ascii")


def test_the_id_rules_are_the_same_in_pandas_duckdb_and_spark(session, tmp_path, home):
    """Issue 27: one set of id rules (docs/reliability.md, "User ids") on the three paths. For each
    id file of the hostile corpus, pandas (datasets.load_transactions) reads the ids or refuses the
    file, and the Parquet contract (what urm score --batches and --engine spark run) gives its
    verdict: where it accepts the file, the ids the feature queries read are the ids pandas reads;
    where pandas refuses, it refuses; where pandas rewrites an id the read-as-is paths cannot
    (a zero-width space, NFD, ="...", 123.0), it refuses and names the pandas path. Spark gives
    DuckDB's verdicts: every id condition counted on every file in one query, and whole verdicts
    on a few files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hostile.corpus import ID_COLUMNS
    from urm_models.core.errors import DataValidationError
    from urm_models.core.sql import run_sql
    from urm_models.data import datasets, parquet_contract

    ts = pa.array(pd.date_range("2024-01-01", periods=3, freq="D").astype("datetime64[us]"))

    def verdict(path, engine):
        try:
            parquet_contract.check_transactions(str(path), engine=engine, now="2025-01-01")
        except DataValidationError as exc:
            assert "Traceback" not in str(exc)
            return [tuple(r) for r in exc.failures[["column", "check", "n_rows"]].itertuples(index=False)]
        sql = "SELECT DISTINCT CAST(user_id AS VARCHAR) AS user_id FROM transactions"
        return sorted(run_sql(str(path), sql, engine)["user_id"])

    seen, text_files = {}, []
    for name, ids in ID_COLUMNS.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"user_id": ids, "ts": ts, "amount": pa.array([1.0, 2.0, 3.0])}), path)
        if pa.types.is_string(ids.type) or pa.types.is_binary(ids.type):
            text_files.append((name, ids))
        try:
            pandas_ids = sorted(set(datasets.load_transactions(path, as_of="2025-01-01")["user_id"]))
        except DataValidationError:
            pandas_ids = None
        duck = verdict(path, "duckdb")
        if name in SPARK_VERDICTS:
            assert verdict(path, "spark") == duck, name
        accepted = bool(duck) and isinstance(duck[0], str)
        if pandas_ids is None:
            assert not accepted, (name, "pandas refuses, SQL accepts", duck)
        elif accepted:
            assert duck == pandas_ids, (name, pandas_ids, duck)
        else:
            checks = {c for _, c, _ in duck}
            assert checks & {"id_as_the_rules_read_it", "id_is_ascii_text (binary)"} or checks == {"type (float)"}, (
                name,
                pandas_ids,
                duck,
            )
        seen[name] = ("refused" if pandas_ids is None else "read", "accepted" if accepted else "refused")
    # the corpus reaches every combination the rules allow
    assert seen["binary"] == ("read", "accepted") and seen["binary_not_ascii"] == ("read", "refused")
    assert seen["zero_width"] == ("read", "refused") and seen["scientific"] == ("refused", "refused")
    assert seen["plain"] == seen["integers"] == seen["nfc_non_ascii"] == ("read", "accepted")
    # every condition of the id rules, counted per file by both engines in one query each
    for kind in ("text", "binary"):
        files = [(n, ids) for n, ids in text_files if pa.types.is_binary(ids.type) == (kind == "binary")]
        both = tmp_path / f"all_{kind}.parquet"
        pq.write_table(
            pa.table(
                {
                    "file": pa.array([n for n, ids in files for _ in range(len(ids))]),
                    "user_id": pa.concat_arrays([ids for _, ids in files]),
                    "ts": pa.array(
                        [pd.Timestamp("2024-01-01")] * sum(len(ids) for _, ids in files), pa.timestamp("us")
                    ),
                    "amount": pa.array([1.0] * sum(len(ids) for _, ids in files)),
                }
            ),
            both,
        )
        conds = parquet_contract._id_conditions(kind)
        sql = (
            "SELECT file, "
            + ", ".join(f"SUM(CASE WHEN {c} THEN 1 ELSE 0 END) AS {k}" for k, c in conds.items())
            + " FROM transactions GROUP BY file ORDER BY file"
        )
        local = run_sql(str(both), sql, "duckdb").astype({k: "int64" for k in conds})
        remote = spark.query(str(both), sql).astype({k: "int64" for k in conds})
        pd.testing.assert_frame_equal(remote, local, check_dtype=False)
        assert local[list(conds)].to_numpy().sum() > 0
