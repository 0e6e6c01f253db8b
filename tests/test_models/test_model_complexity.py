"""Params and GFLOPs of the released variants (published convention)."""
import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from damoyolo_mm.analysis import get_model_complexity
from damoyolo_mm.variants import variant_config

pytestmark = pytest.mark.usefixtures('single_thread')


# variant: (size, exact deploy params, README params M, README GFLOPs,
#           official GFLOPs with BN at 2 ops/element, at 4 ops/element)
PUBLISHED = {
    'ns': (416, 1405691, 1.41, 1.56, 1.560, 1.621),
    'nm': (416, 2707219, 2.71, 3.69, 3.693, 3.804),
    'nl': (416, 5688579, 5.69, 6.04, 6.037, 6.165),
    't': (640, 8479631, 8.5, 18.1, 18.068, 18.124),
    's': (640, 16251631, 16.3, 37.8, 37.702, 37.783),
    'm': (640, 28178175, 28.2, 61.8, 61.757, 61.887),
    'l': (640, 42058111, 42.1, 97.3, 97.289, 97.457),
}


@pytest.mark.parametrize('variant', list(PUBLISHED))
def test_params_and_gflops(variant):
    size, params_exact, params_m, gflops_readme, legacy, thop = \
        PUBLISHED[variant]
    cfg = Config.fromfile(variant_config(variant))
    model = MODELS.build(cfg.model)
    # traced at 64x64 and scaled by area: exact for multiples of 32
    params, gflops = get_model_complexity(model, size, count_size=64,
                                          copy_model=False)
    assert params == params_exact
    assert abs(params / 1e6 - params_m) <= 0.005 * params_m
    assert abs(gflops - gflops_readme) <= 0.005 * gflops_readme
    assert abs(gflops - legacy) <= 1e-3 * legacy
    if variant in ('ns', 't'):
        _, gflops4 = get_model_complexity(model, size, count_size=64,
                                          bn_ops_per_element=4)
        assert abs(gflops4 - thop) <= 1e-3 * thop


def test_area_scaling_is_exact_and_model_untouched():
    cfg = Config.fromfile(variant_config('t'))
    model = MODELS.build(cfg.model)
    n_train = sum(p.numel() for p in model.parameters())
    p1, f1 = get_model_complexity(model, 320, count_size=64)
    p2, f2 = get_model_complexity(model, 320)
    p3, f3 = get_model_complexity(model, (320, 320), deploy=False,
                                  count_size=(64, 96))
    assert p1 == p2 == 8479631 and p3 == n_train == 8875727
    assert abs(f1 - f2) <= 1e-9 * f2
    assert abs(f2 - 18.068 / 4) < 0.01
    assert f3 > f2  # training structure: RepConv 1x1 branches and BNs
    # the model itself was not re-parameterised
    assert sum(p.numel() for p in model.parameters()) == n_train
    with pytest.raises(ValueError, match='multiples of 32'):
        get_model_complexity(model, 100)


def test_get_flops_tool(repo_root, capsys):
    import os.path as osp
    import sys
    sys.path.insert(0, osp.join(repo_root, 'tools', 'analysis'))
    try:
        import get_flops
    finally:
        sys.path.pop(0)
    assert get_flops.main(['--variant', 'nm', '--count-shape', '64']) == 0
    out = capsys.readouterr().out
    assert 'input shape: 416x416' in out
    assert 'params (deploy form): 2,707,219' in out
    assert 'GFLOPs (MACs x 2, BN 2 ops/element): 3.693' in out
