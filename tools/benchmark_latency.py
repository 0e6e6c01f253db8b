"""Batch-1 latency of DAMO-YOLO: fused PyTorch, ONNX Runtime, OpenVINO or
TensorRT.

Reports median and 90th percentile latency (ms) at the model's test size,
with the machine (platform, CPU model, thread count, GPU) named. With
``--official-root`` the official DAMO-YOLO implementation is built on the
same weights and timed in the same loop (round robin, so that load changes
on a shared machine hit both alike), and the ratio ours / official printed:

* ``pytorch``: both models in their fused eager form (ours:
  ``switch_to_deploy()``; official: ``RepConv.switch_to_deploy`` +
  ``fuse_model``, its ``tools/eval.py --fuse`` path), network + box decoding,
  no NMS (the official NMS needs torchvision). Ours with NMS is listed too.
* ``onnxruntime``: the official ONNX written by the official
  ``tools/converter.py`` (driven in-process; its model-info step, which times
  500 forward passes, is skipped) against our ONNX of the same outputs
  (decoded boxes + scores) and our end-to-end ONNX (NMS in the graph).
* ``tensorrt``: our FP16 engine (needs an NVIDIA GPU and TensorRT 10).
* ``openvino``: our end-to-end export cut at the NMS (network + decode) on
  OpenVINO, FP32 and (with ``--int8``) INT8; ``all``: PyTorch NCHW and
  channels-last, ONNX Runtime and OpenVINO in FP32 and INT8, all against
  the official eager model in one loop. INT8 is the QDQ ``end2end.onnx`` of
  ``tools/deploy.py`` given by ``--int8-onnx`` (partial quantization), else
  a full INT8 quantization calibrated on synthetic images (latency only).

The work is done by :mod:`damoyolo_mm.benchmark.latency`; the official
code runs in :func:`damoyolo_mm.benchmark.official_code.official_code`
(stand-ins for its import-time dependencies, removed afterwards).

Example:
    python tools/benchmark_latency.py configs/damoyolo_t_coco.py \\
        --official-ckpt T_ckpt_fp16.pth --backend pytorch --threads 2 \\
        --official-root ../damoyolo_official \\
        --official-config configs/damoyolo_tinynasL20_T.py
"""
import argparse
import json
import os.path as osp
import sys

# Run from a source checkout: import the clone's damoyolo_mm rather than an
# installed copy (no-op for the copy mim runs from damoyolo_mm/.mim/tools).
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(_REPO, 'damoyolo_mm', '__init__.py')) and \
        _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from damoyolo_mm.benchmark.latency import (BACKENDS,  # noqa: E402
                                           benchmark_latency)
from damoyolo_mm.benchmark.official_code import \
    official_code as official_env  # noqa: E402,F401
from damoyolo_mm.benchmark.timing import format_machine  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Batch-1 latency (median, p90) of fused DAMO-YOLO on '
        'PyTorch / ONNX Runtime / OpenVINO / TensorRT, optionally against '
        'the official implementation on the same weights')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='our checkpoint (mmdet layout); default: '
                        '--official-ckpt converted in memory')
    parser.add_argument('--backend', default='pytorch',
                        choices=list(BACKENDS),
                        help='all: PyTorch NCHW and channels-last, ONNX '
                        'Runtime and OpenVINO in FP32 and INT8 in one loop '
                        '(default: %(default)s)')
    parser.add_argument('--int8', action='store_true',
                        help='openvino: also time INT8 (always with all)')
    parser.add_argument('--int8-onnx', default=None,
                        help='INT8 end2end.onnx (QDQ) written by '
                        'tools/deploy.py with an *-int8 deploy config; '
                        'default: full INT8 of the export, calibrated on '
                        'synthetic images')
    parser.add_argument('--official-ckpt', default=None,
                        help='official-layout checkpoint ({"model": ...}); '
                        'loaded by the official model and converted for ours')
    parser.add_argument('--official-root', default=None,
                        help='official DAMO-YOLO source tree: also time the '
                        'official implementation and print ours/official')
    parser.add_argument('--official-config', default=None,
                        help='official config, relative to --official-root '
                        '(e.g. configs/damoyolo_tinynasL20_T.py)')
    parser.add_argument('--deploy-cfg', default=None,
                        help='deploy config for the (float) end-to-end ONNX / '
                        'engine; INT8: --int8-onnx '
                        '(default: the static one for the test size)')
    parser.add_argument('--input-size', type=int, nargs=2, default=None,
                        metavar=('H', 'W'),
                        help='input size (default: the config test size)')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch / ONNX Runtime intra-op threads '
                        '(default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--iters', type=int, default=50,
                        help='timed runs per model (default: %(default)s)')
    parser.add_argument('--work-dir', default=None,
                        help='where exported ONNX / engines go (default: a '
                        'temporary folder)')
    parser.add_argument('--no-nms-row', action='store_true',
                        help='do not time our model with NMS')
    parser.add_argument('--json', default=None,
                        help='also write the results to this JSON file')
    args = parser.parse_args(argv)
    if args.official_root and not args.official_config:
        parser.error('--official-root needs --official-config')
    if args.official_root and not args.official_ckpt:
        parser.error('--official-root needs --official-ckpt (the official '
                     'checkpoint; ours is converted from it unless a '
                     'checkpoint is given)')
    if args.checkpoint is None and args.official_ckpt is None:
        parser.error('give a checkpoint or --official-ckpt')
    if (args.int8 or args.int8_onnx) and args.backend not in ('openvino',
                                                              'all'):
        parser.error('--int8 / --int8-onnx need --backend openvino or all, '
                     f'got --backend {args.backend}')
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    return args


def main(argv=None):
    args = parse_args(argv)
    log = lambda m: print(m, flush=True)  # noqa: E731
    res = benchmark_latency(
        args.config, args.checkpoint, backend=args.backend,
        official_ckpt=args.official_ckpt, official_root=args.official_root,
        official_config=args.official_config, deploy_cfg=args.deploy_cfg,
        input_size=args.input_size, threads=args.threads,
        warmup=args.warmup, iters=args.iters, work_dir=args.work_dir,
        nms_row=not args.no_nms_row, int8=args.int8,
        int8_onnx=args.int8_onnx, log=log)
    log('machine: ' + format_machine(res['machine']))
    log(f'{"model":34s} {"median ms":>10s} {"p90 ms":>10s} {"min ms":>10s}')
    for name, r in res['results'].items():
        log(f'{name:34s} {r["median_ms"]:10.2f} {r["p90_ms"]:10.2f} '
            f'{r["min_ms"]:10.2f}')
    for pair, ratio in res['ratios'].items():
        ours, off = pair.split(' / ')
        log(f'ratio ours/official (median): {ratio:.3f}  [{ours} vs {off}]')
    for note in res['notes']:
        log(note)
    if args.json:
        from damoyolo_mm.utils.fileio import atomic_open
        with atomic_open(args.json, 'w', encoding='utf-8') as f:
            json.dump(res, f, indent=2)
    return {k: res[k] for k in ('machine', 'results', 'ratios', 'notes')}


if __name__ == '__main__':
    try:
        main()
    except (ImportError, FileNotFoundError, ValueError) as e:
        print(f'tools/benchmark_latency.py: error: {e}', file=sys.stderr)
        sys.exit(2)
