"""The backbone structures published with DAMO-YOLO, in search format.

Search format: stem ``in`` = 12 (the detector's Focus space-to-depth output),
no ``nbitsA``/``nbitsW`` keys. Each row below is ``(out, btn, k, s, L)``; the
first row is the stem (``btn`` and ``L`` unused), ``in`` is chained from the
previous ``out``.
"""
from typing import Dict, List, Sequence, Tuple

_Row = Tuple[int, int, int, int, int]


def _build(block_class: str, rows: Sequence[_Row]) -> List[dict]:
    stem_out, _, stem_k, stem_s, _ = rows[0]
    blocks = [dict({'class': 'ConvKXBNRELU'}, **{
        'in': 12, 'out': stem_out, 's': stem_s, 'k': stem_k})]
    cin = stem_out
    for out, btn, k, s, L in rows[1:]:
        blocks.append({'class': block_class, 'in': cin, 'out': out, 's': s,
                       'k': k, 'L': L, 'btn': btn})
        cin = out
    return blocks


_K1KX = 'SuperResConvK1KX'
_KXKX = 'SuperResConvKXKX'

OFFICIAL_STRUCTURES: Dict[str, List[dict]] = {
    # DAMO-YOLO-T backbone (TinyNAS_res)
    'tinynas_L20_k1kx': _build(_K1KX, [
        (24, 0, 3, 1, 0), (64, 24, 3, 2, 2), (96, 64, 3, 2, 2),
        (192, 96, 3, 2, 2), (192, 152, 3, 1, 2), (384, 192, 3, 2, 1)]),
    # DAMO-YOLO-S backbone (TinyNAS_res)
    'tinynas_L25_k1kx': _build(_K1KX, [
        (32, 0, 3, 1, 0), (128, 24, 3, 2, 1), (128, 88, 3, 2, 5),
        (256, 128, 3, 2, 3), (256, 120, 3, 1, 2), (512, 144, 3, 2, 1)]),
    # DAMO-YOLO-M backbone (TinyNAS_csp)
    'tinynas_L35_kxkx': _build(_KXKX, [
        (32, 0, 3, 1, 0), (128, 64, 3, 2, 2), (128, 64, 3, 2, 4),
        (256, 256, 3, 2, 4), (256, 256, 3, 1, 4), (512, 256, 3, 2, 3)]),
    # DAMO-YOLO-L backbone (TinyNAS_csp)
    'tinynas_L45_kxkx': _build(_KXKX, [
        (32, 0, 3, 1, 0), (128, 96, 3, 2, 3), (128, 96, 3, 2, 5),
        (256, 384, 3, 2, 5), (256, 384, 3, 1, 5), (512, 384, 3, 2, 4)]),
    # DAMO-YOLO-N backbones (TinyNAS_mob: K1KX format, depthwise blocks)
    'tinynas_L20_k1kx_nano': _build(_K1KX, [
        (16, 0, 3, 1, 0), (40, 24, 3, 2, 2), (80, 64, 3, 2, 2),
        (112, 40, 3, 2, 2), (112, 152, 3, 1, 2), (160, 192, 3, 2, 1)]),
    'tinynas_nano_large': _build(_K1KX, [
        (24, 0, 3, 1, 0), (48, 24, 3, 2, 1), (80, 64, 3, 2, 2),
        (160, 40, 3, 2, 2), (160, 152, 3, 1, 3), (320, 192, 3, 2, 2)]),
    'tinynas_nano_middle': _build(_K1KX, [
        (16, 0, 3, 1, 0), (40, 24, 3, 2, 2), (64, 64, 3, 2, 2),
        (112, 40, 3, 2, 2), (128, 152, 3, 1, 2), (256, 192, 3, 2, 1)]),
    'tinynas_nano_small': _build(_K1KX, [
        (16, 0, 3, 1, 0), (24, 24, 3, 2, 1), (40, 64, 3, 2, 2),
        (64, 40, 3, 2, 2), (80, 152, 3, 1, 2), (160, 192, 3, 2, 2)]),
}

#: short aliases used by configs and tools
OFFICIAL_ALIASES = {
    'T': 'tinynas_L20_k1kx', 'S': 'tinynas_L25_k1kx',
    'M': 'tinynas_L35_kxkx', 'L': 'tinynas_L45_kxkx',
    'N': 'tinynas_L20_k1kx_nano',
}

#: the initial structure of every DAMO-YOLO search (TinyNAS scripts), as
#: (out, btn) per super-block after a 12->32 stem; L=1, k=3 everywhere
_INIT_ROWS = [(32, 0, 3, 1, 0), (48, 32, 3, 2, 1), (96, 48, 3, 2, 1),
              (96, 96, 3, 2, 1), (192, 96, 3, 1, 1), (384, 192, 3, 2, 1)]


def damoyolo_init_structure(block_class: str = _K1KX) -> List[dict]:
    """The initial structure the official DAMO-YOLO searches start from."""
    return _build(block_class, _INIT_ROWS)
