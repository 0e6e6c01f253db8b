"""The shipped deploy config that fits a model config, backend and size."""
import os.path as osp

from damoyolo_mm.variants import find_config, is_nano, variant_of_config


def default_deploy_config(backend: str, h: int, w: int, config: str) -> str:
    """Deploy config in ``configs/deploy`` for ``config`` (a released variant
    config: the nano ones use the ``*_nano`` deploy configs), ``backend``
    (``'onnxruntime'`` or ``'tensorrt'``) and input ``h`` x ``w``: the
    static config of the test size, else the dynamic one."""
    variant = variant_of_config(config)
    if variant is None:
        raise ValueError(
            f'{osp.basename(config)} is not the config of a released '
            'variant (damoyolo_mm.variants.VARIANTS), so no default deploy '
            'config is known for it; pass one of configs/deploy/*.py '
            '(--deploy-cfg)')
    nano = is_nano(variant)
    if backend == 'onnxruntime':
        if (h, w) == (640, 640) and not nano:
            name = 'detection_onnxruntime_static-640x640.py'
        elif (h, w) == (416, 416) and nano:
            name = 'detection_onnxruntime_static-416x416_nano.py'
        else:
            name = 'detection_onnxruntime_dynamic' + ('_nano' if nano else
                                                      '') + '.py'
    elif backend == 'tensorrt':
        name = 'detection_tensorrt-fp16_static-' + ('416x416_nano' if nano
                                                    else '640x640') + '.py'
    else:
        raise ValueError(f'no default deploy config for backend {backend!r} '
                         "(expected 'onnxruntime' or 'tensorrt')")
    return find_config(osp.join('deploy', name))
