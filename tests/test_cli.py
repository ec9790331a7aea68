"""The urm command: real subprocesses, clear errors, no tracebacks."""

import io
import os
import subprocess
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.integration  # the CLI in a subprocess in most tests of this file


def urm(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "urm_models.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_kpis_on_shipped_data():
    out = urm("kpis", "--dataset", "cdnow_sample")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("period,active_users,new_users")
    assert len(lines) == 1 + 18


def test_kpis_keep_cents_and_never_use_scientific_notation(tmp_path):
    """`urm kpis` printed %.6g: revenue 1,234,567.89 as 1.23457e+06, cents dropped."""
    p = tmp_path / "big.csv"
    p.write_text("user_id,ts,amount\nu1,2024-01-05,1234567.89\nu2,2024-01-06,0.05\nu1,2024-02-01,10.10\n")
    out = urm("kpis", "--path", str(p))
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(io.StringIO(out.stdout), dtype=str).set_index("period")
    assert table.loc["2024-01", "revenue"] == "1234567.94" and table.loc["2024-01", "active_users"] == "2"
    assert table.loc["2024-02", "retention_rate"] == "0.5000"
    assert "e+" not in out.stdout and "e-" not in out.stdout


def test_every_command_explains_itself():
    for command in ("refresh", "kpis", "score", "forget", "prune", "ui"):
        text = urm(command, "--help").stdout
        usage = text.split("\n\n")
        assert len(usage) >= 3 and len(usage[1].split()) >= 8, (command, text)  # a description, not just flags
    assert "latest table comes from are always kept" in " ".join(urm("prune", "--help").stdout.split())
    assert "without its password" in " ".join(urm("ui", "--help").stdout.split())


def test_bad_file_is_a_clear_error_not_a_traceback(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("user_id,ts,amount\nu1,2024-01-01,ten\n")
    out = urm("kpis", "--path", str(p))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert str(p) in out.stderr and "column amount" in out.stderr and "1 rows" in out.stderr


def test_version_and_refresh_help_show_defaults_and_exit_codes():
    from importlib.metadata import version

    out = urm("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"urm-models {version('urm-models')}"
    text = urm("refresh", "--help").stdout
    for default in (
        "(default: cdnow",
        "(default: 1997-09-30",
        "(default:\n                        1998-06-30",
        "(default: W)",
        "(default: 0)",
    ):
        assert " ".join(default.split()) in " ".join(text.split()), default
    codes = text[text.index("exit codes:") :]
    for code in ("0  success", "1  a notebook failed", "2  bad arguments", "75  another refresh"):
        assert code in codes


def test_refresh_rejects_unknown_config_keys(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: cdnow_sample\nbogus: 1\n")
    out = urm("refresh", "--config", str(cfg))
    assert out.returncode == 2 and "unknown parameter(s) ['bogus']" in out.stderr


def test_score_without_a_champion_says_what_to_run(home):
    import os

    out = urm("score", "--dataset", "cdnow_sample", "--as-of", "1997-09-30", env={**os.environ})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "no 'champion' version of urm-clv" in out.stderr and "urm refresh" in out.stderr
    assert not (home / "data" / "predictions").exists()


def test_own_file_flags_are_checked_and_mapped(tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("customer,order_date,total\nA,02/01/2024,10.0\nA,20/03/2024,5.5\nB,05/01/2024,7.0\n")
    out = urm(
        "refresh",
        "--path",
        str(csv),
        "--columns",
        "user_id:customer",
        "--cutoff",
        "2024-02-01",
        env={**os.environ, "URM_HOME": str(tmp_path)},
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr  # a bad argument
    assert "--columns takes canonical=yours pairs" in out.stderr
    # mapped and parsed, the file is read; the cut-off it needs is named with the data's range
    out = urm(
        "refresh",
        "--path",
        str(csv),
        "--columns",
        "user_id=customer,ts=order_date,amount=total",
        "--date-format",
        "%d/%m/%Y",
        env={**os.environ, "URM_HOME": str(tmp_path)},
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "run from 2024-01-02 to 2024-03-20" in out.stderr
    out = urm(
        "kpis",
        "--path",
        str(csv),
        "--columns",
        "user_id=customer,ts=order_date,amount=total",
        "--date-format",
        "%d/%m/%Y",
        env={**os.environ, "URM_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    kpis = pd.read_csv(io.StringIO(out.stdout))
    assert kpis["active_users"].tolist() == [2, 0, 1]  # January: A and B; March: A


def test_refresh_of_real_exports_names_the_option_or_reads_them(tmp_path):
    """The "Why" of issue 11 through `urm refresh --path`: a comma-decimal file stops with the
    option, a symlink is refused, a .csv.gz is read (up to the cut-off it needs), no traceback."""
    env = {**os.environ, "URM_HOME": str(tmp_path / "home")}
    de = tmp_path / "orders.csv"
    de.write_text("customer;order_date;total\nA;02.01.2024;12,50\nA;20.03.2024;5,00\nB;05.01.2024;7,00\n")
    cols = ["--columns", "user_id=customer,ts=order_date,amount=total"]
    out = urm("refresh", "--path", str(de), *cols, "--date-format", "%d.%m.%Y", "--cutoff", "2024-02-01", env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert str(de) in out.stderr and "column amount (file column 'total'): 3 of 3 rows" in out.stderr
    assert "pass decimal=','" in out.stderr
    out = urm("refresh", "--path", str(de), *cols, "--date-format", "%d.%m.%Y", "--decimal", ",", env=env)
    assert out.returncode == 1 and "run from 2024-01-02 to 2024-03-20" in out.stderr  # read: now the cut-off
    link = tmp_path / "link.csv"
    link.symlink_to(de)
    out = urm("refresh", "--path", str(link), *cols, "--decimal", ",", "--cutoff", "2024-02-01", env=env)
    assert out.returncode == 1 and "is a symbolic link" in out.stderr and "Traceback" not in out.stderr
    gz = tmp_path / "orders.csv.gz"
    import gzip

    gz.write_bytes(gzip.compress(de.read_bytes()))
    out = urm("refresh", "--path", str(gz), *cols, "--date-format", "%d.%m.%Y", "--decimal", ",", env=env)
    assert out.returncode == 1 and "run from 2024-01-02 to 2024-03-20" in out.stderr
    assert not (tmp_path / "home" / "data" / "predictions").exists()


def test_urm_ui_against_a_server_says_where_it_is(home):
    """Before: `urm ui` with MLFLOW_TRACKING_URI=http://... exited 1 with two tracebacks."""
    out = urm("ui", env={**os.environ, "MLFLOW_TRACKING_URI": "http://user:secret@mlflow.example:5000"})
    assert out.returncode == 0 and "Traceback" not in out.stderr + out.stdout
    assert "the MLflow server http://user:***@mlflow.example:5000" in out.stdout and "open " in out.stdout
    assert "secret" not in out.stdout + out.stderr


def test_the_team_file_sets_the_store_for_every_entry_point(home):
    """team.yaml in the project home: read by the package (so by the CLI, the notebooks' kernel,
    cron and systemd alike); an environment variable wins; a bad file is one clear error."""
    from urm_models.core import settings
    from urm_models.serve import tracking

    assert tracking.tracking_uri() == tracking.default_tracking_uri() and settings.get("database") == (None, "default")
    other = home / "elsewhere.db"
    (home / "team.yaml").write_text(
        f"tracking_uri: sqlite:///{other}\nartifact_root: {home / 'shared'}\n"
        "database: postgresql://urm:pw@db.example/urm\n"
    )
    assert tracking.tracking_uri() == f"sqlite:///{other}"
    assert settings.get("tracking_uri")[1] == str(home / "team.yaml")
    assert settings.summary()["database"] == {
        "value": "postgresql://urm:***@db.example/urm",
        "source": str(home / "team.yaml"),
    }
    exp = tracking.ensure_experiment("urm-clv")
    import mlflow

    got = mlflow.MlflowClient().get_experiment(exp)
    assert got.artifact_location == f"{home / 'shared'}/urm-clv" and other.exists()
    assert got.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens it on its runs
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'env.db'}"
    try:
        assert tracking.tracking_uri() == f"sqlite:///{home / 'env.db'}"
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    (home / "team.yaml").write_text("tracking_uri: sqlite:////tmp/x.db\nbogus: 1\n")
    out = urm("refresh", "--dataset", "cdnow_sample", env={**os.environ})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{home / 'team.yaml'}: unknown setting(s) ['bogus']" in out.stderr
    # a database named directly, without a shared artifact root, would keep artifacts per machine
    (home / "team.yaml").write_text(f"tracking_uri: sqlite:///{home / 'direct.db'}\n")
    import pytest

    with pytest.raises(ValueError, match="database named directly: its artifacts would land in each machine's own"):
        tracking.ensure_experiment("urm-churn")


def test_the_projects_own_store_has_no_empty_default_experiment(home):
    import mlflow

    from urm_models.serve import tracking

    tracking.ensure_experiment("urm-kpis")
    names = {e.name for e in mlflow.MlflowClient().search_experiments()}
    assert names == {"urm-kpis"}
