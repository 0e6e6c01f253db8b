"""The parity group computed as an AVX2-only CPU computes it.

CPUs without AVX-512 (e.g. AMD Zen 3) run other ATen / oneDNN kernels,
which sum in another order; every tolerance of the suite must hold there
too. This runs the parity tests once more in a fresh process under
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` with one thread (the
other reduction order), so that CI checks both on any machine.
``tools/misc/cpu_matrix.py`` runs every numeric test under more settings
and prints the measured errors beside the tolerances (docs/testing.md).
"""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
AVX2 = dict(ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2',
            DAMOYOLO_TEST_THREADS='1')
PARITY = (
    'tests/test_models/test_damoyolo_golden_parity.py',
    'tests/test_models/test_damoyolo_m_parity.py',
    'tests/test_models/test_channels_last_inference.py',
    'tests/test_models/test_loss_zero_head.py',
)


def _env():
    return dict(os.environ, **AVX2)


def test_avx2_setting_selects_avx2_kernels():
    out = subprocess.run(
        [sys.executable, '-c', 'import torch; print(torch.backends.cpu.'
         'get_cpu_capability(), torch.get_num_threads())'],
        env=_env(), capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == 'AVX2', out


@pytest.mark.skipif(
    os.environ.get('ATEN_CPU_CAPABILITY') is not None,
    reason='this process already computes under a forced capability')
def test_parity_group_as_an_avx2_cpu():
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', *PARITY],
                          cwd=REPO, env=_env(), capture_output=True,
                          text=True)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, '\n'.join(
        [l for l in lines if l.startswith(('FAILED', 'ERROR'))] + lines[-1:])
