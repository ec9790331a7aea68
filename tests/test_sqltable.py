"""The predictions table in an SQLite database (the embedded default of the team's `database`
setting; PostgreSQL is tested in test_team.py): publish, keep the previous table, forget."""

import pandas as pd
import pytest

from urm_models.core import settings
from urm_models.core.paths import dataset_key
from urm_models.serve import schema, sqltable


def _table(n, tag, as_of="2024-01-01"):
    t = pd.DataFrame({c: [None] * n for c in schema.COLUMNS})
    t["user_id"] = [f"{tag}{i}" for i in range(n)]
    t["as_of"] = pd.Timestamp(as_of)
    t["clv"] = [float(i) for i in range(n)]
    t["action_priority"] = 1
    t["model_versions"] = f"urm-clv/{tag}"
    for c in schema.SCHEMA:
        if c.kind == "number" and c.name != "clv":
            t[c.name] = float("nan")
    return t


def test_publish_keeps_the_previous_table_and_forget_reaches_both(home, monkeypatch):
    monkeypatch.setenv("URM_DATABASE", "sqlite:///data/predictions/urm.sqlite")  # relative: the project home's
    assert settings.database_url() == f"sqlite:///{home / 'data' / 'predictions' / 'urm.sqlite'}"
    (home / "data" / "predictions").mkdir(parents=True)
    first = sqltable.publish_table(_table(5, "a"), "My Shop.v2", run_id="r1")
    key = dataset_key("My Shop.v2")
    assert first["table"] == f"urm_user_scores_{key}" and first["rows"] == 5
    sqltable.publish_table(_table(3, "b", "2024-02-01"), "My Shop.v2", run_id="r2")
    now, before = sqltable.read("My Shop.v2"), sqltable.read("My Shop.v2", previous=True)
    assert list(now.columns) == schema.COLUMNS
    assert now["user_id"].tolist() == ["b0", "b1", "b2"] and before["user_id"].tolist() == [f"a{i}" for i in range(5)]
    assert str(now["as_of"].iloc[0])[:10] == "2024-02-01" and now["expected_incremental_value"].isna().all()
    assert sqltable.delete_users(["b1", "a3"], "My Shop.v2") == {
        f"urm_user_scores_{key}": 1,
        f"urm_user_scores_{key}__previous": 1,
    }
    assert "b1" not in set(sqltable.read("My Shop.v2")["user_id"])
    with pytest.raises(ValueError, match="lacks columns"):
        sqltable.publish_table(_table(2, "c").drop(columns=["tier"]), "My Shop.v2")
    assert len(sqltable.read("My Shop.v2")) == 2  # a refused publish changes nothing
    # every publication says who published it from where, and when, with the time zone
    pubs = pd.read_sql_table("urm_publications", f"sqlite:///{home / 'data' / 'predictions' / 'urm.sqlite'}")
    assert pubs["publisher"].str.endswith(f":{home}").all() and "@" in pubs["publisher"].iloc[0]
    assert pubs["published_at"].str.endswith("+00:00").all()


@pytest.mark.parametrize(
    "names",
    [("shop.a", "shop_a", "Shop-A", "shop-a", "SHOP_A"), ("shop", "shop_previous", "shop__previous", "shop_staging_1")],
)
def test_data_set_names_never_share_a_table_or_drop_each_others(home, monkeypatch, names):
    """Names that differ only in case or punctuation are different data sets: each keeps its own
    SQL table, and a publish of one never drops another's (``shop_previous`` is not shop's
    previous table)."""
    monkeypatch.setenv("URM_DATABASE", "sqlite:///urm.sqlite")
    assert len({sqltable.table_name(n) for n in names}) == len(names)
    assert len({dataset_key(n) for n in names}) == len(names)
    for i, name in enumerate(names):
        sqltable.publish_table(_table(i + 1, f"u{i}-"), name)
    for i, name in enumerate(names):  # publish each again: its previous table is its own
        sqltable.publish_table(_table(i + 2, f"v{i}-"), name)
    for i, name in enumerate(names):
        assert sqltable.read(name)["user_id"].str.startswith(f"v{i}-").all() and len(sqltable.read(name)) == i + 2
        assert sqltable.read(name, previous=True)["user_id"].str.startswith(f"u{i}-").all()


def test_a_database_that_fails_is_a_clear_error_and_nothing_changes(home, monkeypatch, tmp_path):
    """An unreachable or broken database is a PublishError naming it without its password."""
    monkeypatch.setenv("URM_DATABASE", "sqlite:///urm.sqlite")
    sqltable.publish_table(_table(2, "a"), "shop")
    bad = f"sqlite:///{tmp_path / 'no-such-folder' / 'x.sqlite'}"
    with pytest.raises(sqltable.PublishError, match="did not take the table of 'shop'"):
        sqltable.publish_table(_table(3, "b"), "shop", url=bad)
    assert len(sqltable.read("shop")) == 2
