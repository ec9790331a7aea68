"""The CDNOW refresh end to end in one private home: every notebook tracked in MLflow, nothing
that others read holds a raw user id, and users erased with ``urm forget`` are gone everywhere
and stay gone after the next refresh. One file, so that ``make test`` (``--dist loadfile``)
runs these tests on one worker, in order, around one shared refresh."""

import contextlib
import json
import os
import re
import subprocess
import sys
from unittest import mock

import mlflow
import nbformat
import pandas as pd
import pyarrow.parquet as pq
import pytest

import mentions
from urm_models.core import privacy
from urm_models.jobs import pipeline
from urm_models.serve import schema, scoring, tracking


@contextlib.contextmanager
def in_home(home):
    """URM_HOME set to ``home`` for the block (a module-scoped home cannot use monkeypatch)."""
    with mock.patch.dict(os.environ, {"URM_HOME": str(home)}):
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        yield home


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory):
    """One refresh of cdnow_sample (fast) in a private home, shared by the tests that read it
    (this file runs on one xdist worker, in order); the erasure test, which changes the home,
    comes last."""
    home = tmp_path_factory.mktemp("cdnow_home")
    with in_home(home):
        manifest = pipeline.refresh({"dataset": "cdnow_sample", "fast": True}, run_id="t1", progress=False)
    return home, manifest


@pytest.mark.slow
def test_refresh_runs_every_notebook_and_tracks_it(cdnow_run):
    home, manifest = cdnow_run
    with in_home(home):
        _check_cdnow_refresh(home, manifest)


def _check_cdnow_refresh(home, manifest):
    assert manifest["status"] == "ok"
    assert [n["notebook"] for n in manifest["notebooks"]] == pipeline.NOTEBOOKS
    status = {n["notebook"]: n["status"] for n in manifest["notebooks"]}
    assert status == {
        "01_explore_data": "ok",
        "02_segment_users": "ok",
        "03_model_churn": "ok",
        "04_model_survival": "skipped",
        "05_model_clv": "ok",
        "07_measure_campaign": "skipped",
        "06_score_users": "ok",
    }
    run_dir = home / "reports" / "runs" / "t1"
    executed = nbformat.read(run_dir / "01_explore_data.ipynb", as_version=4)
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code")
    saved = json.loads((run_dir / "manifest.json").read_text())
    assert saved["notebooks"][0]["status"] == "ok" and saved["parameters"]["dataset"] == "cdnow_sample"

    tracking.configure()
    assert tracking.tracking_uri() == f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    exp = mlflow.get_experiment_by_name("urm-kpis")
    assert exp.artifact_location.startswith((home / "mlruns").as_uri())
    runs = {r.info.run_name: r for r in mlflow.search_runs([exp.experiment_id], output_format="list")}
    assert set(runs) == {"explore-cdnow_sample", "segments-cdnow_sample", "score-cdnow_sample-1997-09-30"}
    run = runs["explore-cdnow_sample"]
    assert run.data.params["dataset"] == "cdnow_sample" and run.data.params["freq"] == "W"
    assert run.data.metrics["n_users"] == 2_357
    assert run.data.metrics["calibration_repeat_purchases"] == 2_457
    assert run.data.tags["notebook"] == "notebooks/01_explore_data.ipynb"
    assert run.data.tags["refresh_id"] == "t1"
    assert len(run.data.tags["git_commit"]) >= 7
    assert run.data.tags["data_fingerprint.cdnow_sample"]
    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.digest == run.data.tags["data_fingerprint.cdnow_sample"]
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "figures")}
    assert "figures/cohort_retention.png" in arts

    # 05_model_clv: one run per fitted model plus the registered CLV model, in urm-clv; one
    # rule chooses the purchase model on inner windows before the cut-off, and the registry ranks
    # it by its untouched holdout RMSE
    clv = mlflow.get_experiment_by_name("urm-clv")
    runs = {r.info.run_name: r for r in mlflow.search_runs([clv.experiment_id], output_format="list")}
    purchase = ("BetaGeo", "ModifiedBetaGeo", "ParetoNBD", "GammaGompertzNBD")
    candidates = (*purchase, "ShiftedWindowPurchases")
    rmse = {m: runs[f"{m}-cdnow_sample"].data.metrics["holdout_mean_rmse"] for m in candidates}
    chosen = [r for name, r in runs.items() if name.startswith("clv-")]
    assert len(chosen) == 1
    best = chosen[0].data.params["purchase_model"]
    assert best in candidates
    assert chosen[0].data.params["selected_by"].startswith("chosen on 1 inner window(s) of ")
    assert chosen[0].data.metrics["holdout_rmse"] == pytest.approx(rmse[best])  # the untouched number
    assert chosen[0].data.metrics["chose_holdout_best"] in (0.0, 1.0)
    # Gamma-Gompertz/NBD ends at its Pareto/NBD limit on CDNOW: the same holdout error as Pareto/NBD
    assert abs(rmse["GammaGompertzNBD"] / rmse["ParetoNBD"] - 1) < 1e-4
    assert set(runs) == {
        *(f"{m}-cdnow_sample" for m in purchase),
        "GammaGamma-cdnow_sample",
        f"clv-{best}-cdnow_sample",
        "ShiftedWindowPurchases-cdnow_sample",
    }
    sw = runs["ShiftedWindowPurchases-cdnow_sample"].data
    assert sw.metrics["holdout_mean_rmse"] > 0 and sw.params["origins"].startswith("1997-")
    assert 0 < sw.metrics["holdout_quarterly_mape"] < 1 and 0 < sw.metrics["holdout_monthly_mape"] < 1
    # both point forecasts of its negative binomial: the median is the one for absolute error
    assert sw.metrics["holdout_median_mae"] < sw.metrics["holdout_mean_mae"]
    assert 0.1 < sw.metrics["dispersion_one_time"] < sw.metrics["dispersion_repeat"] < 10
    assert {
        a.path
        for a in mlflow.MlflowClient().list_artifacts(
            runs["ShiftedWindowPurchases-cdnow_sample"].info.run_id, "figures"
        )
    } == {"figures/holdout_tracking.png", "figures/holdout_by_month_and_quarter.png"}
    bg = runs["BetaGeo-cdnow_sample"].data
    assert abs(bg.metrics["log_likelihood"] - (-9582.43)) < 0.01
    assert abs(bg.metrics["holdout_mean_mae"] - 0.7855) < 1e-3
    assert bg.tags["notebook"] == "notebooks/05_model_clv.ipynb"
    cmp_ = runs[f"clv-{best}-cdnow_sample"].data
    assert cmp_.metrics["holdout_rmse"] == rmse[best] < 2.206  # predicting zero: 2.206 (data/README)
    assert cmp_.params["purchase_model"] == best
    figs = {
        m: {a.path for a in mlflow.MlflowClient().list_artifacts(runs[f"{m}-cdnow_sample"].info.run_id, "figures")}
        for m in purchase
    }
    assert sum(bool(f) for f in figs.values()) == 1  # of the best BTYD model only
    tables = {a.path for a in mlflow.MlflowClient().list_artifacts(chosen[0].info.run_id, "tables")}
    assert {"tables/holdout_comparison.csv", "tables/candidates.csv", "tables/inner_choice.csv"} <= tables
    champ = tracking.champion("clv")
    assert champ["version"] == "1" and champ["dataset"] == "cdnow_sample"
    assert champ["run_id"] == runs[f"clv-{best}-cdnow_sample"].info.run_id
    assert float(champ["tags"]["holdout_rmse"]) == rmse[best]
    assert manifest["models"]["urm-clv"]["version"] == "1"
    # the champion is also exported to models/, loadable without the tracking store
    exported = home / "models" / "urm-clv"
    assert manifest["models"]["urm-clv"]["exported_to"] == str(exported)
    assert json.loads((exported / "champion.json").read_text())["version"] == "1"
    from urm_models import features
    from urm_models.data import datasets

    act = features.activity_features(datasets.load_cdnow(sample=True), "1997-09-30", freq="W")
    loaded = mlflow.pyfunc.load_model(str(exported))
    names = loaded.metadata.get_input_schema().input_names()  # an RFM table's, or the activity features
    assert names[:4] == ["frequency", "recency", "T", "monetary"] and (best == "ShiftedWindowPurchases") == (
        len(names) > 4
    )
    offline = loaded.predict(act[names].head(5).reset_index(drop=True))
    assert list(offline.columns) == [
        "expected_purchases",
        "p_alive",
        "p_churn",
        "expected_remaining_lifetime",
        "clv",
        "value_at_risk",
    ]
    assert (offline["value_at_risk"] >= 0).all()

    # 06_score_users: the table is published with a latest link, and re-scoring the same as-of
    # date reproduces it (the refresh is idempotent)
    pred = manifest["predictions"]
    published = home / "data" / "predictions" / "cdnow_sample" / "1997-09-30" / "user_scores.parquet"
    assert pred["path"] == str(published) and pred["rows"] == 2_357
    assert (home / "data" / "predictions" / "cdnow_sample" / "latest" / "user_scores.parquet").is_file()
    table = pd.read_parquet(published)
    assert list(table.columns) == schema.COLUMNS and table["user_id"].is_unique
    assert not (run_dir / "user_scores.parquet").exists()  # the staged copy was moved, not left behind
    again = pipeline.refresh(
        {"dataset": "cdnow_sample", "fast": True}, notebooks=["06_score_users"], run_id="t2", progress=False
    )
    assert again["predictions"]["path"] == str(published)
    pd.testing.assert_frame_equal(pd.read_parquet(published), table)

    # 03_model_churn on transactions: a classifier trained on a shifted window, scored on the
    # true holdout beside the BTYD models, registered for the data set; the table's p_churn
    # comes from whichever ranked an inner window before the cut-off better, and says so
    churn = mlflow.get_experiment_by_name("urm-churn")
    (crun,) = mlflow.search_runs([churn.experiment_id], output_format="list")
    m = crun.data.metrics
    assert crun.data.params["churn_window"] == "13 W" and "trained at 1997-07-01" in crun.data.params["evaluation"]
    assert m["holdout_roc_auc"] > 0.75 and m["ParetoNBD_roc_auc"] > 0.75 and m["BGNBD_roc_auc"] > 0.75
    c_champ = tracking.champion("churn", "cdnow_sample")
    assert c_champ["run_id"] == crun.info.run_id and c_champ["tags"]["churn_window"] == "13"
    winner = c_champ["tags"]["p_churn_source"]
    assert crun.data.params["p_churn_chosen_by"].startswith("chosen on the inner window (1997-07-01, 1997-09-30]")
    inner = {a.path for a in mlflow.MlflowClient().list_artifacts(crun.info.run_id, "tables")}
    assert "tables/inner_window_comparison.csv" in inner
    assert pred["p_churn_source"].startswith("urm-churn/1" if winner == "urm-churn" else "urm-clv/1")
    assert pred["churn_horizon"] == "13 W"
    assert pred["model_versions"] == (["urm-clv/1;urm-churn/1"] if winner == "urm-churn" else ["urm-clv/1"])
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(published).metadata[b"urm_models"])
    assert meta["p_churn_source"] == pred["p_churn_source"] and meta["churn_horizon"] == "13 W"
    # the run spans the fitting it describes, not only the logging (papermill times each cell)
    nb03 = nbformat.read(run_dir / "03_model_churn.ipynb", as_version=4)
    fit_cell = next(c for c in nb03.cells if "t_fit = tracking.now()" in c.source)
    assert (crun.info.end_time - crun.info.start_time) / 1000 >= fit_cell.metadata.papermill.duration

    # one kernel ran every notebook, each from a clean slate: cells count from 1 in each, and
    # no executed notebook shows a warning or an error line; each notebook's CPU time is known
    for entry in manifest["notebooks"]:
        if entry["status"] != "ok":
            continue
        nb = nbformat.read(entry["output"], as_version=4)
        counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
        assert counts == list(range(1, len(counts) + 1)), entry["notebook"]
        text = json.dumps([c.get("outputs", []) for c in nb.cells])
        for word in ("Warning", "WARNING", "ERROR", " INFO ", "Successfully registered"):
            assert word not in text, (entry["notebook"], word)
        assert entry["cpu_seconds"] > 0


OUTPUTS = ("reports", "mlruns", "models")


@pytest.mark.slow
def test_urm_score_on_spark_publishes_the_same_table_as_the_refresh(cdnow_run, tmp_path):
    """`urm score --engine spark` with the refresh's champions: the Parquet partition equals the
    table the refresh published (same users, values within 1e-9, same tiers); the privacy test
    below then checks its files too."""
    from urm_models.serve import spark_scoring

    home, _ = cdnow_run
    env = {**os.environ, "URM_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    urm = [sys.executable, "-m", "urm_models.cli"]
    out = subprocess.run(
        [*urm, "score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30", "--engine", "spark"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and "scored in Spark with urm-clv/" in out.stdout
    with in_home(home):
        local = scoring.read_predictions("cdnow_sample")
        remote = spark_scoring.read_table("cdnow_sample", "1997-09-30")
    assert list(remote.columns) == list(local.columns) and remote["user_id"].equals(local["user_id"])
    for c in local.columns:
        if pd.api.types.is_float_dtype(local[c]):
            pd.testing.assert_series_equal(remote[c], local[c], check_exact=False, rtol=1e-9)
        else:
            assert (remote[c].astype(str) == local[c].astype(str)).all(), c
    # the streamed one-box path (users in 3 slices, ranked in DuckDB) republishes the same table
    out = subprocess.run(
        [*urm, "score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30", "--batches", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert f"{len(local):,} users scored with urm-clv/" in out.stdout and "in 3 slices" in out.stdout
    with in_home(home):
        streamed = scoring.read_predictions("cdnow_sample")
        meta = json.loads(
            pq.read_schema(scoring.predictions_path("cdnow_sample", "1997-09-30")).metadata[b"urm_models"]
        )
    assert meta["rows"] == len(local) and meta["dataset"] == "cdnow_sample" and "churn_horizon" in meta
    pd.testing.assert_frame_equal(streamed, local, check_exact=False, rtol=1e-9)
    # a Parquet export that breaks the contract is refused whole, with the checks and options, and
    # the published table stays as it was
    bad = tmp_path / "export.parquet"  # outside the home: its file modes are the test's, not the project's
    with in_home(home):
        from urm_models.data import datasets

        tx = datasets.load_cdnow(sample=True)[["user_id", "ts", "amount"]]
    export = (
        pd.concat([tx, tx.head(2)])
        .assign(amount=lambda d: d["amount"].where(d.index != 5, -1.0))
        .astype({"ts": "datetime64[us]"})
    )
    export.to_parquet(bad)
    # CDNOW_sample has 21 exact copies of its own (load_cdnow keeps them), plus the 2 added; fewer
    # when the erasure test below ran first in this module
    n_copies = int(export.duplicated().sum())
    assert n_copies >= 2
    out = subprocess.run(
        [*urm, "score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30", "--batches", "2", "--path", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 1 and out.stdout == "", out.stderr
    assert out.stderr.startswith(f"urm score: invalid input:\n{bad}: {len(export):,} rows read")
    assert "Traceback" not in out.stderr
    assert "column amount, check 'non_negative': 1 rows; returns='keep' (--returns keep)" in out.stderr
    assert (
        f"column (row), check 'no_exact_duplicates': {n_copies} rows; duplicates='keep' (--duplicates keep)"
        in out.stderr
    )
    with in_home(home):
        pd.testing.assert_frame_equal(scoring.read_predictions("cdnow_sample"), streamed)
    # a customers data set is refused with the engine to use (before any Spark work)
    with in_home(home), pytest.raises(ValueError, match="the Spark engine scores transactions data sets"):
        spark_scoring.score_users_in_spark("telco", "2026-01-01")


@pytest.mark.slow
def test_a_data_set_is_scored_with_its_own_champions_or_another_named_one(cdnow_run):
    """No silent fallback: the store holds cdnow_sample's champions only, so scoring cdnow is an
    error naming them; with --models-from cdnow_sample it scores, and the table records the data
    set the models were trained on and the store they came from."""
    home, _ = cdnow_run
    env = {**os.environ, "URM_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    urm = [sys.executable, "-m", "urm_models.cli", "score", "--dataset", "cdnow", "--as-of", "1997-09-30"]
    out = subprocess.run(urm, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "no 'champion' version of urm-clv for data set 'cdnow'" in out.stderr
    assert re.search(r"champions exist for 'cdnow_sample' \(v\d+\)", out.stderr) and "--models-from" in out.stderr
    assert not (home / "data" / "predictions" / "cdnow").exists()
    out = subprocess.run([*urm, "--models-from", "cdnow_sample"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    with in_home(home):
        meta = json.loads(pq.read_schema(scoring.predictions_path("cdnow", "1997-09-30")).metadata[b"urm_models"])
        assert len(scoring.read_predictions("cdnow")) == 23_570
    assert meta["models_trained_on"] == "cdnow_sample" and meta["dataset"] == "cdnow"
    assert meta["model_store"] == f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    champ = json.loads((home / "models" / "urm-clv" / "champion.json").read_text())
    assert champ["store"] == meta["model_store"] and champ["dataset"] == "cdnow_sample"


@pytest.mark.slow
def test_reports_mlflow_and_models_hold_no_raw_id_and_nothing_is_readable_by_others(cdnow_run, cdnow_sample):
    home, _ = cdnow_run
    with in_home(home):
        # CDNOW's ids are numbers: 10151 is also a count in a KPI table. The zero-padded ones
        # (00004 ... 09999, 40% of the users) cannot be anything else; Telco's and an own
        # file's ids are searched in full by the tests below.
        ids = {u for u in cdnow_sample["user_id"] if u.startswith("0")}
        assert len(ids) > 900
        # the search works: the published table (under data/) holds every id ...
        assert set(mentions.find([home / "data" / "predictions"], ids)) == ids
        # ... and nothing others read does; notebooks show pseudonyms instead
        assert mentions.find([home / d for d in OUTPUTS], ids) == {}
        shown = privacy.pseudonymize(sorted(ids))
        assert mentions.find([home / "reports"], shown), "the notebooks show no user at all"
        # one file-mode policy: owner-only (0600 files, 0700 folders) everywhere
        loose = {p: oct(m) for p, m in mentions.modes([home / d for d in (*OUTPUTS, "data")]).items() if m & 0o077}
        assert loose == {}


@pytest.mark.slow
def test_forget_erases_users_everywhere_and_a_refresh_does_not_bring_them_back(cdnow_run):
    home, _ = cdnow_run
    # everything of this data set; the table of cdnow that the no-fallback test above scored with
    # these models is another data set's, which `urm forget --dataset cdnow_sample` leaves as it is
    # (erasure is per data set: test_reliability.py)
    data = [p for p in (home / "data").iterdir() if p.name != "predictions"]
    data += [p for p in (home / "data" / "predictions").iterdir() if p.name != "cdnow"]
    roots = [*data, *(home / d for d in ("reports", "models", "mlruns"))]
    with in_home(home):
        table = scoring.read_predictions("cdnow_sample")
        top = table.sort_values("clv", ascending=False)["user_id"].iloc[0]  # in 05's top-10 and 06's
        first = table["user_id"].iloc[0]  # in 06's head
        quiet = table["user_id"].iloc[1234]  # only in the tables
        gone = [top, first, quiet]
        pseudos = privacy.pseudonymize(gone)
        before = mentions.find(roots, gone + pseudos)
        assert set(before) == set(gone) | set(pseudos[:2]), before  # the search finds them
        out = subprocess.run(
            [sys.executable, "-m", "urm_models.cli", "forget", *gone, "--dataset", "cdnow_sample"],
            capture_output=True,
            text=True,
            env={**os.environ},
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        assert "erased 3 user(s) from data set 'cdnow_sample'" in out.stdout
        assert mentions.find(roots, gone + pseudos) == {}
        # the next refresh leaves them out: the load drops them and counts them
        manifest = pipeline.refresh({"dataset": "cdnow_sample", "fast": True}, run_id="t3", progress=False)
        assert manifest["status"] == "ok" and manifest["predictions"]["rows"] == 2_357 - 3
        assert mentions.find(roots, gone + pseudos) == {}
        log = (home / "data" / "erasure" / "erasures.jsonl").read_text().splitlines()
        assert len(log) == 3 and all(json.loads(line)["dataset"] == "cdnow_sample" for line in log)
        assert json.loads(log[0])["removed"]["predictions"] >= 1
        from urm_models.data import datasets

        assert datasets.load_cdnow(sample=True).attrs["validation"]["n_erased"] > 0
