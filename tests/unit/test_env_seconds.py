"""Durations from the environment: unset is the default; anything but seconds (empty too) is exit 2, named."""

from __future__ import annotations

import pytest

from squall.env_seconds import env_seconds
from squall.errors import InvalidInput


def test_unset_is_the_default_and_a_number_is_taken(monkeypatch):
    monkeypatch.delenv("SQUALL_TEST_WAIT", raising=False)
    assert env_seconds("SQUALL_TEST_WAIT", 20) == 20.0
    monkeypatch.setenv("SQUALL_TEST_WAIT", "2.5")
    assert env_seconds("SQUALL_TEST_WAIT", 20) == 2.5


@pytest.mark.parametrize("bad", ["ten", "-1", "nan", "inf", "1e400", "", " "])
def test_anything_else_names_the_variable(monkeypatch, bad):
    monkeypatch.setenv("SQUALL_TEST_WAIT", bad)
    with pytest.raises(InvalidInput, match="SQUALL_TEST_WAIT=") as caught:
        env_seconds("SQUALL_TEST_WAIT", 20)
    assert caught.value.exit_code == 2
