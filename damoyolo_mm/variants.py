"""The released DAMO-YOLO variants and where their configs live."""
import os.path as osp
from typing import Dict, Optional

#: variant -> (config file name, test size, official config name); the nano
#: variants are those whose key starts with ``n``
VARIANTS: Dict[str, tuple] = {
    'ns': ('damoyolo_ns_coco.py', 416, 'damoyolo_tinynasL18_Ns'),
    'nm': ('damoyolo_nm_coco.py', 416, 'damoyolo_tinynasL18_Nm'),
    'nl': ('damoyolo_nl_coco.py', 416, 'damoyolo_tinynasL20_Nl'),
    't': ('damoyolo_t_coco.py', 640, 'damoyolo_tinynasL20_T'),
    's': ('damoyolo_s_coco.py', 640, 'damoyolo_tinynasL25_S'),
    'm': ('damoyolo_m_coco.py', 640, 'damoyolo_tinynasL35_M'),
    'l': ('damoyolo_l_coco.py', 640, 'damoyolo_tinynasL45_L'),
}

_PKG_ROOT = osp.dirname(osp.abspath(__file__))
_CONFIG_DIRS = (
    osp.join(osp.dirname(_PKG_ROOT), 'configs'),  # source checkout
    osp.join(_PKG_ROOT, '.mim', 'configs'),  # installed with mim
)


def variant_config(variant: str) -> str:
    """Path of the config of a released variant (``'t'``, ``'Nm'``, ...)."""
    key = variant.lower()
    if key not in VARIANTS:
        raise ValueError(f'unknown DAMO-YOLO variant {variant!r}, expected '
                         f'one of {sorted(VARIANTS)}')
    for d in _CONFIG_DIRS:
        path = osp.join(d, VARIANTS[key][0])
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'config {VARIANTS[key][0]} of variant {variant!r} not found in '
        f'{list(_CONFIG_DIRS)}')


def variant_test_size(variant: str) -> int:
    """Square test size of a released variant."""
    key = variant.lower()
    if key not in VARIANTS:
        raise ValueError(f'unknown DAMO-YOLO variant {variant!r}, expected '
                         f'one of {sorted(VARIANTS)}')
    return VARIANTS[key][1]


def find_config(relpath: str) -> str:
    """Path of a shipped config (``relpath`` below ``configs/``, e.g.
    ``'deploy/detection_onnxruntime_dynamic.py'``), in the source checkout
    or the mim install."""
    for d in _CONFIG_DIRS:
        path = osp.join(d, relpath)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'config {relpath} not found in {list(_CONFIG_DIRS)}')


def variant_of_config(config: str) -> Optional[str]:
    """The variant whose config file ``config`` is (by file name), or None
    for any other config."""
    name = osp.basename(config)
    for key, row in VARIANTS.items():
        if row[0] == name:
            return key
    return None


def _row(variant: str) -> tuple:
    """The table row of ``variant``; an unknown one raises the ValueError of
    :func:`variant_test_size`."""
    variant_test_size(variant)
    return VARIANTS[variant.lower()]


def is_nano(variant: str) -> bool:
    """Whether a released variant is a nano model (Ns / Nm / Nl)."""
    _row(variant)
    return variant.lower().startswith('n')


def official_config_name(variant: str) -> str:
    """File name of the official config of a released variant (in the
    official ``configs/`` folder)."""
    return _row(variant)[2] + '.py'
