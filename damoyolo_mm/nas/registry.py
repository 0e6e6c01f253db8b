"""Registries of the NAS components (search spaces and zero-shot scores).

Both are children of nothing: they only hold NAS building blocks, built from
the ``search_space`` / ``score`` dicts of a search config.
"""
from mmengine.registry import Registry

NAS_SPACES = Registry('nas search space', locations=['damoyolo_mm.nas'])
NAS_SCORES = Registry('nas score', locations=['damoyolo_mm.nas'])
