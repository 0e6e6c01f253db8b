"""Convert and run a model with MMDeploy 1.3.1's own API only, the calls its
``tools/deploy.py`` makes for the ONNX Runtime backend, then its
``visualize_model`` inference of the backend and the PyTorch model.

Run as a script in a fresh process (nothing of damoyolo_mm imported
beforehand; the deploy and model configs import what they need):

    python stock_mmdeploy_convert.py DEPLOY_CFG MODEL_CFG CHECKPOINT IMG \
        WORK_DIR OUT_NPZ
"""
import sys


def main(deploy_cfg_path, model_cfg_path, checkpoint, img, work_dir,
         out_npz):
    import numpy as np
    import torch
    from mmdeploy.apis import torch2onnx
    from mmdeploy.apis.core import PIPELINE_MANAGER
    from mmdeploy.apis.utils import build_task_processor
    from mmdeploy.utils import (get_input_shape, get_ir_config,
                                load_config)
    from torch.multiprocessing import set_start_method

    assert 'damoyolo_mm' not in sys.modules, 'imported too early'
    # as MMDeploy's tools/deploy.py: torch2onnx in a spawned process
    set_start_method('spawn', force=True)
    PIPELINE_MANAGER.enable_multiprocess(True, [torch2onnx])
    deploy_cfg, model_cfg = load_config(deploy_cfg_path, model_cfg_path)
    save_file = get_ir_config(deploy_cfg)['save_file']
    torch2onnx(img, work_dir, save_file, deploy_cfg_path, model_cfg_path,
               checkpoint, device='cpu')

    # as MMDeploy's visualize_model, for the backend and for PyTorch
    task_processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    input_shape = get_input_shape(deploy_cfg)
    results = {}
    for name, model in (
            ('ort', task_processor.build_backend_model(
                [f'{work_dir}/{save_file}'])),
            ('pt', task_processor.build_pytorch_model(checkpoint))):
        data, _ = task_processor.create_input(img, input_shape)
        with torch.no_grad():
            pred = model.test_step(data)[0].pred_instances
        results[f'{name}_bboxes'] = pred.bboxes.cpu().numpy()
        results[f'{name}_scores'] = pred.scores.cpu().numpy()
        results[f'{name}_labels'] = pred.labels.cpu().numpy()
    np.savez(out_npz, **results)


if __name__ == '__main__':
    main(*sys.argv[1:7])
