"""Light equivalent of test_quickstart_full.py for the accuracy side: the
model that the quickstart trains (stored as
``../shared/golden/quickstart_ns_epoch55.pth``, EMA weights) evaluated on
the demo val split gives the documented AP."""
import os.path as osp

import pytest

CONFIG = 'configs/quickstart/damoyolo_quickstart.py'


def test_quickstart_model_reaches_documented_ap(golden_dir, repo_root,
                                                tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from damoyolo_mm.datasets import generate_demo_dataset
    ckpt = osp.join(golden_dir, 'quickstart_ns_epoch55.pth')
    assert osp.isfile(ckpt), f'{ckpt} not found'
    data = str(tmp_path / 'demo') + '/'
    # the val split has a seed of its own: the default 40 val images
    generate_demo_dataset(data, num_train=1)
    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    cfg.merge_from_dict({
        'test_dataloader.dataset.data_root': data,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'test_evaluator.ann_file': data + 'annotations/instances_val.json',
        'visualizer.name': f'quickstart_ap_{tmp_path.name}',
    })
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = ckpt
    metrics = Runner.from_cfg(cfg).test()
    # documented in README.md and ../shared/golden/README.md: bbox mAP
    # 0.469, AP50 0.657 on the reference machine
    assert metrics['coco/bbox_mAP'] == pytest.approx(0.469, abs=0.005)
    assert metrics['coco/bbox_mAP_50'] == pytest.approx(0.657, abs=0.005)
