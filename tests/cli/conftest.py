from __future__ import annotations

import pytest

from tests.report import _data
from tests.report.sheets import REPRICE_SHEET


@pytest.fixture
def db(tmp_path):
    return _data.sqlite_store(tmp_path)


@pytest.fixture
def jsonl(tmp_path):
    return _data.jsonl_store(tmp_path)


@pytest.fixture
def sheet(tmp_path):
    path = tmp_path / "sheet.toml"
    path.write_text(REPRICE_SHEET)
    return path
