"""TensorRT 10 path: ONNX ending in ``EfficientNMS_TRT``, engine, runner.

MMDeploy 1.3.1's TensorRT backend cannot be used with TensorRT 10 (see
:mod:`damoyolo_mm.deploy.compat`, fix 3), so this module produces the same
artefacts (``end2end.onnx`` / ``end2end.engine``) in a thin, documented way:

* :class:`End2EndTRT` runs the fused detector up to the flat decoded
  predictions (boxes ``[B, N, 4]`` x1y1x2y2 in input pixels, class
  probabilities ``[B, N, C]``) and appends :class:`EfficientNMSOp`, which
  exports as TensorRT's stock ``EfficientNMS_TRT`` plugin node (shipped in
  ``libnvinfer_plugin``; no custom library). Outputs: ``num_dets``
  ``[B, 1]`` int32, ``det_boxes`` ``[B, K, 4]``, ``det_scores`` ``[B, K]``,
  ``det_classes`` ``[B, K]`` int32, K = ``max_per_img``.
* :func:`export_trt_onnx` writes that graph with the TorchScript exporter
  (opset 13) and checks it with ``onnx.checker`` (CPU only).
* :func:`build_engine` / :class:`TRTRunner` use the TensorRT 10 name-based
  API (``build_serialized_network``, ``num_io_tensors``,
  ``get_tensor_name``, ``set_input_shape``, ``set_tensor_address``,
  ``execute_async_v3``); they need a GPU.

Semantics of ``EfficientNMS_TRT`` compared with the PyTorch / ONNX Runtime
post-processing: class-wise NMS, scores above ``score_thr``, IoU above
``iou_threshold`` suppresses, at most K results sorted by score - the same
rules - but the plugin first keeps only the best 4096 (box, class)
candidates of an image (its internal ``numSelectedBoxes``). With trained
weights an image rarely has that many candidates above 0.05; the eager
forward of :class:`EfficientNMSOp` applies the same cap so that it is a
faithful CPU reference of the plugin.
"""
import os
import os.path as osp
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from .compat import check_tensorrt, onnx_export, require

#: candidate cap of the EfficientNMS_TRT plugin (numSelectedBoxes)
EFFICIENT_NMS_MAX_CANDIDATES = 4096
TRT_OUTPUT_NAMES = ('num_dets', 'det_boxes', 'det_scores', 'det_classes')


def _reference_nms(boxes: Tensor, scores: Tensor, iou_threshold: float,
                   score_threshold: float, max_output_boxes: int,
                   max_candidates: int) -> Tuple[Tensor, ...]:
    """Eager reference of EfficientNMS_TRT (box corner coding, per class)."""
    from mmcv.ops import batched_nms
    batch, _, _ = scores.shape
    num_dets = torch.zeros((batch, 1), dtype=torch.int32)
    det_boxes = boxes.new_zeros((batch, max_output_boxes, 4))
    det_scores = scores.new_zeros((batch, max_output_boxes))
    det_classes = torch.zeros((batch, max_output_boxes), dtype=torch.int32)
    for b in range(batch):
        prior_inds, labels = (scores[b] > score_threshold).nonzero(
            as_tuple=True)
        cand = scores[b][prior_inds, labels]
        if cand.numel() > max_candidates:
            cand, order = cand.topk(max_candidates)
            prior_inds, labels = prior_inds[order], labels[order]
        if cand.numel() == 0:
            continue
        dets, keep = batched_nms(boxes[b][prior_inds], cand, labels,
                                 dict(type='nms',
                                      iou_threshold=iou_threshold))
        n = min(max_output_boxes, dets.size(0))
        num_dets[b, 0] = n
        det_boxes[b, :n] = dets[:n, :4]
        det_scores[b, :n] = dets[:n, 4]
        det_classes[b, :n] = labels[keep][:n].int()
    return num_dets, det_boxes, det_scores, det_classes


class EfficientNMSOp(torch.autograd.Function):
    """``TRT::EfficientNMS_TRT`` (plugin version 1) for the ONNX export.

    Inputs: boxes ``[B, N, 4]`` (x1, y1, x2, y2), scores ``[B, N, C]``
    (probabilities, no activation in the plugin). The eager forward is a
    real CPU implementation of the plugin's rules.
    """

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, iou_threshold: float,
                score_threshold: float, max_output_boxes: int,
                background_class: int = -1) -> Tuple[Tensor, ...]:
        out = _reference_nms(boxes.detach().cpu().float(),
                             scores.detach().cpu().float(), iou_threshold,
                             score_threshold, max_output_boxes,
                             EFFICIENT_NMS_MAX_CANDIDATES)
        return tuple(t.to(boxes.device) for t in out)

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold: float,
                 score_threshold: float, max_output_boxes: int,
                 background_class: int = -1):
        outs = g.op(
            'TRT::EfficientNMS_TRT',
            boxes,
            scores,
            background_class_i=background_class,
            box_coding_i=0,
            iou_threshold_f=float(iou_threshold),
            max_output_boxes_i=int(max_output_boxes),
            plugin_version_s='1',
            score_activation_i=0,
            score_threshold_f=float(score_threshold),
            outputs=4)
        # a plugin op has no ONNX shape inference: declare the output types
        try:
            batch = boxes.type().varyingSizes()[0]
        except (RuntimeError, IndexError, TypeError):
            batch = None
        k = int(max_output_boxes)
        types = [(torch.int32, [batch, 1]), (torch.float32, [batch, k, 4]),
                 (torch.float32, [batch, k]), (torch.int32, [batch, k])]
        for value, (dtype, sizes) in zip(outs, types):
            value.setType(boxes.type().with_dtype(dtype).with_sizes(sizes))
        return outs


def nms_params_from_test_cfg(test_cfg) -> Dict[str, float]:
    """``score_thr`` / ``nms.iou_threshold`` / ``max_per_img`` of a test_cfg.

    Raises:
        KeyError: a key is missing (named in the message).
    """
    missing = [k for k in ('score_thr', 'nms', 'max_per_img')
               if k not in test_cfg]
    if missing or 'iou_threshold' not in test_cfg['nms']:
        raise KeyError(
            f'test_cfg {dict(test_cfg)} lacks {missing or ["nms.iou_threshold"]}'
            '; expected score_thr, nms=dict(iou_threshold=...), max_per_img')
    return dict(
        score_threshold=float(test_cfg['score_thr']),
        iou_threshold=float(test_cfg['nms']['iou_threshold']),
        max_output_boxes=int(test_cfg['max_per_img']))


class RawOutputs(nn.Module):
    """Fused detector up to the flat decoded predictions (no NMS).

    ``forward(x)`` returns ``(boxes [B, N, 4], scores [B, N, C])``.
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        feats = self.detector.extract_feat(x)
        scores, boxes = self.detector.bbox_head.predict_raw(feats)
        return boxes, scores


class End2EndTRT(RawOutputs):
    """Fused detector + ``EfficientNMS_TRT``.

    Args:
        detector (nn.Module): DAMO-YOLO detector in deploy (fused) form; its
            ``bbox_head`` must offer ``predict_raw``.
        score_threshold (float): Plugin score threshold.
        iou_threshold (float): Plugin IoU threshold.
        max_output_boxes (int): K, detections per image.
    """

    def __init__(self, detector: nn.Module, score_threshold: float,
                 iou_threshold: float, max_output_boxes: int) -> None:
        super().__init__(detector)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_output_boxes = int(max_output_boxes)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        boxes, scores = super().forward(x)
        return EfficientNMSOp.apply(boxes, scores, self.iou_threshold,
                                    self.score_threshold,
                                    self.max_output_boxes)


def check_input_shape(height: int, width: int, divisor: int = 32) -> None:
    """Raise ValueError unless both sides are positive multiples of 32."""
    bad = [(n, v) for n, v in (('height', height), ('width', width))
           if int(v) <= 0 or int(v) % divisor]
    if bad:
        raise ValueError(
            f'input size {height}x{width} (height x width): '
            + ', '.join(f'{n}={v}' for n, v in bad)
            + f' is not a positive multiple of {divisor}; DAMO-YOLO '
            f'downsamples by {divisor} (strides 8/16/32). Use e.g. 640x640 '
            'or 416x416.')


def export_trt_onnx(detector: nn.Module,
                    output_file: str,
                    input_shape: Sequence[int],
                    test_cfg,
                    batch_size: int = 1,
                    dynamic_batch: bool = False,
                    opset_version: int = 13,
                    input_name: str = 'input',
                    check: bool = True) -> str:
    """Export ``End2EndTRT`` to ONNX (TorchScript exporter, opset 13).

    Args:
        detector (nn.Module): Detector already in deploy (fused) form.
        output_file (str): Where to write the ``.onnx``.
        input_shape (Sequence[int]): (height, width).
        test_cfg (dict): ``score_thr``, ``nms.iou_threshold``,
            ``max_per_img`` (normally the model's test_cfg).
        batch_size (int): Batch of the dummy input (and of a static graph).
        dynamic_batch (bool): Mark the batch axis dynamic.
        opset_version (int): ONNX opset (>= 13 for TensorRT 10 parsing).
        input_name (str): Name of the image input.
        check (bool): Run ``onnx.checker`` on the result.

    Returns:
        str: ``output_file``.
    """
    h, w = (int(v) for v in input_shape)
    check_input_shape(h, w)
    if opset_version < 13:
        raise ValueError(f'opset_version {opset_version}: the TensorRT path '
                         'exports opset >= 13')
    params = nms_params_from_test_cfg(test_cfg)
    model = End2EndTRT(detector, **params).eval()
    device = next(detector.parameters()).device
    dummy = torch.zeros((batch_size, 3, h, w), device=device)
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {n: {0: 'batch'} for n in (input_name, ) +
                        TRT_OUTPUT_NAMES}
    os.makedirs(osp.dirname(osp.abspath(output_file)), exist_ok=True)
    with torch.no_grad():
        onnx_export(
            model,
            (dummy, ),
            output_file,
            input_names=[input_name],
            output_names=list(TRT_OUTPUT_NAMES),
            opset_version=opset_version,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True)
    if check:
        onnx = require('onnx')
        onnx.checker.check_model(onnx.load(output_file))
    return output_file


def build_engine(onnx_file: str,
                 engine_file: str,
                 fp16: bool = True,
                 int8: bool = False,
                 input_shapes: Optional[Dict[str, Dict[str, Sequence[int]]]]
                 = None,
                 workspace_size: int = 1 << 30,
                 verbose: bool = False) -> str:
    """Build a serialized TensorRT 10 engine from an ONNX file (needs a GPU).

    Args:
        onnx_file (str): ONNX from :func:`export_trt_onnx`.
        engine_file (str): Output ``.engine``.
        fp16 (bool): Allow FP16 kernels.
        int8 (bool): Allow INT8 kernels: the explicitly quantized
            (QuantizeLinear / DequantizeLinear) layers of a QDQ ONNX run in
            INT8, the others in FP16 / FP32.
        input_shapes (dict, optional): ``{name: dict(min_shape, opt_shape,
            max_shape)}`` for inputs with dynamic axes (MMDeploy's
            ``backend_config.model_inputs[0].input_shapes`` layout).
        workspace_size (int): Workspace memory pool limit in bytes.
        verbose (bool): Verbose TensorRT logging.
    """
    trt = check_tensorrt(fp16=fp16)
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, '')  # registers EfficientNMS_TRT
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_file):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f'TensorRT could not parse {onnx_file}: '
                           + '; '.join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE,
                                 int(workspace_size))
    if fp16:
        if not getattr(builder, 'platform_has_fast_fp16', True):
            raise RuntimeError('fp16 requested but this GPU has no fast FP16')
        config.set_flag(trt.BuilderFlag.FP16)
    if int8 and hasattr(trt.BuilderFlag, 'INT8'):
        # explicit quantization: the Q/DQ nodes fix which layers are INT8
        # (later TensorRT versions need no flag for that)
        config.set_flag(trt.BuilderFlag.INT8)
    dynamic = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if any(d < 0 for d in tensor.shape):
            dynamic.append(tensor.name)
    if dynamic:
        input_shapes = input_shapes or {}
        profile = builder.create_optimization_profile()
        for name in dynamic:
            if name not in input_shapes:
                raise ValueError(
                    f'input "{name}" of {onnx_file} has dynamic axes; give '
                    'its min_shape/opt_shape/max_shape in input_shapes '
                    '(backend_config.model_inputs in the deploy config)')
            shp = input_shapes[name]
            profile.set_shape(name, shp['min_shape'], shp['opt_shape'],
                              shp['max_shape'])
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f'TensorRT failed to build an engine from '
                           f'{onnx_file} (see the TensorRT log above)')
    os.makedirs(osp.dirname(osp.abspath(engine_file)), exist_ok=True)
    with open(engine_file, 'wb') as f:
        f.write(serialized)
    return engine_file


class TRTRunner:
    """Run a TensorRT 10 engine on CUDA torch tensors (name-based I/O).

    Args:
        engine_file (str): Serialized engine.
        device (str): CUDA device.
    """

    def __init__(self, engine_file: str, device: str = 'cuda:0') -> None:
        self.trt = check_tensorrt()
        self.device = torch.device(device)
        logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.trt.init_libnvinfer_plugins(logger, '')
        with open(engine_file, 'rb') as f:
            runtime = self.trt.Runtime(logger)
            self.engine = runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise RuntimeError(f'could not deserialize {engine_file} (built '
                               'with another TensorRT version or GPU?)')
        self.context = self.engine.create_execution_context()
        self.input_names, self.output_names = [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_mode(name) == \
                    self.trt.TensorIOMode.INPUT:
                self.input_names.append(name)
            else:
                self.output_names.append(name)

    def _torch_dtype(self, name: str) -> torch.dtype:
        trt = self.trt
        mapping = {
            trt.float32: torch.float32,
            trt.float16: torch.float16,
            trt.int32: torch.int32,
            trt.int64: torch.int64,
            trt.int8: torch.int8,
            trt.bool: torch.bool,
        }
        return mapping[self.engine.get_tensor_dtype(name)]

    def bind(self, inputs: Union[Tensor, Dict[str, Tensor]]
             ) -> Callable[[], Dict[str, Tensor]]:
        """Bind input and output buffers once; the returned function runs
        the engine on them (and synchronises) and returns the outputs."""
        if isinstance(inputs, Tensor):
            inputs = {self.input_names[0]: inputs}
        stream = torch.cuda.current_stream(self.device)
        keep = []
        for name in self.input_names:
            x = inputs[name].to(self.device, self._torch_dtype(name))
            x = x.contiguous()
            keep.append(x)
            self.context.set_input_shape(name, tuple(x.shape))
            self.context.set_tensor_address(name, x.data_ptr())
        outputs = {}
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=self._torch_dtype(name),
                              device=self.device)
            outputs[name] = out
            self.context.set_tensor_address(name, out.data_ptr())

        def run() -> Dict[str, Tensor]:
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError('TensorRT execute_async_v3 failed')
            stream.synchronize()
            return outputs

        run.inputs = keep  # the bound input buffers must stay alive
        return run

    def __call__(self, inputs: Union[Tensor, Dict[str, Tensor]]
                 ) -> Dict[str, Tensor]:
        return self.bind(inputs)()
