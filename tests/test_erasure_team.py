"""Erasure across a team: the register lives in the team's database, so a user forgotten in one
clone stays out of what every other clone (and the schedule's) loads and publishes. Two project
homes here share only an SQLite team database (PostgreSQL: test_team.py)."""

import contextlib
import os
from pathlib import Path

import pandas as pd
import pytest

from urm_models.data import datasets, erasure
from urm_models.jobs import forget
from urm_models.serve import schema, sqltable


@contextlib.contextmanager
def _in(home: Path):
    old = os.environ.get("URM_HOME")
    os.environ["URM_HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("URM_HOME", None)
        else:
            os.environ["URM_HOME"] = old


def _table(ids):
    t = pd.DataFrame({c: [None] * len(ids) for c in schema.COLUMNS})
    t["user_id"] = ids
    t["as_of"] = pd.Timestamp("2024-01-01")
    t["action_priority"] = 1
    t["model_versions"] = "urm-clv/1"
    for c in ("p_alive", "p_churn", "expected_purchases", "expected_remaining_lifetime", "clv", "value_at_risk"):
        t[c] = 0.5
    t["expected_incremental_value"] = float("nan")
    return t


@pytest.fixture
def team(tmp_path, monkeypatch):
    for var in ("URM_DATABASE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    db = tmp_path / "team.sqlite"
    homes = []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        (home / "team.yaml").write_text(f"database: sqlite:///{db}\n")
        homes.append(home)
    csv = tmp_path / "shop.csv"
    csv.write_text("user_id,ts,amount\nu1,2024-01-01,10\nu2,2024-01-02,20\nu3,2024-01-03,30\n")
    return homes, db, csv


def test_a_user_forgotten_in_one_clone_is_out_of_every_other_clones_loads_and_publishes(team):
    (a, b), db, csv = team
    with _in(b):
        before = datasets.load_transactions(csv, dataset="shop")
        table_built_before = _table(sorted(before["user_id"].astype(str).unique()))
    assert "u1" in set(before["user_id"])
    with _in(a):
        done = forget.forget(["u1"], dataset="shop")
    assert done["erased"] == 1
    # clone b never ran forget: its own log is empty, the team register is what it reads
    assert not (b / "data" / "erasure" / "erasures.jsonl").exists()
    with _in(b):
        assert erasure.erased_pseudonyms("shop") == set(done["pseudonyms"])
        again = datasets.load_transactions(csv, dataset="shop")
        assert set(again["user_id"]) == {"u2", "u3"}
        # a table b built before the erasure is published without the user, by whoever publishes
        sqltable.publish_table(table_built_before, "shop")
        assert set(sqltable.read("shop")["user_id"]) == {"u2", "u3"}
        # another data set is not affected by an erasure scoped to shop
        assert "u1" in set(datasets.load_transactions(csv, dataset="other")["user_id"])


def test_a_register_that_cannot_be_read_stops_the_load(team, tmp_path):
    """Guessing that nobody was erased would bring users back: a broken register refuses."""
    (a, _b), db, csv = team
    with _in(a):
        forget.forget(["u2"])
    db.write_bytes(b"this is not a database")
    with _in(a), pytest.raises(erasure.ErasureLogError, match="erasure register .* cannot be read"):
        datasets.load_transactions(csv, dataset="shop")


def test_forget_reaches_staging_tables_a_killed_publish_left(team):
    (a, _b), db, _csv = team
    with _in(a):
        sqltable.publish_table(_table(["u1", "u2"]), "shop")
        from sqlalchemy import text

        from urm_models.core.locks import engine

        eng = engine(f"sqlite:///{db}")
        with eng.begin() as conn:  # what a publish killed between its staging and its swap leaves
            conn.execute(
                text('CREATE TABLE "urm_user_scores_shop__staging_dead0001" AS SELECT * FROM urm_user_scores_shop')
            )
        forget.forget(["u1"], dataset="shop")
        with eng.connect() as conn:
            left = conn.execute(text('SELECT user_id FROM "urm_user_scores_shop__staging_dead0001"')).scalars().all()
        eng.dispose()
    assert left == ["u2"]
