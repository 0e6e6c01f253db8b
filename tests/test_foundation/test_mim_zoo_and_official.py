"""The mim model zoo (model-index.yml) and `mim test` with an official
checkpoint, against the installed package (as the other mim tests)."""
import json
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VARIANTS = {  # name: COCO val mAP of the official release
    'damoyolo_ns_coco': 32.3, 'damoyolo_nm_coco': 38.2,
    'damoyolo_nl_coco': 40.5, 'damoyolo_t_coco': 42.0,
    'damoyolo_s_coco': 46.0, 'damoyolo_m_coco': 49.2,
    'damoyolo_l_coco': 50.8
}


def _mim(args, cwd):
    mim = shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')
    env = dict(os.environ, PYTHONUNBUFFERED='1', COLUMNS='250')
    return subprocess.run([mim] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=900, env=env)


def test_metafile_of_the_repository():
    """model-index.yml -> configs/metafile.yml: seven models, each with a
    config that exists, params, FLOPs, training data, COCO box AP and the
    official weights URL."""
    from modelindex.load_model_index import load
    index = load(osp.join(REPO, 'model-index.yml'))
    models = {m.name: m for m in index.models}
    assert set(models) == set(VARIANTS)
    for name, ap in VARIANTS.items():
        m = models[name]
        assert m.in_collection == 'DAMO-YOLO'
        assert osp.isfile(osp.join(REPO, m.config)), m.config
        assert m.config == f'configs/{name}.py'
        meta = m.metadata.data
        assert meta['Training Data'] == 'COCO'
        assert meta['Parameters'] > 1e6 and meta['FLOPs'] > 1e9
        (result, ) = m.results
        assert result.task == 'Object Detection'
        assert result.dataset == 'COCO'
        assert result.metrics == {'box AP': ap}
        assert m.weights.startswith(
            'https://idstcv.oss-cn-zhangjiakou.aliyuncs.com/DAMO-YOLO/')
        assert m.weights.endswith('.pth')


def test_mim_search_lists_the_seven_variants(tmp_path):
    out = _mim(['search', 'damoyolo_mm', '--field', 'coco/box_ap',
                'parameters', 'flops'], cwd=str(tmp_path))
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    # blocks of "config id: NAME" + "field  value" lines
    found, name = {}, None
    for line in out.stdout.splitlines():
        if line.startswith('config id:'):
            name = line.split(':', 1)[1].strip()
            found[name] = {}
        elif name and line.strip() and not line.startswith('-'):
            key, _, value = line.strip().partition(' ')
            found[name][key] = value.strip()
    assert set(found) == set(VARIANTS), out.stdout
    for name, ap in VARIANTS.items():
        assert float(found[name]['coco/box_ap']) == ap
        assert int(found[name]['parameters']) > 1e6
        assert int(found[name]['flops']) > 1e9


def _golden_dataset(golden_dir, root):
    """One 640x640 image (the T golden input) in the layout of the COCO
    configs, with the 80 COCO classes as categories."""
    import cv2
    from mmdet.datasets import CocoDataset
    golden = torch.load(osp.join(golden_dir, 'T_golden.pt'),
                        weights_only=True)
    os.makedirs(osp.join(root, 'val2017'))
    os.makedirs(osp.join(root, 'annotations'))
    cv2.imwrite(osp.join(root, 'val2017', 'golden.png'),
                golden['input'][0].permute(1, 2, 0).numpy()[..., ::-1]
                .astype(np.uint8))
    ann = dict(
        images=[dict(id=1, file_name='golden.png', width=640, height=640)],
        annotations=[dict(id=1, image_id=1, category_id=1,
                          bbox=[100, 120, 200, 150], area=30000,
                          iscrowd=0)],
        categories=[dict(id=i + 1, name=c) for i, c in enumerate(
            CocoDataset.METAINFO['classes'])])
    with open(osp.join(root, 'annotations', 'instances_val2017.json'),
              'w') as f:
        json.dump(ann, f)
    return golden


def test_mim_test_with_an_official_checkpoint(golden_dir, tmp_path):
    """`mim test damoyolo_mm configs/damoyolo_t_coco.py --checkpoint
    <official file>` (no conversion step) gives the official detections."""
    from damoyolo_mm.deploy.export import match_detections
    root = str(tmp_path / 'coco') + '/'
    golden = _golden_dataset(golden_dir, root)
    results = str(tmp_path / 'results.pkl')
    out = _mim(['test', 'damoyolo_mm', 'configs/damoyolo_t_coco.py',
                '--checkpoint', osp.join(golden_dir, 'T_ckpt_fp16.pth'),
                '--work-dir', str(tmp_path / 'work'), '--out', results,
                '--cfg-options', f'test_dataloader.dataset.data_root={root}',
                f'test_evaluator.ann_file={root}'
                'annotations/instances_val2017.json',
                'test_dataloader.num_workers=0',
                'test_dataloader.persistent_workers=False',
                'test_dataloader.batch_size=1'], cwd=str(tmp_path))
    log = out.stdout + out.stderr
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert 'official DAMO-YOLO checkpoint (586 tensors, float16) ' \
        'converted in memory' in log
    assert 'coco/bbox_mAP' in log
    with open(results, 'rb') as f:  # written by this test's run
        (pred, ) = pickle.load(f)
    inst = pred['pred_instances']
    ours = {k: np.asarray(inst[k]) for k in ('bboxes', 'scores', 'labels')}
    ref = {k: golden['dets'][k].numpy() for k in ('bboxes', 'scores',
                                                  'labels')}
    assert len(ours['scores']) == len(ref['scores']) == 500
    un_a, un_b, db, ds = match_detections(ours, ref, 1e-3, 1e-4)
    assert not un_a and not un_b, (len(un_a), len(un_b), db, ds)
