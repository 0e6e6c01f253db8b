"""Deploy config + model config + checkpoint -> ``end2end.onnx`` / ``.engine``.

A small replacement of MMDeploy's ``torch2onnx`` pipeline (which MMDeploy's
wheel ships without its ``tools/deploy.py``) with the checks DAMO-YOLO needs:

* the backend is one this package supports and its Python package imports
  (else an ImportError says what to install);
* the input size is a multiple of 32;
* the deploy ``post_processing`` equals the model's ``test_cfg`` (score
  threshold, IoU threshold, detections per image), so that the exported
  model gives the detections of ``tools/test.py``;
* the checkpoint fits the model exactly (keys and shapes), and the model
  is switched to its deploy form (``switch_to_deploy()``: RepConv
  re-parameterisation, conv+BN folding) before export.

ONNX Runtime goes through MMDeploy's exporter and the rewriters of
:mod:`damoyolo_mm.deploy.rewriters`; TensorRT through
:mod:`damoyolo_mm.deploy.tensorrt` (``EfficientNMS_TRT``, TensorRT 10 API).
"""
import contextlib
import os
import os.path as osp
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .compat import INSTALL_HINTS, apply, check_tensorrt, require

SUPPORTED_BACKENDS = ('onnxruntime', 'openvino', 'tensorrt')


def _cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if hasattr(cfg, 'get') else default


def load_configs(deploy_cfg, model_cfg):
    """Load both configs (paths or Config objects), importing damoyolo_mm."""
    from mmdeploy.utils import load_config
    for name, cfg in (('deploy config', deploy_cfg), ('model config',
                                                      model_cfg)):
        if isinstance(cfg, str) and not osp.isfile(cfg):
            raise FileNotFoundError(f'{name} {cfg} not found')
    return load_config(deploy_cfg, model_cfg)


def get_backend_name(deploy_cfg) -> str:
    """The backend of a deploy config, checked against the supported ones."""
    backend_cfg = _cfg_get(deploy_cfg, 'backend_config')
    if backend_cfg is None or 'type' not in backend_cfg:
        raise KeyError('deploy config has no backend_config.type (expected '
                       f'one of {SUPPORTED_BACKENDS})')
    backend = backend_cfg['type']
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(
            f'backend_config.type="{backend}" is not supported by '
            f'damoyolo_mm.deploy; supported: {SUPPORTED_BACKENDS} (ONNX '
            'Runtime on CPU/GPU, TensorRT 10 on NVIDIA GPUs)')
    return backend


def check_backend_available(backend: str,
                            build_engine: bool = True,
                            fp16: bool = True,
                            precision: str = 'fp32') -> None:
    """Raise ImportError / RuntimeError naming what to install.

    Args:
        backend (str): ``onnxruntime``, ``openvino`` or ``tensorrt``.
        build_engine (bool): TensorRT: an engine will be built (needs the
            tensorrt package and a GPU); False for an ONNX-only export.
        fp16 (bool): TensorRT: FP16 engine requested.
        precision (str): ``'int8'``: the quantizer (ONNX Runtime) is needed
            too.
    """
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f'backend "{backend}" is not supported; supported: '
                         f'{SUPPORTED_BACKENDS}')
    require('onnx')
    if precision == 'int8':
        require('onnxruntime')  # the quantizer
    if backend == 'onnxruntime':
        require('onnxruntime')
    elif backend == 'openvino':
        require('openvino')
    elif build_engine:
        check_tensorrt(fp16=fp16)


def get_test_cfg(model_cfg) -> Dict:
    """The detector's test_cfg (``model.test_cfg`` or the head's)."""
    model = model_cfg['model']
    test_cfg = _cfg_get(model, 'test_cfg')
    if test_cfg is None:
        test_cfg = _cfg_get(_cfg_get(model, 'bbox_head', {}), 'test_cfg')
    if test_cfg is None:
        raise KeyError('model config has neither model.test_cfg nor '
                       'model.bbox_head.test_cfg')
    return test_cfg


def check_post_processing(deploy_cfg, model_cfg) -> List[str]:
    """Deploy ``post_processing`` must reproduce the model's ``test_cfg``.

    Returns:
        list[str]: notes on pre-NMS limits (not errors).

    Raises:
        ValueError: listing every disagreeing value and how to fix it.
    """
    test_cfg = get_test_cfg(model_cfg)
    post = _cfg_get(_cfg_get(deploy_cfg, 'codebase_config', {}),
                    'post_processing')
    if post is None:
        raise KeyError('deploy config has no codebase_config.post_processing')
    nms = _cfg_get(test_cfg, 'nms', {}) or {}
    pairs = [
        ('score_threshold', _cfg_get(post, 'score_threshold'), 'score_thr',
         _cfg_get(test_cfg, 'score_thr')),
        ('iou_threshold', _cfg_get(post, 'iou_threshold'),
         'nms.iou_threshold', _cfg_get(nms, 'iou_threshold')),
        ('keep_top_k', _cfg_get(post, 'keep_top_k'), 'max_per_img',
         _cfg_get(test_cfg, 'max_per_img')),
    ]
    problems = []
    for pkey, pval, tkey, tval in pairs:
        if pval is None or tval is None or abs(float(pval) -
                                               float(tval)) > 1e-9:
            problems.append(f'post_processing.{pkey}={pval} vs '
                            f'test_cfg.{tkey}={tval}')
    keep = _cfg_get(test_cfg, 'max_per_img', 0) or 0
    per_class = _cfg_get(post, 'max_output_boxes_per_class')
    if per_class is None or int(per_class) < int(keep):
        problems.append(f'post_processing.max_output_boxes_per_class='
                        f'{per_class} < test_cfg.max_per_img={keep}')
    notes = []
    pre_top_k = _cfg_get(post, 'pre_top_k', -1)
    nms_pre = _cfg_get(test_cfg, 'nms_pre', -1)
    if pre_top_k is not None and pre_top_k > 0:
        notes.append(f'post_processing.pre_top_k={pre_top_k} keeps the '
                     'best priors (by max class score) before NMS; the '
                     'PyTorch model has no such step, results can differ')
    if nms_pre is not None and nms_pre > 0:
        notes.append(f'test_cfg.nms_pre={nms_pre}: the exported graph has '
                     'no pre-NMS candidate limit; it gives the PyTorch '
                     f'detections whenever an image has <= {nms_pre} '
                     '(prior, class) candidates above the score threshold')
    if problems:
        raise ValueError(
            'deploy post_processing does not match the model test_cfg, the '
            'exported model would not give the PyTorch detections: '
            + '; '.join(problems) + '. Use the deploy config made for this '
            'model (configs/deploy/*_nano.py for Ns/Nm/Nl/N: score 0.03, '
            'IoU 0.65; the others for T/S/M/L: score 0.05, IoU 0.7) or edit '
            'codebase_config.post_processing.')
    return notes


def get_input_hw(deploy_cfg, model_cfg=None) -> Tuple[int, int]:
    """(height, width) to export at; checked to be multiples of 32.

    ``onnx_config.input_shape`` is MMDeploy's ``(width, height)``; when it
    is None (dynamic configs) the model's test size (its ``Resize`` scale)
    is used, else 640x640.
    """
    from .tensorrt import check_input_shape
    shape = _cfg_get(_cfg_get(deploy_cfg, 'onnx_config', {}), 'input_shape')
    if shape is not None:
        w, h = (int(v) for v in shape)
    else:
        h = w = 640
        if model_cfg is not None:
            for step in _cfg_get(model_cfg, 'test_pipeline', []) or []:
                if _cfg_get(step, 'type') == 'Resize' and \
                        _cfg_get(step, 'scale') is not None:
                    w, h = (int(v) for v in step['scale'])
    check_input_shape(h, w)
    return h, w


def build_model(model_cfg, checkpoint: Optional[str],
                device: str = 'cpu') -> torch.nn.Module:
    """The detector with its checkpoint, in deploy (fused) form, eval mode.

    Like MMDeploy's ``build_pytorch_model`` (which refuses a CPU device for
    the TensorRT backend) but loads the checkpoint strictly: a checkpoint
    of another variant fails here instead of exporting random weights.
    """
    import copy

    from mmdet.registry import MODELS
    from mmengine.model import revert_sync_batchnorm
    if isinstance(model_cfg, str):
        from mmengine.config import Config
        model_cfg = Config.fromfile(model_cfg)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} not found')
    cfg = copy.deepcopy(model_cfg['model'])
    cfg.pop('pretrained', None)
    model = MODELS.build(cfg)
    if checkpoint is not None:
        _load_strict(model, checkpoint, _name(model_cfg))
    model = revert_sync_batchnorm(model).eval()
    switch = getattr(model, 'switch_to_deploy', None)
    if not callable(switch):
        raise TypeError(f'{type(model).__name__} has no switch_to_deploy(); '
                        'damoyolo_mm.deploy exports DAMOYOLO detectors')
    switch()
    return model.to(device).eval()


def _load_strict(model: torch.nn.Module, checkpoint: str, cfg_name: str):
    """Load a checkpoint whose keys and shapes must fit the model exactly,
    through mmengine's ``load_checkpoint`` and so the detector's own loading
    (official DAMO-YOLO files converted in memory, the strict check).

    Raises:
        ValueError: the detector's mismatch error; for a checkpoint saved
            in deploy form into a model that is not, with the fix first.
    """
    from mmengine.runner import load_checkpoint

    from damoyolo_mm.models.checkpoint import StateDictMismatchError
    try:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    except StateDictMismatchError as e:
        own_bn = [k for k in model.state_dict() if '.bn.' in k]
        missing_bn = [k for k in e.missing if '.bn.' in k]
        if not own_bn or len(missing_bn) != len(own_bn):
            raise
        first, *rest = str(e).splitlines()
        raise ValueError('\n'.join([
            f'checkpoint {checkpoint} does not fit the model of {cfg_name}: '
            f'{first}; it looks saved in deploy form (BatchNorm folded): '
            'build the model with model.deploy=True (tools/deploy.py '
            '--cfg-options model.deploy=True)'] + rest)) from None


def _data_samples(batch: int, h: int, w: int) -> List[Any]:
    from mmdet.structures import DetDataSample
    samples = []
    for _ in range(batch):
        s = DetDataSample()
        s.set_metainfo(
            dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.),
                 pad_shape=(h, w), batch_input_shape=(h, w)))
        samples.append(s)
    return samples


def export_onnx(deploy_cfg,
                model_cfg,
                checkpoint: Optional[str],
                work_dir: str,
                img: Optional[str] = None,
                inputs: Optional[torch.Tensor] = None,
                device: str = 'cpu',
                model: Optional[torch.nn.Module] = None,
                log: Callable[[str], None] = print) -> str:
    """Export the end-to-end ONNX named by the deploy config.

    Args:
        deploy_cfg (str | Config): Deploy config.
        model_cfg (str | Config): Model config.
        checkpoint (str, optional): Checkpoint (mmdet layout).
        work_dir (str): Output folder.
        img (str, optional): Image to trace with (through the model's test
            pipeline); default a zero image of the export size.
        inputs (Tensor, optional): Pre-processed network input to trace
            with (overrides ``img``).
        device (str): Device to build the model on.
        model (nn.Module, optional): An already built deploy-form model
            (skips building / checkpoint loading).
        log (callable): Progress printer.

    Returns:
        str: Path of the written ``.onnx``.
    """
    require('mmdeploy')
    apply()
    from . import rewriters  # noqa: F401  (registers the rewriters)
    deploy_cfg, model_cfg = load_configs(deploy_cfg, model_cfg)
    backend = get_backend_name(deploy_cfg)
    require('onnx')
    for note in check_post_processing(deploy_cfg, model_cfg):
        log(f'[deploy] note: {note}')
    h, w = get_input_hw(deploy_cfg, model_cfg)
    if inputs is not None:
        if inputs.dim() != 4 or inputs.shape[1] != 3:
            raise ValueError(f'inputs must be (B, 3, H, W), got '
                             f'{tuple(inputs.shape)}')
        from .tensorrt import check_input_shape
        check_input_shape(*inputs.shape[-2:])
        h, w = (int(v) for v in inputs.shape[-2:])
    onnx_cfg = deploy_cfg['onnx_config']
    save_file = onnx_cfg.get('save_file', 'end2end.onnx')
    out_file = osp.join(work_dir, save_file)
    os.makedirs(work_dir, exist_ok=True)

    if model is None:
        log(f'[deploy] building the model from {_name(model_cfg)} '
            f'(checkpoint: {checkpoint}) and switching it to deploy form')
        model = build_model(model_cfg, checkpoint, device)

    if backend == 'tensorrt':
        from .tensorrt import export_trt_onnx
        log(f'[deploy] exporting {out_file}: fused model + EfficientNMS_TRT, '
            f'opset {onnx_cfg.get("opset_version", 13)}, input {h}x{w}')
        dynamic_batch = bool(onnx_cfg.get('dynamic_axes'))
        with _quiet_tracer():
            export_trt_onnx(
                model,
                out_file,
                (h, w),
                get_test_cfg(model_cfg),
                opset_version=max(13, onnx_cfg.get('opset_version', 13)),
                dynamic_batch=dynamic_batch,
                input_name=onnx_cfg.get('input_names', ['input'])[0])
        log(f'[deploy] wrote {out_file} (onnx.checker passed)')
        return out_file

    # ONNX Runtime: MMDeploy's exporter with the DAMO-YOLO rewriters and
    # MMDeploy's mmdet ones (detector forward, multiclass NMS, topk)
    from mmdeploy.codebase import import_codebase
    from mmdeploy.utils import get_codebase
    import_codebase(get_codebase(deploy_cfg))
    from mmdeploy.apis.onnx import export
    from mmdeploy.apis.core.pipeline_manager import no_mp
    from mmdeploy.utils import get_dynamic_axes
    if inputs is None:
        if img is not None:
            from mmdeploy.apis import build_task_processor
            task_processor = build_task_processor(model_cfg, deploy_cfg,
                                                  'cpu')
            data, inputs = task_processor.create_input(
                img, (w, h),
                data_preprocessor=getattr(model, 'data_preprocessor', None))
            if isinstance(inputs, list) and len(inputs) == 1:
                inputs = inputs[0]
            data_samples = data['data_samples']
            h, w = (int(v) for v in inputs.shape[-2:])
        else:
            inputs = torch.zeros((1, 3, h, w))
            data_samples = _data_samples(1, h, w)
    else:
        data_samples = _data_samples(inputs.shape[0], h, w)
    input_names = onnx_cfg['input_names']
    output_names = onnx_cfg['output_names']
    dynamic_axes = get_dynamic_axes(deploy_cfg, input_names + output_names)
    log(f'[deploy] exporting {out_file}: opset '
        f'{onnx_cfg.get("opset_version", 11)}, input {h}x{w}, '
        f'{"dynamic" if dynamic_axes else "static"} shape, post-processing '
        'in the graph (onnx::NonMaxSuppression)')
    prefix = osp.join(work_dir, osp.splitext(save_file)[0])
    with no_mp(), _quiet_tracer():
        export(
            model,
            inputs.cpu(),
            input_metas={
                'data_samples': data_samples,
                'mode': 'predict'
            },
            output_path_prefix=prefix,
            backend=backend,
            input_names=input_names,
            output_names=output_names,
            context_info=dict(deploy_cfg=deploy_cfg),
            opset_version=onnx_cfg.get('opset_version', 11),
            dynamic_axes=dynamic_axes,
            verbose=False,
            keep_initializers_as_inputs=onnx_cfg.get(
                'keep_initializers_as_inputs', False),
            optimize=onnx_cfg.get('optimize', False))
    onnx = require('onnx')
    onnx.checker.check_model(onnx.load(out_file))
    log(f'[deploy] wrote {out_file} (onnx.checker passed)')
    return out_file


def build_trt_engine(deploy_cfg, onnx_file: str, work_dir: str,
                     log: Callable[[str], None] = print) -> str:
    """Build ``end2end.engine`` from the TensorRT ONNX (needs a GPU)."""
    from .tensorrt import build_engine
    backend_cfg = deploy_cfg['backend_config']
    common = backend_cfg.get('common_config', {})
    fp16 = bool(common.get('fp16_mode', False))
    int8 = str(backend_cfg.get('precision', 'fp32')).lower() == 'int8'
    shapes = None
    if backend_cfg.get('model_inputs'):
        shapes = backend_cfg['model_inputs'][0].get('input_shapes')
    engine_file = osp.join(work_dir,
                           osp.splitext(osp.basename(onnx_file))[0] +
                           '.engine')
    kinds = ['INT8 (explicit, QDQ)'] if int8 else []
    kinds.append('FP16' if fp16 else 'FP32')
    log(f'[deploy] building TensorRT engine {engine_file} '
        f'({" + ".join(kinds)}); this takes minutes')
    build_engine(
        onnx_file,
        engine_file,
        fp16=fp16,
        int8=int8,
        input_shapes=shapes,
        workspace_size=common.get('max_workspace_size', 1 << 30))
    log(f'[deploy] wrote {engine_file}')
    return engine_file


@contextlib.contextmanager
def _quiet_tracer():
    """Hide the tracer's warnings about shapes turned into constants (the
    expected behaviour of a static export)."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        # MMDeploy's NMS gathers with non-negative indices only
        warnings.filterwarnings(
            'ignore', message='Exporting aten::index operator of advanced')
        # mmdet's prior generator calls torch.meshgrid without indexing=
        warnings.filterwarnings('ignore', message='torch.meshgrid')
        yield


def _name(cfg) -> str:
    return getattr(cfg, 'filename', None) or 'the model config'


def match_detections(a: Dict[str, Any], b: Dict[str, Any], box_tol: float,
                     score_tol: float) -> Tuple[List[int], List[int], float,
                                                float]:
    """One-to-one matching of two detection sets (any order).

    Detection i of ``a`` (dict of numpy ``bboxes`` (K, 4), ``scores``,
    ``labels``) matches an unused j of ``b`` with the same label, every box
    coordinate within ``box_tol`` and the score within ``score_tol`` (the
    closest box wins). Detections are visited by descending score.

    Returns:
        tuple: unmatched indices of ``a``, unmatched indices of ``b``, and
        the largest box / score difference over the matched pairs.
    """
    import numpy as np
    used = np.zeros(len(b['scores']), dtype=bool)
    un_a, max_db, max_ds = [], 0., 0.
    for i in np.argsort(-np.asarray(a['scores']), kind='stable'):
        if len(used):
            db = np.abs(b['bboxes'] - a['bboxes'][i]).max(1)
        else:
            db = np.zeros(0)
        ds = np.abs(b['scores'] - a['scores'][i])
        ok = (~used) & (b['labels'] == a['labels'][i]) & (db <= box_tol) & (
            ds <= score_tol)
        if not ok.any():
            un_a.append(int(i))
            continue
        j = int(np.flatnonzero(ok)[np.argmin(db[ok])])
        used[j] = True
        max_db, max_ds = max(max_db, float(db[j])), max(max_ds, float(ds[j]))
    return un_a, [int(j) for j in np.flatnonzero(~used)], max_db, max_ds


__all__ = [
    'SUPPORTED_BACKENDS', 'INSTALL_HINTS', 'load_configs', 'get_backend_name',
    'check_backend_available', 'check_post_processing', 'get_test_cfg',
    'get_input_hw', 'build_model', 'export_onnx', 'build_trt_engine',
    'match_detections'
]
