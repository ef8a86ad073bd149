import pytest


@pytest.fixture(autouse=True)
def _committed_data(transactional_db):
    """The browser talks to a server process: test data must be committed to be seen."""
