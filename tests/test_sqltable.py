"""The predictions table in an SQLite database (the embedded default of the team's `database`
setting; PostgreSQL is tested in test_team.py): publish, keep the previous table, forget."""

import pandas as pd
import pytest

from urm_models import scoring, sqltable


def _table(n, tag, as_of="2024-01-01"):
    t = pd.DataFrame({c: [None] * n for c in scoring.COLUMNS})
    t["user_id"] = [f"{tag}{i}" for i in range(n)]
    t["as_of"] = pd.Timestamp(as_of)
    t["clv"] = [float(i) for i in range(n)]
    t["action_priority"] = 1
    t["model_versions"] = f"urm-clv/{tag}"
    for c in (
        "p_alive",
        "p_churn",
        "expected_purchases",
        "expected_remaining_lifetime",
        "value_at_risk",
        "expected_incremental_value",
    ):
        t[c] = float("nan")
    return t


def test_publish_keeps_the_previous_table_and_forget_reaches_both(home, monkeypatch):
    monkeypatch.setenv("URM_DATABASE", "sqlite:///data/predictions/urm.sqlite")  # relative: the project home's
    assert sqltable.database_url() == f"sqlite:///{home / 'data' / 'predictions' / 'urm.sqlite'}"
    (home / "data" / "predictions").mkdir(parents=True)
    first = sqltable.publish_table(_table(5, "a"), "My Shop.v2", run_id="r1")
    assert first["table"] == "urm_user_scores_my_shop_v2" and first["rows"] == 5
    sqltable.publish_table(_table(3, "b", "2024-02-01"), "My Shop.v2", run_id="r2")
    now, before = sqltable.read("My Shop.v2"), sqltable.read("My Shop.v2", previous=True)
    assert list(now.columns) == scoring.COLUMNS
    assert now["user_id"].tolist() == ["b0", "b1", "b2"] and before["user_id"].tolist() == [f"a{i}" for i in range(5)]
    assert str(now["as_of"].iloc[0])[:10] == "2024-02-01" and now["expected_incremental_value"].isna().all()
    assert sqltable.delete_users(["b1", "a3"], "My Shop.v2") == {
        "urm_user_scores_my_shop_v2": 1,
        "urm_user_scores_my_shop_v2_previous": 1,
    }
    assert "b1" not in set(sqltable.read("My Shop.v2")["user_id"])
    with pytest.raises(ValueError, match="lacks columns"):
        sqltable.publish_table(_table(2, "c").drop(columns=["tier"]), "My Shop.v2")
    assert len(sqltable.read("My Shop.v2")) == 2  # a refused publish changes nothing
