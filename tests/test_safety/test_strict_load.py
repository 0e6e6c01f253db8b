"""A checkpoint that does not fit a DAMO-YOLO model is refused on every
loading path; deliberate partial loading is declared and logged."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from damoyolo_mm.models.checkpoint import StateDictMismatchError, match_variant
from damoyolo_mm.variants import VARIANTS, variant_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = 'configs/quickstart/damoyolo_quickstart.py'


def _model(variant, **changes):
    cfg = Config.fromfile(variant_config(variant)).model
    for key, value in changes.items():
        node = cfg
        parts = key.split('.')
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return MODELS.build(cfg)


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_every_released_variant_is_recognised(variant):
    model = _model(variant)
    assert match_variant(model.state_dict()) == variant
    assert match_variant(model.switch_to_deploy().state_dict()) == \
        variant + ' (deploy form)'


def test_wrong_variant_and_empty_are_refused(tmp_path):
    ns = _model('ns')
    nm_sd = _model('nm').state_dict()
    with pytest.raises(StateDictMismatchError) as err:
        ns.load_state_dict(nm_sd)
    text = str(err.value)
    assert len(text.splitlines()) <= 6, text
    assert "fits the released variant 'nm'" in text and "'ns'" in text
    assert err.value.mismatched and 'shape mismatch' in text
    # mmengine's non-strict loader (load_from, init_detector) refuses too
    path = str(tmp_path / 'nm.pth')
    torch.save(dict(state_dict=nm_sd), path)
    with pytest.raises(StateDictMismatchError):
        load_checkpoint(ns, path, strict=False)
    torch.save(dict(state_dict={}), path)
    with pytest.raises(StateDictMismatchError, match='holds no weights'):
        load_checkpoint(ns, path, strict=False)


def test_init_detector_refuses_another_variant(tmp_path):
    from mmdet.apis import init_detector
    path = str(tmp_path / 't.pth')
    torch.save(dict(state_dict=_model('nm').state_dict()), path)
    with pytest.raises(StateDictMismatchError, match="'nm'"):
        init_detector(variant_config('ns'), path, device='cpu')


def test_partial_load_skips_the_class_layers(tmp_path, caplog):
    source = _model('ns')  # 80 classes
    with pytest.raises(StateDictMismatchError,
                       match='only the class layers differ'):
        _model('ns', **{'bbox_head.num_classes': 5}).load_state_dict(
            source.state_dict())
    target = _model('ns', **{
        'bbox_head.num_classes': 5,
        'partial_load': dict(skip=[r'bbox_head\.gfl_cls\..*'])
    })
    init_cls = target.bbox_head.gfl_cls[0].weight.detach().clone()
    path = str(tmp_path / 'coco.pth')
    torch.save(dict(state_dict=source.state_dict()), path)
    load_checkpoint(target, path, strict=False)
    # skipped: keeps its initial value; everything else loaded
    assert torch.equal(target.bbox_head.gfl_cls[0].weight, init_cls)
    # torch's strict loading sees no missing key either (the skipped keys
    # load the model's own values)
    target.load_state_dict(source.state_dict(), strict=True)
    assert torch.equal(target.bbox_head.gfl_cls[0].weight, init_cls)
    for key, value in source.state_dict().items():
        if not key.startswith('bbox_head.gfl_cls.'):
            assert torch.equal(target.state_dict()[key], value), key
    # keys under `skip` that fit load as usual (resuming a fine-tuning run)
    tuned = target.state_dict()
    tuned['bbox_head.gfl_cls.0.weight'] = torch.ones_like(
        tuned['bbox_head.gfl_cls.0.weight'])
    target.load_state_dict(tuned)
    assert bool((target.bbox_head.gfl_cls[0].weight == 1).all())
    # other mismatches stay errors
    broken = dict(source.state_dict())
    broken.pop('neck.td_blocks.0.final_conv.bn.running_var')
    with pytest.raises(StateDictMismatchError, match='1 missing'):
        target.load_state_dict(broken)
    with pytest.raises(ValueError, match='partial_load'):
        _model('ns', partial_load=dict(keys=['x']))


def test_tools_test_refuses_another_variant(demo_data_root, tmp_path,
                                            load_tool, capsys):
    import os
    path = str(tmp_path / 'nm.pth')
    torch.save(dict(state_dict=_model('nm').state_dict()), path)
    root = demo_data_root
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        rc = load_tool('test').main([
            QUICKSTART, path, '--work-dir', str(tmp_path / 'work'),
            '--cfg-options', f'test_dataloader.dataset.data_root={root}',
            f'test_evaluator.ann_file={root}annotations/instances_val.json',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False',
            'visualizer.name=strict_load_test'
        ])
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert rc == 1
    assert path in err and "fits the released variant 'nm'" in err, err
