"""Export a DAMO-YOLO detector for ONNX Runtime or TensorRT.

deploy config + model config + checkpoint -> ``WORK_DIR/end2end.onnx``
(post-processing inside the graph) and, for TensorRT on a GPU,
``WORK_DIR/end2end.engine``.

Examples:
    # ONNX Runtime (CPU), DAMO-YOLO-T at 640x640
    python tools/deploy.py configs/deploy/detection_onnxruntime_static-640x640.py \\
        configs/damoyolo_t_coco.py damoyolo_t.pth --work-dir work_dirs/t_ort
    # MMDeploy's argument order (DEPLOY_CFG MODEL_CFG CHECKPOINT IMG); an
    # official release file loads directly
    python tools/deploy.py configs/deploy/detection_onnxruntime_static-640x640.py \\
        configs/damoyolo_t_coco.py damoyolo_tinynasL20_T_436.pth demo.jpg
    # nano models use the *_nano deploy configs (their test_cfg differs)
    python tools/deploy.py configs/deploy/detection_onnxruntime_static-416x416_nano.py \\
        configs/damoyolo_ns_coco.py damoyolo_ns.pth --work-dir work_dirs/ns_ort
    # OpenVINO IR (end2end.xml + .bin)
    python tools/deploy.py configs/deploy/detection_openvino_static-640x640.py \
        configs/damoyolo_t_coco.py damoyolo_t.pth --work-dir work_dirs/t_ov
    # INT8 partial quantization (calibrates on the config's val dataset)
    python tools/deploy.py configs/deploy/detection_openvino-int8_static-640x640.py \
        configs/damoyolo_t_coco.py damoyolo_t.pth --img demo.jpg --work-dir work_dirs/t_int8
    # TensorRT 10 FP16 engine (GPU; --onnx-only writes just the ONNX on a CPU)
    python tools/deploy.py configs/deploy/detection_tensorrt-fp16_static-640x640.py \\
        configs/damoyolo_t_coco.py damoyolo_t.pth --work-dir work_dirs/t_trt
    # TensorRT 10 INT8 (QDQ) + FP16 engine; --onnx-only: the QDQ file on a CPU
    python tools/deploy.py configs/deploy/detection_tensorrt-int8_static-640x640.py \\
        configs/damoyolo_t_coco.py damoyolo_t.pth --work-dir work_dirs/t_trt_int8
"""
import argparse
import os
import os.path as osp
import sys
import time

from mmengine.config import DictAction

HERE = osp.dirname(osp.abspath(__file__))
if osp.dirname(HERE) not in sys.path:  # run from a source checkout
    sys.path.insert(0, osp.dirname(HERE))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export DAMO-YOLO to ONNX Runtime / OpenVINO / TensorRT '
        '(end2end.onnx, end2end.xml, end2end.engine), FP32 or INT8',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Deploy configs: configs/deploy/ (onnxruntime static 640 / '
        '416 nano / dynamic, openvino static, onnxruntime-int8 / '
        'openvino-int8 / tensorrt-int8 static, tensorrt fp16 static 640 / '
        '416 nano). '
        'See docs/deploy.md.')
    parser.add_argument('deploy_cfg', help='deploy config (configs/deploy/)')
    parser.add_argument('model_cfg', help='model config')
    parser.add_argument('checkpoint', help='model checkpoint: mmdet layout '
                        'or an official DAMO-YOLO release file (converted '
                        'in memory)')
    parser.add_argument('img', nargs='?', default=None,
                        help='image to trace with through the model test '
                        'pipeline, as in MMDeploy\'s tools/deploy.py (same '
                        'as --img; default: a zero image of the export '
                        'size)')
    parser.add_argument('--work-dir', default='work_dirs/deploy',
                        help='output folder (default: %(default)s)')
    parser.add_argument('--img', dest='img_option', default=None,
                        help='image to trace with (the optional positional '
                        'IMG)')
    parser.add_argument('--device', default='cpu',
                        help='device to build the model on (export runs on '
                        'CPU; the TensorRT engine is built on cuda:0)')
    parser.add_argument('--onnx-only', action='store_true',
                        help='TensorRT: write end2end.onnx only (no GPU '
                        'needed); build the engine later on a GPU machine')
    parser.add_argument('--calib-dataset-cfg', default=None,
                        help='INT8: config whose val_dataloader.dataset '
                        'holds the calibration images (default: the model '
                        'config\'s)')
    parser.add_argument('--verify', action='store_true',
                        help='ONNX Runtime / OpenVINO: run the exported '
                        'model and PyTorch on the trace input and report the '
                        'largest differences')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override model config settings, key=value '
                        '(e.g. model.deploy=True for a checkpoint saved in '
                        'deploy form by tools/convert_official.py --fuse)')
    parser.add_argument('--log-level', default='INFO',
                        choices=['DEBUG', 'INFO', 'WARNING', 'ERROR'],
                        help='MMDeploy log level')
    parser.add_argument(
        '--trust-pickle', action='store_true',
        help='load the checkpoint with full unpickling (weights_only=False; '
        'runs any code the file holds): only for files from a trusted source '
        'that hold more than weights (also: DAMOYOLO_TRUST_PICKLE=FILE)')
    args = parser.parse_args(argv)
    if args.img_option is not None:
        if args.img is not None and args.img != args.img_option:
            parser.error(f'two images given: IMG={args.img!r} and '
                         f'--img={args.img_option!r}; give one')
        args.img = args.img_option
    return args


def main(argv=None):
    args = parse_args(argv)
    from damoyolo_mm.utils.checkpoint_trust import (TOOL_OPT_IN,
                                                    refusal_opt_in,
                                                    trust_pickle)
    with trust_pickle(args.checkpoint if args.trust_pickle else None), \
            refusal_opt_in(TOOL_OPT_IN):
        _run(args)


def _run(args):
    t0 = time.time()

    def log(msg):
        print(f'[{time.time() - t0:7.1f}s] {msg}', flush=True)

    from damoyolo_mm.deploy import compat
    compat.require('mmdeploy')
    from mmdeploy.utils import get_root_logger
    get_root_logger(log_level=args.log_level)

    import damoyolo_mm.deploy as dp
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)

    log(f'[deploy] step 1/4: configs {args.deploy_cfg} + {args.model_cfg}')
    deploy_cfg, model_cfg = dp.load_configs(args.deploy_cfg, args.model_cfg)
    if args.cfg_options:
        model_cfg.merge_from_dict(args.cfg_options)
    backend = dp.get_backend_name(deploy_cfg)
    build_engine = backend == 'tensorrt' and not args.onnx_only
    fp16 = bool(deploy_cfg['backend_config'].get('common_config', {}).get(
        'fp16_mode', False))
    precision = dp.get_precision(deploy_cfg)
    dp.check_backend_available(backend, build_engine=build_engine, fp16=fp16,
                               precision=precision)
    if precision == 'int8':
        dp.get_calib_config(deploy_cfg)  # raises on a bad calib_config
    dp.check_post_processing(deploy_cfg, model_cfg)  # raises on mismatch
    h, w = dp.get_input_hw(deploy_cfg, model_cfg)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} not found')
    log(f'[deploy]   backend {backend}, input {h}x{w}, test_cfg '
        f'{dict(dp.get_test_cfg(model_cfg))}')
    os.makedirs(args.work_dir, exist_ok=True)

    log('[deploy] step 2/4: build the model, load the checkpoint, switch to '
        'deploy form')
    model = dp.build_model(model_cfg, args.checkpoint, args.device)
    inputs = None
    if args.img is None:
        import torch
        inputs = torch.zeros((1, 3, h, w))

    if precision == 'int8':
        log('[deploy] step 3/4: export ONNX, calibrate, quantize (INT8)')
        onnx_file, _ = dp.export_int8(
            deploy_cfg, model_cfg, args.checkpoint, args.work_dir,
            img=args.img, inputs=inputs, device=args.device, model=model,
            calib_dataset_cfg=args.calib_dataset_cfg, log=log)
    else:
        log('[deploy] step 3/4: export ONNX')
        onnx_file = dp.export_onnx(
            deploy_cfg, model_cfg, args.checkpoint, args.work_dir,
            img=args.img, inputs=inputs, device=args.device, model=model,
            log=log)

    if backend == 'openvino':
        log('[deploy] step 4/4: convert to OpenVINO IR')
        xml = dp.onnx2openvino(onnx_file, args.work_dir,
                               dp.input_shapes_from_cfg(deploy_cfg))
        log(f'[deploy]   wrote {xml}')
        if args.verify:
            _verify(model, xml, inputs, h, w, log)
    elif backend == 'tensorrt':
        if args.onnx_only:
            log('[deploy] step 4/4: engine skipped (--onnx-only); build it '
                'on a GPU with this command without --onnx-only')
        else:
            log('[deploy] step 4/4: build the TensorRT engine')
            dp.build_trt_engine(deploy_cfg, onnx_file, args.work_dir, log=log)
    elif args.verify:
        log('[deploy] step 4/4: verify ONNX Runtime against PyTorch')
        _verify(model, onnx_file, inputs, h, w, log)
    else:
        log('[deploy] step 4/4: nothing to build for onnxruntime '
            '(use --verify to compare with PyTorch)')
    deployed = {'openvino': osp.splitext(onnx_file)[0] + '.xml',
                'tensorrt': osp.splitext(onnx_file)[0] + '.engine'}.get(
                    backend, onnx_file)
    meta = dp.build_deploy_meta(
        deploy_cfg, model_cfg, deployed,
        precision='fp16' if backend == 'tensorrt' and fp16 and
        precision == 'fp32' else precision,
        sources=dict(deploy_config=args.deploy_cfg,
                     model_config=args.model_cfg, checkpoint=args.checkpoint))
    log(f'[deploy]   wrote {dp.write_deploy_meta(meta, args.work_dir)} '
        '(input, preprocessing, classes, NMS settings: tools/demo.py runs '
        'the model from this folder alone)')
    log(f'[deploy] done: {args.work_dir}')


def _verify(model, model_file, inputs, h, w, log):
    import torch
    import damoyolo_mm.deploy as dp
    if inputs is None or not inputs.abs().sum():
        # a smooth random image (a zero image has no detections)
        gen = torch.Generator().manual_seed(0)
        inputs = torch.nn.functional.interpolate(
            torch.rand(1, 3, h // 16, w // 16, generator=gen) * 255,
            size=(h, w), mode='bilinear', align_corners=False).round()
    runner = dp.ExportedModel(model_file)
    ort_det = runner.detections(inputs)[0]
    name = runner.backend
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        res = model.bbox_head.predict_by_feat(
            *model.bbox_head(feats),
            batch_img_metas=[dict(img_shape=(h, w))])[0]
    pt = dict(bboxes=res.bboxes.numpy(), scores=res.scores.numpy(),
              labels=res.labels.numpy())
    log(f'[deploy]   detections: pytorch {len(pt["scores"])}, {name} '
        f'{len(ort_det["scores"])}')
    un_a, _, db, ds = dp.match_detections(ort_det, pt, 1e-3, 1e-4)
    n = len(ort_det['scores'])
    log(f'[deploy]   matched {n - len(un_a)}/{n} (same label, boxes within '
        f'1e-3 px, scores within 1e-4); largest differences of the matched: '
        f'boxes {db:.2e} px, scores {ds:.2e}')
    if un_a:
        log('[deploy]   unmatched detections can come from near-ties: two '
            'neighbouring boxes whose scores differ by less than the float '
            'rounding of the two runtimes (common with untrained weights)')


if __name__ == '__main__':
    import pickle
    try:
        main()
    except (ImportError, FileNotFoundError, KeyError, ValueError) as e:
        # user-facing problems (missing package, bad file, bad config value)
        print(f'tools/deploy.py: error: {e}', file=sys.stderr)
        sys.exit(2)
    except (pickle.UnpicklingError, RuntimeError) as e:
        from damoyolo_mm.utils.checkpoint_trust import \
            explain_checkpoint_error
        message = explain_checkpoint_error(e, parse_args().checkpoint)
        if message is None:
            raise
        print(f'tools/deploy.py: error: {message}', file=sys.stderr)
        sys.exit(2)
