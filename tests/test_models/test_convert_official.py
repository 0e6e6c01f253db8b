"""Official checkpoint conversion: key coverage of every variant, refusal of
wrong / partial checkpoints, checkpoint files, the command line tool."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from damo_official_layout import official_layout
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from damoyolo_mm.analysis import reparameterize
from damoyolo_mm.converters import (CheckpointMismatchError,
                                    convert_official_checkpoint,
                                    convert_official_state_dict,
                                    official_key_to_ours)
from damoyolo_mm.variants import variant_config

pytestmark = pytest.mark.usefixtures('single_thread')


# official facts: state-dict key counts and parameter counts (training
# structure, after RepConv re-parameterisation)
OFFICIAL = {
    'Ns': (526, 1405691, 1405691),
    'Nm': (526, 2707219, 2707219),
    'Nl': (544, 5688579, 5688579),
    'N': (526, 2347347, 2347347),
    'T': (586, 8875727, 8479631),
    'S': (640, 16935647, 16251631),
    'M': (844, 29241727, 28178175),
    'L': (1114, 43861759, 42058111),
}


def build_variant(variant):
    if variant == 'N':  # released without a README row; built from Nl
        cfg = Config.fromfile(variant_config('nl'))
        cfg.model.backbone.update(structure='tinynas_L20_k1kx_nano',
                                  use_focus=True)
        cfg.model.neck.update(in_channels=[80, 112, 160],
                              out_channels=[64, 128, 256])
        cfg.model.bbox_head.update(in_channels=[64, 128, 256],
                                   last_kernel_size=3)
    else:
        cfg = Config.fromfile(variant_config(variant))
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('variant', list(OFFICIAL))
def test_official_layout_converts_exactly(variant):
    """A state dict with the official key names / shapes (derived from the
    official module structure) covers the model with no unmatched key."""
    num_keys, params_train, params_deploy = OFFICIAL[variant]
    layout = official_layout(variant)
    assert len(layout) == num_keys
    model = build_variant(variant)
    official = {
        k: torch.full(s, float(i % 7), dtype=torch.float16)
        if k.split('.')[-1] != 'num_batches_tracked' else torch.tensor(i)
        for i, (k, s) in enumerate(layout.items())
    }
    ours = convert_official_state_dict(official, model.state_dict())
    assert list(ours) == list(model.state_dict())
    assert len(ours) == num_keys
    model.load_state_dict(ours, strict=True)
    # values travel with their key (fp16 -> fp32)
    for i, (k, s) in enumerate(layout.items()):
        v = ours[official_key_to_ours(k)]
        if not k.endswith('num_batches_tracked'):
            assert v.dtype == torch.float32 and float(v.flatten()[0]) == i % 7
    assert sum(p.numel() for p in model.parameters()) == params_train
    reparameterize(model)
    assert sum(p.numel() for p in model.parameters()) == params_deploy


def test_key_mapping_examples():
    m = official_key_to_ours
    assert m('backbone.block_list.0.conv.conv.weight') == \
        'backbone.stem.conv.conv.weight'
    assert m('module.backbone.block_list.0.conv.bn1.running_var') == \
        'backbone.stem.bn.running_var'
    assert m('backbone.block_list.2.block_list.1.conv2.rbr_1x1.bn.bias') == \
        'backbone.stage2.1.conv2.rbr_1x1.bn.bias'
    assert m('backbone.block_list.4.block_list.0.residual_proj.conv1.weight'
             ) == 'backbone.stage4.0.shortcut_conv.conv.weight'
    assert m('backbone.block_list.3.block_list.0.conv.7.weight') == \
        'backbone.stage3.0.project.conv.weight'
    assert m('backbone.block_list.1.block_list.0.conv.5.fc.0.weight') == \
        'backbone.stage1.0.se.fc1.weight'
    assert m('backbone.csp_stage.3.convstem.5.conv1.bn1.weight') == \
        'backbone.stage3.blocks.5.conv1.bn.weight'
    assert m('backbone.csp_stage.2.conv_shortcut.conv.conv1.weight') == \
        'backbone.stage2.short_conv.conv.weight'
    assert m('neck.bu_conv46.dwnorm.running_mean') == \
        'neck.bu_skip_downsample.depthwise_conv.bn.running_mean'
    assert m('neck.merge_4.convs.1.conv.conv.7.num_batches_tracked') == \
        'neck.td_blocks.1.blocks.1.project.bn.num_batches_tracked'
    assert m('neck.merge_6.convs.0.conv2.rbr_dense.conv.weight') == \
        'neck.bu_blocks.1.blocks.0.rep_conv.rbr_dense.conv.weight'
    assert m('head.scales.2.scale') == 'bbox_head.scales.2.scale'
    assert m('head.integral.project') == 'bbox_head.integral.project'
    assert m('neck.merge_9.conv1.conv.weight') is None
    assert m('backbone.block_list.1.block_list.0.conv9.weight') is None


def test_se_keys_exist_in_se_model():
    from damoyolo_mm.models.backbones import TinyNASMob
    keys = set(TinyNASMob(structure='tinynas_nano_small',
                          use_se=True).state_dict())
    for k in ('conv.5.fc.0.weight', 'conv.5.fc.2.weight'):
        ours = official_key_to_ours(f'backbone.block_list.2.block_list.1.{k}')
        assert ours[len('backbone.'):] in keys


@pytest.fixture(scope='module')
def ns_official(golden_dir):
    return torch.load(osp.join(golden_dir, 'Ns_ckpt_fp16.pth'),
                      weights_only=True)['model']


def test_partial_or_extra_keys_are_listed(ns_official):
    model = build_variant('Ns')
    partial = dict(ns_official)
    del partial['neck.merge_5.conv3.bn.running_var']
    del partial['head.gfl_cls.1.bias']
    partial['backbone.block_list.9.block_list.0.conv.0.weight'] = \
        torch.zeros(1)
    partial['neck.extra.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as e:
        convert_official_state_dict(partial, model.state_dict())
    msg = str(e.value)
    assert set(e.value.missing) == {
        'neck.td_blocks.0.final_conv.bn.running_var',
        'bbox_head.gfl_cls.1.bias'
    }
    assert set(e.value.unexpected) == {
        'backbone.block_list.9.block_list.0.conv.0.weight',
        'neck.extra.weight'
    }
    for k in e.value.missing + e.value.unexpected:
        assert k in msg
    assert 'missing' in msg and 'unexpected' in msg
    assert isinstance(e.value, ValueError)


def test_wrong_variant_is_refused(ns_official):
    model = build_variant('Nm')
    with pytest.raises(CheckpointMismatchError) as e:
        convert_official_state_dict(ns_official, model.state_dict())
    assert e.value.shape_mismatch and e.value.missing
    assert 'shape mismatch' in str(e.value)


def test_module_prefix_and_fp16(ns_official):
    model = build_variant('Ns')
    prefixed = {'module.' + k: v for k, v in ns_official.items()}
    ours = convert_official_state_dict(prefixed, model.state_dict())
    k = 'neck.merge_3.conv1.conv.weight'
    assert torch.equal(ours[official_key_to_ours(k)],
                       ns_official[k].float())
    assert ours['bbox_head.integral.project'].tolist() == list(range(8))


def test_checkpoint_file_and_fused_form(golden_dir, tmp_path):
    src = osp.join(golden_dir, 'Ns_ckpt_fp16.pth')
    cfg = Config.fromfile(variant_config('ns'))
    dst = str(tmp_path / 'ns.pth')
    meta = convert_official_checkpoint(src, dst, cfg.model)
    fused_dst = str(tmp_path / 'ns_fused.pth')
    convert_official_checkpoint(src, fused_dst, cfg.model, fuse=True)
    assert sorted(os.listdir(tmp_path)) == ['ns.pth', 'ns_fused.pth']
    assert meta['deploy'] is False and meta['num_official_keys'] == 526
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {'meta', 'state_dict'}
    assert ckpt['meta']['source_dtypes'] == ['torch.float16']

    golden = torch.load(osp.join(golden_dir, 'Ns_golden.pt'),
                        weights_only=True)
    x = golden['input'][..., :128, :160]
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, dst, strict=True)
    cfg.model.deploy = True
    deployed = MODELS.build(cfg.model).eval()
    load_checkpoint(deployed, fused_dst, strict=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in deployed.modules())
    with torch.no_grad():
        s1, b1 = model.bbox_head.predict_raw(model.extract_feat(x))
        s2, b2 = deployed.bbox_head.predict_raw(deployed.extract_feat(x))
    assert (s1 - s2).abs().max() < 1e-4
    assert (b1 - b2).abs().max() < 1e-3


def test_refused_conversion_writes_nothing(golden_dir, tmp_path):
    src = osp.join(golden_dir, 'Ns_ckpt_fp16.pth')
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'previous')
    cfg = Config.fromfile(variant_config('t'))
    with pytest.raises(CheckpointMismatchError):
        convert_official_checkpoint(src, str(dst), cfg.model)
    assert dst.read_bytes() == b'previous'
    assert os.listdir(tmp_path) == ['out.pth']
    with pytest.raises(FileNotFoundError):
        convert_official_checkpoint(str(tmp_path / 'none.pth'), str(dst),
                                    cfg.model)
    bad = tmp_path / 'bad.pth'
    torch.save({'optimizer': {}, 'epoch': 3}, bad)
    with pytest.raises(ValueError, match="no 'model' state dict"):
        convert_official_checkpoint(str(bad), str(dst), cfg.model)


def _tool(repo_root):
    sys.path.insert(0, osp.join(repo_root, 'tools'))
    try:
        import convert_official
    finally:
        sys.path.pop(0)
    return convert_official


def test_tool_main(golden_dir, repo_root, tmp_path, capsys):
    tool = _tool(repo_root)
    src = osp.join(golden_dir, 'Ns_ckpt_fp16.pth')
    dst = str(tmp_path / 'a.pth')
    assert tool.main([src, dst, '--variant', 'Ns']) == 0
    assert 'converted 526 official tensors' in capsys.readouterr().out
    assert torch.load(dst, weights_only=True)['meta']['config'].endswith(
        'damoyolo_ns_coco.py')
    rc = tool.main([src, str(tmp_path / 'b.pth'), '--config',
                    variant_config('nm')])
    err = capsys.readouterr().err
    assert rc == 1 and 'missing' in err and 'nothing written' in err
    assert not osp.exists(tmp_path / 'b.pth')
    with pytest.raises(SystemExit):
        tool.parse_args([src, dst])  # neither --config nor --variant


def test_tool_cli_help(repo_root):
    out = subprocess.run(
        [sys.executable, osp.join(repo_root, 'tools', 'convert_official.py'),
         '--help'], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert '--fuse' in out.stdout and '--variant' in out.stdout
