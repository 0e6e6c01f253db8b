"""INT8 partial post-training quantization of the end-to-end ONNX.

The counterpart of the official ``tools/partial_quantization`` (full INT8
post-training quantization costs DAMO-YOLO-S 13 mAP; keeping the most
quantization-sensitive layers in float recovers almost all of it), written
for the deployment path users already run::

    python tools/deploy.py configs/deploy/detection_onnxruntime-int8_static-640x640.py \\
        MODEL_CFG CKPT --img IMG --work-dir W

Steps (:func:`quantize_end2end`):

1. the FP32 end-to-end ONNX (MMDeploy export, NMS in the graph) is written
   to a temporary folder;
2. calibration inputs: ``calib_config.num_images`` images of the model
   config's ``val_dataloader.dataset`` (MMDeploy's convention; another
   config with a ``val_dataloader`` via ``--calib-dataset-cfg``), through
   the test pipeline at the export size (MMDeploy's ``create_input``);
3. activation ranges are computed once (ONNX Runtime's calibrator,
   ``calib_config.method``), every convolution quantized: the full-INT8
   model;
4. sensitivity analysis: for each convolution, a model with only that
   convolution quantized is run on the first ``sensitivity_images``
   calibration inputs; its *output error* against FP32 (see
   :func:`output_error`) ranks the layers;
5. the ``keep_float`` most sensitive convolutions stay in float (``'auto'``:
   the smallest number whose model has at most ``auto_error_ratio`` of the
   full-INT8 error, see :func:`choose_keep_float`), the rest quantized;
6. ``W/end2end.onnx`` is written (temporary name, then renamed) with
   QuantizeLinear/DequantizeLinear nodes (weights per channel INT8,
   activations per tensor UINT8, or INT8 with ``symmetric``), the same
   ``input`` / ``dets`` / ``labels`` as the FP32 export and the same NMS,
   and ``W/quantization.json``
   with the ranking and the layers kept in float.

The explicit QDQ ONNX runs in ONNX Runtime (INT8 kernels) and is converted
by OpenVINO to an INT8 IR. The TensorRT INT8 configs quantize the TensorRT
export instead (:func:`export_int8`): its part before the
``EfficientNMS_TRT`` plugin (:func:`split_plugin_nms`) goes through the same
steps with symmetric INT8 activations and float biases
(``calib_config.symmetric`` / ``quantize_bias``, what TensorRT's explicit
quantization accepts), and the plugin is put back
(:func:`attach_plugin_nms`).

Library: ONNX Runtime's ``onnxruntime.quantization`` (already a deploy
dependency). See docs/deploy.md for the comparison that chose it.
"""
import copy
import json
import os
import os.path as osp
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .compat import require
from .runtime import run_onnx

#: defaults of ``calib_config`` in the INT8 deploy configs
CALIB_DEFAULTS = dict(
    type='ort_qdq',  # ONNX Runtime's quantize_static, QDQ format
    num_images=32,  # calibration images (from the dataset, in order)
    method='MinMax',  # ONNX Runtime CalibrationMethod: MinMax / Entropy / Percentile
    per_channel=True,  # weights quantized per output channel
    op_types=('Conv', ),  # quantized op types; NMS and decoding stay float
    keep_float='auto',  # 'auto', or the number of most sensitive convs kept float
    sensitivity_images=8,  # calibration images the sensitivity analysis runs on
    auto_error_ratio=0.5,  # 'auto': error target as a fraction of full INT8
    auto_max_float_ratio=0.25,  # 'auto': at most this fraction of the convs float
    symmetric=False,  # activations INT8 with zero point 0 (TensorRT); False: UINT8
    quantize_bias=True,  # INT32 biases (False: float biases, as TensorRT needs)
)
_METHODS = ('MinMax', 'Entropy', 'Percentile', 'Distribution')


def get_precision(deploy_cfg) -> str:
    """``'int8'`` for INT8 deploy configs (``backend_config.precision``),
    else ``'fp32'``."""
    backend_cfg = deploy_cfg.get('backend_config', {}) or {}
    precision = str(backend_cfg.get('precision', 'fp32')).lower()
    if precision not in ('fp32', 'int8'):
        raise ValueError(f'backend_config.precision={precision!r} is not '
                         "supported; expected 'fp32' or 'int8'")
    return precision


def get_calib_config(deploy_cfg) -> Dict[str, Any]:
    """``calib_config`` of an INT8 deploy config, defaults filled, checked.

    Raises:
        KeyError / ValueError: naming the key, the value and what is
            expected.
    """
    given = deploy_cfg.get('calib_config', None)
    if given is None:
        raise KeyError('INT8 deploy config has no calib_config (see '
                       'configs/deploy/detection_onnxruntime-int8_static-'
                       '640x640.py)')
    unknown = sorted(set(given) - set(CALIB_DEFAULTS))
    if unknown:
        raise KeyError(f'calib_config has unknown keys {unknown}; known: '
                       f'{sorted(CALIB_DEFAULTS)}')
    cfg = dict(CALIB_DEFAULTS, **dict(given))
    if cfg['type'] != 'ort_qdq':
        raise ValueError(f"calib_config.type={cfg['type']!r} is not "
                         "supported; expected 'ort_qdq'")
    for key in ('num_images', 'sensitivity_images'):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f'calib_config.{key}={cfg[key]!r} must be a '
                             'positive integer')
    if cfg['sensitivity_images'] > cfg['num_images']:
        raise ValueError(
            f"calib_config.sensitivity_images={cfg['sensitivity_images']} > "
            f"calib_config.num_images={cfg['num_images']}: the sensitivity "
            'analysis runs on a subset of the calibration images')
    if cfg['method'] not in _METHODS:
        raise ValueError(f"calib_config.method={cfg['method']!r}; expected "
                         f'one of {_METHODS}')
    kf = cfg['keep_float']
    if not (kf == 'auto' or (isinstance(kf, int) and kf >= 0)):
        raise ValueError(f'calib_config.keep_float={kf!r}; expected '
                         "'auto' or a number of layers >= 0")
    for key in ('symmetric', 'quantize_bias', 'per_channel'):
        if not isinstance(cfg[key], bool):
            raise ValueError(f'calib_config.{key}={cfg[key]!r}; expected '
                             'True or False')
    cfg['op_types'] = tuple(cfg['op_types'])
    return cfg


# ----------------------------------------------------------------------
# calibration data
# ----------------------------------------------------------------------
def build_calib_dataset(model_cfg, calib_dataset_cfg=None):
    """The calibration dataset: ``val_dataloader.dataset`` of the model
    config, or of ``calib_dataset_cfg`` (a config path / Config).

    Raises:
        FileNotFoundError: annotation file / image folder missing.
        ValueError: the dataset has no image.
    """
    from mmengine.config import Config
    source = 'the model config'
    cfg = model_cfg
    if calib_dataset_cfg is not None:
        if isinstance(calib_dataset_cfg, str):
            if not osp.isfile(calib_dataset_cfg):
                raise FileNotFoundError(
                    f'--calib-dataset-cfg {calib_dataset_cfg} not found')
            source = calib_dataset_cfg
            calib_dataset_cfg = Config.fromfile(calib_dataset_cfg)
        else:
            source = 'the calibration dataset config'
        cfg = calib_dataset_cfg
    loader = cfg.get('val_dataloader', None)
    if not loader or 'dataset' not in loader:
        raise KeyError(f'{source} has no val_dataloader.dataset to calibrate '
                       'on; give one with --calib-dataset-cfg')
    ds_cfg = copy.deepcopy(loader['dataset'])
    root = ds_cfg.get('data_root', '') or ''
    ann = ds_cfg.get('ann_file', None)
    if ann:
        ann_path = ann if osp.isabs(ann) else osp.join(root, ann)
        if not osp.isfile(ann_path):
            raise FileNotFoundError(
                f'calibration dataset: val_dataloader.dataset.ann_file '
                f'{ann_path} (from {source}) not found; create the dataset '
                '(e.g. python tools/misc/gen_demo_data.py for the demo data) '
                'or name another with --calib-dataset-cfg')
        if ann_path.endswith('.json'):
            with open(ann_path) as f:
                images = json.load(f).get('images', None)
            if images is not None and len(images) == 0:
                raise ValueError(
                    f'calibration dataset {ann_path} (from {source}) has no '
                    'image; fill it or name another with --calib-dataset-cfg')
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ds_cfg['lazy_init'] = False
    ds_cfg.setdefault('filter_cfg', None)
    ds_cfg['filter_cfg'] = None  # calibrate on every image, with or without boxes
    dataset = DATASETS.build(ds_cfg)
    if len(dataset) == 0:
        raise ValueError(f'calibration dataset of {source} ({ann}) has no '
                         'image; fill it or name another with '
                         '--calib-dataset-cfg')
    return dataset


def calib_inputs(dataset, deploy_cfg, model_cfg, num_images: int,
                 model=None) -> List[np.ndarray]:
    """``num_images`` network inputs (1x3xHxW float32) from ``dataset``
    through the test pipeline at the export size.

    Raises:
        ValueError: the dataset has fewer images than requested.
    """
    if len(dataset) < num_images:
        raise ValueError(
            f'calib_config.num_images={num_images} but the calibration '
            f'dataset has only {len(dataset)} images; lower '
            'calib_config.num_images in the deploy config or calibrate on a '
            'larger dataset (--calib-dataset-cfg)')
    from mmdeploy.apis import build_task_processor
    from .export import get_input_hw
    h, w = get_input_hw(deploy_cfg, model_cfg)
    if _backend(deploy_cfg) == 'tensorrt':
        # MMDeploy refuses a CPU task processor for TensorRT; the input
        # pipeline (test pipeline at the export size) is the same for all
        deploy_cfg = copy.deepcopy(deploy_cfg)
        deploy_cfg['backend_config']['type'] = 'onnxruntime'
    task_processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    preprocessor = getattr(model, 'data_preprocessor', None)
    if preprocessor is None:
        from mmdet.registry import MODELS
        preprocessor = MODELS.build(model_cfg.model.data_preprocessor)
    out = []
    for i in range(num_images):
        path = dataset.get_data_info(i)['img_path']
        _, x = task_processor.create_input(
            path, (w, h), data_preprocessor=preprocessor)
        if isinstance(x, (list, tuple)):
            x = x[0]
        x = x.float().cpu().numpy()
        if x.shape != (1, 3, h, w):
            raise ValueError(f'calibration input of {path} has shape '
                             f'{x.shape}, expected (1, 3, {h}, {w})')
        out.append(np.ascontiguousarray(x))
    return out


# ----------------------------------------------------------------------
# graph helpers
# ----------------------------------------------------------------------
def quantizable_nodes(onnx_file: str,
                      op_types: Sequence[str] = ('Conv', )) -> List[str]:
    """Names of the nodes of ``op_types`` (graph order); unnamed ones fail."""
    onnx = require('onnx')
    model = onnx.load(onnx_file, load_external_data=False)
    names = [n.name for n in model.graph.node if n.op_type in op_types]
    if any(not n for n in names):
        raise ValueError(f'{onnx_file}: some {op_types} nodes have no name')
    return names


def nms_inputs(model, onnx_file: str) -> Tuple[str, str]:
    """Names of the boxes (B, N, 4) and scores (B, C, N) tensors that the one
    NonMaxSuppression node of an end-to-end export (loaded ``model`` of
    ``onnx_file``) reads."""
    nms = [n for n in model.graph.node if n.op_type == 'NonMaxSuppression']
    if len(nms) != 1:
        raise ValueError(f'{onnx_file}: expected one NonMaxSuppression node '
                         f'(end-to-end export), found {len(nms)}')
    return tuple(nms[0].input[:2])


def with_nms_inputs(onnx_file: str, out_file: str) -> Tuple[str, str]:
    """Copy of an end-to-end ONNX whose NonMaxSuppression inputs (boxes
    (B, N, 4), scores (B, C, N)) are extra graph outputs (for measuring
    the output error before NMS)."""
    onnx = require('onnx')
    model = onnx.load(onnx_file)
    names = nms_inputs(model, onnx_file)
    for name in names:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                               None))
    onnx.save(model, out_file)
    return names


def drop_outputs(onnx_file: str, out_file: str, keep: Sequence[str]) -> None:
    """Copy of an ONNX with only the graph outputs ``keep`` (in order)."""
    onnx = require('onnx')
    model = onnx.load(onnx_file)
    by_name = {o.name: o for o in model.graph.output}
    missing = [k for k in keep if k not in by_name]
    if missing:
        raise ValueError(f'{onnx_file} has no outputs {missing}')
    outs = [copy.deepcopy(by_name[k]) for k in keep]
    del model.graph.output[:]
    model.graph.output.extend(outs)
    onnx.save(model, out_file)


def split_plugin_nms(onnx_file: str, out_file: str) -> List[str]:
    """Write the part of a TensorRT export (:mod:`.tensorrt`, ending in the
    ``EfficientNMS_TRT`` plugin, which ONNX Runtime cannot run) before the
    plugin: same input, the plugin's inputs (boxes, scores) as outputs.
    Returns the names of those outputs."""
    onnx = require('onnx')
    model = onnx.load(onnx_file)
    nms = [n for n in model.graph.node if n.op_type == 'EfficientNMS_TRT']
    if len(nms) != 1:
        raise ValueError(f'{onnx_file}: expected one EfficientNMS_TRT node '
                         f'(TensorRT export), found {len(nms)}')
    outputs = list(nms[0].input[:2])
    model = onnx.shape_inference.infer_shapes(model)  # the tensors' types
    part = onnx.utils.Extractor(model).extract_model(
        [i.name for i in model.graph.input], outputs)
    # ONNX shape inference does not reach these tensors: declare the
    # shapes of one run on zeros (the checker wants a shape on outputs)
    ort = require('onnxruntime')
    sess = ort.InferenceSession(part.SerializeToString(),
                                providers=['CPUExecutionProvider'])
    feed = {}
    for i in sess.get_inputs():
        if not all(isinstance(d, int) for d in i.shape):
            raise ValueError(f'{onnx_file}: input {i.name} has dynamic axes '
                             f'{i.shape}; INT8 export needs a static shape')
        feed[i.name] = np.zeros(i.shape, np.float32)
    for value, array in zip(part.graph.output, sess.run(outputs, feed)):
        value.type.tensor_type.shape.Clear()
        for d in array.shape:
            value.type.tensor_type.shape.dim.add().dim_value = d
    onnx.checker.check_model(part)
    onnx.save(part, out_file)
    return outputs


def attach_plugin_nms(quantized_file: str, trt_onnx: str,
                      out_file: str) -> None:
    """The TensorRT export ``trt_onnx`` with its part before the NMS plugin
    replaced by ``quantized_file`` (:func:`split_plugin_nms`, then
    quantized): the QDQ graph, the plugin node and the export's outputs and
    opsets."""
    onnx = require('onnx')
    q = onnx.load(quantized_file)
    trt = onnx.load(trt_onnx)
    plugin = [n for n in trt.graph.node if n.op_type == 'EfficientNMS_TRT']
    produced = {o for n in q.graph.node for o in n.output}
    missing = [i for i in plugin[0].input if i and i not in produced]
    if missing:
        raise ValueError(f'{quantized_file} does not produce the NMS plugin '
                         f'inputs {missing} of {trt_onnx}')
    q.graph.node.extend(copy.deepcopy(plugin))
    del q.graph.output[:]
    q.graph.output.extend(copy.deepcopy(trt.graph.output))
    have = {o.domain for o in q.opset_import}
    q.opset_import.extend(
        copy.deepcopy(o) for o in trt.opset_import if o.domain not in have)
    onnx.save(q, out_file)


def count_qdq(onnx_file: str) -> Dict[str, int]:
    """Numbers of QuantizeLinear / DequantizeLinear / Conv nodes, and of
    Conv nodes fed by a DequantizeLinear (quantized convs)."""
    onnx = require('onnx')
    model = onnx.load(onnx_file, load_external_data=False)
    producer = {o: n for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == 'Conv']
    q_convs = [
        n.name for n in convs if n.input[0] in producer
        and producer[n.input[0]].op_type == 'DequantizeLinear'
    ]
    ops = [n.op_type for n in model.graph.node]
    return dict(QuantizeLinear=ops.count('QuantizeLinear'),
                DequantizeLinear=ops.count('DequantizeLinear'),
                Conv=len(convs), quantized_conv=len(q_convs))


# ----------------------------------------------------------------------
# quantization (ONNX Runtime)
# ----------------------------------------------------------------------
class _Reader:
    """ONNX Runtime CalibrationDataReader over a list of inputs."""

    def __init__(self, name: str, inputs: Sequence[np.ndarray]):
        self.name, self.inputs, self.i = name, list(inputs), 0

    def get_next(self):
        if self.i >= len(self.inputs):
            return None
        self.i += 1
        return {self.name: self.inputs[self.i - 1]}

    def __len__(self):
        return len(self.inputs)

    def rewind(self):
        self.i = 0


class OrtQDQQuantizer:
    """``onnxruntime.quantization.quantize_static`` (QDQ format) with the
    activation ranges computed once and re-used for every subset of
    quantized nodes (``calibration_cache_path``, ONNX Runtime >= 1.32;
    older versions calibrate again for every model, same result)."""

    def __init__(self, fp32_onnx: str, inputs: Sequence[np.ndarray],
                 cfg: Dict[str, Any], tmp_dir: str):
        self.ort = require('onnxruntime')
        from onnxruntime import quantization as q
        self.q = q
        self.fp32_onnx, self.inputs, self.cfg = fp32_onnx, inputs, cfg
        self.cache = osp.join(tmp_dir, 'calibration_cache.json')
        import inspect
        self.has_cache = 'calibration_cache_path' in inspect.signature(
            q.quantize_static).parameters
        sess = self.ort.InferenceSession(
            fp32_onnx, providers=['CPUExecutionProvider'])
        self.input_name = sess.get_inputs()[0].name

    def quantize(self, out_file: str, nodes: Sequence[str]) -> str:
        """Write ``out_file`` with only ``nodes`` quantized."""
        q = self.q
        kwargs = {}
        symmetric = bool(self.cfg.get('symmetric', False))
        if self.has_cache:
            kwargs['calibration_cache_path'] = self.cache
        q.quantize_static(
            self.fp32_onnx,
            out_file,
            _Reader(self.input_name, self.inputs),
            quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=list(self.cfg['op_types']),
            per_channel=bool(self.cfg['per_channel']),
            activation_type=q.QuantType.QInt8
            if symmetric else q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            nodes_to_quantize=list(nodes),
            calibrate_method=getattr(q.CalibrationMethod, self.cfg['method']),
            # Q/DQ on the inputs of the quantized ops only (the explicit
            # INT8 layout of TensorRT and OpenVINO); with the convolutions'
            # outputs quantized too, OpenVINO 2026.4 fails to compile the
            # box decoding that follows the head convolutions
            extra_options=dict(
                OpTypesToExcludeOutputQuantization=list(self.cfg['op_types']),
                ActivationSymmetric=symmetric, WeightSymmetric=True,
                QuantizeBias=bool(self.cfg.get('quantize_bias', True))),
            **kwargs)
        return out_file


def output_error(ref: Sequence[Tuple[np.ndarray, np.ndarray]],
                 out: Sequence[Tuple[np.ndarray, np.ndarray]],
                 stride: float = 8.,
                 scores_last: bool = False) -> float:
    """Error of a quantized model's pre-NMS outputs against FP32.

    Per image: ``sum |d score| / sum score`` over all (prior, class) pairs
    (relative L1 of the class probabilities) plus the score-weighted mean
    absolute box-coordinate error in units of ``stride`` pixels (the
    finest prior stride); averaged over the images. 0 for identical
    outputs; a continuous stand-in for the mAP drop that needs no
    annotations and no NMS (mAP on a few images moves in steps).

    Args:
        ref, out: per image ``(boxes (N, 4), scores (C, N))``;
            ``scores (N, C)`` with ``scores_last`` (the inputs of
            TensorRT's EfficientNMS_TRT).
    """
    errs = []
    for (rb, rs), (ob, os_) in zip(ref, out):
        rb, rs, ob, os_ = (np.asarray(a, np.float64).reshape(a.shape[-2:])
                           for a in (rb, rs, ob, os_))
        if scores_last:
            rs, os_ = rs.T, os_.T
        e_s = np.abs(os_ - rs).sum() / max(rs.sum(), 1e-12)
        w = rs.max(0)  # (N,) best class probability of each prior
        e_b = (w * np.abs(ob - rb).mean(1)).sum() / max(w.sum(), 1e-12)
        errs.append(e_s + e_b / stride)
    return float(np.mean(errs))


def choose_keep_float(errors: Dict[int, float], full_error: float,
                      ratio: float) -> int:
    """``'auto'``: the smallest number k of float layers whose model's
    error is at most ``ratio`` x the full-INT8 error (the largest k tried
    when none is)."""
    ks = sorted(errors)
    for k in ks:
        if errors[k] <= ratio * full_error:
            return k
    return ks[-1]


def _auto_candidates(n_layers: int, max_ratio: float) -> List[int]:
    top = max(1, int(round(n_layers * max_ratio)))
    ks, k = [], 1
    while k < top:
        ks.append(k)
        k *= 2
    ks.append(top)
    return sorted(set(ks))


def sensitivity_analysis(quantizer: OrtQDQQuantizer, probe_fp32: str,
                         nodes: Sequence[str], out_names: Sequence[str],
                         inputs: Sequence[np.ndarray], tmp_dir: str,
                         stride: float = 8.,
                         log: Callable[[str], None] = print,
                         threads: Optional[int] = None,
                         scores_last: bool = False) -> Dict[str, float]:
    """Output error (:func:`output_error`) of the model with only one
    convolution quantized, for every convolution of ``nodes``."""
    ref = run_onnx(probe_fp32, inputs, out_names, threads)
    errors = {}
    t0 = time.time()
    f = osp.join(tmp_dir, 'one_layer.onnx')
    for i, node in enumerate(nodes):
        quantizer.quantize(f, [node])
        errors[node] = output_error(
            ref, run_onnx(f, inputs, out_names, threads), stride,
            scores_last)
        if (i + 1) % 10 == 0 or i + 1 == len(nodes):
            log(f'[quantize]   sensitivity {i + 1}/{len(nodes)} layers '
                f'({time.time() - t0:.0f}s)')
    return errors


def quantize_onnx(fp32_onnx: str,
                  out_file: str,
                  inputs: Sequence[np.ndarray],
                  cfg: Dict[str, Any],
                  stride: float = 8.,
                  log: Callable[[str], None] = print,
                  threads: Optional[int] = None,
                  report_file: Optional[str] = None) -> Dict[str, Any]:
    """Partial INT8 quantization of an end-to-end ONNX (see the module doc).

    Args:
        fp32_onnx (str): FP32 end-to-end ONNX (``dets``, ``labels``), or
            a graph without ONNX NMS whose outputs are boxes (B, N, 4) and
            scores (B, N, C) (the part before TensorRT's NMS plugin, see
            :func:`split_plugin_nms`).
        out_file (str): Where the QDQ ONNX goes (written to a temporary
            name in the same folder, then renamed).
        inputs (list[ndarray]): Calibration inputs (1x3xHxW float32).
        cfg (dict): :func:`get_calib_config` of the deploy config.
        report_file (str, optional): Where to write the report (JSON),
            before ``out_file`` appears.

    Returns:
        dict: the report (also what ``quantization.json`` holds):
        ``layers`` (quantizable convolutions), ``sensitivity`` (layer ->
        error, most sensitive first), ``keep_float`` (names),
        ``errors`` (number of float layers -> output error),
        ``full_int8_error``, ``qdq`` node counts.

    Raises:
        ValueError: ``keep_float`` larger than the number of quantizable
            layers, or fewer inputs than ``cfg['num_images']``.
    """
    require('onnxruntime')
    if len(inputs) < cfg['num_images']:
        raise ValueError(f"calib_config.num_images={cfg['num_images']} but "
                         f'only {len(inputs)} calibration inputs were given')
    inputs = list(inputs)[:cfg['num_images']]
    nodes = quantizable_nodes(fp32_onnx, cfg['op_types'])
    kf = cfg['keep_float']
    if kf != 'auto' and kf > len(nodes):
        raise ValueError(
            f'calib_config.keep_float={kf} but the model has only '
            f'{len(nodes)} quantizable layers ({"/".join(cfg["op_types"])} '
            f'nodes); use a number <= {len(nodes)} or \'auto\'')
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix='.quantize_', dir=out_dir)
    try:
        onnx = require('onnx')
        graph = onnx.load(fp32_onnx, load_external_data=False).graph
        final_outputs = [o.name for o in graph.output]
        if any(n.op_type == 'NonMaxSuppression' for n in graph.node):
            # end-to-end graph: the error is measured on the NMS inputs
            probe = osp.join(tmp_dir, 'fp32_probe.onnx')
            out_names = list(with_nms_inputs(fp32_onnx, probe))
            scores_last = False
        else:
            # the part before TensorRT's NMS plugin: its outputs are the
            # plugin's inputs, boxes (B, N, 4) and scores (B, N, C)
            probe, out_names, scores_last = fp32_onnx, final_outputs, True
        quantizer = OrtQDQQuantizer(probe, inputs, cfg, tmp_dir)
        sens_inputs = inputs[:cfg['sensitivity_images']]
        ref = run_onnx(probe, sens_inputs, out_names, threads)

        def error(onnx_file):
            return output_error(
                ref, run_onnx(onnx_file, sens_inputs, out_names, threads),
                stride, scores_last)

        log(f'[quantize] calibrating ({cfg["method"]}, {len(inputs)} images) '
            f'and quantizing all {len(nodes)} convolutions (full INT8)')
        full = quantizer.quantize(osp.join(tmp_dir, 'full_int8.onnx'), nodes)
        full_err = error(full)
        log(f'[quantize]   full INT8 output error {full_err:.4f}')

        errors: Dict[int, float] = {0: full_err}
        ranking: List[Tuple[str, float]] = []
        if kf == 'auto' or kf > 0:
            log(f'[quantize] sensitivity analysis: {len(nodes)} layers, one '
                f'at a time, on {len(sens_inputs)} images')
            sens = sensitivity_analysis(quantizer, probe, nodes, out_names,
                                        sens_inputs, tmp_dir, stride, log,
                                        threads, scores_last)
            ranking = sorted(sens.items(), key=lambda kv: -kv[1])
        order = [n for n, _ in ranking]

        def partial(k):
            f = osp.join(tmp_dir, f'keep{k}.onnx')
            keep = set(order[:k])
            quantizer.quantize(f, [n for n in nodes if n not in keep])
            return f

        if kf == 'auto':
            cands = _auto_candidates(len(nodes), cfg['auto_max_float_ratio'])
            for k in cands:
                errors[k] = error(partial(k))
                log(f'[quantize]   {k} layers float: output error '
                    f'{errors[k]:.4f}')
                if errors[k] <= cfg['auto_error_ratio'] * full_err:
                    break
            k = choose_keep_float(errors, full_err, cfg['auto_error_ratio'])
            log(f"[quantize] keep_float='auto': {k} layers float (error "
                f"<= {cfg['auto_error_ratio']} x full INT8, or the most "
                'tried)')
        else:
            k = int(kf)
        final = partial(k) if k else full
        if k not in errors:
            errors[k] = error(final)
        tmp_out = osp.join(tmp_dir, 'final.onnx')
        drop_outputs(final, tmp_out, final_outputs)
        onnx.checker.check_model(onnx.load(tmp_out))
        report = dict(
            library=f'onnxruntime {require("onnxruntime").__version__} '
            'quantize_static (QDQ)',
            calib=dict((k_, v) for k_, v in cfg.items()
                       if k_ != 'op_types'),
            op_types=list(cfg['op_types']),
            layers=list(nodes),
            sensitivity=dict(ranking),
            keep_float=order[:k],
            errors={str(k_): v
                    for k_, v in sorted(errors.items())},
            full_int8_error=full_err,
            partial_error=errors[k],
            qdq=count_qdq(tmp_out))
        if report_file:
            write_json_atomic(report, report_file)
        os.replace(tmp_out, out_file)
        return report
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_json_atomic(obj: Any, path: str) -> None:
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def export_int8(deploy_cfg,
                model_cfg,
                checkpoint: Optional[str],
                work_dir: str,
                img: Optional[str] = None,
                inputs=None,
                device: str = 'cpu',
                model=None,
                calib_dataset_cfg=None,
                log: Callable[[str], None] = print) -> Tuple[str, Dict]:
    """INT8 deploy config -> ``WORK_DIR/end2end.onnx`` (QDQ), the FP32
    export beside it as ``end2end_fp32.onnx`` and ``quantization.json``.

    The calibration settings and dataset are checked before the export;
    every file is written under a temporary name and renamed when complete
    (``end2end.onnx`` last).

    Returns:
        tuple: (path of ``end2end.onnx``, report of :func:`quantize_onnx`).
    """
    from .export import export_onnx, load_configs
    deploy_cfg, model_cfg = load_configs(deploy_cfg, model_cfg)
    cfg = get_calib_config(deploy_cfg)
    dataset = build_calib_dataset(model_cfg, calib_dataset_cfg)
    if len(dataset) < cfg['num_images']:
        raise ValueError(
            f"calib_config.num_images={cfg['num_images']} but the "
            f'calibration dataset has only {len(dataset)} images; lower '
            'calib_config.num_images in the deploy config or calibrate on a '
            'larger dataset (--calib-dataset-cfg)')
    save_file = deploy_cfg['onnx_config'].get('save_file', 'end2end.onnx')
    stem = osp.splitext(save_file)[0]
    os.makedirs(work_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.fp32_export_', dir=work_dir)
    try:
        fp32 = export_onnx(deploy_cfg, model_cfg, checkpoint, tmp, img=img,
                           inputs=inputs, device=device, model=model,
                           log=log)
        log(f'[quantize] calibration dataset: {len(dataset)} images, using '
            f"the first {cfg['num_images']}")
        calib = calib_inputs(dataset, deploy_cfg, model_cfg,
                             cfg['num_images'], model=model)
        fp32_file = osp.join(work_dir, f'{stem}_fp32.onnx')
        os.replace(fp32, fp32_file)
        out_file = osp.join(work_dir, save_file)
        report_file = osp.join(work_dir, 'quantization.json')
        if _backend(deploy_cfg) == 'tensorrt':
            # quantize the part before the NMS plugin (ONNX Runtime runs
            # it), then put the plugin back
            flat = osp.join(tmp, 'before_nms.onnx')
            split_plugin_nms(fp32_file, flat)
            report = quantize_onnx(
                flat, osp.join(tmp, 'before_nms_int8.onnx'), calib, cfg,
                _first_stride(model_cfg), log, report_file=report_file)
            attach_plugin_nms(osp.join(tmp, 'before_nms_int8.onnx'),
                              fp32_file, osp.join(tmp, save_file))
            onnx = require('onnx')
            onnx.checker.check_model(onnx.load(osp.join(tmp, save_file)))
            os.replace(osp.join(tmp, save_file), out_file)
        else:
            report = quantize_onnx(
                fp32_file, out_file, calib, cfg, _first_stride(model_cfg),
                log, report_file=report_file)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    q = report['qdq']
    log(f"[quantize] wrote {out_file}: {q['quantized_conv']}/{q['Conv']} "
        f"convolutions INT8, {len(report['keep_float'])} float "
        f"({', '.join(report['keep_float'][:8])}"
        f"{' ...' if len(report['keep_float']) > 8 else ''}); output error "
        f"{report['partial_error']:.4f} (full INT8 "
        f"{report['full_int8_error']:.4f})")
    return out_file, report


def _backend(deploy_cfg) -> str:
    from .export import get_backend_name
    return get_backend_name(deploy_cfg)


def _first_stride(model_cfg) -> float:
    try:
        strides = model_cfg.model.bbox_head.prior_generator.strides
        s = strides[0]
        return float(s[0] if isinstance(s, (list, tuple)) else s)
    except (AttributeError, KeyError, IndexError, TypeError):
        return 8.


__all__ = [
    'CALIB_DEFAULTS', 'get_precision', 'get_calib_config',
    'build_calib_dataset', 'calib_inputs', 'quantizable_nodes',
    'nms_inputs', 'with_nms_inputs', 'drop_outputs', 'split_plugin_nms',
    'attach_plugin_nms', 'count_qdq', 'OrtQDQQuantizer',
    'output_error', 'choose_keep_float', 'sensitivity_analysis',
    'quantize_onnx', 'export_int8', 'write_json_atomic'
]
