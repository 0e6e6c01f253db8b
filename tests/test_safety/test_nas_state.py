"""The NAS search state is read without running anything it names."""
import os
import os.path as osp
import pickle

import pytest
from mmengine.config import Config

from damoyolo_mm.nas import NASSearchRunner, SearchConfigError
from damoyolo_mm.nas.runner import STATE_FILE

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
T_CFG = osp.join(REPO, 'configs', 'nas', 'damoyolo_t_search.py')


class _Payload:

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _cfg(work_dir, n):
    cfg = Config.fromfile(T_CFG)
    cfg.work_dir = str(work_dir)
    cfg.search.update(dict(num_candidates=n, checkpoint_interval=200,
                           log_interval=1000, progress=False, plot=False,
                           popu_size=32, seed=3))
    cfg.resume = True
    return cfg


def test_malicious_state_is_refused(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    marker = tmp_path / 'ran'
    with open(work / STATE_FILE, 'wb') as f:
        pickle.dump(dict(version=1, payload=_Payload(marker)), f)
    with pytest.raises(SearchConfigError) as err:
        NASSearchRunner.from_cfg(_cfg(work, 400)).run()
    assert str(work / STATE_FILE) in str(err.value)
    assert 'posix.system' in str(err.value) or 'system' in str(err.value)
    assert not marker.exists()


def test_own_state_resumes(tmp_path):
    """A real state written by the runner reads back with the restricted
    unpickler (it holds plain values only)."""
    full = NASSearchRunner.from_cfg(_cfg(tmp_path / 'a', 400)).run()
    part = _cfg(tmp_path / 'b', 200)
    NASSearchRunner.from_cfg(part).run()
    assert (tmp_path / 'b' / STATE_FILE).exists()
    resumed = NASSearchRunner.from_cfg(_cfg(tmp_path / 'b', 400)).run()
    assert resumed['score'] == full['score']
    assert resumed['candidates'] == full['candidates'] == 400
