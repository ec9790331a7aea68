"""Issue 22's defects, each with the test that failed before its fix: raw rows that could leave
data/, names and arguments taken without a word, a lock that lost its holder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import lock_holder
from urm_models.core import locks, paths
from urm_models.data import datasets, erasure
from urm_models.jobs import forget, pipeline

ROOT = Path(__file__).resolve().parents[1]


def urm(*args, home=None):
    env = {**os.environ}
    if home is not None:
        env["URM_HOME"] = str(home)
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "urm_models.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_raw_rows_under_data_are_never_committed():
    """D6: `git add -A` would have committed snapshots (raw rows) and the erasure log."""
    for path in (
        "data/snapshots/run/transactions.parquet",
        "data/erasure/erasures.jsonl",
        "data/tmp/staged/run/user_scores.parquet",
        "data/quarantine/x.csv",
        "team.yaml",
    ):
        out = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert out.returncode == 0, f"{path} is not git-ignored"


def test_a_refused_lock_keeps_the_holders_information(home):
    """D9: the refused process used to truncate the lock file on its way out."""
    lock = home / "reports" / ".refresh.lock"
    with lock_holder.held_lock(home):
        before = lock.read_text()
        assert before.startswith("pid ")
        with pytest.raises(locks.RefreshLocked, match=before.split(",")[0]):
            with locks.refresh_lock():
                pass
        assert lock.read_text() == before


@pytest.mark.integration
def test_bad_arguments_exit_2_with_their_message(home, tmp_path):
    """D12, D13, unknown data sets, --notebooks paths: bad arguments, exit 2, no traceback (before:
    `--dataset ''` scored cdnow, an unknown data set exited 1, an unsafe YAML printed a traceback,
    --notebooks ran a notebook from anywhere)."""
    for args, message in [
        (("kpis", "--dataset", ""), "data set name (--dataset) '' is not a safe name"),
        (("score", "--dataset", "", "--as-of", "1997-09-30"), "is not a safe name"),
        (
            ("score", "--dataset", "cdnow_smaple", "--as-of", "1997-09-30"),
            "unknown data set 'cdnow_smaple' (did you mean 'cdnow_sample'?)",
        ),
        (("refresh", "--dataset", "cdnow_smaple"), "unknown data set 'cdnow_smaple'"),
        (
            ("refresh", "--dataset", "cdnow_sample", "--notebooks", "../../tmp/evil"),
            "--notebooks takes names of the project's notebooks, not paths",
        ),
    ]:
        out = urm(*args, home=home)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    cfg = tmp_path / "evil.yaml"
    cfg.write_text("dataset: !!python/object/apply:os.system ['echo owned']\n")
    out = urm("refresh", "--config", str(cfg), home=home)
    assert out.returncode == 2 and "is not plain YAML" in out.stderr and "Traceback" not in out.stderr
    assert "owned" not in out.stdout
    with pytest.raises(pipeline.RefreshError, match="notebooks are named, not given as paths"):
        pipeline.refresh({"dataset": "cdnow_sample"}, notebooks=["../06_score_users"], progress=False)
    assert not (home / "reports" / "runs").exists()


@pytest.mark.integration
def test_forget_refuses_a_data_set_that_nothing_knows(home):
    """A typo used to exit 0 and be written into the append-only log."""
    out = urm("forget", "XYZ", "--dataset", "cdnow_smaple", home=home)
    assert out.returncode == 2 and "unknown data set 'cdnow_smaple' (did you mean 'cdnow_sample'?)" in out.stderr
    assert not erasure.log_path().exists()
    out = urm("forget", "XYZ", "--dataset", "cdnow_sample", home=home)
    assert out.returncode == 0, out.stderr
    assert len(erasure.log_path().read_text().splitlines()) == 1


def test_rejected_rows_stay_in_the_projects_quarantine(home, tmp_path):
    """D3: quarantine_dir= used to write raw rejected rows anywhere, where urm forget never looked."""
    csv = tmp_path / "orders.csv"
    csv.write_text("user_id,ts,amount\nu1,2024-01-01,10\nu2,2024-01-02,oops\n")
    outside = tmp_path / "elsewhere"
    with pytest.raises(ValueError, match="lies outside .*data/quarantine"):
        datasets.load_transactions(csv, errors="quarantine", quarantine_dir=outside)
    assert not outside.exists()
    inside = paths.quarantine_dir() / "mine"
    tx = datasets.load_transactions(csv, errors="quarantine", quarantine_dir=inside)
    assert len(tx) == 1 and len(list(inside.glob("*.csv"))) == 1
    done = forget.forget(["u2"])
    assert done["removed"][done["pseudonyms"][0]].get("quarantine") == 1
    assert "u2" not in next(inside.glob("*.csv")).read_text()


def test_dates_are_checked_before_any_notebook_runs(home):
    """D14: a cut-off outside the data used to fail inside notebook 01."""
    with pytest.raises(
        pipeline.RefreshError,
        match=r"cut-off 2001-01-01 must lie .* data set cdnow_sample run "
        r"from 1997-01-01 to 1998-06-30",
    ):
        pipeline.refresh({"dataset": "cdnow_sample", "cutoff": "2001-01-01"}, progress=False)
    with pytest.raises(pipeline.RefreshError, match="cutoff '1997-13-45' is not a date"):
        pipeline.refresh({"dataset": "cdnow_sample", "cutoff": "1997-13-45"}, progress=False)
    assert not (home / "reports" / "runs").exists()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"as_of": "banana"}, "as_of 'banana' is not a date"),
        ({"as_of": "now"}, "as_of 'now' is not a date"),
        ({"holdout_end": "1998/06/30"}, "holdout_end '1998/06/30' is not a date"),
        ({"freq": "X"}, "freq 'X' is not a time unit"),
        ({"freq": "w"}, "freq 'w' is not a time unit"),
        ({"seed": "abc"}, "seed 'abc' is not a whole number"),
        ({"seed": -1}, "seed -1 is not a whole number"),
        ({"seed": 1.5}, "seed 1.5 is not a whole number"),
        ({"fast": "yes"}, "fast 'yes' is not true or false"),
        ({"campaign_window": 0}, "campaign_window 0 is not a positive number"),
        ({"campaign_window": -2}, "campaign_window -2 is not a positive number"),
        ({"campaign_window": float("nan")}, "campaign_window nan is not a positive number"),
        ({"campaign_window": "two"}, "campaign_window 'two' is not a positive number"),
        ({"read": ["columns"]}, "read must be a mapping"),
        (
            {"path": "x.csv", "cutoff": "1997-09-30", "read": {"dataset": "cdnow"}},
            r"\['dataset'\] are the refresh's own",
        ),
        ({"path": "x.csv", "cutoff": "1997-09-30", "read": {"quarantine_dir": "reports"}}, "quarantine_dir"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_every_argument_is_checked_before_anything_runs(home, given, message):
    """A bad argument (a flag or a config value) used to fail in a notebook after models were
    fitted and registered; `read: {dataset: other}` re-scoped the erasures of another data set."""
    with pytest.raises(pipeline.RefreshError, match=message):
        pipeline.refresh({"dataset": "cdnow_sample", **given}, progress=False)
    assert not (home / "reports" / "runs").exists() and not (home / "mlruns").exists()


def test_a_date_that_yaml_reads_unquoted_is_a_date(home, tmp_path):
    """`cutoff: 1997-09-30` in a config file is a date object to YAML: read as the date it is."""
    import datetime as dt

    p = pipeline.check_parameters(
        {**pipeline.DEFAULT_PARAMS, "cutoff": dt.date(1997, 9, 30), "holdout_end": dt.datetime(1998, 6, 30)}, {}
    )
    assert (p["cutoff"], p["holdout_end"]) == ("1997-09-30", "1998-06-30")
    config = tmp_path / "c.yaml"
    config.write_text("dataset: cdnow_sample\ncutoff: 1997-09-30\nholdout_end: 1998-06-30\nfreq: X\n")
    from urm_models import cli

    assert cli.main(["refresh", "--config", str(config), "--quiet"]) == 1  # freq, not the dates, is refused


@pytest.mark.integration
def test_a_killed_runs_staged_table_does_not_outlive_it(home):
    """D4: the scoring notebook staged the table (raw ids) under reports/runs/<id>/; after a kill
    it survived later refreshes and urm forget. Now it is staged under data/tmp/staged/ and both
    places are cleaned: recover() drops a killed run's table, urm forget every unpublished one."""
    table = pd.DataFrame({"user_id": ["u1", "u2"], "clv": [1.0, 2.0]})
    for run in ("old", "new"):
        (home / "reports" / "runs" / run).mkdir(parents=True)
        (home / "reports" / "runs" / run / "manifest.json").write_text(json.dumps({"status": "running"}))
    table.to_parquet(home / "reports" / "runs" / "old" / "user_scores.parquet")  # where it used to be staged
    (paths.staging_dir() / "new").mkdir(parents=True)
    table.to_parquet(paths.staging_dir() / "new" / "user_scores.parquet")
    done = forget.forget(["u1"])
    assert done["removed"][done["pseudonyms"][0]].get("staged_tables") == 1
    assert not (paths.staging_dir() / "new").exists()
    assert pd.read_parquet(home / "reports" / "runs" / "old" / "user_scores.parquet")["user_id"].tolist() == ["u2"]
    assert set(pipeline.recover()["killed_runs"]) == {"old", "new"}
    assert not (home / "reports" / "runs" / "old" / "user_scores.parquet").exists()


@pytest.mark.slow
def test_null_words_are_not_user_ids(home, tmp_path):
    """D8: 236 guest purchases under NULL became the top user of a refresh; now the column is
    refused with the count and the option, drop leaves those rows out (counted), keep keeps them."""
    csv = tmp_path / "orders.csv"
    rows = [
        "user_id,ts,amount",
        *(f"u{i},2024-01-0{1 + i % 5},10" for i in range(10)),
        *(f"NULL,2024-01-0{2 + i},5" for i in range(4)),
        " n/a ,2024-01-03,5",
        "NA,2024-01-04,5",
    ]
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(
        datasets.DataValidationError,
        match=r"column user_id: 6 of 16 rows have a user id that is a "
        r"null word \('NULL': 4.*null_ids='drop'",
    ):
        datasets.load_transactions(csv)
    dropped = datasets.load_transactions(csv, null_ids="drop")
    assert len(dropped) == 10 and dropped.attrs["validation"]["n_null_ids"] == 6
    assert dropped.attrs["validation"]["n_input"] == 16
    kept = datasets.load_transactions(csv, null_ids="keep")
    assert set(kept["user_id"]) >= {"NULL", "n/a", "NA"}
    out = urm("kpis", "--path", str(csv), home=home)
    assert out.returncode == 1 and "--null-ids drop" in out.stderr and "Traceback" not in out.stderr
    out = urm("kpis", "--path", str(csv), "--null-ids", "drop", home=home)
    assert out.returncode == 0, out.stderr
    # a Parquet file read as it is gets the same refusal
    from urm_models.data import parquet_contract

    pq = tmp_path / "orders.parquet"
    pd.DataFrame(
        {"user_id": ["u1", "NULL"], "ts": pd.to_datetime(["2024-01-01", "2024-01-02"]), "amount": [1.0, 2.0]}
    ).to_parquet(pq)
    with pytest.raises(datasets.DataValidationError, match="check 'not_a_null_word': 1 rows"):
        parquet_contract.check_transactions(str(pq), engine="duckdb")


def test_german_integer_thousands_are_not_read_as_decimals(tmp_path):
    """D7: '2.933' (2,933 in a German export) was read as 2.933 while '933' stayed 933."""
    csv = tmp_path / "orders.csv"
    csv.write_text("user_id,ts,amount\nu1,2024-01-01,2.933\nu2,2024-01-02,933\nu3,2024-01-03,1.250\n")
    with pytest.raises(
        datasets.DataValidationError,
        match=r"(?s)column amount: 2 of 3 rows cannot be read without "
        r"guessing.*'2.933' is 2.933 with a decimal point and 2933 "
        r"with a thousands dot.*decimal='.' or thousands='.'",
    ):
        datasets.load_transactions(csv)
    assert datasets.load_transactions(csv, decimal=",", thousands=".")["amount"].tolist() == [2933.0, 933.0, 1250.0]
    assert datasets.load_transactions(csv, decimal=".")["amount"].tolist() == [2.933, 933.0, 1.25]
    ok = tmp_path / "cents.csv"
    ok.write_text("user_id,ts,amount\nu1,2024-01-01,2.93\nu2,2024-01-02,933\n")
    assert datasets.load_transactions(ok)["amount"].tolist() == [2.93, 933.0]  # two decimals: a decimal point


def test_excels_unicode_text_export_reads_with_its_encoding(tmp_path):
    """D1: a UTF-16 file was refused even with encoding='utf-16', as 'an image, PDF'."""
    path = tmp_path / "orders.txt"
    path.write_bytes("user_id\tts\tamount\nä1\t2024-01-01\t10.5\nb2\t2024-01-02\t3\n".encode("utf-16"))  # BOM + LE
    with pytest.raises(
        datasets.DataValidationError, match=r"UTF-16 text .*pass encoding='utf-16' \(--encoding utf-16\)"
    ):
        datasets.load_transactions(path)
    tx = datasets.load_transactions(path, encoding="utf-16")
    assert tx["user_id"].tolist() == ["ä1", "b2"] and tx["amount"].tolist() == [10.5, 3.0]
    be = tmp_path / "be.csv"
    be.write_bytes("user_id,ts,amount\nu1,2024-01-01,1\n".encode("utf-16-be"))  # no BOM: NUL bytes
    with pytest.raises(datasets.DataValidationError, match="UTF-16 text needs encoding='utf-16'"):
        datasets.load_transactions(be)
    assert datasets.load_transactions(be, encoding="utf-16-be")["user_id"].tolist() == ["u1"]


def test_the_end_of_the_erasure_log_is_protected(home, tmp_path):
    """D5: removing or editing the last line went unnoticed, and the erased user came back."""
    forget.forget(["a1"])
    forget.forget(["b2"])
    log = erasure.log_path()
    lines = log.read_text().splitlines()
    assert len(erasure.verify_log()) == 2
    log.write_text(lines[0] + "\n")  # the last erasure removed
    with pytest.raises(erasure.ErasureLogError, match="1 line.* where the head record counts 2"):
        erasure.verify_log()
    csv = tmp_path / "o.csv"
    csv.write_text("user_id,ts,amount\nb2,2024-01-02,1\nz9,2024-01-03,2\n")
    with pytest.raises(erasure.ErasureLogError):
        datasets.load_transactions(csv)  # every load refuses to run rather than bring b2 back
    log.write_text(lines[0] + "\n" + lines[1].replace('"dataset":null', '"dataset":"x"') + "\n")  # the last edited
    with pytest.raises(erasure.ErasureLogError):
        erasure.verify_log()
    log.write_text("\n".join(lines) + "\n")
    erasure.head_path().unlink()  # the head record removed with the lines: caught too
    with pytest.raises(erasure.ErasureLogError, match="is missing"):
        erasure.verify_log()


def test_row_level_messages_name_the_option_that_fixes_them(tmp_path):
    """D11: currency signs, refunds, the date floor and Unix epoch dates now name their option."""
    csv = tmp_path / "orders.csv"
    csv.write_text("user_id,ts,amount\nA,2024-01-02,$12.50\nB,2024-01-03,$7.00\nC,1950-01-04,-3\nD,2024-01-05,4\n")
    with pytest.raises(datasets.DataValidationError) as ei:
        datasets.load_transactions(csv)
    msg = str(ei.value)
    assert "check 'numeric (a currency sign: currency='$' removes it)': 2 rows" in msg
    assert "check 'non_negative (returns='keep' keeps returns and refunds)': 1 rows" in msg
    assert "check 'not_before_1970-01-01 (min_date= moves the floor)': 1 rows" in msg
    tx = datasets.load_transactions(csv, currency="$", returns="keep", min_date="1900-01-01")
    assert tx["amount"].tolist() == [12.5, 7.0, -3.0, 4.0]
    epoch = tmp_path / "epoch.csv"
    epoch.write_text("user_id,ts,amount\nA,1704067200,1\nB,1704153600,2\n")
    with pytest.raises(datasets.DataValidationError, match=r'Unix epoch seconds.*date_format="epoch"'):
        datasets.load_transactions(epoch)
    read = datasets.load_transactions(epoch, date_format="epoch", tz="Europe/Berlin")
    assert read["ts"].tolist() == [pd.Timestamp("2024-01-01 01:00"), pd.Timestamp("2024-01-02 01:00")]


def test_environ_sets_variables_for_a_block_and_restores_them(monkeypatch):
    """The refresh's environment for its kernel (settings.environ, which replaced mock.patch.dict
    in production code): each variable comes back as it was, unset or set, even after an error."""
    from urm_models.core.settings import environ

    monkeypatch.setenv("URM_A", "before")
    monkeypatch.delenv("URM_B", raising=False)
    with pytest.raises(RuntimeError), environ({"URM_A": "x", "URM_B": 3}):
        assert os.environ["URM_A"] == "x" and os.environ["URM_B"] == "3"
        raise RuntimeError
    assert os.environ["URM_A"] == "before" and "URM_B" not in os.environ


def test_the_telco_contract_runs_through_the_steps_of_every_table(tmp_path, home):
    """datasets' second contract (built on validation's private helpers) is gone: Telco is a table
    of contract.TABLES with its rules, read by validate_table's steps, so it refuses what every
    table refuses (here a null-word customer id, which it used to keep as a customer)."""
    from urm_models.data import contract, validation

    assert "telco" in contract.TABLES and {r.name for r in contract.RULES["telco"]} >= {"blank_only_when_tenure_0"}
    lines = (paths.raw_data_dir() / "telco_churn.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    i = header.lower().split(",").index("customerid")
    bad = rows[0].split(",")
    bad[i] = "NULL"
    p = tmp_path / "telco.csv"
    p.write_text("\n".join([header, ",".join(bad), *rows[1:]]) + "\n")
    with pytest.raises(validation.DataValidationError, match=r"1 of 4,930 rows have a user id that is a null word"):
        datasets.load_telco(p)


def test_a_refresh_waits_for_the_lock_before_it_reads_its_file(home, tmp_path):
    """A refresh started while `urm forget` holds the lock used to read its file first and write
    the rows it rejects (raw rows of the user being erased among them) to data/quarantine/."""

    csv = tmp_path / "shop.csv"
    csv.write_text("user_id,ts,amount\nu-being-erased,2024-01-01,ten\nu2,2024-01-02,5\nu2,2024-02-02,6\n")
    with lock_holder.held_lock(home), pytest.raises(locks.RefreshLocked):
        pipeline.refresh({"path": str(csv), "cutoff": "2024-01-15", "read": {"errors": "quarantine"}}, progress=False)
    assert not (home / "data" / "quarantine").exists()
