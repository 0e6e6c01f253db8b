"""DAMOYOLO detector: configs, preprocessing, predict / loss, deploy."""
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData
from model_helpers import randomize_bn

from damoyolo_mm.models.detectors import DAMOYOLO
from damoyolo_mm.models.layers import RepConv
from damoyolo_mm.variants import VARIANTS, variant_config

pytestmark = pytest.mark.usefixtures('single_thread')


# per-variant values of the official configs
EXPECTED = {
    'ns': ('TinyNASMob', 'tinynas_nano_small', (2, 4, 5), False, 'SiLU',
           [40, 80, 160], [40, 80, 160], 0.5, 0.5, 'mobile', 7, 1, 0.03,
           0.65, (416, 416)),
    'nm': ('TinyNASMob', 'tinynas_nano_middle', (2, 4, 5), False, 'SiLU',
           [64, 128, 256], [64, 128, 256], 0.5, 0.5, 'mobile', 7, 1, 0.03,
           0.65, (416, 416)),
    'nl': ('TinyNASMob', 'tinynas_nano_large', (2, 4, 5), False, 'SiLU',
           [80, 160, 320], [80, 160, 320], 0.5, 0.5, 'mobile', 7, 1, 0.03,
           0.65, (416, 416)),
    't': ('TinyNASRes', 'tinynas_L20_k1kx', (2, 4, 5), True, 'ReLU',
          [96, 192, 384], [64, 128, 256], 1.0, 1.0, 'rep', 16, 3, 0.05, 0.7,
          (640, 640)),
    's': ('TinyNASRes', 'tinynas_L25_k1kx', (2, 4, 5), True, 'ReLU',
          [128, 256, 512], [128, 256, 512], 1.0, 0.75, 'rep', 16, 3, 0.05,
          0.7, (640, 640)),
    'm': ('TinyNASCSP', 'tinynas_L35_kxkx', (2, 3, 4), True, 'SiLU',
          [128, 256, 512], [128, 256, 512], 1.5, 1.0, 'rep', 16, 3, 0.05,
          0.7, (640, 640)),
    'l': ('TinyNASCSP', 'tinynas_L45_kxkx', (2, 3, 4), True, 'SiLU',
          [128, 256, 512], [128, 256, 512], 2.0, 1.0, 'rep', 16, 3, 0.05,
          0.7, (640, 640)),
}


@pytest.mark.parametrize('variant', list(EXPECTED))
def test_variant_configs(variant):
    (bb_type, structure, out_indices, focus, act, neck_in, neck_out, depth,
     ratio, block, reg_max, kernel, score_thr, iou, size) = EXPECTED[variant]
    cfg = Config.fromfile(variant_config(variant))
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports.imports == ['damoyolo_mm']
    assert tuple(cfg.img_scale) == size == (VARIANTS[variant][1], ) * 2
    m = cfg.model
    assert m.type == 'DAMOYOLO'
    assert m.data_preprocessor == dict(
        type='DetDataPreprocessor', mean=[0., 0., 0.], std=[1., 1., 1.],
        bgr_to_rgb=True, pad_size_divisor=32)
    bb = m.backbone
    assert (bb.type, bb.structure, tuple(bb.out_indices), bb.use_focus,
            bb.act_cfg.type) == (bb_type, structure, out_indices, focus, act)
    assert bb.with_spp is True
    assert bb.norm_cfg == dict(type='BN', momentum=0.03, eps=0.001)
    if bb_type != 'TinyNASMob':
        assert bb.reparam is True
    else:
        assert bb.depthwise is True and bb.use_se is False
    nk = m.neck
    assert (nk.type, nk.in_channels, nk.out_channels, nk.depth,
            nk.hidden_ratio, nk.block_type, nk.act_cfg.type) == (
                'RepGFPN', neck_in, neck_out, depth, ratio, block, act)
    hd = m.bbox_head
    assert (hd.type, hd.in_channels, hd.reg_max, hd.last_kernel_size,
            hd.stacked_convs, tuple(hd.strides), hd.num_classes) == (
                'ZeroHead', neck_out, reg_max, kernel, 0, (8, 16, 32), 80)
    assert m.test_cfg.score_thr == score_thr
    assert m.test_cfg.nms == dict(type='nms', iou_threshold=iou)
    assert m.test_cfg.max_per_img == 500
    assert m.train_cfg.assigner.type == 'AlignOTAAssigner'


def test_preprocessor_pads_to_32():
    cfg = Config.fromfile(variant_config('ns'))
    model = MODELS.build(cfg.model)
    img = torch.randint(0, 256, (3, 100, 130), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(100, 130),
                                         ori_shape=(100, 130)))
    data = model.data_preprocessor(
        dict(inputs=[img], data_samples=[sample]), training=False)
    x = data['inputs']
    assert x.shape == (1, 3, 128, 160) and x.dtype == torch.float32
    # BGR -> RGB, raw 0..255 values, zero padding right / bottom
    assert torch.equal(x[0, :, :100, :130], img.flip(0).float())
    assert x[0, :, 100:].abs().sum() == 0 and x[0, :, :, 130:].abs().sum() == 0
    assert data['data_samples'][0].batch_input_shape == (128, 160)


def _sample(h, w, scale=(1.0, 1.0)):
    return DetDataSample(metainfo=dict(
        img_shape=(h, w), ori_shape=(int(h / scale[1]), int(w / scale[0])),
        scale_factor=scale, batch_input_shape=(h, w), pad_shape=(h, w)))


def test_predict_and_loss_ns():
    torch.manual_seed(0)
    cfg = Config.fromfile(variant_config('ns'))
    cfg.model.test_cfg.update(score_thr=0.0, max_per_img=7)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert isinstance(model, DAMOYOLO)
    model.eval()
    x = torch.rand(2, 3, 64, 96) * 255
    with torch.no_grad():
        results = model.predict(
            x, [_sample(64, 96, (2.0, 2.0)),
                _sample(64, 96)], rescale=True)
    assert len(results) == 2
    for r in results:
        assert r.pred_instances.bboxes.shape == (7, 4)
        assert r.pred_instances.labels.max() < 80
    # rescale divides by the scale factor of each image
    with torch.no_grad():
        raw = model.predict(x[:1], [_sample(64, 96)], rescale=False)
    torch.testing.assert_close(results[0].pred_instances.bboxes * 2,
                               raw[0].pred_instances.bboxes)
    # training step on the same model
    model.train()
    gt = InstanceData(bboxes=torch.tensor([[10., 12., 50., 40.],
                                           [60., 5., 90., 60.]]),
                      labels=torch.tensor([3, 17]))
    samples = [_sample(64, 96), _sample(64, 96)]
    for s in samples:
        s.gt_instances = gt
    losses = model.loss(x, samples)
    assert set(losses) >= {'loss_cls', 'loss_bbox', 'loss_dfl'}
    total = sum(v for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('variant', ['s', 'm'])
def test_switch_to_deploy_equivalence(variant):
    torch.manual_seed(0)
    cfg = Config.fromfile(variant_config(variant))
    model = randomize_bn(MODELS.build(cfg.model)).eval()
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        s1, b1 = model.bbox_head.predict_raw(model.extract_feat(x))
        assert model.switch_to_deploy() is model
        model.switch_to_deploy()  # idempotent
        s2, b2 = model.bbox_head.predict_raw(model.extract_feat(x))
    assert model.deploy
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    reps = [m for m in model.modules() if isinstance(m, RepConv)]
    assert reps and all(m.deploy and not hasattr(m, 'rbr_dense')
                        for m in reps)
    assert (s1 - s2).abs().max() < 1e-4
    assert (b1 - b2).abs().max() < 1e-3
    # a model built with deploy=True has the same state-dict layout
    cfg.model.deploy = True
    built = MODELS.build(cfg.model)
    assert {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}
