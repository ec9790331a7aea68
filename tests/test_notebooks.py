"""Notebooks: stored clean, parameterised, and executed for real by papermill in a real kernel."""

import json
import os
from pathlib import Path

import mlflow
import nbformat
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import lock_holder
import mentions
from urm_models.core import locks, paths
from urm_models.jobs import pipeline
from urm_models.serve import scoring, tracking

NOTEBOOKS = sorted(paths.notebooks_dir().glob("*.ipynb"))
OUTPUTS = ("reports", "mlruns", "models")  # what others read: no raw user id may be there


def test_every_refresh_notebook_exists():
    assert sorted(p.stem for p in NOTEBOOKS if p.stem in pipeline.NOTEBOOKS) == sorted(pipeline.NOTEBOOKS)
    # the scoring notebook runs last: its table takes every champion the others register (07's too)
    assert pipeline.NOTEBOOKS[-1] == pipeline.SCORING_NOTEBOOK


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs stored"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged parameters"
    assert nb.metadata["kernelspec"]["name"] == pipeline.KERNEL_NAME
    assert path.stem[:2].isdigit() and path.stem[2] == "_"  # NN_verb_noun


@pytest.mark.slow
def test_refresh_on_telco_logs_loadable_models(home):
    manifest = pipeline.refresh({"dataset": "telco", "fast": True}, run_id="tel", progress=False)
    status = {n["notebook"]: n["status"] for n in manifest["notebooks"]}
    assert status == {
        "01_explore_data": "ok",
        "02_segment_users": "skipped",
        "03_model_churn": "ok",
        "04_model_survival": "ok",
        "05_model_clv": "skipped",
        "07_measure_campaign": "skipped",
        "06_score_users": "ok",
    }
    tracking.configure()
    from urm_models.data import datasets

    telco = datasets.load_telco()
    X = telco.drop(columns=["user_id", "churn"]).head(20)
    proba = mlflow.pyfunc.load_model("models:/urm-churn@champion").predict(X)
    assert proba.shape == (20, 2) and np.allclose(np.asarray(proba).sum(axis=1), 1.0)
    assert set(manifest["models"]) == {"urm-churn", "urm-survival"}
    assert not list((home / "mlruns").rglob("uv.lock"))  # no 1 MB copy of the lock file in every model
    pred = manifest["predictions"]
    assert pred["rows"] == len(telco) and pred["as_of"] == f"{pd.Timestamp.today():%Y-%m-%d}"
    assert pred["model_versions"] == ["urm-churn/1;urm-survival/1"]
    surv = mlflow.get_experiment_by_name("urm-survival")
    runs = {r.info.run_name: r for r in mlflow.search_runs([surv.experiment_id], output_format="list")}
    assert runs["cox-telco"].data.metrics["holdout_concordance"] >= 0.86
    assert 0 < runs["cox-telco"].data.metrics["holdout_integrated_brier"] < 0.25
    (smodel,) = mlflow.search_logged_models(experiment_ids=[surv.experiment_id], output_format="list")
    S = telco[telco.tenure > 0].drop(columns=["user_id", "totalcharges", "churn"]).head(10)
    out = mlflow.pyfunc.load_model(smodel.model_uri).predict(S)
    assert list(out.columns) == ["p_churn", "expected_remaining_lifetime", "clv", "value_at_risk"]
    assert ((out["p_churn"] >= 0) & (out["p_churn"] <= 1)).all() and (out["value_at_risk"] >= 0).all()
    # Telco's ids (7590-VHVEG ...) are in the published table, nowhere that others read
    ids = set(telco["user_id"])
    assert set(mentions.find([home / "data" / "predictions"], ids)) == ids
    assert mentions.find([home / d for d in OUTPUTS], ids) == {}


@pytest.mark.slow
def test_a_failing_cell_names_notebook_and_cell_and_keeps_previous_predictions(home, tmp_path, monkeypatch):
    from urm_models import features
    from urm_models.data import datasets
    from urm_models.models import BetaGeo, CLVScorer, GammaGamma

    # a champion and a published table from an earlier refresh
    rfm = features.rfm_summary(datasets.load_cdnow(sample=True), cutoff="1997-09-30", freq="W")
    with tracking.start_run("clv", run_name="earlier"):
        logged = tracking.log_clv_model(CLVScorer(BetaGeo().fit(rfm), GammaGamma().fit(rfm), rfm_freq="W"), rfm)
    tracking.register_model(logged.model_uri, "clv", metric_value=1.7, dataset="cdnow_sample")
    previous = scoring.write_predictions(
        scoring.score_users("cdnow_sample", "1997-09-30"), "cdnow_sample", "1997-09-30"
    )
    before, latest = previous.read_bytes(), previous.parent.parent / "latest"

    # the scoring notebook fails after it staged its table
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    nb = nbformat.read(paths.notebooks_dir() / "06_score_users.ipynb", as_version=4)
    # the kernel computes on one thread (jobs/pipeline.py KERNEL_THREADS), though this process's
    # environment does not say so; then the cell that fails
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import os\nfrom threadpoolctl import threadpool_info\n"
            "assert all(os.environ[v] == '1' for v in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS'))\n"
            "assert {i['num_threads'] for i in threadpool_info()} == {1}, threadpool_info()"
        )
    )
    nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('boom in cell')"))
    nbformat.write(nb, nbdir / "06_score_users.ipynb")
    (nbdir / "03_model_churn.ipynb").write_bytes((paths.notebooks_dir() / "03_model_churn.ipynb").read_bytes())
    with pytest.raises(pipeline.RefreshError) as ei:
        pipeline.refresh(
            {"dataset": "cdnow_sample", "fast": True},
            notebooks=["03_model_churn", "06_score_users"],
            run_id="bad",
            progress=False,
            notebooks_dir=nbdir,
        )
    msg = str(ei.value)
    cell = len(nb.cells) - 1
    assert f"06_score_users.ipynb failed in cell {cell}" in msg and "boom in cell" in msg
    kept = home / "reports" / "runs" / "bad" / "06_score_users.ipynb"
    assert kept.is_file() and str(kept) in msg
    manifest = json.loads((home / "reports" / "runs" / "bad" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["notebooks"][-1]["failed_cell"] == cell
    assert "predictions" not in manifest
    # the staged table (raw ids) was under data/, never reports/, and went with the failed run
    assert not (home / "reports" / "runs" / "bad" / "user_scores.parquet").exists()
    assert not (home / "data" / "tmp" / "staged" / "bad").exists()
    assert previous.read_bytes() == before and os.readlink(latest) == "1997-09-30"
    assert sorted(p.name for p in previous.parent.iterdir()) == ["user_scores.parquet"]
    # the churn model 03 registered went with the failed refresh; no alias moved
    client = mlflow.MlflowClient()
    assert client.search_model_versions("name='urm-churn'") == []
    assert [d["role"] for d in manifest["registry"]] == ["deleted: its refresh did not finish"]
    assert tracking.champion("clv")["version"] == "1" and "pending_refresh" not in tracking.champion("clv")["tags"]


def test_every_parameter_line_is_understood_by_papermill():
    """papermill skips (with a log line only) an assignment it cannot parse, e.g. one whose
    comment holds an '=' or quotes: that parameter then silently keeps its default."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code")
        assigned = [
            line.split("=")[0].strip()
            for line in cell.source.splitlines()
            if line and not line.startswith("#") and "=" in line
        ]
        assert list(pipeline.notebook_parameters(path)) == assigned, path.name


def test_a_second_concurrent_refresh_refuses(home):
    with lock_holder.held_lock(home), pytest.raises(locks.RefreshLocked, match="another refresh is running .pid"):
        pipeline.refresh({"dataset": "cdnow_sample"}, progress=False)
    assert not (home / "reports" / "runs").exists() or not any((home / "reports" / "runs").iterdir())


@pytest.mark.integration
def test_the_kernel_listens_on_unix_sockets_not_tcp(home, tmp_path):
    """A refresh's kernel is not reachable over loopback TCP by other local accounts."""
    nbdir, out = tmp_path / "nbs", tmp_path / "out"
    nbdir.mkdir()
    out.mkdir()
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": pipeline.KERNEL_NAME, "language": "python", "display_name": pipeline.KERNEL_NAME}
        }
    )
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)"
        ),
    ]
    nbformat.write(nb, nbdir / "99_probe_kernel.ipynb")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    cwd = os.getcwd()
    os.chdir(elsewhere)  # D10: the working folder differs from the project home
    try:
        entry = pipeline.run_notebook("99_probe_kernel", {"x": 2}, out, progress=False, notebooks_dir=nbdir)
        with pipeline.shared_kernel() as km:
            shared = pipeline.run_notebook("99_probe_kernel", {"x": 3}, out, progress=False, notebooks_dir=nbdir, km=km)
    finally:
        os.chdir(cwd)
    assert entry["status"] == "ok" and shared["status"] == "ok"
    executed = nbformat.read(out / "99_probe_kernel.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"].strip() == "ipc"
    # the sockets lived in the Jupyter runtime folder and went with their kernels: none in the home
    assert not [p.name for p in home.iterdir() if "ipc" in p.name]
    assert not [p.name for p in elsewhere.iterdir() if "ipc" in p.name]


@pytest.mark.integration
def test_notebooks_of_a_refresh_share_one_kernel_from_a_clean_slate(home, tmp_path):
    """One kernel runs the notebooks in turn (imports are paid once); each starts with nothing
    of the one before, counts its cells from 1 and knows its own name (the MLflow tag)."""
    nbdir, out = tmp_path / "nbs", tmp_path / "out"
    nbdir.mkdir()
    out.mkdir()
    meta = {"kernelspec": {"name": pipeline.KERNEL_NAME, "language": "python", "display_name": pipeline.KERNEL_NAME}}
    first = nbformat.v4.new_notebook(metadata=meta)
    first.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import os, wave, matplotlib.pyplot as plt\nsecret = 42\nfig = plt.figure()\nprint(os.getpid())"
        ),
    ]
    second = nbformat.v4.new_notebook(metadata=meta)
    second.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import os, sys\nimport matplotlib.pyplot as plt\n"
            "print(os.getpid(), 'secret' in dir(), len(plt.get_fignums()), "
            "os.environ['URM_NOTEBOOK'], 'wave' in sys.modules)"
        ),
    ]
    nbformat.write(first, nbdir / "97_first.ipynb")
    nbformat.write(second, nbdir / "98_second.ipynb")
    cells = []
    with pipeline.shared_kernel() as km:
        for name in ("97_first", "98_second"):
            entry = pipeline.run_notebook(
                name, {"x": 2}, out, progress=False, notebooks_dir=nbdir, km=km, on_cell=cells.append
            )
            assert entry["status"] == "ok" and entry["cpu_seconds"] > 0
        pid = km.provisioner.process.pid
    a = nbformat.read(out / "97_first.ipynb", as_version=4)
    b = nbformat.read(out / "98_second.ipynb", as_version=4)
    assert int(a.cells[-1].outputs[0]["text"]) == pid
    # same process, no `secret`, no figure; modules imported before stay imported (`wave`)
    assert b.cells[-1].outputs[0]["text"].split() == [str(pid), "False", "0", "notebooks/98_second.ipynb", "True"]
    assert [c.execution_count for c in b.cells] == [1, 2, 3]  # parameters, injected, probe
    assert cells == ["97_first"] * 3 + ["98_second"] * 3
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # shut down at the end


def test_a_runtime_folder_too_deep_for_a_socket_path_keeps_tcp(monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / ("d" * 80)))
    assert pipeline._kernel_config().KernelManager.transport == "tcp"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/tmp/rt")
    assert pipeline._kernel_config().KernelManager.transport == "ipc"


def _own_orders(tx: pd.DataFrame, path) -> None:
    """CDNOW_sample as a shop would export it: its own column names and ids, day-first dates."""
    out = tx.rename(columns={"user_id": "customer", "amount": "total"})
    out["customer"] = "SHOP-" + out["customer"]
    out["order_date"] = out.pop("ts").dt.strftime("%d/%m/%Y")
    out[["customer", "order_date", "total", "quantity"]].to_csv(path, index=False)


OWN_READ = {
    "columns": {"user_id": "customer", "ts": "order_date", "amount": "total"},
    "date_format": "%d/%m/%Y",
    "duplicates": "keep",
}


@pytest.mark.slow
def test_refresh_on_your_own_transactions_file(home, tmp_path, cdnow_sample):
    csv = tmp_path / "shop orders.csv"
    _own_orders(cdnow_sample, csv)
    with open(csv, "a") as fh:
        fh.write("SHOP-BAD-1,03/02/1997,not a number,1\n")
    read = {**OWN_READ, "errors": "quarantine"}
    written = []  # a copy of the snapshot as written, before the run deletes it

    def keep_a_copy(df, path, **kw):
        out = real_write(df, path, **kw)
        written.append(tmp_path / f"copy-{len(written)}.parquet")
        written[-1].write_bytes(Path(path).read_bytes())
        return out

    real_write = pipeline.write_parquet
    pipeline.write_parquet = keep_a_copy
    try:
        manifest = pipeline.refresh(
            {"path": str(csv), "read": read, "cutoff": "1997-09-30", "fast": True}, run_id="own", progress=False
        )
    finally:
        pipeline.write_parquet = real_write
    assert manifest["status"] == "ok"
    # the snapshot (kept with keep_snapshot) holds the valid rows only: the rejected raw row is in
    # the quarantine file alone, not in the snapshot's metadata either
    assert len(written) == 1 and mentions.find(written, {"SHOP-BAD-1", "not a number"}) == {}
    # read and validated once: one quarantine file; the notebooks read the run's snapshot, kept
    # under data/ (raw rows) and deleted when the run ends
    assert [p.name.split("-")[0] for p in (home / "data" / "quarantine").iterdir()] == ["shop_orders"]
    snapshot = home / "data" / "snapshots" / "own" / "transactions.parquet"
    assert manifest["data"]["source"] == str(csv) and manifest["data"]["snapshot"] is None
    assert manifest["data"]["snapshot_deleted"] and not snapshot.parent.exists()
    assert not (home / "reports" / "runs" / "own" / "transactions.parquet").exists()
    assert manifest["data"]["rows"] == len(cdnow_sample) and manifest["data"]["validation"]["n_rejected"] == 1
    # the manifest under reports/ counts the rejected rows; their values stay in data/quarantine
    assert "examples" not in manifest["data"]["validation"]["failures"][0]
    assert "not a number" not in (home / "reports" / "runs" / "own" / "manifest.json").read_text()
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
    p = manifest["parameters"]
    # named after the file; holdout to the last purchase; 02 compares with 13 weeks earlier
    assert p["dataset"] == "shop_orders" and p["holdout_end"] == "1998-06-30"
    assert (p["previous"], p["later"], p["as_of"]) == ("1997-07-01", "", "1997-09-30")
    table = scoring.read_predictions("shop_orders")
    assert len(table) == 2_357 and set(table["user_id"]) == set("SHOP-" + cdnow_sample["user_id"])
    # the file's ids are in the published table and the quarantine file, nowhere that others read
    ids = set(table["user_id"]) | {"SHOP-BAD-1"}
    assert set(mentions.find([home / "data"], ids)) == ids
    assert mentions.find([home / d for d in OUTPUTS], ids) == {}
    assert table["clv"].notna().all() and table["tier"].notna().all()
    tracking.configure()
    runs = mlflow.search_runs(experiment_names=["urm-clv"], output_format="list")
    assert runs and {r.data.params["path"] for r in runs} == {str(snapshot)}
    assert tracking.champion("clv")["dataset"] == "shop_orders"


def test_own_data_mistakes_are_named_before_any_notebook_runs(home, tmp_path, cdnow_sample):
    csv = tmp_path / "orders.csv"
    _own_orders(cdnow_sample.head(300), csv)
    own = {"path": str(csv), "read": OWN_READ}
    cases = [
        (
            {**own},
            r"needs a cut-off date \(--cutoff\): the purchases in .*orders.csv run from "
            r"1997-01-01 to 199\d-\d\d-\d\d",
        ),
        ({**own, "cutoff": "2001-01-01"}, "must lie on or after the first purchase and before the end"),
        ({**own, "cutoff": "1997-09-30", "dataset": "cdnow"}, "'cdnow' is a shipped data set"),
        (
            {**own, "cutoff": "1997-09-30", "read": {**OWN_READ, "colums": {}}},
            r"unknown reading option\(s\) \['colums'\]",
        ),
        ({"read": OWN_READ}, "need a path to your own file"),
        ({**own, "cutoff": "1997-13-45"}, "cutoff '1997-13-45' is not a date"),
        ({**own, "path": str(tmp_path / "nope.csv"), "cutoff": "1997-09-30"}, "nope.csv not found"),
    ]
    for params, message in cases:
        with pytest.raises(pipeline.RefreshError, match=message):
            pipeline.refresh(params, progress=False)
    assert not (home / "reports" / "runs").exists()


@pytest.mark.slow
def test_refresh_on_the_hillstrom_campaign(home):
    """`urm refresh --dataset hillstrom`: 07 measures the experiment, registers the uplift model
    (held-out Qini) and 06 publishes every customer's recommended arm and expected incremental
    value; nothing that others read holds a customer's id, and no executed notebook warns."""
    from urm_models.data import campaign_files

    manifest = pipeline.refresh({"dataset": "hillstrom", "fast": True}, run_id="hill", progress=False)
    status = {n["notebook"]: n["status"] for n in manifest["notebooks"]}
    assert status == {
        "01_explore_data": "skipped",
        "02_segment_users": "skipped",
        "03_model_churn": "skipped",
        "04_model_survival": "skipped",
        "05_model_clv": "skipped",
        "07_measure_campaign": "ok",
        "06_score_users": "ok",
    }
    assert set(manifest["models"]) == {"urm-uplift"}
    table = scoring.read_predictions("hillstrom")
    camp = campaign_files.load_hillstrom()
    assert len(table) == 64_000 and set(table["user_id"]) == set(camp.data["user_id"])
    assert set(table["recommended_arm"]) <= set(camp.arms) and table["recommended_arm"].notna().all()
    assert (table["expected_incremental_value"] >= 0).all()
    assert table["tier"].notna().all() and table["clv"].isna().all() and table["p_churn"].isna().all()
    contact = table["recommended_arm"] != camp.control
    assert (table.loc[contact, "recommended_action"] == "send " + table.loc[contact, "recommended_arm"]).all()
    assert set(table.loc[contact, "action_priority"]) <= {1, 2, 3, 4}
    # the platinum tier is the top tenth by past-year spend
    hist = camp.data.set_index("user_id")["history"].reindex(table["user_id"]).to_numpy()
    assert hist[(table["tier"] == "platinum").to_numpy()].min() >= np.quantile(hist, 0.89)
    tracking.configure()
    champ = tracking.champion("uplift", "hillstrom")
    assert champ["tags"]["dataset"] == "hillstrom" and champ["tags"]["outcome"] == "visit"
    run = mlflow.get_run(champ["run_id"])
    assert 0.02 < run.data.metrics["holdout_qini"] < 0.2
    assert run.data.metrics["lift_visit_mens_e_mail"] == pytest.approx(3_894 / 21_307 - 2_262 / 21_306)
    # the registered metric is the chosen ranking's out-of-fold Qini, with its interval
    assert "cross-fitting" in run.data.params["evaluation"]
    m = run.data.metrics
    assert m["holdout_qini_lower"] < m["holdout_qini"] < m["holdout_qini_upper"]
    assert {"policy_best_single_arm", "policy_personalised_s", "policy_personalised_response_model"} <= set(m)
    assert champ["tags"]["mode"] in ("personalised", "single arm", "no one")
    # the decision and its reason are in the table's metadata; the budget holds
    meta = json.loads(
        pq.read_schema(scoring.predictions_path("hillstrom", manifest["parameters"]["as_of"])).metadata[b"urm_models"]
    )
    decision = meta["uplift_decision"]
    assert decision["mode"] == champ["tags"]["mode"] and "out-of-fold gain" in decision["reason"]
    assert contact.mean() <= decision["budget_share"] + 1e-9
    assert meta["economics"]["contact_cost"] == "0.1 USD per contact" and meta["economics"]["sources"]
    # the next campaign: the recommended users, a randomised holdout within each arm, as an assignment file
    if contact.any():
        plan = meta["next_campaign"]
        sends = campaign_files.load_assignments(
            scoring.predictions_path("hillstrom", manifest["parameters"]["as_of"]).parent / plan["file"],
            control="No E-Mail",
            as_of=plan["sent_at"],  # the day it is sent: read back when the outcomes are in
        )
        assert set(sends["user_id"]) == set(table.loc[contact, "user_id"])
        held = sends["arm"] == "No E-Mail"
        assert held.sum() == plan["held_out"] and 0 < held.mean() <= 0.5
    exp = mlflow.get_experiment_by_name("urm-uplift")
    assert exp is not None
    model = mlflow.pyfunc.load_model("models:/urm-uplift@champion-hillstrom")
    out = model.predict(camp.X.head(50).reset_index(drop=True))
    assert {"recommended_arm", "expected_incremental_value", "effect[Mens E-Mail]"} <= set(out.columns)
    for entry in manifest["notebooks"]:
        if entry["status"] == "ok":
            text = json.dumps([c.get("outputs", []) for c in nbformat.read(entry["output"], as_version=4).cells])
            for word in ("Warning", "WARNING", "ERROR", "Traceback"):
                assert word not in text, (entry["notebook"], word)
    sample = set(camp.data["user_id"].sample(300, random_state=0))
    assert mentions.find([home / d for d in OUTPUTS], sample) == {}
    # what a customer asks to erase leaves the published table and every later load
    from urm_models.jobs import forget

    forget.forget(["r00007", *sorted(sample)[:1]], dataset="hillstrom")
    assert "r00007" not in set(scoring.read_predictions("hillstrom")["user_id"])
    assert "r00007" not in set(campaign_files.load_hillstrom().data["user_id"])


@pytest.mark.slow
def test_refresh_with_your_own_campaign(home, tmp_path, capsys):
    """Your transactions file and your campaign's assignment file (simulated, with known effects):
    07 measures the campaign on features as of the day before the send, registers the uplift
    model, and the published table gives every user a recommended arm beside the CLV models'
    scores; the streamed path says it cannot score the campaign rather than drop it."""
    from urm_models import cli
    from urm_models.data.simulate import simulate_campaign

    tx, asg, truth = simulate_campaign(4_000, {"email": 2.0}, window=4, sent_at="2021-03-01", seed=21)
    orders, assignments = tmp_path / "orders.csv", tmp_path / "sends.csv"
    tx.assign(ts=tx["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(orders, index=False)
    asg.assign(sent_at="2021-03-01").rename(columns={"arm": "group"}).to_csv(assignments, index=False)
    params = {
        "path": str(orders),
        "cutoff": "2021-02-28",
        "campaign": str(assignments),
        "control": "control",
        "campaign_window": 4,
        "campaign_read": {"columns": {"arm": "group"}},
        "fast": True,
    }
    manifest = pipeline.refresh(params, run_id="camp", progress=False)
    status = {n["notebook"]: n["status"] for n in manifest["notebooks"]}
    assert status["07_measure_campaign"] == "ok" and status["06_score_users"] == "ok"
    assert {"urm-clv", "urm-uplift"} <= set(manifest["models"])
    table = scoring.read_predictions("orders")
    assert table["recommended_arm"].notna().all() and set(table["recommended_arm"]) <= {"control", "email"}
    assert table["clv"].notna().all() and table["model_versions"].str.contains("urm-uplift/1").all()
    # the decision says what it is and why; personalised, the users it recommends the e-mail to gain
    # more from it than those it spares, in truth; otherwise one arm (or none) for everyone, within budget
    meta = json.loads(pq.read_schema(scoring.predictions_path("orders", "2021-02-28")).metadata[b"urm_models"])
    decision = meta["uplift_decision"]
    assert decision["reason"] and meta["economics"]["sources"]["contact_cost"].startswith("your file's generic")
    eff = truth["effect_purchases[email]"].reindex(table["user_id"]).to_numpy()
    send = (table["recommended_arm"] == "email").to_numpy()
    if decision["mode"] == "personalised":
        assert 0 < send.sum() < len(table) and eff[send].mean() > eff[~send].mean()
    else:
        assert "within noise" in decision["reason"]
        assert send.mean() <= decision["budget_share"] + 1e-9 and (send.sum() == 0) == (decision["mode"] == "no one")
    tracking.configure()
    run = mlflow.get_run(tracking.champion("uplift", "orders")["run_id"])
    assert run.data.params["outcome"] == "converted" and run.data.params["campaign"] == str(assignments)
    code = cli.main(["score", "--path", str(orders), "--as-of", "2021-02-28", "--batches", "2"])
    assert code == 1
    assert (
        "orders has a measured campaign (urm-uplift v1): --batches does not score its recommended arms"
        in capsys.readouterr().err
    )


def test_campaign_mistakes_are_named_before_any_notebook_runs(home, tmp_path):
    from urm_models.data.simulate import simulate_campaign

    tx, asg, _ = simulate_campaign(300, {"email": 1.0}, window=4, seed=2)
    orders, sends = tmp_path / "orders.csv", tmp_path / "sends.csv"
    tx.to_csv(orders, index=False)
    flipped = asg.head(2).assign(arm=lambda d: np.where(d["arm"] == "control", "email", "control"))
    pd.concat([asg, flipped]).to_csv(sends, index=False)
    own = {"path": str(orders), "cutoff": "2021-02-28"}
    cases = [
        (
            {**own, "campaign": str(sends), "control": "control"},
            r"(?s)assignment file is refused.*2 of 300 users are in two",
        ),
        ({**own, "campaign": str(sends)}, r"name the control arm .* \(--control\)"),
        ({**own, "control": "control"}, r"campaign option\(s\) \['control'\] need an assignment file"),
        ({"dataset": "telco", "campaign": str(sends), "control": "control"}, "goes with a transactions data set"),
        ({**own, "campaign": str(tmp_path / "nope.csv"), "control": "control"}, "nope.csv not found"),
    ]
    for params, message in cases:
        with pytest.raises(pipeline.RefreshError, match=message):
            pipeline.refresh(params, progress=False)
    assert not (home / "reports" / "runs").exists() or not any((home / "reports" / "runs").iterdir())
