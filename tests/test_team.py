"""A team's setup for real: PostgreSQL (from the pgserver wheel that `make test` installs) as the
backend of a real `mlflow server` with served artifacts, two project homes that share no files,
predictions published to a PostgreSQL table, and one refresh of a data set at a time across
homes. One file, so that `make test` (--dist loadfile) runs these on one worker around one
server."""

import contextlib
import json
import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mentions

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def team():
    """PostgreSQL with two databases (mlflow: the tracking server's backend; urm: predictions and
    locks) and an MLflow server on it that serves the artifacts from its own folder."""
    # platformdirs (through pgserver) wants a runtime folder and warns when XDG_RUNTIME_DIR is unset
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="urm-xdg-"))
    try:
        import pgserver
    except ImportError as exc:
        pytest.fail(
            f"the team tests need PostgreSQL: the pgserver wheel is missing ({exc}); `make test` installs it "
            "(dependency group team-test: uv sync --group team-test)"
        )
    base = Path(tempfile.mkdtemp(prefix="urm-pg-"))  # pgserver opens the folder's parents to its own user
    try:
        srv = pgserver.get_server(base / "data", cleanup_mode="delete")
        for db in ("mlflow", "urm"):
            srv.psql(f"CREATE DATABASE {db};")
    except Exception as exc:  # noqa: BLE001 (any failure to start is one message)
        pytest.fail(f"PostgreSQL for the team tests did not start ({type(exc).__name__}: {exc})")
    port = _free_port()
    art = base / "artifacts"
    art.mkdir()
    log = open(base / "mlflow-server.log", "w")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            srv.get_uri("mlflow"),
            "--artifacts-destination",
            str(art),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"the MLflow server did not start: {(base / 'mlflow-server.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield {"tracking_uri": url, "database": srv.get_uri("urm"), "artifacts": art, "server": srv}
    server.terminate()
    server.wait(30)
    log.close()


#: a password planted in a member's team.yaml (percent-encoded there: it holds an "@"); the
#: test servers ignore it (trust authentication, no auth on the MLflow server)
PLANTED = "Pl@nted-s3cret-7f3"
PLANTED_FORMS = (PLANTED, "Pl%40nted-s3cret-7f3", "s3cret-7f3")


def _with_password(uri: str) -> str:
    scheme, rest = uri.split("://", 1)
    user = "member" if scheme.startswith("http") else rest.split(":", 1)[0].split("@", 1)[0]
    host = rest.split("@", 1)[1] if "@" in rest else rest
    return f"{scheme}://{user}:Pl%40nted-s3cret-7f3@{host}"


def _home(root: Path, team: dict, name: str, password: bool = False) -> Path:
    home = root / name
    home.mkdir()
    uri, db = team["tracking_uri"], team["database"]
    if password:
        uri, db = _with_password(uri), _with_password(db)
    (home / "team.yaml").write_text(f"tracking_uri: {uri}\ndatabase: {db}\n")
    return home


def _found_in_database(url: str, needles) -> dict:
    """``{needle: [table.column]}`` for the needles found in any text cell of any table."""
    from sqlalchemy import inspect, text

    from urm_models.core.locks import engine

    eng, found = engine(url), {}
    try:
        with eng.connect() as conn:
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings():
                    for col, value in row.items():
                        if not isinstance(value, str):  # ids, pseudonyms and passwords are text
                            continue
                        for n in needles:
                            if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w-]|\.\d)", value):
                                found.setdefault(n, []).append(f"{table}.{col}")
    finally:
        eng.dispose()
    return found


def _urm(home: Path, *args, timeout=600):
    env = {**os.environ, "URM_HOME": str(home)}
    for var in ("MLFLOW_TRACKING_URI", "URM_DATABASE"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "urm_models.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


@contextlib.contextmanager
def _in_home(home: Path):
    old = os.environ.get("URM_HOME")
    os.environ["URM_HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("URM_HOME", None)
        else:
            os.environ["URM_HOME"] = old


def _refresh_in_background(home: Path, *args):
    env = {**os.environ, "URM_HOME": str(home)}
    for var in ("MLFLOW_TRACKING_URI", "URM_DATABASE"):
        env.pop(var, None)
    return subprocess.Popen(
        [sys.executable, "-m", "urm_models.cli", "refresh", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_planted_password_and_a_forgotten_user_are_found_nowhere(team, tmp_path):
    """Two homes share the team's MLflow server and PostgreSQL, each with a password in its
    team.yaml. A refresh in one and a score in the other publish equal tables from the server's
    champion; then the schedule runs (its log takes a refusal that quotes a user's row), a refresh
    is killed mid-run, `urm forget` erases a user in the first home and the second home publishes
    again. Afterwards neither the password nor the user's id or pseudonym is anywhere under the
    first home (but team.yaml), in the team's databases or in the server's artifacts, and the
    second home's publish did not bring the user back."""
    from urm_models.core import privacy
    from urm_models.serve import scoring, sqltable

    a, b = _home(tmp_path, team, "a", password=True), _home(tmp_path, team, "b", password=True)
    out = _urm(a, "refresh", "--dataset", "cdnow_sample", "--fast", "--quiet", "--run-id", "r1")
    assert out.returncode == 0, out.stderr[-3000:]
    manifest = json.loads((a / "reports" / "runs" / "r1" / "manifest.json").read_text())
    shown = team["tracking_uri"].replace("://", "://member:***@")
    assert manifest["settings"]["tracking_uri"] == {"value": shown, "source": str(a / "team.yaml")}
    assert manifest["predictions"]["sql"]["table"] == "urm_user_scores_cdnow_sample"
    # the server keeps the artifacts: home a has no local store
    assert not (a / "mlruns").exists() and any(team["artifacts"].rglob("MLmodel"))
    import nbformat

    for entry in manifest["notebooks"]:
        if entry["status"] == "ok":
            text = json.dumps([c.get("outputs", []) for c in nbformat.read(entry["output"], as_version=4).cells])
            for word in ("Warning", "WARNING", "Traceback", "View run", "Downloading artifacts"):
                assert word not in text, (entry["notebook"], word)
    out = _urm(b, "score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30")
    assert out.returncode == 0, out.stderr[-3000:]
    assert not (b / "mlruns").exists()
    with _in_home(a):
        published_a = scoring.read_predictions("cdnow_sample")
    with _in_home(b):
        published_b = scoring.read_predictions("cdnow_sample")
        meta = (
            __import__("pyarrow.parquet", fromlist=["x"])
            .read_schema(scoring.predictions_path("cdnow_sample", "1997-09-30"))
            .metadata[b"urm_models"]
        )
    pd.testing.assert_frame_equal(published_a, published_b)
    assert json.loads(meta)["model_store"] == shown
    assert published_a["model_versions"].iloc[0].startswith("urm-clv/1")
    # the SQL table holds what b published last, the previous one what a published
    sql = sqltable.read("cdnow_sample", url=team["database"])
    assert len(sql) == len(published_b) and set(sql["user_id"]) == set(published_b["user_id"])
    assert sqltable.read("cdnow_sample", url=team["database"], previous=True)["clv"].sum() == pytest.approx(
        published_a["clv"].sum()
    )
    # the UI opens our experiments on their training runs
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=team["tracking_uri"])
    for exp in client.search_experiments():
        if exp.name.startswith("urm-"):
            assert exp.tags.get("mlflow.experimentKind") == "custom_model_development", exp.name

    user = str(published_a["user_id"].iloc[0])
    # the schedule of home a: what `make scheduled` appends to reports/cron.log, a refused file
    # of the user's too (validation quotes the rejected row)
    bad = tmp_path / "export.csv"
    bad.write_text(f"user_id,ts,amount\n{user},1997-01-02,10\n{user},1997-01-02,10\nz1,1997-01-03,5\n")
    with open(a / "reports" / "cron.log", "a") as log:
        for args in (
            ("--dataset", "cdnow_sample", "--fast", "--notebooks", "01_explore_data,06_score_users"),
            ("--path", str(bad), "--cutoff", "1997-01-02"),
        ):
            subprocess.run(
                [sys.executable, "-m", "urm_models.cli", "refresh", *args, "--quiet"],
                env={k: v for k, v in {**os.environ, "URM_HOME": str(a)}.items() if k != "MLFLOW_TRACKING_URI"},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
            )
    log_text = (a / "reports" / "cron.log").read_text()
    assert "ok in" in log_text and user in log_text  # the refusal quoted the user's raw row
    # a refresh killed mid-run (its notebook outputs and manifest are on disk)
    killed = _refresh_in_background(a, "--dataset", "cdnow_sample", "--fast", "--quiet", "--run-id", "killed")
    deadline = time.time() + 120
    while not list((a / "reports" / "runs" / "killed").glob("01_*.ipynb")) and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(killed.pid, 9)
    killed.wait(30)
    # urm forget in home a reaches the SQL tables (current and previous) and the team's register
    out = _urm(a, "forget", user, "--dataset", "cdnow_sample")
    assert out.returncode == 0, out.stderr
    for previous in (False, True):
        assert user not in set(sqltable.read("cdnow_sample", url=team["database"], previous=previous)["user_id"])
    # home b never ran forget; it publishes again and the user does not come back
    out = _urm(b, "score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30")
    assert out.returncode == 0, out.stderr[-3000:]
    assert user not in set(sqltable.read("cdnow_sample", url=team["database"])["user_id"])
    with _in_home(b):
        assert user not in set(scoring.read_predictions("cdnow_sample")["user_id"])
    # and now search everything
    with _in_home(a):
        pseudonym = privacy.pseudonymize([user])[0]
    for needle, where in [(n, "password") for n in PLANTED_FORMS] + [(user, "user"), (pseudonym, "pseudonym")]:
        roots = [p for p in a.iterdir() if p.name != "team.yaml"] + [team["artifacts"]]
        if where == "password":
            roots += [p for p in b.iterdir() if p.name != "team.yaml"]
        assert mentions.find(roots, [needle]) == {}, (where, needle)
    for url in (team["database"], team["server"].get_uri("mlflow")):
        assert _found_in_database(url, [*PLANTED_FORMS, user, pseudonym]) == {}, url


def _fake(n: int, tag: str) -> pd.DataFrame:
    from urm_models.serve.schema import COLUMNS

    rng = np.random.default_rng(n)
    t = pd.DataFrame(
        {
            "user_id": [f"{tag}{i:07d}" for i in range(n)],
            "as_of": pd.Timestamp("2024-01-01"),
            "tier": "gold",
            "rfm_segment": "Champions",
            "lifecycle_stage": "active",
            "p_alive": rng.random(n),
            "p_churn": rng.random(n),
            "expected_purchases": rng.random(n),
            "expected_remaining_lifetime": rng.random(n),
            "clv": rng.random(n),
            "value_at_risk": 0.0,
            "recommended_action": "x",
            "action_channel": "email",
            "action_priority": 1,
            "cohort": "c",
            "model_versions": f"urm-clv/{tag}",
            "recommended_arm": None,
            "expected_incremental_value": np.nan,
        }
    )
    return t[COLUMNS]


def _publish_forever(url: str, ready) -> None:
    """A publisher that is killed in the middle of its work (a large table, published again and again)."""
    from urm_models.serve import sqltable

    big = _fake(1_500_000, "k")
    ready.set()
    while True:
        sqltable.publish_table(big, "killtest", url=url)


@pytest.mark.slow
def test_sql_publishes_are_atomic_for_readers_and_survive_a_kill(team):
    """A reader polling during repeated publishes sees one whole table at a time, never a part or
    a mix; a publisher killed with -9 mid-publish leaves the current and the previous table as they were."""
    from sqlalchemy import text

    from urm_models.core.locks import engine
    from urm_models.serve import sqltable

    url = team["database"]
    tables = {"a": _fake(30_000, "a"), "b": _fake(20_000, "b")}
    sqltable.publish_table(tables["a"], "swap", url=url)
    seen, stop = [], threading.Event()

    def reader():
        eng = engine(url)
        with eng.connect() as conn:
            while not stop.is_set():
                row = conn.execute(
                    text(
                        "SELECT count(*), count(DISTINCT model_versions), min(model_versions), "
                        "min(user_id), max(user_id) FROM urm_user_scores_swap"
                    )
                ).one()
                conn.commit()
                seen.append(tuple(row))
        eng.dispose()

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(12):
        sqltable.publish_table(tables["ab"[i % 2]], "swap", url=url)
    stop.set()
    thread.join(60)
    whole = {(30_000, 1, "urm-clv/a", "a0000000", "a0029999"), (20_000, 1, "urm-clv/b", "b0000000", "b0019999")}
    assert seen and set(seen) <= whole, set(seen) - whole
    assert len(set(seen)) == 2  # it saw both tables
    pubs = pd.read_sql_table("urm_publications", engine(url))
    assert (pubs["dataset"] == "swap").sum() == 13 and set(pubs.loc[pubs["dataset"] == "swap", "rows"]) == {
        20_000,
        30_000,
    }

    sqltable.publish_table(tables["a"], "killtest", url=url)
    sqltable.publish_table(tables["b"], "killtest", url=url)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_publish_forever, args=(url, ready))
    proc.start()
    assert ready.wait(120)
    time.sleep(1.5)  # inside its first publish: 1,500,000 rows going to the staging table (about 6 s)
    os.kill(proc.pid, 9)
    proc.join(30)
    pubs = pd.read_sql_table("urm_publications", engine(url))
    assert (pubs["dataset"] == "killtest").sum() == 2  # killed before its swap
    current = sqltable.read("killtest", url=url)
    assert len(current) == 20_000 and current["user_id"].iloc[0].startswith("b")
    assert len(sqltable.read("killtest", url=url, previous=True)) == 30_000
    sqltable.publish_table(tables["a"], "killtest", url=url)  # and the next publish clears what the killed one left
    from sqlalchemy import inspect

    names = inspect(engine(url)).get_table_names()
    assert not [n for n in names if n.startswith("urm_user_scores_killtest_staging_")]


def _hold(home: str, dataset: str, ready, release) -> None:
    os.environ["URM_HOME"] = home
    for var in ("MLFLOW_TRACKING_URI", "URM_DATABASE"):
        os.environ.pop(var, None)
    from urm_models.core import locks

    with locks.refresh_lock(dataset=dataset):
        ready.set()
        release.wait(120)


@pytest.mark.slow
def test_one_refresh_of_a_data_set_at_a_time_across_homes(team, tmp_path):
    a, b = _home(tmp_path, team, "a"), _home(tmp_path, team, "b")
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(a), "cdnow_sample", ready, release))
    holder.start()
    try:
        assert ready.wait(120)
        for args in (
            ("refresh", "--dataset", "cdnow_sample", "--fast", "--quiet"),
            ("score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30"),
        ):
            out = _urm(b, *args)
            assert out.returncode == 75, out.stderr[-2000:]
            assert "another refresh or score of 'cdnow_sample' is running against the team database" in out.stderr
            assert f"pid {holder.pid}, home {a}" in out.stderr and "Traceback" not in out.stderr
    finally:
        release.set()
        holder.join(60)
    # the lock goes with its holder; another data set was never blocked
    from urm_models.core import locks

    with _in_home(b), locks.refresh_lock(dataset="cdnow_sample"):
        pass
