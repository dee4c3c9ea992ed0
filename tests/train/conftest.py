import pytest


@pytest.fixture(autouse=True)
def _work_in_a_temporary_folder(tmp_path, monkeypatch):
    """Commands that write runs/ or graph.svg by default write them here, not in the repo."""
    monkeypatch.chdir(tmp_path)
