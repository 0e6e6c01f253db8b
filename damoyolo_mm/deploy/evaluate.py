"""CocoMetric (or any test_evaluator) of an exported model over a dataset.

MMDeploy's ``tools/test.py`` is not installed with its wheel; this is the
same procedure on MMDeploy's task processor: the model config's
``test_dataloader`` (its pipeline, batch 1 for static exports), the backend
model built from the files (``end2end.onnx`` for ONNX Runtime, FP32 or
INT8 QDQ; ``end2end.xml`` for OpenVINO), MMDeploy's test runner with the
model config's ``test_evaluator``.
"""
import copy
import os.path as osp
import tempfile
from typing import Dict, Optional, Sequence, Union

from .compat import apply, require


def evaluate_deployed(deploy_cfg,
                      model_cfg,
                      model_files: Union[str, Sequence[str]],
                      work_dir: Optional[str] = None,
                      device: str = 'cpu',
                      cfg_options: Optional[Dict] = None,
                      batch_size: int = 1) -> Dict[str, float]:
    """Run the test loop of ``model_cfg`` on an exported model.

    Args:
        deploy_cfg (str | Config): The deploy config the model was made with.
        model_cfg (str | Config): The model config (dataset, pipeline,
            evaluator).
        model_files (str | list[str]): Backend file(s).
        work_dir (str, optional): Logs go here (default: a temporary
            folder).
        cfg_options (dict, optional): Overrides of the model config
            (e.g. ``{'test_dataloader.dataset.data_root': 'data/demo/'}``).

    Returns:
        dict: The metrics (e.g. ``coco/bbox_mAP``).
    """
    require('mmdeploy')
    apply()
    from . import rewriters  # noqa: F401
    from .export import get_backend_name, load_configs
    deploy_cfg, model_cfg = load_configs(deploy_cfg, model_cfg)
    if cfg_options:
        model_cfg.merge_from_dict(cfg_options)
    backend = get_backend_name(deploy_cfg)
    require('openvino' if backend == 'openvino' else 'onnxruntime'
            if backend == 'onnxruntime' else 'tensorrt')
    if isinstance(model_files, str):
        model_files = [model_files]
    for f in model_files:
        if not osp.isfile(f):
            raise FileNotFoundError(f'model file {f} not found')
    if backend == 'openvino' and not model_files[0].endswith('.xml'):
        raise ValueError(f'OpenVINO deploy config: --model must be the .xml '
                         f'of the IR, got {model_files[0]}')
    from mmdeploy.apis import build_task_processor
    from mmdeploy.codebase import import_codebase
    from mmdeploy.utils import get_codebase
    import_codebase(get_codebase(deploy_cfg))
    task_processor = build_task_processor(model_cfg, deploy_cfg, device)
    loader = copy.deepcopy(model_cfg['test_dataloader'])
    loader['batch_size'] = batch_size
    loader['num_workers'] = 0
    loader.pop('persistent_workers', None)
    dataset = task_processor.build_dataset(loader['dataset'])
    loader['dataset'] = dataset
    dataloader = task_processor.build_dataloader(loader)
    model = task_processor.build_backend_model(
        list(model_files), task_processor.update_data_preprocessor)
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix='damoyolo_test_deployed_')
        work_dir = tmp.name
    try:
        runner = task_processor.build_test_runner(
            model, work_dir, dataloader=dataloader)
        metrics = runner.test()
    finally:
        destroy = getattr(model, 'destroy', None)
        if callable(destroy):
            destroy()
        if tmp is not None:
            tmp.cleanup()
    return dict(metrics)


__all__ = ['evaluate_deployed']
