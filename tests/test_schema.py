"""The relationship table's schema is written once (serve/schema.py) and every path reads it: the
pandas table, the Parquet file, the SQL table, the Spark DDL and the metadata's units. A column
added to the schema reaches all of them with no other change."""

import pandas as pd
import pytest

from urm_models.serve import schema, scoring, sqltable


def test_the_columns_have_one_definition_each():
    names = [c.name for c in schema.SCHEMA]
    assert names == schema.COLUMNS and len(set(names)) == len(names)
    assert names[:2] == ["user_id", "as_of"]
    assert schema.TEXT_COLUMNS == tuple(c.name for c in schema.SCHEMA if c.kind == "text")


def test_the_pandas_table_takes_its_types_from_the_kinds():
    ids = pd.Index(["b", "a", "c"])
    t = schema.frame(
        {"clv": [1.0, 2.0, 3.0], "action_priority": [1, 2, 3], "tier": ["x", None, "y"]}, ids, "2024-01-31"
    )
    assert list(t.columns) == schema.COLUMNS and t["user_id"].tolist() == ["b", "a", "c"]
    want = {"id": "object", "text": "string", "number": "float64", "count": "int64"}
    for c in schema.SCHEMA:
        if c.kind == "date":
            assert pd.api.types.is_datetime64_dtype(t[c.name]), c
        else:
            assert str(t[c.name].dtype) == want[c.kind], c
    assert t["as_of"].eq(pd.Timestamp("2024-01-31")).all()
    assert t["tier"].isna().tolist() == [False, True, False]
    # a column nobody computed is empty, of its kind
    assert t["p_alive"].isna().all() and t["recommended_arm"].isna().all()
    # one value for every row
    one = schema.frame({"model_versions": "urm-clv/3", "action_priority": 5}, ids, "2024-01-31")
    assert one["model_versions"].tolist() == ["urm-clv/3"] * 3 and one["action_priority"].tolist() == [5] * 3
    with pytest.raises(ValueError, match="'action_priority' .a count. has no values"):
        schema.frame({}, ids, "2024-01-31")


def test_sql_and_spark_types_follow_the_kinds():
    sql = schema.sql_types()
    assert list(sql) == schema.COLUMNS
    assert {type(sql[c.name]).__name__ for c in schema.SCHEMA if c.kind in ("text", "id")} == {"Text"}
    assert type(sql["as_of"]).__name__ == "Date" and type(sql["action_priority"]).__name__ == "BigInteger"
    ddl = [part.split() for part in schema.spark_ddl().split(", ")]
    assert [name for name, _ in ddl] == schema.COLUMNS
    assert dict(ddl)["clv"] == "double" and dict(ddl)["as_of"] == "date" and dict(ddl)["tier"] == "string"


def test_units_name_each_score_with_its_horizons():
    u = schema.units("13 W", "12 M")
    assert set(u) == {c.name for c in schema.SCHEMA if c.unit}
    assert "13 W" in u["p_churn"] and "12 M" in u["clv"] and "the data's currency" in u["clv"]
    assert schema.units("13 W", "12 M", no_money=True)["value_at_risk"].startswith("empty: the data have no amounts")
    assert not any("{" in v for v in u.values())


@pytest.fixture
def one_more_column(monkeypatch):
    """The schema with a column that no code knows about."""
    extra = schema.Column("loyalty_score", "number", "points over the next {clv}")
    monkeypatch.setattr(schema, "SCHEMA", (*schema.SCHEMA, extra))
    monkeypatch.setattr(schema, "COLUMNS", [*schema.COLUMNS, extra.name])
    return extra


def test_a_new_column_reaches_every_path(home, monkeypatch, one_more_column):
    ids = pd.Index([f"u{i}" for i in range(4)])
    t = schema.frame({"loyalty_score": [1.0, 2.0, 3.0, 4.0], "action_priority": 1}, ids, "2024-01-31")
    assert t.columns[-1] == "loyalty_score" and t["loyalty_score"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert schema.spark_ddl().endswith("loyalty_score double")
    assert "loyalty_score" in schema.sql_types() and "12 M" in schema.units("13 W", "12 M")["loyalty_score"]
    # Parquet: written and read back with it
    scoring.write_predictions(t, "shop", "2024-01-31")
    assert scoring.read_predictions("shop")["loyalty_score"].tolist() == [1.0, 2.0, 3.0, 4.0]
    # the SQL table: published with it
    monkeypatch.setenv("URM_DATABASE", "sqlite:///data/predictions/urm.sqlite")
    (home / "data" / "predictions").mkdir(parents=True, exist_ok=True)
    sqltable.publish_table(t, "shop")
    assert sqltable.read("shop")["loyalty_score"].tolist() == [1.0, 2.0, 3.0, 4.0]
    # the Spark table read back: in the schema's columns
    back = schema.from_parquet(t.drop(columns=["as_of"]).iloc[::-1], "2024-01-31")
    assert list(back.columns) == schema.COLUMNS and back["user_id"].tolist() == list(ids)


def test_the_row_step_passes_table_columns_through_the_ranks():
    """What the streamed and Spark paths carry from the row-wise step through the ranks is one list
    of the table's columns: the ranks' SQL selects it and the Spark step's schema types it."""
    from urm_models.serve import spark_scoring

    assert set(scoring.ROW_COLUMNS) <= set(schema.COLUMNS)
    typed = dict(part.split() for part in spark_scoring._SCORED.split(", "))
    kinds = {c.name: c.kind for c in schema.SCHEMA}
    for c in scoring.ROW_COLUMNS:
        assert typed[c] == {"number": "double", "text": "string", "count": "bigint"}[kinds[c]], c
