"""End-to-end FPS of tools/demo.py on a generated 1280x720 video, per engine.

The video is made from the images of --images (e.g. the demo val split)
with OpenCV's VideoWriter; each --engine runs the whole demo on it (decode
and preprocess in the reader thread, inference, postprocess, draw, write the
drawn video and predictions.jsonl). Printed: FPS end to end, time per
frame of each stage, share of the wall time that is not inference, and the
machine (CPU model, load average).

Example (T at 640; deploy first with tools/deploy.py):
    python tools/deploy.py configs/deploy/detection_onnxruntime_static-640x640.py \\
        configs/damoyolo_t_coco.py T.pth --work-dir work_dirs/t_ort
    python tools/deploy.py configs/deploy/detection_openvino_static-640x640.py \\
        configs/damoyolo_t_coco.py T.pth --work-dir work_dirs/t_ov
    python tools/benchmark_demo.py --images data/demo/val --threads 2 \\
        --engine "PyTorch FP32=configs/damoyolo_t_coco.py,T.pth" \\
        --engine "ORT FP32=work_dirs/t_ort/end2end.onnx" \\
        --engine "OpenVINO FP32=work_dirs/t_ov/end2end.xml" \\
        --official-root ../damoyolo_official --official-ckpt T.pth

With --official-root (a checkout of tinyvision/DAMO-YOLO) the official
tools/demo.py runs first, in this process, on the same video with its ONNX
Runtime engine (the ONNX written from --official-ckpt by the official
tools/converter.py, or --official-onnx) and the same threads; each row then
shows its FPS over the official demo's. Without it that row is skipped.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import tempfile

HERE = osp.dirname(osp.abspath(__file__))
if osp.dirname(HERE) not in sys.path:  # run from a source checkout
    sys.path.insert(0, osp.dirname(HERE))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='End-to-end frames per second of tools/demo.py on a '
        'generated 1280x720 video, one row per engine',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('Example')[1])
    parser.add_argument('--engine', action='append', required=True,
                        metavar='NAME=MODEL[,WEIGHTS]',
                        help='a row: a deployed file, or a config and its '
                        'checkpoint (repeat for several engines)')
    parser.add_argument('--images', required=True,
                        help='folder of images the video is made of')
    parser.add_argument('--video', default=None,
                        help='use this video instead of generating one')
    parser.add_argument('--seconds', type=float, default=20.,
                        help='length of the generated video (default: '
                        '%(default)s s at --fps)')
    parser.add_argument('--fps', type=float, default=25.)
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads of every engine')
    parser.add_argument('--score-thr', type=float, default=None,
                        help='drop detections below this score before '
                        'drawing and writing (default: keep what the model '
                        'returns)')
    parser.add_argument('--official-root', default=None,
                        help='official DAMO-YOLO source tree: also run its '
                        'tools/demo.py (ONNX engine) and print ours/official')
    parser.add_argument('--official-config',
                        default='configs/damoyolo_tinynasL20_T.py',
                        help='official config, relative to --official-root '
                        '(default: %(default)s)')
    parser.add_argument('--official-ckpt', default=None,
                        help='official checkout\'s checkpoint, exported to '
                        'ONNX with the official tools/converter.py')
    parser.add_argument('--official-onnx', default=None,
                        help='an ONNX already written by the official '
                        'converter (instead of --official-ckpt)')
    parser.add_argument('--out-dir', default=None,
                        help='outputs (default: a temporary folder)')
    parser.add_argument('--json', default=None, help='also write the rows '
                        'and the machine to this JSON file')
    args = parser.parse_args(argv)
    engines = {}
    for spec in args.engine:
        if '=' not in spec:
            parser.error(f'--engine {spec!r}: expected NAME=MODEL[,WEIGHTS]')
        name, model = spec.split('=', 1)
        model, _, weights = model.partition(',')
        engines[name] = dict(model=model, weights=weights or None)
    args.engines = engines
    if args.official_root and not (args.official_ckpt or args.official_onnx):
        parser.error('--official-root needs --official-ckpt or '
                     '--official-onnx')
    return args


def main(argv=None):
    args = parse_args(argv)
    from damoyolo_mm.benchmark.demo_fps import (demo_fps, format_rows,
                                                make_video, official_demo_row)
    from damoyolo_mm.benchmark.timing import cpu_name
    tmp = tempfile.TemporaryDirectory(prefix='damoyolo_demo_fps_')
    out_dir = args.out_dir or tmp.name
    os.makedirs(out_dir, exist_ok=True)
    video = args.video
    if video is None:
        images = sorted(glob.glob(osp.join(args.images, '*.jpg')) +
                        glob.glob(osp.join(args.images, '*.png')))
        if not images:
            raise ValueError(f'no .jpg / .png image in {args.images}')
        video = make_video(osp.join(out_dir, 'bench_1280x720.mp4'), images,
                           args.seconds, args.fps)
        print(f'video: {video} ({args.seconds:g} s at {args.fps:g} fps, '
              '1280x720)')
    load = ' '.join(f'{v:.2f}' for v in os.getloadavg())
    official = dict(root=args.official_root, config=args.official_config,
                    ckpt=args.official_ckpt, onnx=args.official_onnx)
    row = official_demo_row(video, official, out_dir, threads=args.threads,
                            score_thr=args.score_thr)
    rows = ([row] if row else []) + demo_fps(
        video, args.engines, out_dir, threads=args.threads,
        score_thr=args.score_thr)
    load_after = ' '.join(f'{v:.2f}' for v in os.getloadavg())
    machine = (f'{cpu_name()}, {os.cpu_count()} cores, threads '
               f'{args.threads or "all"}, load average {load} before / '
               f'{load_after} after')
    print(f'machine: {machine}')
    print('detections per frame (drawn and written): ' + ', '.join(
        f'{r["name"]} {r["dets_per_frame"]:.1f}' for r in rows))
    for line in format_rows(rows):
        print(line)
    if args.json:
        from damoyolo_mm.utils.fileio import atomic_open
        with atomic_open(args.json, 'w', encoding='utf-8') as f:
            json.dump(dict(machine=machine, rows=rows), f, indent=2)
    tmp.cleanup()
    return rows


if __name__ == '__main__':
    try:
        main()
    except (ImportError, FileNotFoundError, KeyError, ValueError) as e:
        print(f'tools/benchmark_demo.py: error: {e}', file=sys.stderr)
        sys.exit(2)
