from __future__ import annotations

import pytest

from tests.report import _data


@pytest.fixture(params=["sqlite", "jsonl", "postgres"])
def store(request, tmp_path):
    """(source, table) of the same events in each kind of store."""
    if request.param == "sqlite":
        yield str(_data.sqlite_store(tmp_path)), None
    elif request.param == "jsonl":
        yield str(_data.jsonl_store(tmp_path)), None
    else:
        reason = _data.pg_available()
        if reason:
            pytest.skip(reason)
        schema = f"a2a_report_test_{abs(hash(request.node.nodeid)) % 10**8}"
        yield _data.pg_store(schema)
        _data.drop_schema(schema)
