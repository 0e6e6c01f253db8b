"""Run a DAMO-YOLO model on images, folders, videos, cameras and streams.

SOURCE MODEL [--weights CKPT], in the argument order of mmdet's
demo/image_demo.py. MODEL is a model config (with --weights: our checkpoint
or an official DAMO-YOLO release file as it is) or a file written by
tools/deploy.py: end2end.onnx (FP32 / INT8), OpenVINO end2end.xml, TensorRT
end2end.engine, with the deploy_meta.json beside it (a deployed model needs
numpy, OpenCV and its runtime only).

Outputs in --out-dir: drawn images (same names) or a drawn video (the
input's name, same frame rate and size), predictions.jsonl (one line per
image / frame, boxes in original-image pixels), and for image sets
coco_results.json (+ coco_images.json, or ids of --ann-file) for
pycocotools.

Examples:
    python tools/demo.py demo.jpg configs/damoyolo_t_coco.py \\
        --weights damoyolo_tinynas_L20_T_436.pth
    python tools/demo.py images/ work_dirs/t_ov/end2end.xml --out-dir out
    python tools/demo.py video.mp4 work_dirs/t_ort/end2end.onnx
    python tools/demo.py 0 work_dirs/t_ov/end2end.xml --show   # camera 0
    python tools/demo.py rtsp://host/stream work_dirs/t_ov/end2end.xml
    mim run damoyolo_mm demo demo.jpg work_dirs/t_ort/end2end.onnx

Exit status: 0; 1 if an image could not be read (named in the summary);
2 on a usage or input error; 130 after Ctrl-C (outputs finalised up to the
last frame).
"""
import argparse
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
if osp.dirname(HERE) not in sys.path:  # run from a source checkout
    sys.path.insert(0, osp.dirname(HERE))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run a DAMO-YOLO model (config + checkpoint, or a '
        'deployed end2end.onnx / .xml / .engine) on an image, a folder or '
        'glob, a video, a camera index or a stream URL',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('Examples:')[1])
    parser.add_argument('source', help='image, folder, glob pattern, video '
                        'file, camera index (0) or stream URL (rtsp://, '
                        'http://)')
    parser.add_argument('model', help='model config (.py, with --weights) '
                        'or deployed file (end2end.onnx / end2end.xml / '
                        'end2end.engine, deploy_meta.json beside it)')
    parser.add_argument('--weights', default=None, help='checkpoint of a '
                        'model config (ours or an official release file)')
    parser.add_argument('--out-dir', default='outputs',
                        help='output folder (default: %(default)s)')
    parser.add_argument('--no-save', action='store_true',
                        help='write nothing (with --show)')
    parser.add_argument('--show', action='store_true',
                        help='show the drawn frames in a window (q / Esc '
                        'stops)')
    parser.add_argument('--score-thr', type=float, default=None,
                        help='drop detections below this score (default: '
                        'the model\'s test_cfg.score_thr)')
    parser.add_argument('--device', default='cpu',
                        help='cpu or cuda:N (TensorRT engines: cuda)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per inference for image sets')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads of ONNX Runtime / OpenVINO '
                        '(default: all cores)')
    parser.add_argument('--ann-file', default=None,
                        help='COCO annotation file of the images: '
                        'coco_results.json uses its image and category ids')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar')
    parser.add_argument(
        '--trust-pickle', action='store_true',
        help='load --weights with full unpickling (weights_only=False; runs '
        'any code the file holds): only for trusted files')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from damoyolo_mm.apis.demo import run_demo
    kwargs = dict(weights=args.weights,
                  out_dir=None if args.no_save else args.out_dir,
                  device=args.device, score_thr=args.score_thr,
                  batch_size=args.batch_size, show=args.show,
                  threads=args.threads, ann_file=args.ann_file,
                  progress=not args.no_progress)
    if args.trust_pickle and args.weights:
        from damoyolo_mm.utils.checkpoint_trust import trust_pickle
        with trust_pickle(args.weights):
            summary = run_demo(args.source, args.model, **kwargs)
    else:
        summary = run_demo(args.source, args.model, **kwargs)
    return summary['exit_code']


if __name__ == '__main__':
    import pickle
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the run started (model loading)
        print('tools/demo.py: interrupted', file=sys.stderr)
        sys.exit(130)
    except (ImportError, FileNotFoundError, KeyError, ValueError) as e:
        print(f'tools/demo.py: error: {e}', file=sys.stderr)
        sys.exit(2)
    except (pickle.UnpicklingError, RuntimeError) as e:
        args = parse_args()
        message = None
        if args.weights:
            from damoyolo_mm.utils.checkpoint_trust import \
                explain_checkpoint_error
            message = explain_checkpoint_error(e, args.weights)
        if message is None:
            raise
        print(f'tools/demo.py: error: {message}', file=sys.stderr)
        sys.exit(2)
