"""Fixtures of the deployment tests."""
import os.path as osp
import sys

import pytest

HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture(scope='session')
def deploy_mod():
    """``damoyolo_mm.deploy`` (needs the deploy extra: mmdeploy, onnx)."""
    pytest.importorskip('mmdeploy', reason='the deploy extra is not '
                        'installed (pip install --no-deps mmdeploy==1.3.1)')
    import damoyolo_mm.deploy as dp
    return dp
