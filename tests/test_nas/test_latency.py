"""Latency table: building, interpolation, validation mode, shipped table."""
import json
import math

import pytest
import torch
from mmengine.config import Config
from torch.utils.flop_counter import FlopCounterMode

from damoyolo_mm.nas import LatencyLUT, LatencyLUTError
from damoyolo_mm.nas import load_search_structure as load_structure
from damoyolo_mm.nas import latency as L

TINY = dict(channels=(8, 16, 32), heights=(8, 16, 32), dw_channels=(16, 32),
            eltwise_numel=(1024, 8192, 65536))


class SyntheticBackend:
    """Deterministic 'target': time = 1 ns + FLOPs * 10 ps."""
    name = 'synthetic'
    num_threads = 1
    clock = 'wall'

    def __init__(self, **kwargs):
        pass

    def time_module(self, module, *shapes):
        inputs = [torch.zeros(*s) for s in shapes]
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            module(*inputs)
        return 1e-9 + fc.get_total_flops() * 1e-11


def _tiny_structures():
    base = [{'class': 'ConvKXBNRELU', 'in': 12, 'out': 8, 's': 1, 'k': 3},
            {'class': 'SuperResConvK1KX', 'in': 8, 'out': 16, 's': 2, 'k': 3,
             'L': 1, 'btn': 8},
            {'class': 'SuperResConvK1KX', 'in': 16, 'out': 24, 's': 2,
             'k': 3, 'L': 2, 'btn': 16},
            {'class': 'SuperResConvK1KX', 'in': 24, 'out': 32, 's': 1,
             'k': 3, 'L': 1, 'btn': 24}]
    other = [dict(b) for b in base]
    other[3] = dict(other[3], btn=32, L=2)
    return {'tiny_a': base, 'tiny_b': other}


@pytest.fixture(scope='module')
def tiny_table():
    return L.build_lut(SyntheticBackend(), **TINY)


def test_tiny_table_interpolates(tiny_table, tmp_path):
    lut = LatencyLUT(tiny_table)
    be = SyntheticBackend()
    # grid points are returned as measured
    assert lut.conv(3, 1, 16, 32, 16) == pytest.approx(
        be.time_module(L._conv(16, 32, 3, 1), (1, 16, 16, 16)), rel=1e-9)
    # between grid points (power law -> log-log interpolation ~exact)
    t = be.time_module(L._conv(24, 24, 3, 2), (1, 24, 12, 12))
    assert lut.conv(3, 2, 24, 24, 12) == pytest.approx(t, rel=0.02)
    # beyond the grid: MAC-scaled from the border
    t = be.time_module(L._conv(64, 32, 1, 1), (1, 64, 32, 32))
    assert lut.conv(1, 1, 64, 32, 32) == pytest.approx(t, rel=0.02)
    assert lut.dwconv(5, 1, 24, 16) > 0 and lut.eltwise('relu', 4096) > 0
    with pytest.raises(LatencyLUTError, match='no conv table for kernel 5'):
        lut.conv(5, 1, 8, 8, 8)
    # save / load round trip
    path = str(tmp_path / 'lut.json')
    L.save_lut(tiny_table, path)
    assert LatencyLUT.load(path).conv(3, 2, 24, 24, 12) == \
        lut.conv(3, 2, 24, 24, 12)


def test_validation_mode(tiny_table):
    lut = LatencyLUT(tiny_table)
    res = L.validate_lut(lut, SyntheticBackend(), _tiny_structures(),
                         image_size=32, tolerance=0.15)
    assert [r['name'] for r in res] == ['tiny_a', 'tiny_b']
    assert all(r['ok'] for r in res), res
    assert all(abs(r['rel_error']) < 0.05 for r in res), res
    # a table that is 40 % off fails the 15 % check
    skewed = LatencyLUT(dict(tiny_table, scale=1.4))
    res = L.validate_lut(skewed, SyntheticBackend(), _tiny_structures(),
                         image_size=32, tolerance=0.15)
    assert not any(r['ok'] for r in res)
    assert res[0]['rel_error'] == pytest.approx(0.4, abs=0.07)


def test_validate_tool_mode(tiny_table, tmp_path, monkeypatch, capsys,
                            load_tool):
    tool = load_tool('nas/build_latency_lut')
    monkeypatch.setitem(L.BACKENDS, 'synthetic', SyntheticBackend)
    structs = []
    for name, blocks in _tiny_structures().items():
        p = tmp_path / f'{name}.txt'
        p.write_text(repr(blocks))
        structs.append(str(p))
    path = str(tmp_path / 'lut.json')
    L.save_lut(tiny_table, path)
    argv = ['validate', '--lut', path, '--image-size', '32', '--structures']
    assert tool.main(argv + structs) == 0
    assert 'PASS' in capsys.readouterr().out
    L.save_lut(dict(tiny_table, scale=1.4), path)
    assert tool.main(argv + structs) == 1
    assert 'FAIL' in capsys.readouterr().out
    if not torch.cuda.is_available():
        rc = tool.main(['build', '--target', 'tensorrt', '--out',
                        str(tmp_path / 'trt.json')])
        assert rc == 2
        assert 'SKIPPED target tensorrt: TensorRT needs a CUDA GPU' in \
            capsys.readouterr().out


def test_real_torch_cpu_measurement_tiny():
    be = L.TorchCPUBackend(num_threads=1, min_runs=3, flush_cache_mb=4)
    assert be.clock == 'cpu'
    data = L.build_lut(be, conv_kernels=(3, ), strides=(1, ),
                       channels=(8, 32), heights=(16, 32), dw_kernels=(),
                       eltwise_numel=(4096, 65536))
    t = data['conv']['k3_s1']['time']
    assert data['clock'] == 'cpu' and data['target'] == 'torch-cpu'
    assert all(v > 0 for a in t for b in a for v in b)
    assert t[1][1][1] > t[0][0][0]  # 32->32 @32 slower than 8->8 @16
    assert LatencyLUT(data).predict_ops([('conv', 3, 1, 16, 16, 24)]) > 0


def test_calibration_fits_scale(tiny_table):
    class Slow(SyntheticBackend):
        def time_module(self, module, *shapes):
            return 1.3 * super().time_module(module, *shapes)

    data = L.calibrate_lut(tiny_table, Slow(),
                           list(_tiny_structures().values()), image_size=32)
    assert data['scale'] == pytest.approx(1.3, rel=0.05)
    assert data['calibration']['res']['n'] == 2
    data = L.calibrate_lut(data, Slow(), list(_tiny_structures().values()),
                           image_size=32, block_impl='mobile')
    lut = LatencyLUT(data)
    assert lut.scale_for('mobile') == pytest.approx(1.3, rel=0.05)
    assert lut.scale_for('res') == data['scale']
    assert 'scale' not in tiny_table or tiny_table['scale'] == 1.0


def test_bad_tables(tiny_table, tmp_path):
    with pytest.raises(LatencyLUTError, match='not a latency table'):
        LatencyLUT({'conv': {}})
    bad = json.loads(json.dumps(tiny_table))
    bad['conv']['k3s1'] = bad['conv'].pop('k3_s1')
    with pytest.raises(LatencyLUTError, match='bad table key'):
        LatencyLUT(bad)
    bad = json.loads(json.dumps(tiny_table))
    bad['unit'] = 'ms'
    with pytest.raises(LatencyLUTError, match='unit must be "s"'):
        LatencyLUT(bad)
    with pytest.raises(LatencyLUTError, match='implausible calibration'):
        LatencyLUT(dict(tiny_table, scale=1000))
    p = tmp_path / 'broken.json'
    p.write_text('{')
    with pytest.raises(LatencyLUTError, match='not valid JSON'):
        LatencyLUT.load(str(p))
    with pytest.raises(FileNotFoundError, match='build_latency_lut'):
        LatencyLUT.load(str(tmp_path / 'missing.json'))


def test_shipped_table_and_config_budgets(repo_root):
    lut = LatencyLUT.load()
    assert lut.target == 'torch-cpu' and lut.data['num_threads'] == 1
    # the configs' latency budgets are the official backbones' predicted
    # latency on the shipped table times (TinyNAS budget / TinyNAS
    # prediction of the same backbone on its V100 table)
    ref = {'t': ('tinynas_L20_k1kx', 8e-5 / 8.377778199535296e-05),
           's': ('tinynas_L25_k1kx', 12e-5 / 0.00011995575237058086),
           'm': ('tinynas_L35_kxkx', 4e-4 / 0.0004003728373511905)}
    for v, (name, ratio) in ref.items():
        cfg = Config.fromfile(f'{repo_root}/configs/nas/damoyolo_{v}_search.py')
        want = lut.predict(load_structure(name)) * ratio
        assert cfg.budgets.latency == pytest.approx(want, rel=0.01), v
        assert cfg.score.type == 'madnas'
        assert list(cfg.score.stage_weights) == [0, 0, 1, 1, 16]
    assert math.isfinite(lut.predict(load_structure('tinynas_nano_small'),
                                     block_impl='mobile'))
