"""Make the small numeric references in ``tests/data/`` from the official
DAMO-YOLO code (tinyvision/DAMO-YOLO), so that the tests that use them run
without the official checkout.

Run once from the repository root (the files are committed)::

    python tests/data/make_references.py \\
        --official-root ../ref/damoyolo_official --golden ../shared/golden

Writes (only the parts asked for with ``--only``, all by default):

* ``sada_reference.npz``: the official colour operations of SADA
  (``damo/augmentations/box_level_augs/color_augs.py``) on a small float
  image at three levels, and the official Gaussian windows
  (``gaussian_maps.py``): the scale-aware window of three boxes and the
  paste window.
* ``mosaic_affine_reference.npz``: the official mosaic canvas
  (``MosaicWrapper.__getitem__``, ``keep_ratio=False``) of four sub-images
  of different sizes, and ``random_affine`` of that canvas for several
  seeds with non-zero rotation, scale, shear and translation (the official
  random draws are in the same order as ``DAMOYOLORandomAffine``'s, so a
  seed gives the same matrix in both).
* ``t_train_grads.json``: per-loss-term gradients of the official
  DAMO-YOLO-T on the train golden (``T_train_golden.pt``, both cases):
  gradient norms per part (backbone, neck, class / box prediction convs,
  all parameters) of each of QFL, GIoU and DFL, and the gradient vectors of
  the prediction conv biases.

The reference imports torchvision, loguru, easydict and thop at import
time; stand-ins for the missing ones come from
``damoyolo_mm.benchmark.official_code``.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import random
import sys

import numpy as np
import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
# run from a checkout: import its damoyolo_mm, not an installed copy
if REPO not in sys.path:
    sys.path.insert(0, REPO)
LOSS_KEYS = ('loss_cls', 'loss_bbox', 'loss_dfl')
# SADA colour operations: name -> (official function, level -> argument)
COLOUR_LEVELS = (2, 5, 8)
SADA_IMG_HW = (24, 32)
WINDOW_HW = (48, 64)
WINDOW_BOXES = np.array([[5, 3, 20, 25], [15, 15, 60, 45], [0, 0, 64, 48]],
                        np.float32)
WINDOW_SPLITS = (2048 * 0.06, 10240 * 0.06, 51200 * 0.06)
WINDOW_RATIOS = (7, 5, 1)
PASTE_HW = (17, 29)
# mosaic: output size (h, w) and the four sub-images (h, w, box count)
MOSAIC_HW = (64, 64)
MOSAIC_SUBS = ((40, 56, 3), (70, 50, 2), (64, 64, 2), (30, 90, 3))
MOSAIC_CENTRE = (80, 56)  # (yc, xc)
AFFINE_SEEDS = (0, 1, 2, 3, 4, 5)
AFFINE_PARAMS = dict(degrees=10.0, translate=0.1, scales=(0.5, 1.5),
                     shear=10.0)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--official-root', required=True,
                        help='checkout of tinyvision/DAMO-YOLO')
    parser.add_argument('--golden', default=osp.join(
        osp.dirname(REPO), 'shared', 'golden'),
        help='folder with T_ckpt_fp16.pth and T_train_golden.pt')
    parser.add_argument('--only', nargs='+',
                        choices=['sada', 'affine', 'grads'],
                        default=['sada', 'affine', 'grads'])
    parser.add_argument('--out-dir', default=HERE)
    return parser.parse_args(argv)


@contextlib.contextmanager
def official(root):
    """The official ``damo`` package importable (the one harness of the
    benchmarks, :func:`damoyolo_mm.benchmark.official_code.official_code`,
    which restores everything it changes); yields the absolute root."""
    from damoyolo_mm.benchmark.official_code import official_code
    root = osp.abspath(root)  # official_code changes the cwd
    with official_code(root):
        yield root


def _save_npz(path, **arrays):
    tmp = path + '.tmp.npz'
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    print(f'wrote {path} ({osp.getsize(path) / 1024:.1f} KiB)')


def make_sada(root, out_dir):
    with official(root) as root:
        from damo.augmentations.box_level_augs import color_augs as ca
        from damo.augmentations.box_level_augs import gaussian_maps as gm
        ops = {
            'AutoContrast': lambda x, lv: ca.autocontrast(x),
            'Equalize': lambda x, lv: ca.equalize(x),
            'SolarizeAdd': lambda x, lv: ca.solarize_add(
                x, lv / 10 * 0.4296875),
            'Color': lambda x, lv: ca.color(x, lv / 10 * 1.8 + 0.1),
            'Contrast': lambda x, lv: ca.contrast(x, lv / 10 * 1.8 + 0.1),
            'Brightness': lambda x, lv: ca.brightness(x,
                                                      lv / 10 * 1.8 + 0.1),
            'Sharpness': lambda x, lv: ca.sharpness(x, lv / 10 * 1.8 + 0.1),
        }
        rng = np.random.default_rng(0)
        img = rng.uniform(0, 1, SADA_IMG_HW + (3, )).astype(np.float32)
        chw = torch.from_numpy(img.transpose(2, 0, 1).copy())
        arrays = dict(image=img, levels=np.array(COLOUR_LEVELS))
        for name, fn in ops.items():
            arrays[f'op_{name}'] = np.stack([
                fn(chw.clone(), lv).numpy().transpose(1, 2, 0)
                for lv in COLOUR_LEVELS
            ]).astype(np.float32)
        big = torch.zeros((3, ) + WINDOW_HW)
        arrays['window_boxes'] = WINDOW_BOXES
        arrays['window_splits'] = np.array(WINDOW_SPLITS)
        arrays['window_ratios'] = np.array(WINDOW_RATIOS)
        arrays['window'] = gm._gaussian_map(
            big, [torch.tensor(b) for b in WINDOW_BOXES], list(WINDOW_SPLITS),
            list(WINDOW_RATIOS)).clamp(0, 1).numpy().astype(np.float32)
        h, w = PASTE_HW
        arrays['paste_window'] = gm._gaussian_map(
            big[:, :h, :w], [[0, 0, w, h]]).numpy().astype(np.float32)
    _save_npz(osp.join(out_dir, 'sada_reference.npz'), **arrays)


class _FakeDataset:
    """Four images of different sizes with boxes (official pull_item)."""

    def __init__(self):
        rng = np.random.default_rng(1)
        self.items = []
        for k, (h, w, n) in enumerate(MOSAIC_SUBS):
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            wh = rng.uniform(0.25, 0.7, (n, 2)) * [w, h]
            xy = rng.uniform(0, 1, (n, 2)) * ([w, h] - wh)
            boxes = np.concatenate([xy, xy + wh], 1).round(1)
            labels = np.arange(n) + 10 * k
            self.items.append((img, np.concatenate(
                [boxes, labels[:, None]], 1).astype(np.float64)))

    def __len__(self):
        return len(self.items)

    def pull_item(self, idx):
        img, labels = self.items[idx]
        return img.copy(), labels.copy(), [], idx


def make_affine(root, out_dir):
    with official(root) as root:
        from damo.dataset.datasets import mosaic_wrapper as mw
        data = _FakeDataset()
        wrapper = mw.MosaicWrapper(
            data, MOSAIC_HW, mosaic_prob=1.0, mixup_prob=0.0,
            degrees=0.0, translate=0.0, mosaic_scale=(1.0, 1.0), shear=0.0,
            keep_ratio=False)
        captured = {}

        def capture(img, targets, *args, **kwargs):
            captured['img'], captured['labels'] = img.copy(), targets.copy()
            raise StopIteration

        # pin the centre and the sub-image order: image i goes to cell i
        class _Draws:

            def __init__(self):
                self.uniform = iter(MOSAIC_CENTRE)
                self.index = iter([1, 2, 3])

            def __getattr__(self, name):
                return getattr(random, name)

        draws = _Draws()
        saved_random, saved_affine = mw.random, mw.random_affine
        mw.random = type('R', (), dict(
            random=staticmethod(lambda: 0.0),
            uniform=staticmethod(lambda lo, hi: next(draws.uniform)),
            randint=staticmethod(lambda lo, hi: next(draws.index))))()
        mw.random_affine = capture
        try:
            wrapper[(True, 0)]
        except StopIteration:
            pass
        finally:
            mw.random, mw.random_affine = saved_random, saved_affine
        arrays = dict(
            mosaic_hw=np.array(MOSAIC_HW),
            mosaic_centre=np.array(MOSAIC_CENTRE),
            mosaic_img=captured['img'], mosaic_labels=captured['labels'])
        for k, (img, labels) in enumerate(data.items):
            arrays[f'sub{k}_img'] = img
            arrays[f'sub{k}_labels'] = labels
        arrays['affine_seeds'] = np.array(AFFINE_SEEDS)
        arrays['affine_params'] = np.array([
            AFFINE_PARAMS['degrees'], AFFINE_PARAMS['translate'],
            AFFINE_PARAMS['scales'][0], AFFINE_PARAMS['scales'][1],
            AFFINE_PARAMS['shear']
        ])
        for seed in AFFINE_SEEDS:
            random.seed(seed)
            img, targets = mw.random_affine(
                captured['img'].copy(), captured['labels'].copy(), [],
                target_size=(MOSAIC_HW[1], MOSAIC_HW[0]), **AFFINE_PARAMS)
            arrays[f'affine{seed}_img'] = img
            arrays[f'affine{seed}_labels'] = targets
    _save_npz(osp.join(out_dir, 'mosaic_affine_reference.npz'), **arrays)


def _param_groups(model):
    head = model.head
    return {
        'all': list(model.parameters()),
        'backbone': list(model.backbone.parameters()),
        'neck': list(model.neck.parameters()),
        'gfl_cls': list(head.gfl_cls.parameters()),
        'gfl_reg': list(head.gfl_reg.parameters()),
    }


def make_grads(root, golden_dir, out_dir):
    golden = torch.load(osp.join(golden_dir, 'T_train_golden.pt'),
                        weights_only=True)
    ckpt = torch.load(osp.join(golden_dir, 'T_ckpt_fp16.pth'),
                      weights_only=True)['model']
    result = dict(
        source='official DAMO-YOLO-T (configs/damoyolo_tinynasL20_T.py), '
        'train mode, T_train_golden.pt inputs and boxes; made by '
        'tests/data/make_references.py',
        cases={})
    with official(root) as root:
        from damo.config.base import parse_config
        from damo.detectors.detector import build_local_model
        from damo.structures.bounding_box import BoxList
        from damo.structures.image_list import to_image_list
        cfg = parse_config(osp.join(root, 'configs',
                                    'damoyolo_tinynasL20_T.py'))
        torch.manual_seed(0)
        model = build_local_model(cfg, 'cpu')
        for case, g in golden['cases'].items():
            sd = {
                k: v.float() if v.is_floating_point() else v
                for k, v in ckpt.items()
            }
            sd.update(g.get('state_dict_overrides', {}))
            model.load_state_dict(sd, strict=True)
            model.train()
            x = golden['inputs']
            targets = []
            for b, l in zip(golden['gt_bboxes'], golden['gt_labels']):
                t = BoxList(b.clone(), (x.shape[3], x.shape[2]), mode='xyxy')
                t.add_field('labels', l.clone())
                targets.append(t)
            images = to_image_list(x.clone())
            fpn = model.neck(model.backbone(images.tensors))
            out = model.head(fpn, targets, imgs=images)
            for key in LOSS_KEYS:
                ref = g['losses'][key]
                assert abs(out[key].item() - ref) <= 1e-6 * abs(ref), \
                    (case, key, out[key].item(), ref)
            groups = _param_groups(model)
            params = groups['all']
            index = {id(p): i for i, p in enumerate(params)}
            entry = dict(losses={k: out[k].item() for k in LOSS_KEYS})
            total = None
            for key in LOSS_KEYS:
                grads = torch.autograd.grad(
                    out[key], params, retain_graph=True, allow_unused=True)
                grads = [
                    torch.zeros_like(p) if gr is None else gr
                    for p, gr in zip(params, grads)
                ]
                total = grads if total is None else [
                    a + b for a, b in zip(total, grads)
                ]
                entry[key] = _grad_summary(model, groups, index, grads)
            entry['total'] = _grad_summary(model, groups, index, total)
            ref = g['grad_norm_all_params']
            rel = abs(entry['total']['norm']['all'] - ref) / ref
            print(f'{case}: gradient norm {entry["total"]["norm"]["all"]:.6g}'
                  f', golden {ref:.6g} (relative difference {rel:.1e})')
            assert rel <= 1e-4, (case, entry['total']['norm']['all'], ref)
            result['cases'][case] = entry
    path = osp.join(out_dir, 't_train_grads.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(path + '.tmp', path)
    print(f'wrote {path} ({osp.getsize(path) / 1024:.1f} KiB)')


def _grad_summary(model, groups, index, grads):
    norm = {
        name: float(
            torch.sqrt(sum((grads[index[id(p)]].double()**2).sum()
                           for p in ps)))
        for name, ps in groups.items()
    }
    bias = {}
    for branch in ('gfl_cls', 'gfl_reg'):
        for level, conv in enumerate(getattr(model.head, branch)):
            bias[f'{branch}.{level}'] = [
                float(v) for v in grads[index[id(conv.bias)]]
            ]
    return dict(norm=norm, bias=bias)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    if 'sada' in args.only:
        make_sada(args.official_root, args.out_dir)
    if 'affine' in args.only:
        make_affine(args.official_root, args.out_dir)
    if 'grads' in args.only:
        make_grads(args.official_root, args.golden, args.out_dir)


if __name__ == '__main__':
    main()
