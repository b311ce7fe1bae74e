"""Store conformance: one suite (store_suite.py), one test module per backend."""

import pytest

# The suite's asserts live outside test_*.py; have pytest explain their failures too.
pytest.register_assert_rewrite(f"{__name__}.store_suite")
