"""Evaluate an exported DAMO-YOLO model (ONNX Runtime / OpenVINO, FP32 or
INT8) with the model config's test dataloader and evaluator (CocoMetric).

MMDeploy's own tools/test.py does not come with its wheel; this runs the
same test loop on MMDeploy's task processor.

Examples:
    python tools/test_deployed.py \\
        configs/deploy/detection_onnxruntime_static-640x640.py \\
        configs/damoyolo_t_coco.py --model work_dirs/t_ort/end2end.onnx
    python tools/test_deployed.py \\
        configs/deploy/detection_openvino-int8_static-640x640.py \\
        configs/damoyolo_t_coco.py --model work_dirs/t_int8/end2end.xml
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

HERE = osp.dirname(osp.abspath(__file__))
if osp.dirname(HERE) not in sys.path:  # run from a source checkout
    sys.path.insert(0, osp.dirname(HERE))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='CocoMetric (test_evaluator) of an exported model',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('deploy_cfg', help='deploy config of the export')
    parser.add_argument('model_cfg', help='model config (dataset, evaluator)')
    parser.add_argument('--model', required=True, nargs='+',
                        help='backend file(s): end2end.onnx (onnxruntime) '
                        'or end2end.xml (openvino)')
    parser.add_argument('--work-dir', default=None,
                        help='logs (default: a temporary folder)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override model config settings, key=value')
    args = parser.parse_args(argv)
    for path in args.model:
        problem = _not_a_model(path)
        if problem:
            parser.error(f'--model {path}: {problem}; accepted: '
                         f'{MODEL_KINDS}')
    return args


MODEL_KINDS = ('end2end.onnx (ONNX Runtime), end2end.xml with its .bin '
               '(OpenVINO), end2end.engine (TensorRT), as written by '
               'tools/deploy.py')


def _not_a_model(path: str):
    """Why ``path`` cannot be read as an exported model, or None."""
    if not path.endswith(('.onnx', '.xml', '.bin', '.engine')):
        return 'not an exported model file (unknown extension)'
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
    except OSError:
        return None  # not found: reported with the deploy config's backend
    if head == b'PK\x03\x04' or head[:1] == b'\x80':
        return 'a PyTorch checkpoint, not an exported model'
    return None


def main(argv=None):
    args = parse_args(argv)
    from damoyolo_mm.deploy import compat
    compat.require('mmdeploy')
    from damoyolo_mm.deploy.evaluate import evaluate_deployed
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    metrics = evaluate_deployed(args.deploy_cfg, args.model_cfg, args.model,
                                work_dir=args.work_dir, device=args.device,
                                cfg_options=args.cfg_options)
    for k, v in metrics.items():
        print(f'{k}: {v}')
    return metrics


if __name__ == '__main__':
    try:
        main()
    except (ImportError, FileNotFoundError, KeyError, ValueError) as e:
        print(f'tools/test_deployed.py: error: {e}', file=sys.stderr)
        sys.exit(2)
