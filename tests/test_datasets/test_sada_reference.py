"""SADA's colour operations and Gaussian windows against numbers made once
with the official code (``tests/data/sada_reference.npz``, written by
``tests/data/make_references.py``); runs without the official checkout."""
import os.path as osp

import numpy as np
import pytest

from damoyolo_mm.datasets.transforms import sada as sada_mod

REF_FILE = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'data',
    'sada_reference.npz')
OPS = ('AutoContrast', 'Equalize', 'SolarizeAdd', 'Color', 'Contrast',
       'Brightness', 'Sharpness')
# measured: colour ops <= 6e-8, windows <= 1.8e-7 (fp32 rounding)
ATOL = 1e-6


@pytest.fixture(scope='module')
def ref():
    with np.load(REF_FILE, allow_pickle=False) as data:
        return dict(data)


@pytest.mark.parametrize('name', OPS)
def test_colour_op_matches_official(ref, name):
    img = ref['image']
    for i, level in enumerate(ref['levels']):
        ours = sada_mod._apply_color_op(name, img.copy(), int(level))
        assert ours.shape == img.shape
        np.testing.assert_allclose(ours, ref[f'op_{name}'][i], atol=ATOL,
                                   err_msg=f'{name} level {level}')


def test_scale_aware_windows_match_official(ref):
    window = ref['window']
    ours = sada_mod._scale_aware_windows(
        window.shape[-2:], ref['window_boxes'],
        tuple(int(r) for r in ref['window_ratios']),
        [float(s) for s in ref['window_splits']])
    assert ours.shape == window.shape
    # the windows are not flat: their radius matters
    assert 0.02 < float(window.min()) and float(window.max()) == 1.0
    np.testing.assert_allclose(ours, window, atol=ATOL)


def test_paste_window_matches_official(ref):
    h, w = ref['paste_window'].shape[-2:]
    np.testing.assert_allclose(sada_mod._paste_window(h, w),
                               ref['paste_window'], atol=ATOL)
