"""Validation and staging of landing files: every kind of bad file is named precisely, nothing of
it is staged, and keys are deduplicated deterministically."""

import gzip

import pytest

from warehouse_assets.config import load_config
from warehouse_assets.landing.files import LandingStager
from warehouse_assets.lib.io_managers import manifest_key
from warehouse_assets.lib.staging import StagingStore

HEADER = "userid,sessionid,channel\n"


@pytest.fixture
def store(tmp_path) -> StagingStore:
    return StagingStore(url=str(tmp_path / "staging"))


def _stager(store: StagingStore, table: str = "user_session_channel") -> LandingStager:
    spec = next(s for s in load_config().landing if s.table == table)
    return LandingStager(spec, store)


def _drop(store, table: str, day: str, name: str, data: str | bytes) -> str:
    key = f"landing/{table}/{day}/{name}"
    store.write_bytes(key, data.encode() if isinstance(data, str) else data)
    return key


BAD = [
    ("missing.csv", "userid,sessionid\n1,a\n",
     ("line 1: header ['userid', 'sessionid'] does not match the declared columns "
      "['userid', 'sessionid', 'channel']")),
    ("extra.csv", "userid,sessionid,channel,extra\n1,a,b,c\n",
     "line 1: header ['userid', 'sessionid', 'channel', 'extra'] does not match"),
    ("empty.csv", "", "line 1: header [] does not match"),
    ("nullkey.csv", HEADER + "1,a,x\n2,,Google\n",
     "line 3, column sessionid: primary key is empty (NULL)"),
    ("fields.csv", HEADER + "1,a,b,c\n", "line 2: 4 field(s), expected 3"),
    ("notint.csv", HEADER + '1,"a\nb",x\n\n1.5,c,x\n',  # quoted newline, blank line: line 5
     "line 5, column userid: value '1.5' is not a valid INTEGER"),
    ("overflow.csv", HEADER + "2147483648,a,x\n",
     "line 2, column userid: value '2147483648' is not a valid INTEGER"),
    ("long.csv", HEADER + f"1,{'k' * 33},x\n",
     f"line 2, column sessionid: value '{'k' * 33}' is not a valid VARCHAR(32)"),
    ("dupe.csv", HEADER + "1,a,x\n2,b,x\n3,a,y\n",
     "line 4, column sessionid: key 'a' appears a second time in the file"),
    ("quote.csv", HEADER + '1,a,"unterminated\n', "line 2: malformed CSV"),
    ("notgzip.csv.gz", HEADER + "1,a,x\n", "cannot be read as gzip UTF-8 CSV"),
    ("latin1.csv", (HEADER + "1,a,caf\xe9\n").encode("latin-1"), "cannot be read as UTF-8 CSV"),
]


@pytest.mark.parametrize("name,data,message", BAD, ids=[b[0] for b in BAD])
def test_bad_file_is_rejected_naming_file_line_column_value(store, name, data, message):
    good = _drop(store, "user_session_channel", "2024-03-01", "a-good.csv", HEADER + "1,z,x\n")
    bad = _drop(store, "user_session_channel", "2024-03-01", name, data)
    stager = _stager(store)
    staged = stager.stage(["2024-03-01"])
    assert list(staged.rejected) == [bad]
    assert staged.rejected[bad].startswith(store.uri(bad) + ": ")
    assert message in staged.rejected[bad]
    # The day is not staged: no manifest marks its file complete, so nothing of it can load.
    assert staged.staged == [] and staged.files == [good]
    assert not store.exists(manifest_key(stager.staged_key("2024-03-01")))


def test_bad_timestamp_names_the_value(store):
    bad = _drop(store, "session_timestamp", "2024-03-01", "ts.csv",
                "sessionid,ts\na,2024-03-01 10:00:00\nb,2024-13-01 00:00:00\n")
    staged = _stager(store, "session_timestamp").stage(["2024-03-01"])
    assert staged.rejected == {
        bad: f"{store.uri(bad)}: line 3, column ts: value '2024-13-01 00:00:00' is not a valid "
        f"TIMESTAMP"
    }


def _staged_rows(store, staged) -> list[str]:
    return [line for s in staged.staged
            for line in gzip.decompress(store.read_bytes(s.key)).decode().splitlines()]


def test_later_file_and_later_day_win_a_key_and_empty_days_stage_empty(store):
    _drop(store, "user_session_channel", "2024-03-01", "1.csv", HEADER + "1,a,old\n2,b,\n")
    _drop(store, "user_session_channel", "2024-03-01", "2.csv.gz",
          gzip.compress((HEADER + "1,a,newer\n").encode()))
    _drop(store, "user_session_channel", "2024-03-03", "1.csv", HEADER + '3,b,"q""uote"\n')
    staged = _stager(store).stage(["2024-03-01", "2024-03-02", "2024-03-03"])
    assert staged.rejected == {}
    assert [s.key.rsplit("/", 1)[1] for s in staged.staged] == [
        "2024-03-01.csv.gz", "2024-03-02.csv.gz", "2024-03-03.csv.gz"]
    assert [s.manifest.rows for s in staged.staged] == [1, 0, 1]
    assert staged.superseded == 2 and staged.rows == 2
    # Canonical format: strings quoted, NULL never written here, '' quotes doubled.
    assert sorted(_staged_rows(store, staged)) == ['1,"a","newer"', '3,"b","q""uote"']
