"""A pytest plugin (pyproject's addopts: -p core.pytest_plugin): the test run is a process of the site like
manage.py, so it prepares DATA_DIR and its secrets before pytest-django imports the settings. It lives in an
installed package, not tests/, because pytest imports -p plugins before it puts the rootdir on sys.path."""

import pytest

from core import local_state


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    local_state.prepare()  # before every other implementation, pytest-django's settings set-up among them
    return (yield)
