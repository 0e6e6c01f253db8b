"""Package attributes imported from their submodules on first use (PEP 562),
so that importing a package imports nothing it does not need (e.g. a deployed
model runs with numpy, OpenCV and its runtime only)."""
import importlib
import sys
from typing import Callable, Dict, Tuple


def lazy_attributes(package: str,
                    owners: Dict[str, str]) -> Tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for the package ``package``, whose
    names in ``owners`` (name -> submodule) are imported on first use::

        __getattr__, __dir__ = lazy_attributes(__name__, _OWNERS)
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str):
        module = owners.get(name)
        if module is None:
            raise AttributeError(
                f'module {package!r} has no attribute {name!r}')
        value = getattr(importlib.import_module(f'{package}.{module}'), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(owners))

    return __getattr__, __dir__
