# Fixtures live in distill_helpers.py (a unique module name: several test
# folders have a conftest.py, so `from conftest import ...` is ambiguous).
from distill_helpers import *  # noqa: F401,F403
