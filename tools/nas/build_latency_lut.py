"""Build or validate a latency lookup table for the MAE-NAS search.

Build (measures convs / depthwise convs / element-wise ops on the target and
saves a table the search interpolates between)::

    python tools/nas/build_latency_lut.py build --target torch-cpu \
        --threads 1 --out damoyolo_mm/nas/latency_luts/torch_cpu_t1.json

Targets: ``torch-cpu`` (PyTorch eager), ``onnxruntime-cpu`` (when
onnxruntime is importable), ``tensorrt`` (only with a CUDA GPU and the
tensorrt package). Several targets may be given; one that cannot run on this
machine is skipped with a message (exit code 2 if none could be built).

Validate (predicted vs measured latency of whole backbones on the table's
target; exit code 1 when an error exceeds the tolerance)::

    python tools/nas/build_latency_lut.py validate \
        --lut damoyolo_mm/nas/latency_luts/torch_cpu_t1.json
"""
import argparse
import os.path as osp
import sys

# Run from a source checkout: import the clone's damoyolo_mm rather than an
# installed copy (no-op for the copy mim runs from damoyolo_mm/.mim/tools).
_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(_REPO, 'damoyolo_mm', '__init__.py')) and \
        _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from damoyolo_mm.nas.latency import (DEFAULT_LUT, BackendUnavailable,
                                     LatencyLUT, build_backend, build_lut,
                                     calibrate_lut, random_structures,
                                     save_lut, validate_lut)
from damoyolo_mm.nas.structure import load_search_structure


GRIDS = dict(
    default=dict(channels=(8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384,
                           512),
                 heights=(10, 20, 40, 80, 160, 320)),
    small=dict(channels=(8, 16, 32, 64, 128, 256, 512),
               heights=(10, 20, 40, 80, 160, 320)),
    tiny=dict(channels=(8, 16, 32), heights=(8, 16, 32),
              dw_channels=(16, 32), eltwise_numel=(1024, 8192, 65536)),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='mode', required=True)
    b = sub.add_parser('build', help='measure and save a table')
    b.add_argument('--target', nargs='+', default=['torch-cpu'],
                   help='torch-cpu, onnxruntime-cpu, tensorrt')
    b.add_argument('--out', default=None,
                   help='output file (one target) or folder (several); '
                   'default: the shipped table for torch-cpu')
    b.add_argument('--threads', type=int, default=1)
    b.add_argument('--grid', choices=sorted(GRIDS), default='default')
    b.add_argument('--max-macs', type=float, default=2e9,
                   help='grid points above this many MACs are not measured '
                   'but MAC-scaled from the nearest measured point')
    b.add_argument('--min-time', type=float, default=0.0,
                   help='least seconds of timed runs per op (median of at '
                   'least --min-runs runs is taken)')
    b.add_argument('--min-runs', type=int, default=5)
    b.add_argument('--flush-mb', type=int, default=32,
                   help='cache-flush buffer rewritten before every timed run '
                   '(torch-cpu; 0 = off)')
    b.add_argument('--calibrate', type=int, default=6,
                   help='random networks to fit the global scale on (0: off)')
    b.add_argument('--calibrate-mobile', type=int, default=3,
                   help='random networks built with Nano (mobile) blocks to '
                   'fit their own scale on (0: off)')
    b.add_argument('--image-size', type=int, default=320)
    v = sub.add_parser('validate', help='predicted vs measured backbones')
    v.add_argument('--lut', default=DEFAULT_LUT)
    v.add_argument('--structures', nargs='+',
                   default=['tinynas_L20_k1kx', 'tinynas_L25_k1kx'],
                   help='official names or structure files')
    v.add_argument('--image-size', type=int, default=320)
    v.add_argument('--tolerance', type=float, default=0.15)
    v.add_argument('--min-time', type=float, default=1.0)
    v.add_argument('--block-impl', default='res', choices=['res', 'mobile'])
    return p.parse_args(argv)


def _out_path(args, target):
    if args.out is None:
        return DEFAULT_LUT if target == 'torch-cpu' else osp.join(
            osp.dirname(DEFAULT_LUT),
            f'{target.replace("-", "_")}_t{args.threads}.json')
    if len(args.target) > 1:
        return osp.join(args.out,
                        f'{target.replace("-", "_")}_t{args.threads}.json')
    return args.out


def build(args) -> int:
    built = 0
    for target in args.target:
        try:
            kwargs = dict(min_time=args.min_time, min_runs=args.min_runs)
            if target != 'tensorrt':
                kwargs['num_threads'] = args.threads
            if target == 'torch-cpu':
                kwargs['flush_cache_mb'] = args.flush_mb
            backend = build_backend(target, **kwargs)
        except BackendUnavailable as err:
            print(f'SKIPPED target {target}: {err}', flush=True)
            continue
        grid = dict(GRIDS[args.grid])
        print(f'measuring target {target} ({args.grid} grid, '
              f'{args.threads} thread(s))', flush=True)
        data = build_lut(backend, max_macs=args.max_macs,
                         progress=lambda m: print(m, flush=True), **grid)
        if args.calibrate > 0:
            nets = random_structures(args.calibrate - args.calibrate // 3,
                                     'SuperResConvK1KX', seed=1) + \
                random_structures(args.calibrate // 3, 'SuperResConvKXKX',
                                  max_layers=20, seed=2)
            data = calibrate_lut(data, backend, nets, args.image_size,
                                 progress=lambda m: print(m, flush=True))
            print(f'calibration scale {data["scale"]:.4f}', flush=True)
        if args.calibrate_mobile > 0:
            nets = random_structures(args.calibrate_mobile,
                                     'SuperResConvK1KX', seed=3)
            data = calibrate_lut(data, backend, nets, args.image_size,
                                 block_impl='mobile',
                                 progress=lambda m: print(m, flush=True))
            print('calibration scale (mobile blocks) '
                  f'{data["scale_by_impl"]["mobile"]:.4f}', flush=True)
        out = _out_path(args, target)
        save_lut(data, out)
        print(f'saved {out}', flush=True)
        built += 1
    return 0 if built else 2


def validate(args) -> int:
    lut = LatencyLUT.load(args.lut)
    target = lut.target
    kwargs = dict(min_time=args.min_time)
    if target != 'tensorrt':
        kwargs['num_threads'] = lut.data.get('num_threads') or 1
    try:
        backend = build_backend(target, **kwargs)
    except BackendUnavailable as err:
        print(f'SKIPPED validation of {args.lut}: target {target}: {err}')
        return 2
    print(f'validating {lut.describe()} (tolerance '
          f'{args.tolerance * 100:.0f}%)', flush=True)
    structures = {s: load_search_structure(s) for s in args.structures}
    results = validate_lut(lut, backend, structures, args.image_size,
                           args.tolerance, args.block_impl,
                           progress=lambda m: print(m, flush=True))
    ok = all(r['ok'] for r in results)
    print('PASS' if ok else 'FAIL', flush=True)
    return 0 if ok else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    return build(args) if args.mode == 'build' else validate(args)


if __name__ == '__main__':
    sys.exit(main())
