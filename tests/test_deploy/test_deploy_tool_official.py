"""tools/deploy.py with MMDeploy's argument order (DEPLOY_CFG MODEL_CFG
CHECKPOINT IMG) and an official release-format checkpoint."""
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from deploy_helpers import REPO


@pytest.fixture(scope='module')
def ns_image(golden_dir, tmp_path_factory):
    import cv2
    golden = torch.load(osp.join(golden_dir, 'Ns_golden.pt'),
                        weights_only=True)
    path = str(tmp_path_factory.mktemp('img') / 'ns.png')
    cv2.imwrite(path, golden['input'][0].permute(1, 2, 0).numpy()[..., ::-1]
                .astype(np.uint8))
    return path


def test_positional_image_and_official_checkpoint(deploy_mod, golden_dir,
                                                  ns_image, tmp_path, capsys,
                                                  load_tool):
    tool = load_tool('deploy')
    work = str(tmp_path / 'ns')
    tool.main([
        'configs/deploy/detection_onnxruntime_static-416x416_nano.py',
        'configs/damoyolo_ns_coco.py',
        osp.join(golden_dir, 'Ns_ckpt_fp16.pth'), ns_image, '--work-dir',
        work, '--verify'
    ])
    log = capsys.readouterr().out
    assert osp.isfile(osp.join(work, 'end2end.onnx'))
    m = re.search(r'matched (\d+)/(\d+) ', log)
    assert m and int(m.group(2)) > 0, log
    assert int(m.group(1)) >= 0.97 * int(m.group(2))


def test_image_given_twice(load_tool):
    tool = load_tool('deploy')
    args = tool.parse_args(['d.py', 'm.py', 'c.pth', 'a.jpg'])
    assert args.img == 'a.jpg'
    assert tool.parse_args(['d.py', 'm.py', 'c.pth', '--img',
                            'a.jpg']).img == 'a.jpg'
    assert tool.parse_args(['d.py', 'm.py', 'c.pth']).img is None
    with pytest.raises(SystemExit):
        tool.parse_args(['d.py', 'm.py', 'c.pth', 'a.jpg', '--img', 'b.jpg'])


def test_official_checkpoint_of_another_variant(deploy_mod, golden_dir,
                                                tmp_path):
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'deploy.py'),
         'configs/deploy/detection_onnxruntime_static-640x640.py',
         'configs/damoyolo_t_coco.py',
         osp.join(golden_dir, 'Ns_ckpt_fp16.pth'), '--work-dir',
         str(tmp_path / 'w')], cwd=REPO, capture_output=True, text=True,
        timeout=600)
    assert out.returncode == 2, out.stderr[-2000:]
    assert 'the checkpoint does not fit this DAMO-YOLO model' in out.stderr
    assert out.stderr.strip().splitlines()[-1].strip().startswith(
        "the checkpoint fits the released variant 'ns' "
        '(configs/damoyolo_ns_coco.py)')
    assert not osp.exists(osp.join(tmp_path, 'w', 'end2end.onnx'))
