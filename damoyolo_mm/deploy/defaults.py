"""The shipped deploy config that fits a model config, backend and size."""
import os.path as osp

from damoyolo_mm.variants import find_config, is_nano, variant_of_config


def default_deploy_config(backend: str,
                          h: int,
                          w: int,
                          config: str,
                          precision: str = 'fp32') -> str:
    """Deploy config in ``configs/deploy`` for ``config`` (a released variant
    config: the nano ones use the ``*_nano`` deploy configs), ``backend``
    (``'onnxruntime'``, ``'openvino'`` or ``'tensorrt'``), ``precision``
    (``'fp32'``: the float model, FP16 for TensorRT; ``'int8'``: the
    ``*-int8`` configs of ONNX Runtime / OpenVINO) and input ``h`` x
    ``w``: the static config of the test size, else (ONNX Runtime FP32
    only) the dynamic one."""
    variant = variant_of_config(config)
    if variant is None:
        raise ValueError(
            f'{osp.basename(config)} is not the config of a released '
            'variant (damoyolo_mm.variants.VARIANTS), so no default deploy '
            'config is known for it; pass one of configs/deploy/*.py '
            '(--deploy-cfg)')
    if precision not in ('fp32', 'int8'):
        raise ValueError(f"precision {precision!r}: expected 'fp32' or "
                         "'int8'")
    nano = is_nano(variant)
    if backend in ('onnxruntime', 'openvino'):
        kind = backend + ('-int8' if precision == 'int8' else '')
        if (h, w) == (640, 640) and not nano:
            name = f'detection_{kind}_static-640x640.py'
        elif (h, w) == (416, 416) and nano:
            name = f'detection_{kind}_static-416x416_nano.py'
        elif backend == 'openvino' or precision == 'int8':
            raise ValueError(
                f'no shipped {kind} deploy config for {h}x{w} (only the '
                f'static test size of {variant}); pass one of '
                'configs/deploy/*.py (--deploy-cfg)')
        else:
            name = 'detection_onnxruntime_dynamic' + ('_nano' if nano else
                                                      '') + '.py'
    elif backend == 'tensorrt':
        if precision != 'fp32':
            raise ValueError('the shipped TensorRT deploy configs are FP16 '
                             f'only, not {precision!r}')
        name = 'detection_tensorrt-fp16_static-' + ('416x416_nano' if nano
                                                    else '640x640') + '.py'
    else:
        raise ValueError(f'no default deploy config for backend {backend!r} '
                         "(expected 'onnxruntime', 'openvino' or "
                         "'tensorrt')")
    return find_config(osp.join('deploy', name))
