"""The table list is validated when definitions load; errors name the entry and the field."""

import pytest
import yaml

from warehouse_assets.config import ConfigError, load_config, parse_config

GOOD = {
    "source": "prod.nps",
    "target": "raw_data.nps",
    "mode": "incremental",
    "primary_key": ["id"],
    "cursor": "modified_at",
    "start_date": "2023-04-20",
}


def test_shipped_yaml_declares_nps_and_channel():
    config = load_config()
    by_source = {t.source: t for t in config.tables}
    assert by_source["prod.nps"].mode == "incremental"
    assert by_source["prod.nps"].primary_key == ("id",)
    assert by_source["prod.nps"].soft_delete == "deleted"
    assert by_source["prod.channel"].mode == "full_refresh"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mode": "upsert"}, "tables[0] (prod.nps).mode: 'upsert' is not one of"),
        ({"primary_key": None}, "tables[0] (prod.nps).primary_key: required"),
        ({"cursor": None}, "tables[0] (prod.nps).cursor: required"),
        ({"source": "prod.nps; DROP TABLE x"}, "tables[0] (prod.nps; DROP TABLE x).source"),
        ({"target": 'raw_data."nps"'}, "tables[0] (prod.nps).target"),
        ({"primary_key": [""]}, "tables[0] (prod.nps).primary_key: '' is not a column name"),
        ({"cursor": "modified_at "}, "tables[0] (prod.nps).cursor: 'modified_at ' is not a"),
        ({"cursor": "x" * 128}, "tables[0] (prod.nps).cursor: 'xxxx"),
        ({"mode": "full_refresh", "primary_key": None, "cursor": None, "exclude_columns": []},
         "tables[0] (prod.nps).exclude_columns: a column or a list"),
        ({"start_date": "yesterday"}, "tables[0] (prod.nps).start_date"),
        ({"timezone": "Mars/Base"}, "tables[0] (prod.nps).timezone"),
        ({"colour": "red"}, "tables[0] (prod.nps): unknown field(s) colour"),
    ],
)
def test_bad_entries_fail_naming_entry_and_field(change, message):
    entry = {**GOOD, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        parse_config({"tables": [entry]})
    assert message in str(err.value)


def test_bad_yaml_fails_definition_loading(tmp_path, monkeypatch):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"tables": [{**GOOD, "mode": "sometimes"}]}))
    monkeypatch.setenv("REPLICATION_YAML", str(path))
    with pytest.raises(ConfigError, match="mode: 'sometimes'"):
        load_config()
