"""Official DAMO-YOLO checkpoints load wherever a checkpoint is accepted.

The detector converts an official ``{'model': state_dict}`` in memory when
it is loaded into it (``DAMOYOLO._load_from_state_dict``): mmengine's
``load_checkpoint`` (``load_from``, ``--checkpoint``, MMDeploy), torch's
``load_state_dict``, ``init_detector`` and ``DetInferencer``. The result is
exactly the converter's (``tools/convert_official.py``); a checkpoint of
another variant fails with the counts of the bad keys and, in the last
line, the released variant it fits.
"""
import os.path as osp
import warnings
from unittest import mock

import pytest
import torch
from damo_official_layout import official_layout
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from damoyolo_mm.converters import convert_official_checkpoint
from damoyolo_mm.models.checkpoint import (StateDictMismatchError,
                                           coco_dataset_meta,
                                           convert_official_state_dict,
                                           is_official_checkpoint,
                                           match_variant)
from damoyolo_mm.variants import variant_config

pytestmark = pytest.mark.usefixtures('single_thread')


def _build(variant):
    return MODELS.build(Config.fromfile(variant_config(variant)).model)


def _reference(golden_dir, variant):
    """Our model loaded through the explicit converter."""
    model = _build(variant)
    ckpt = torch.load(osp.join(golden_dir, f'{variant}_ckpt_fp16.pth'),
                      weights_only=True)
    model.load_state_dict(
        convert_official_state_dict(ckpt['model'], model.state_dict()),
        strict=True)
    return model


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_layout_detection(golden_dir):
    ckpt = torch.load(osp.join(golden_dir, 'Ns_ckpt_fp16.pth'),
                      weights_only=True)
    assert is_official_checkpoint(ckpt)
    assert is_official_checkpoint(ckpt['model'])
    assert is_official_checkpoint(
        {'module.' + k: v for k, v in ckpt['model'].items()})
    ours = _reference(golden_dir, 'Ns').state_dict()
    assert not is_official_checkpoint(ours)
    assert not is_official_checkpoint(dict(state_dict=ours, meta={}))
    assert not is_official_checkpoint({})


def test_mmengine_load_checkpoint_converts_in_memory(golden_dir):
    path = osp.join(golden_dir, 'T_ckpt_fp16.pth')
    model = _build('T')
    with mock.patch('mmengine.logging.print_log') as log:
        load_checkpoint(model, path, map_location='cpu', strict=True)
    lines = [c.args[0] for c in log.call_args_list]
    assert len(lines) == 1, lines
    assert lines[0].startswith('official DAMO-YOLO checkpoint (586 tensors, '
                               'float16) converted in memory')
    _assert_same_weights(model, _reference(golden_dir, 'T'))


def test_torch_load_state_dict_takes_the_official_dict(golden_dir):
    ckpt = torch.load(osp.join(golden_dir, 'Ns_ckpt_fp16.pth'),
                      weights_only=True)
    ref = _reference(golden_dir, 'Ns')
    for given in (ckpt, ckpt['model']):
        model = _build('Ns')
        model.load_state_dict(given, strict=True)
        _assert_same_weights(model, ref)
    # the caller's dict is not modified
    assert next(iter(ckpt['model'])).startswith('backbone.block_list.')


def test_our_checkpoints_load_unchanged(golden_dir, tmp_path):
    ref = _reference(golden_dir, 'Ns')
    path = str(tmp_path / 'ours.pth')
    torch.save(dict(state_dict=ref.state_dict()), path)
    model = _build('Ns')
    with mock.patch('mmengine.logging.print_log') as log:
        load_checkpoint(model, path, strict=True)
    assert not [c for c in log.call_args_list
                if 'official' in str(c.args[0])]
    _assert_same_weights(model, ref)


@pytest.mark.parametrize('given,model_variant', [('Ns', 't'), ('Nm', 'ns'),
                                                 ('T', 'm')])
def test_other_variant_names_the_one_it_fits(golden_dir, given,
                                             model_variant):
    model = _build(model_variant)
    with pytest.raises(StateDictMismatchError) as e:
        load_checkpoint(model,
                        osp.join(golden_dir, f'{given}_ckpt_fp16.pth'))
    msg = str(e.value)
    first, last = msg.splitlines()[0], msg.splitlines()[-1]
    assert first.startswith('the checkpoint does not fit this DAMO-YOLO '
                            'model: ')
    assert e.value.missing or e.value.mismatched
    assert last.strip().startswith(
        f"the checkpoint fits the released variant '{given.lower()}' "
        f'(configs/damoyolo_{given.lower()}_coco.py)')
    # the key lists are capped
    assert len(msg.splitlines()) < 50


@pytest.mark.parametrize('variant', ['Ns', 'Nm', 'Nl', 'T', 'S', 'M', 'L'])
def test_fitting_variant_of_every_release(variant):
    layout = {k: torch.empty(shape, device='meta')
              for k, shape in official_layout(variant).items()}
    assert match_variant(convert_official_state_dict(
        layout, to_float32=False)) == variant.lower()


def test_fits_no_release():
    layout = {k: torch.empty(shape, device='meta')
              for k, shape in official_layout('N').items()}
    model = _build('nl')
    with pytest.raises(StateDictMismatchError) as e:
        model.load_state_dict(layout)
    assert 'fits the released variant' not in str(e.value)


def test_init_detector_takes_an_official_file(golden_dir):
    from mmdet.apis import init_detector
    with warnings.catch_warnings():
        # official files carry no class names: mmdet says it uses COCO's
        warnings.simplefilter('ignore')
        model = init_detector(variant_config('ns'),
                              osp.join(golden_dir, 'Ns_ckpt_fp16.pth'),
                              device='cpu')
    _assert_same_weights(model, _reference(golden_dir, 'Ns'))
    # mmdet's fallback: its COCO names
    assert len(model.dataset_meta['classes']) == 80


def test_converted_checkpoint_carries_dataset_meta(golden_dir, tmp_path):
    dst = str(tmp_path / 'ns.pth')
    meta = convert_official_checkpoint(
        osp.join(golden_dir, 'Ns_ckpt_fp16.pth'), dst,
        Config.fromfile(variant_config('ns')).model)
    saved = torch.load(dst, weights_only=True)['meta']['dataset_meta']
    assert saved == meta['dataset_meta'] == coco_dataset_meta()
    assert len(saved['classes']) == len(saved['palette']) == 80
    assert saved['classes'][0] == 'person'


@pytest.mark.parametrize('which', ['converted', 'trained'])
def test_det_inferencer_labels_with_the_checkpoint_classes(
        golden_dir, tmp_path, which):
    """DetInferencer(model=config, weights=checkpoint): the class names
    are the checkpoint's (COCO for a converted release file, the demo
    classes for the quickstart model), without mmdet's fallback warning."""
    import cv2
    from mmdet.apis import DetInferencer
    if which == 'converted':
        config = variant_config('ns')
        weights = str(tmp_path / 'ns.pth')
        convert_official_checkpoint(
            osp.join(golden_dir, 'Ns_ckpt_fp16.pth'), weights,
            Config.fromfile(config).model)
    else:
        config = osp.join(osp.dirname(osp.dirname(variant_config('ns'))),
                          'configs', 'quickstart',
                          'damoyolo_quickstart.py')
        weights = osp.join(golden_dir, 'quickstart_ns_epoch55.pth')
    expected = torch.load(weights, weights_only=True)['meta'][
        'dataset_meta']['classes']
    golden = torch.load(osp.join(golden_dir, 'Ns_golden.pt'),
                        weights_only=True)
    img = golden['input'][0].permute(1, 2, 0).numpy()[..., ::-1]
    img_path = str(tmp_path / 'img.png')
    cv2.imwrite(img_path, img.astype('uint8'))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        inferencer = DetInferencer(model=config, weights=weights,
                                   device='cpu', show_progress=False)
    assert not [w for w in caught if 'class names' in str(w.message) or
                'dataset_meta' in str(w.message)], \
        [str(w.message) for w in caught]
    assert tuple(inferencer.model.dataset_meta['classes']) == \
        tuple(expected)
    assert tuple(inferencer.visualizer.dataset_meta['classes']) == \
        tuple(expected)
    out = inferencer(img_path, return_datasamples=True, no_save_vis=True)
    labels = out['predictions'][0].pred_instances.labels
    assert len(labels) > 0 and int(labels.max()) < len(expected)
