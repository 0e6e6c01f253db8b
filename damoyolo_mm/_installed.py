"""Whether a package is installed, without importing it (imports nothing)."""
import importlib.util


def installed(name: str) -> bool:
    """True if ``import name`` would find the package.

    A finder that refuses the name (``ModuleNotFoundError``, e.g. an
    environment that hides torch) counts as not installed.
    """
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
