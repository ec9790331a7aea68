"""What a refresh guarantees when it is killed, repeated or fed unsafe names, and what the
project keeps about users (docs/reliability.md lists each guarantee with its test)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest

import lock_holder
from urm_models.core import io, paths, privacy
from urm_models.data import datasets, erasure
from urm_models.jobs import forget, pipeline
from urm_models.serve import schema, scoring, tracking


def urm(*args, home, timeout=600):
    env = {**os.environ, "URM_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "urm_models.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


# ------------------------------------------------------------------------------ unsafe names


@pytest.mark.integration
@pytest.mark.parametrize(
    "flag,value",
    [
        ("--run-id", "../../x"),
        ("--run-id", "a/b"),
        ("--run-id", ".hidden"),
        ("--dataset", "../x"),
        ("--dataset", "a/../../b"),
        ("--dataset", ".."),
    ],
)
def test_unsafe_run_ids_and_dataset_names_are_refused_before_anything_is_written(tmp_path, flag, value):
    home = tmp_path / "home"
    home.mkdir()
    args = ["refresh", flag, value] + (["--dataset", "cdnow_sample"] if flag == "--run-id" else [])
    out = urm(*args, home=home)
    assert out.returncode == 2 and "Traceback" not in out.stderr  # a bad argument
    assert "is not a safe name" in out.stderr and repr(value) in out.stderr
    assert list(home.iterdir()) == [] and not (tmp_path / "x").exists()


@pytest.mark.integration
def test_unsafe_dataset_names_in_score_kpis_and_forget(tmp_path):
    for args in (
        ["score", "--dataset", "../x", "--as-of", "1997-09-30"],
        ["kpis", "--dataset", "a/b"],
        ["forget", "u1", "--dataset", "../x"],
    ):
        out = urm(*args, home=tmp_path)
        assert out.returncode == 2 and "is not a safe name" in out.stderr, out.stderr  # a bad argument
    assert datasets.dataset_name("../../etc/shop orders.csv.gz") == "shop_orders"
    assert datasets.dataset_name("..csv") == "data"


# ------------------------------------------------------------------------------ file modes


def test_one_file_mode_policy_owner_only_by_default_group_on_request(home, monkeypatch):
    table = pd.DataFrame({"a": [1]})
    owner = io.write_parquet(table, home / "x" / "y" / "t.parquet")
    assert owner.stat().st_mode & 0o777 == 0o600 and owner.parent.stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv("URM_OUTPUT_ACCESS", "group")
    group = io.write_parquet(table, home / "g" / "t.parquet")
    assert group.stat().st_mode & 0o777 == 0o640 and group.parent.stat().st_mode & 0o777 == 0o750
    with io.output_umask():
        (home / "by-umask").write_text("x")
    assert (home / "by-umask").stat().st_mode & 0o777 == 0o640
    monkeypatch.setenv("URM_OUTPUT_ACCESS", "world")
    with pytest.raises(ValueError, match="expected 'owner'"):
        io.file_mode()


# ------------------------------------------------------------------------------ pseudonyms


def test_pseudonyms_are_keyed_stable_and_the_key_file_is_private(tmp_path, monkeypatch):
    keyfile = tmp_path / "k" / "pseudonym.key"
    monkeypatch.setenv("URM_PSEUDONYM_KEY_FILE", str(keyfile))
    monkeypatch.delenv("URM_PSEUDONYM_KEY", raising=False)
    a = privacy.pseudonymize(["00004", "00004", "7590-VHVEG"])
    assert a[0] == a[1] != a[2] and all(p.startswith("p-") and len(p) == 18 for p in a)
    assert keyfile.stat().st_mode & 0o777 == 0o600
    assert privacy.pseudonymize(["00004"], "erasure")[0].startswith("e-")
    assert privacy.pseudonymize(["00004"], "erasure")[0][2:] != a[0][2:]  # another family
    monkeypatch.setenv("URM_PSEUDONYM_KEY", "another key of enough length")
    assert privacy.pseudonymize(["00004"]) != a[:1]
    monkeypatch.setenv("URM_PSEUDONYM_KEY", "short")
    with pytest.raises(ValueError, match="at least 16"):
        privacy.pseudonymize(["x"])
    monkeypatch.delenv("URM_PSEUDONYM_KEY")
    monkeypatch.setenv("URM_PSEUDONYM_KEY_FILE", str(paths.source_root() / "pseudonym.key"))
    with pytest.raises(ValueError, match="inside the project"):
        privacy.pseudonymize(["x"])
    monkeypatch.setenv("URM_PSEUDONYM_KEY_FILE", str(keyfile))
    masked = privacy.masked(pd.DataFrame({"v": [1]}, index=pd.Index(["00004"], name="user_id")))
    assert masked.index.tolist() != ["00004"]


# ------------------------------------------------------------------------------ erasure


def _own_file(tmp_path, rows):
    p = tmp_path / "shop.csv"
    p.write_text("user_id,ts,amount\n" + "".join(f"{u},{d},{a}\n" for u, d, a in rows))
    return p


def test_forget_removes_rows_and_later_loads_drop_them(home, tmp_path):
    rows = [
        ("C-001", "2024-01-02", 5),
        ("C-002", "2024-01-03", 7),
        ("C-002", "bad date", 1),
        ("C-003", "2024-01-04", 2),
    ]
    path = _own_file(tmp_path, rows)
    tx = datasets.load_transactions(path, errors="quarantine", as_of="2024-06-30")
    users = sorted(set(tx["user_id"]))
    table = pd.DataFrame({c: ["x"] * len(users) for c in schema.COLUMNS})
    table["user_id"], table["as_of"] = users, pd.Timestamp("2024-06-30")
    scoring.write_predictions(table, "shop", "2024-06-30")
    q = Path(tx.attrs["validation"]["quarantine_path"])
    assert "C-002" in q.read_text()
    done = forget.forget(["C-002"], dataset="shop")
    assert done["removed"][done["pseudonyms"][0]] == {"predictions": 1, "quarantine": 1}
    assert "C-002" not in q.read_text()
    assert "C-002" not in set(scoring.read_predictions("shop")["user_id"])
    again = datasets.load_transactions(path, errors="quarantine", as_of="2024-06-30")
    assert sorted(again["user_id"]) == ["C-001", "C-003"]
    assert again.attrs["validation"]["n_erased"] == 2 and again.attrs["validation"]["n_input"] == 4
    # scoped to its data set: another data set's user C-002 is not touched
    (tmp_path / "o").mkdir()
    other = _own_file(tmp_path / "o", rows)
    assert "C-002" in set(
        datasets.load_transactions(other, dataset="other", as_of="2024-06-30", errors="quarantine")["user_id"]
    )
    # the log holds erasure pseudonyms only, never the id nor the pseudonym reports show
    text = erasure.log_path().read_text()
    assert "C-002" not in text and privacy.pseudonymize(["C-002"])[0] not in text
    assert erasure.log_path().stat().st_mode & 0o777 == 0o600


def test_the_erasure_log_is_append_only_and_tampering_is_caught(home, tmp_path):
    forget.forget(["a1"])
    forget.forget(["b2", "c3"], dataset="shop")
    log = erasure.log_path()
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and len(erasure.verify_log()) == 3
    assert erasure.erased_pseudonyms("shop") == {json.loads(x)["pseudonym"] for x in lines}
    assert erasure.erased_pseudonyms("other") == {json.loads(lines[0])["pseudonym"]}
    # remove one erasure (to bring a user back): caught, and every load refuses to run
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(erasure.ErasureLogError, match="line 2 does not follow line 1"):
        erasure.verify_log()
    with pytest.raises(erasure.ErasureLogError):
        datasets.load_transactions(_own_file(tmp_path, [("a1", "2024-01-02", 1)]), as_of="2024-06-30")
    # edit a line in place: caught too
    log.write_text("\n".join([lines[0].replace('"dataset":null', '"dataset":"x"'), *lines[1:]]) + "\n")
    with pytest.raises(erasure.ErasureLogError):
        erasure.verify_log()
    log.write_text("\n".join(lines) + "\n")
    # a new pseudonym key could not recognise the erased users: refused, not ignored
    os.environ["URM_PSEUDONYM_KEY"] = "a different key of enough length"
    try:
        with pytest.raises(erasure.ErasureLogError, match="another pseudonym key"):
            erasure.erased_pseudonyms()
    finally:
        del os.environ["URM_PSEUDONYM_KEY"]


# ------------------------------------------------------------------------------ leftovers


@pytest.mark.integration
def test_recover_marks_killed_runs_fails_their_mlflow_runs_and_removes_temp_files(home):
    runs = home / "reports" / "runs"
    (runs / "dead").mkdir(parents=True)
    (runs / "dead" / "manifest.json").write_text(
        json.dumps({"run_id": "dead", "status": "running", "parameters": {"dataset": "x"}})
    )
    (runs / "torn").mkdir()  # killed before it wrote a manifest
    (runs / "done").mkdir()
    (runs / "done" / "manifest.json").write_text(json.dumps({"run_id": "done", "status": "ok"}))
    (home / "data" / "snapshots" / "dead").mkdir(parents=True)
    (home / "data" / "snapshots" / "dead" / "transactions.parquet").write_text("raw rows")
    pred = home / "data" / "predictions" / "x" / "2024-01-01"
    pred.mkdir(parents=True)
    (pred / ".user_scores.parquet.abc.tmp").write_bytes(b"")
    (pred.parent / ".latest.123").symlink_to("2024-01-01")
    with mock_refresh("dead"):
        with tracking.start_run("clv", run_name="left running"):
            run_id = mlflow.active_run().info.run_id
            mlflow.MlflowClient()  # the process "dies" here: the run is never ended by us
    mlflow.MlflowClient().update_run(run_id, status="RUNNING")
    with tracking.start_run("clv", run_name="interactive"):  # no refresh id: a user's own run
        own = mlflow.active_run().info.run_id
    mlflow.MlflowClient().update_run(own, status="RUNNING")
    with mock_refresh("20261207T101010-cdnow"):  # another clone's refresh on a shared store, running now
        with tracking.start_run("clv", run_name="elsewhere"):
            elsewhere = mlflow.active_run().info.run_id
    mlflow.MlflowClient().update_run(elsewhere, status="RUNNING")
    done = pipeline.recover("now")
    assert sorted(done["killed_runs"]) == ["dead", "torn"]
    for name in ("dead", "torn"):
        m = json.loads((runs / name / "manifest.json").read_text())
        assert m["status"] == "killed" and "found by refresh now" in m["error"]
    assert json.loads((runs / "done" / "manifest.json").read_text())["status"] == "ok"
    assert done["failed_mlflow_runs"] == [run_id]
    assert mlflow.get_run(run_id).info.status == "FAILED" and mlflow.get_run(own).info.status == "RUNNING"
    assert mlflow.get_run(elsewhere).info.status == "RUNNING"  # not this home's: never touched
    assert not (home / "data" / "snapshots" / "dead").exists()
    assert sorted(Path(p).name for p in done["removed_tmp"]) == [".latest.123", ".user_scores.parquet.abc.tmp"]
    assert pipeline.recover("again") == {"killed_runs": [], "failed_mlflow_runs": [], "removed_tmp": []}


@pytest.mark.integration
def test_a_refresh_that_does_not_finish_leaves_the_registry_as_it_was(home, cdnow_sample):
    """Versions a refresh registers are promoted only when it succeeds: a failed or killed one
    leaves no new version and moves no alias; inside the refresh, its own decision is what
    `champion` serves (06 scores with it)."""
    from urm_models import features
    from urm_models.models import BetaGeo, CLVScorer, GammaGamma

    rfm = features.rfm_summary(cdnow_sample, cutoff="1997-09-30", freq="W")
    scorer = CLVScorer(BetaGeo().fit(rfm), GammaGamma().fit(rfm), rfm_freq="W")

    def log(run_name):
        with tracking.start_run("clv", run_name=run_name, params={"cutoff": "1997-09-30"}):
            return tracking.log_clv_model(scorer, rfm).model_uri

    first = tracking.register_model(log("first"), "clv", metric_value=1.7, dataset="cdnow_sample")
    assert first["role"] == "champion" and "pending" not in first
    client = mlflow.MlflowClient()
    for refresh, ok in (("r-failed", False), ("r-ok", True)):
        with mock_refresh(refresh):
            params = {"cutoff": "1997-09-30", "seed": refresh}  # another model, same evaluation
            with tracking.start_run("clv", run_name=refresh, params=params):
                uri = tracking.log_clv_model(scorer, rfm).model_uri
            mine = tracking.register_model(uri, "clv", metric_value=1.6, dataset="cdnow_sample")
            assert mine["role"] == "champion" and mine["pending"] == refresh
            # the refresh itself sees its decision; nobody else does yet
            assert tracking.champion("clv", "cdnow_sample")["version"] == mine["version"]
        assert tracking.champion("clv", "cdnow_sample")["version"] == first["version"]
        done = tracking.settle_refresh(refresh, ok=ok)
        assert [d["version"] for d in done] == [mine["version"]]
        versions = {mv.version for mv in client.search_model_versions("name='urm-clv'")}
        if ok:
            assert tracking.champion("clv", "cdnow_sample")["version"] == mine["version"]
            assert client.get_model_version("urm-clv", first["version"]).tags["role"] == "retired champion"
        else:
            assert mine["version"] not in versions and tracking.champion("clv")["version"] == first["version"]
    # a metric measured at another cut-off is not compared: the newer evaluation's choice wins
    with tracking.start_run("clv", run_name="later", params={"cutoff": "1998-01-31"}):
        later_uri = tracking.log_clv_model(scorer, rfm).model_uri
    later = tracking.register_model(later_uri, "clv", metric_value=9.9, dataset="cdnow_sample")
    assert later["role"] == "champion" and "not comparable" in later["reason"]


class mock_refresh:
    """Pretend to be inside refresh ``run_id`` (the id every MLflow run of a refresh carries)."""

    def __init__(self, run_id):
        self.run_id = run_id

    def __enter__(self):
        os.environ["URM_REFRESH_ID"] = self.run_id

    def __exit__(self, *exc):
        os.environ.pop("URM_REFRESH_ID", None)


@pytest.mark.integration
def test_prune_keeps_the_newest_runs_and_the_ones_latest_comes_from(home):
    runs = home / "reports" / "runs"
    for i in range(5):
        (runs / f"r{i}").mkdir(parents=True)
        (runs / f"r{i}" / "manifest.json").write_text(
            json.dumps({"run_id": f"r{i}", "status": "ok", "started": f"2026-01-0{i + 1}T00:00:00"})
        )
        (home / "data" / "snapshots" / f"r{i}").mkdir(parents=True)
    table = pd.DataFrame({c: ["x"] for c in schema.COLUMNS}).assign(as_of=pd.Timestamp("2024-01-01"))
    scoring.write_predictions(table, "shop", "2024-01-01", metadata={"run_id": "r0"})
    out = urm("prune", "--keep", "2", home=home)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["r0", "r3", "r4"]
    assert sorted(p.name for p in (home / "data" / "snapshots").iterdir()) == ["r0", "r3", "r4"]
    assert "kept 2 newest and 1 that a latest table comes from" in out.stdout


@pytest.mark.integration
def test_score_forget_and_prune_wait_for_no_refresh_they_refuse_while_one_runs(home):
    with lock_holder.held_lock(home):
        for args in (
            ["score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30"],
            ["forget", "u1"],
            ["prune", "--keep", "1"],
        ):
            out = urm(*args, home=home)
            assert out.returncode == 75 and "another refresh is running" in out.stderr, (args, out.stderr)


# ------------------------------------------------------------------------------ kill -9


def _table_state(latest: Path):
    """(bytes, run id, rows) of the table ``latest`` points at; fails if it is torn."""
    data = latest.read_bytes()
    table = pq.read_table(latest)
    meta = json.loads(table.schema.metadata[b"urm_models"])
    return data, meta.get("run_id"), table.num_rows


@pytest.mark.slow
def test_kill_9_at_random_moments_never_tears_the_table_nor_stops_the_next_refresh(tmp_path):
    """At least 10 kill -9 of a refresh (cdnow_sample, fast) at random moments: after each,
    ``latest`` is a complete table with the bytes of the last successful publish, the MLflow
    store answers; the refresh after the last kill succeeds and cleans every leftover."""
    home = tmp_path / "home"
    env = {**os.environ, "URM_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        sys.executable,
        "-m",
        "urm_models.cli",
        "refresh",
        "--dataset",
        "cdnow_sample",
        "--fast",
        "--quiet",
        "--notebooks",
        "05_model_clv,06_score_users",
    ]
    t0 = time.monotonic()
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    duration = time.monotonic() - t0
    latest = home / "data" / "predictions" / "cdnow_sample" / "latest" / "user_scores.parquet"
    good, good_run, rows = _table_state(latest)
    assert rows == 2_357
    rng = random.Random(11)
    kills, completed = [], 0
    while len(kills) < 10:
        at = rng.uniform(0.0, duration * 1.1)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            proc.wait(timeout=at)
        except subprocess.TimeoutExpired:
            # the refresh alone, as a kill -9 of its pid does (its kernel then exits by itself),
            # or the whole process group, as a stopped service or a crash does
            if len(kills) % 2:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            _wait_for_group_exit(proc.pid)
            kills.append(round(at, 1))
            data, run, rows = _table_state(latest)
            assert rows == 2_357
            if data != good:  # the killed refresh had published before the kill: whole, and its own
                assert run not in (good_run, None)
                good, good_run = data, run
        else:
            assert proc.returncode == 0, proc.stderr.read()
            completed += 1
            good, good_run, _ = _table_state(latest)
        with mock_home(home):
            tracking.configure()
            assert mlflow.MlflowClient().search_experiments()  # the store answers
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    with mock_home(home):
        manifests = {
            d.name: json.loads((d / "manifest.json").read_text()) for d in (home / "reports" / "runs").iterdir()
        }
        statuses = [m["status"] for m in manifests.values()]
        # a refresh killed after its last manifest write (while exiting) is "ok"; one killed
        # before it made its run folder leaves none
        assert set(statuses) <= {"ok", "killed"} and statuses.count("ok") >= completed + 2
        assert len(statuses) <= len(kills) + completed + 2 and statuses.count("killed") >= 1
        tracking.configure()
        running = mlflow.search_runs(
            search_all_experiments=True, output_format="list", filter_string="attributes.status = 'RUNNING'"
        )
        assert running == []
        versions = mlflow.MlflowClient().search_model_versions("name='urm-clv'")
        assert len(versions) == 1  # every refresh fitted the same model: registered once
        with pytest.raises(mlflow.exceptions.MlflowException):
            mlflow.MlflowClient().get_model_version_by_alias("urm-clv", "challenger")
        leftovers = [p for p in (home / "data").rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".latest.")]
        assert leftovers == []
        assert pd.read_parquet(latest).shape[0] == 2_357


def _wait_for_group_exit(pgid: int, timeout: float = 30.0) -> None:
    """An orphaned kernel notices its parent is gone within about a second and exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)


class mock_home:
    def __init__(self, home):
        self.home = home

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in ("URM_HOME", "MLFLOW_TRACKING_URI")}
        os.environ["URM_HOME"] = str(self.home)
        os.environ.pop("MLFLOW_TRACKING_URI", None)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
