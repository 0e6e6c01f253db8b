from .structure import (StructureError, list_structures, load_structure,
                        validate_structure)
from .tinynas import TinyNASCSP, TinyNASMob, TinyNASRes

__all__ = [
    'TinyNASRes', 'TinyNASCSP', 'TinyNASMob', 'load_structure',
    'validate_structure', 'list_structures', 'StructureError'
]
