"""SADA (scale-aware box-level augmentation) transform."""
import importlib.util
import multiprocessing as mp
import os
import os.path as osp
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.structures.bbox import HorizontalBoxes

from damoyolo_mm.datasets.transforms import SADA
from damoyolo_mm.datasets.transforms import sada as sada_mod
from damoyolo_mm.engine.hooks import SADAProgressHook, find_sada_transforms

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OFFICIAL_ROOT = os.environ.get(
    'DAMOYOLO_OFFICIAL_ROOT',
    osp.join(osp.dirname(REPO), 'ref', 'damoyolo_official'))


def _results(seed=0, size=(240, 320), n=6, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    h, w = size
    img = rng.integers(0, 256, (h, w, 3)).astype(dtype)
    wh = rng.uniform(6, 90, (n, 2))
    xy = rng.uniform(0, 1, (n, 2)) * (np.array([w, h]) - wh)
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    return dict(
        img=img,
        img_shape=(h, w),
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.arange(n, dtype=np.int64) % 5,
        gt_ignore_flags=np.array([i == 2 for i in range(n)]))


def _copy(results):
    out = dict(results)
    out['img'] = results['img'].copy()
    out['gt_bboxes'] = results['gt_bboxes'].clone()
    out['gt_bboxes_labels'] = results['gt_bboxes_labels'].copy()
    out['gt_ignore_flags'] = results['gt_ignore_flags'].copy()
    return out


def test_policy_decodes_to_damoyolo_table():
    t = SADA(ramp=False)
    assert t.policies == [
        (('Color', 0.4, 2), ('translateX', 0.4, 4)),
        (('Brightness', 0.2, 4), ('rotate', 0.4, 2)),
        (('Sharpness', 0.4, 2), ('shearX', 0.2, 6)),
        (('SolarizeAdd', 0.2, 2), ('hflip', 0.5, 1)),
        (('Color', 0.0, 8), ('translateY', 0.2, 8)),
    ]
    assert t.window_idx == (7, 5, 1)
    np.testing.assert_allclose(t.color_weights, np.array([7, 5, 1]) / 13)
    np.testing.assert_allclose(t.geo_weights, [1 / 3] * 3)
    assert t.scale_splits == (2048., 10240., 51200.) and t.box_prob == 0.3


def test_box_sampling_probabilities_follow_scale():
    t = SADA(ramp=False)
    ratio = 320 / 800
    splits = [s * ratio for s in t.scale_splits]
    boxes = np.array([[0, 0, 20, 20], [0, 0, 60, 60], [0, 0, 200, 200],
                      [5, 5, 5, 30]], np.float32)  # 400, 3600, 40000, 0
    p_color = t._box_probs(boxes, t.color_weights, splits)
    p_geo = t._box_probs(boxes, t.geo_weights, splits)
    np.testing.assert_allclose(p_color, [0.3 * 7 / 13, 0.3 * 5 / 13,
                                         0.3 * 1 / 13, 0.])
    np.testing.assert_allclose(p_geo, [0.1, 0.1, 0.1, 0.])


def test_boxes_stay_valid_and_dtype_is_kept():
    t = SADA(ramp=False)
    np.random.seed(0)
    changed, added = 0, 0
    for i in range(60):
        res = _results(seed=i)
        out = t(_copy(res))
        img, boxes = out['img'], out['gt_bboxes'].tensor.numpy()
        h, w = img.shape[:2]
        assert img.dtype == np.uint8 and img.shape == res['img'].shape
        assert np.isfinite(boxes).all()
        assert (boxes[:, 2] > boxes[:, 0]).all()
        assert (boxes[:, 3] > boxes[:, 1]).all()
        assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= w
        assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= h
        n = len(boxes)
        assert len(out['gt_bboxes_labels']) == n
        assert len(out['gt_ignore_flags']) == n
        # the original boxes are never modified
        np.testing.assert_array_equal(boxes[:6],
                                      res['gt_bboxes'].tensor.numpy())
        changed += int((img != res['img']).any())
        added += n - 6
    # with progress 1 about a quarter of the images change (seeded: 14)
    assert changed >= 8
    assert added >= 1


def test_deterministic_with_seed():
    t = SADA(ramp=False)
    outs = []
    for seed in (5, 5, 6):
        np.random.seed(seed)
        outs.append([t(_copy(_results(seed=i))) for i in range(12)])
    for a, b in zip(outs[0], outs[1]):
        np.testing.assert_array_equal(a['img'], b['img'])
        np.testing.assert_array_equal(a['gt_bboxes'].tensor.numpy(),
                                      b['gt_bboxes'].tensor.numpy())
    assert any((a['img'] != c['img']).any()
               for a, c in zip(outs[0], outs[2]))


def test_translation_copies_boxes_inside_the_image():
    # every small box is moved (translateX p 1.0, level 10 = 120 px)
    params = [0] * 4 + [0, 0, 0, 4, 10, 10] + [7, 5, 1, 1, 0, 0]
    t = SADA(box_prob=1.0, num_subpolicies=1, autoaug_params=params,
             ramp=False)
    res = _results(seed=1, size=(200, 300), n=3)
    # areas 400 < 2048 * 200 / 800: all in the 'small' range (weight 1)
    boxes = np.array([[10, 10, 30, 30], [260, 50, 280, 70],
                      [100, 120, 120, 140]], np.float32)
    res['gt_bboxes'] = HorizontalBoxes(boxes)
    counts = set()
    for seed in range(8):
        np.random.seed(seed)
        out = t(_copy(res))
        new = out['gt_bboxes'].tensor.numpy()[3:]
        # +120 px: all three copies stay visible (the right one is clamped
        # at the border); -120 px: two are pushed out, one remains
        counts.add(len(new))
        labels = out['gt_bboxes_labels'][3:]
        assert new[:, 0].min() >= 0 and new[:, 2].max() <= 300
        for box, label in zip(new, labels):
            src = boxes[list(res['gt_bboxes_labels']).index(label)]
            dy = box[1] - src[1]
            assert dy == 0  # translateX only moves horizontally
            # shift of 120 px, clamped so the right edge stays inside
            dx = box[0] - src[0]
            assert abs(dx) <= 120 and dx != 0
    assert counts == {1, 3}


def test_progress_ramp_and_shared_memory():
    t = SADA()  # ramp=True: starts at progress 0 -> identity
    res = _results(seed=3)
    np.random.seed(0)
    for _ in range(20):
        out = t(_copy(res))
        np.testing.assert_array_equal(out['img'], res['img'])
    with pytest.raises(ValueError):
        t.set_progress(1.5)
    # a forked worker sees a value set by the parent after the fork
    ctx = mp.get_context('fork')
    parent_ready, child_done = ctx.Event(), ctx.Queue()

    def worker():
        parent_ready.wait(10)
        child_done.put(t.progress)

    proc = ctx.Process(target=worker)
    proc.start()
    t.set_progress(0.625)
    parent_ready.set()
    seen = child_done.get(timeout=20)
    proc.join(10)
    assert seen == 0.625


def test_progress_hook_reaches_wrapped_pipelines():
    from mmdet.datasets import MultiImageMixDataset  # noqa: F401
    inner = SimpleNamespace(pipeline=Compose([dict(type='SADA')]))
    wrapper = SimpleNamespace(
        dataset=inner,
        pipeline=[Compose([dict(type='RandomFlip', prob=0.5)]),
                  SADA(), Compose([dict(type='SADA', ramp=False)])])
    found = find_sada_transforms(wrapper)
    assert len(found) == 3
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=wrapper), iter=0,
        max_iters=400)
    hook = SADAProgressHook()
    hook.before_train_epoch(runner)
    runner.iter = 100
    hook.before_train_iter(runner, 0)
    ramped = [s for s in found if s.ramp]
    assert len(ramped) == 2
    assert all(s.progress == 0.25 for s in ramped)
    assert [s for s in found if not s.ramp][0].progress == 1.0


def _load_reference_box_augs():
    base = osp.join(OFFICIAL_ROOT, 'damo', 'augmentations', 'box_level_augs')
    if not osp.isdir(base):
        pytest.skip(f'reference code not found at {OFFICIAL_ROOT}')
    names = ('damo', 'damo.augmentations', 'damo.augmentations.box_level_augs')
    saved = {n: sys.modules.get(n) for n in names}
    mods = {}
    try:
        for n in names:
            sys.modules[n] = types.ModuleType(n)
        for short in ('gaussian_maps', 'color_augs'):
            name = f'damo.augmentations.box_level_augs.{short}'
            spec = importlib.util.spec_from_file_location(
                name, osp.join(base, short + '.py'))
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            mods[short] = mod
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
        for short in ('gaussian_maps', 'color_augs'):
            sys.modules.pop(f'damo.augmentations.box_level_augs.{short}',
                            None)
    return mods['gaussian_maps'], mods['color_augs']


@pytest.mark.filterwarnings('ignore::UserWarning')
def test_colour_ops_and_windows_match_reference():
    gm, ca = _load_reference_box_augs()
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (48, 64, 3)).astype(np.float32)
    chw = torch.from_numpy(img.transpose(2, 0, 1).copy())
    ref_ops = {
        'AutoContrast': lambda x, lv: ca.autocontrast(x),
        'Equalize': lambda x, lv: ca.equalize(x),
        'SolarizeAdd': lambda x, lv: ca.solarize_add(x, lv / 10 * 0.4296875),
        'Color': lambda x, lv: ca.color(x, lv / 10 * 1.8 + 0.1),
        'Contrast': lambda x, lv: ca.contrast(x, lv / 10 * 1.8 + 0.1),
        'Brightness': lambda x, lv: ca.brightness(x, lv / 10 * 1.8 + 0.1),
        'Sharpness': lambda x, lv: ca.sharpness(x, lv / 10 * 1.8 + 0.1),
    }
    for name, fn in ref_ops.items():
        for level in (2, 4, 8):
            ref = fn(chw.clone(), level).numpy().transpose(1, 2, 0)
            ours = sada_mod._apply_color_op(name, img.copy(), level)
            np.testing.assert_allclose(ours, ref, atol=1e-6, err_msg=name)
    boxes = np.array([[5, 3, 20, 25], [15, 15, 60, 45], [0, 0, 64, 48]],
                     np.float32)
    splits = [2048 * 0.06, 10240 * 0.06, 51200 * 0.06]
    ref = gm._gaussian_map(chw, [torch.tensor(b) for b in boxes], splits,
                           [7, 5, 1]).clamp(0, 1).numpy()
    ours = sada_mod._scale_aware_windows((48, 64), boxes, (7, 5, 1), splits)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    ref = gm._gaussian_map(chw[:, :17, :29], [[0, 0, 29, 17]]).numpy()
    np.testing.assert_allclose(sada_mod._paste_window(17, 29), ref,
                               atol=1e-6)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='autoaug_params'):
        SADA(autoaug_params=(1, 2, 3))
    with pytest.raises(ValueError, match='img_channel_order'):
        SADA(img_channel_order='rgba')
    with pytest.raises(ValueError, match='scale_splits'):
        SADA(scale_splits=(3, 2, 1))
