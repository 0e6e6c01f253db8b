"""``deploy_meta.json``: what running a deployed model needs, beside it.

``tools/deploy.py`` writes it next to ``end2end.onnx`` / ``.xml`` /
``.engine`` so that a deployed model is usable from its work dir alone (no
model config): the input (name, size, static or dynamic), the model's test
preprocessing (resize rule, padding and its value, mean / std, channel
order), the post-processing in the graph (NMS settings, output names), the
class names with a palette, and the precision.

The preprocessing is read from the model config's test pipeline
(``test_dataloader.dataset.pipeline``, else ``test_pipeline``) and its
``data_preprocessor``, and refused when the pipeline holds a step the
deployed predictor does not reproduce (:data:`KNOWN_TEST_STEPS`).

Reading (:func:`load_deploy_meta`) imports nothing but the standard
library; writing is called with the configs (mmengine ``Config`` or dicts).
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: file name beside the deployed model
META_FILE = 'deploy_meta.json'
#: format tag of the file (bumped on incompatible changes)
META_FORMAT = 'damoyolo_mm.deploy_meta/1'
#: test-pipeline steps the deployed predictor reproduces (the others raise)
KNOWN_TEST_STEPS = ('LoadImageFromFile', 'LoadImageFromNDArray',
                    'LoadAnnotations', 'Resize', 'Pad', 'PackDetInputs')


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if hasattr(cfg, 'get') else default


def test_pipeline_of(model_cfg) -> Sequence[Dict]:
    """The pipeline ``tools/test.py`` runs: the test dataloader's, else
    ``test_pipeline``."""
    loader = _get(model_cfg, 'test_dataloader') or {}
    pipeline = _get(_get(loader, 'dataset', {}), 'pipeline')
    if pipeline is None:
        pipeline = _get(model_cfg, 'test_pipeline')
    if not pipeline:
        raise KeyError('model config has neither '
                       'test_dataloader.dataset.pipeline nor test_pipeline')
    return pipeline


def preprocess_of(model_cfg) -> Dict[str, Any]:
    """The test preprocessing of a model config as plain data, in the
    order mmdet applies it.

    Returns:
        dict: ``resize`` (``scale`` (w, h), ``keep_ratio``,
        ``interpolation``: mmdet's ``Resize``), ``pad`` (the pipeline's
        ``Pad``, on the uint8 image: ``size`` (w, h) or None,
        ``size_divisor``, ``pad_value``; None without a ``Pad``),
        ``bgr_to_rgb`` (images are decoded BGR, as OpenCV does), ``mean``,
        ``std`` (per channel, after the channel swap), ``batch_pad``
        (``size_divisor``, ``pad_value``: the data preprocessor's padding
        of the normalised image, bottom / right).
    """
    resize = None
    pad = None
    for step in test_pipeline_of(model_cfg):
        kind = str(_get(step, 'type')).split('.')[-1]  # 'mmdet.Resize'
        if kind not in KNOWN_TEST_STEPS:
            raise ValueError(
                f'test pipeline step {kind!r} is not reproduced by the '
                'deployed predictor (it knows '
                f'{", ".join(KNOWN_TEST_STEPS)}); remove it from the test '
                'pipeline or run the model with its config and checkpoint')
        if kind == 'Resize':
            scale = _get(step, 'scale')
            if isinstance(scale, (int, float)):
                scale = (scale, scale)
            if not scale:
                raise ValueError('test pipeline Resize has no scale; set '
                                 'Resize.scale=(w, h)')
            resize = dict(scale=[int(scale[0]), int(scale[1])],
                          keep_ratio=bool(_get(step, 'keep_ratio', False)),
                          interpolation=_get(step, 'interpolation',
                                             'bilinear'))
        elif kind == 'Pad':
            size = _get(step, 'size')
            pv = _get(step, 'pad_val', 0)
            pad = dict(size=[int(size[0]), int(size[1])] if size else None,
                       size_divisor=int(_get(step, 'size_divisor') or 1),
                       pad_value=float(_get(pv, 'img', 0) if hasattr(
                           pv, 'get') else pv))
        elif kind == 'LoadImageFromFile':
            color = _get(step, 'color_type', 'color')
            if color != 'color':
                raise ValueError(f'LoadImageFromFile.color_type={color!r}: '
                                 "the predictor decodes 'color' images only")
    if resize is None:
        raise ValueError('the test pipeline has no Resize; the deployed '
                         'predictor needs the network input size')
    dp = _get(_get(model_cfg, 'model', {}), 'data_preprocessor', {}) or {}
    mean = _get(dp, 'mean')
    std = _get(dp, 'std')
    return dict(
        resize=resize,
        pad=pad,
        bgr_to_rgb=bool(_get(dp, 'bgr_to_rgb', False)),
        mean=[float(v) for v in mean] if mean is not None else [0., 0., 0.],
        std=[float(v) for v in std] if std is not None else [1., 1., 1.],
        batch_pad=dict(
            size_divisor=int(_get(dp, 'pad_size_divisor', 1) or 1),
            pad_value=float(_get(dp, 'pad_value', 0) or 0)))


def classes_of(model_cfg) -> Tuple[List[str], Optional[List[List[int]]]]:
    """Class names (and palette, if the dataset states one) of the test
    dataset: its ``metainfo``, else the dataset class's ``METAINFO``."""
    loader = _get(model_cfg, 'test_dataloader') or {}
    dataset = _get(loader, 'dataset', {}) or {}
    meta = dict(_get(dataset, 'metainfo') or {})
    if 'classes' not in meta and _get(dataset, 'type'):
        from mmdet.registry import DATASETS
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        cls = DATASETS.get(_get(dataset, 'type'))
        meta = dict(getattr(cls, 'METAINFO', {}) or {}, **meta)
    classes = [str(c) for c in meta.get('classes', ())]
    palette = meta.get('palette')
    if palette is not None:
        palette = [[int(v) for v in c] for c in palette]
    return classes, palette


def default_palette(n: int) -> List[List[int]]:
    """``n`` well separated RGB colours (golden-ratio hues)."""
    import colorsys
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1, 0.85,
                                      0.95)
        out.append([int(r * 255), int(g * 255), int(b * 255)])
    return out


def build_deploy_meta(deploy_cfg, model_cfg, model_file: str,
                      precision: str = 'fp32',
                      sources: Optional[Dict[str, str]] = None
                      ) -> Dict[str, Any]:
    """The metadata of ``model_file`` exported with these configs."""
    from .export import get_backend_name, get_input_hw, get_test_cfg
    backend = get_backend_name(deploy_cfg)
    onnx_cfg = _get(deploy_cfg, 'onnx_config', {})
    h, w = get_input_hw(deploy_cfg, model_cfg)
    dynamic = bool(_get(onnx_cfg, 'dynamic_axes')) and _get(
        onnx_cfg, 'input_shape') is None
    test_cfg = get_test_cfg(model_cfg)
    pre = preprocess_of(model_cfg)
    classes, palette = classes_of(model_cfg)
    num_classes = _get(_get(_get(model_cfg, 'model', {}), 'bbox_head', {}),
                       'num_classes')
    if num_classes is not None and classes and len(classes) != num_classes:
        raise ValueError(
            f'the test dataset names {len(classes)} classes but '
            f'model.bbox_head.num_classes={num_classes}; set '
            'test_dataloader.dataset.metainfo.classes')
    if not classes:
        classes = [str(i) for i in range(int(num_classes or 0))]
    if palette is None or len(palette) < len(classes):
        palette = default_palette(len(classes))
    if backend == 'tensorrt':
        outputs = ['num_dets', 'det_boxes', 'det_scores', 'det_classes']
    else:
        outputs = list(_get(onnx_cfg, 'output_names', ['dets', 'labels']))
    nms = _get(test_cfg, 'nms', {}) or {}
    return dict(
        format=META_FORMAT,
        model_file=osp.basename(model_file),
        backend=backend,
        precision=precision,
        input=dict(
            name=list(_get(onnx_cfg, 'input_names', ['input']))[0],
            shape=[1 if not dynamic else None, 3, h, w],
            dynamic=dynamic,
            layout='NCHW',
            dtype='float32'),
        preprocess=pre,
        postprocess=dict(
            nms_in_graph=True,
            outputs=outputs,
            score_thr=float(_get(test_cfg, 'score_thr', 0.)),
            nms=dict(type=_get(nms, 'type', 'nms'),
                     iou_threshold=float(_get(nms, 'iou_threshold', 0.))),
            max_per_img=int(_get(test_cfg, 'max_per_img', 100)),
            boxes='x1y1x2y2 in network-input pixels; divide by the resize '
            'scale factor (w, h) for original-image pixels'),
        classes=classes,
        palette=palette[:len(classes)],
        sources=dict(sources or {}))


def write_deploy_meta(meta: Dict[str, Any], work_dir: str) -> str:
    """Write ``WORK_DIR/deploy_meta.json`` atomically; its path."""
    from damoyolo_mm.utils.fileio import atomic_open
    path = osp.join(work_dir, META_FILE)
    with atomic_open(path, 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2)
        f.write('\n')
    return path


def load_deploy_meta(model_file: str) -> Dict[str, Any]:
    """The metadata beside ``model_file`` (``deploy_meta.json``).

    Raises:
        FileNotFoundError: no metadata file, saying how to make one.
        ValueError: unreadable file or one of another format.
    """
    path = osp.join(osp.dirname(osp.abspath(model_file)), META_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: a deployed model needs the metadata that '
            f'tools/deploy.py writes beside {osp.basename(model_file)}; '
            're-export it with tools/deploy.py (same deploy config, model '
            'config and checkpoint) or copy deploy_meta.json from its work '
            'dir')
    try:
        with open(path, encoding='utf-8') as f:
            meta = json.load(f)
    except ValueError as e:
        raise ValueError(f'{path} is not valid JSON ({e}); re-export the '
                         'model with tools/deploy.py') from None
    if not isinstance(meta, dict) or meta.get('format') != META_FORMAT:
        raise ValueError(f'{path}: format {meta.get("format") if isinstance(meta, dict) else None!r}, '
                         f'expected {META_FORMAT!r}; re-export the model '
                         'with tools/deploy.py')
    return meta


__all__ = [
    'META_FILE', 'META_FORMAT', 'KNOWN_TEST_STEPS', 'test_pipeline_of',
    'preprocess_of', 'classes_of', 'default_palette', 'build_deploy_meta',
    'write_deploy_meta', 'load_deploy_meta'
]
