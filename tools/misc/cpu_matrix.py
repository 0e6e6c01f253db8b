"""Run the numeric tests as other CPUs would, and print the worst measured
error beside each tolerance.

A CPU without AVX-512 (or another thread count) sums in another order, so
every float comparison of the suite must hold for all of them. This runs
the numeric test groups once per setting, each in a fresh process:

* ``native``: the kernels this CPU selects;
* ``avx2``: ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``, what an
  AVX2-only CPU (e.g. AMD Zen 3) computes;
* ``default``: ``ATEN_CPU_CAPABILITY=default`` (no vector kernels in ATen),
  ``ONEDNN_MAX_CPU_ISA=AVX2``;

each with 1 and 2 intra-op threads (``DAMOYOLO_TEST_THREADS``), and
collects what the tests measured (``tests/numerics.py``,
``DAMOYOLO_TOLERANCE_LOG``). Exit status 1 when a run fails.

Examples::

    python tools/misc/cpu_matrix.py                      # all settings
    python tools/misc/cpu_matrix.py --settings avx2/1 native/2
    python tools/misc/cpu_matrix.py --tests tests/test_models -k parity
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

from tabulate import tabulate

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: the test files that compare floats against references or each other
NUMERIC_TESTS = (
    'tests/test_models/test_damoyolo_golden_parity.py',
    'tests/test_models/test_damoyolo_m_parity.py',
    'tests/test_models/test_channels_last_inference.py',
    'tests/test_models/test_loss_zero_head.py',
    'tests/test_models/test_align_ota_assigner.py',
    'tests/test_models/test_conv_bn_fold.py',
    'tests/test_models/test_tinynas_backbones.py',
    'tests/test_models/test_rep_gfpn.py',
    'tests/test_deploy/test_judges.py',
    'tests/test_deploy/test_onnxruntime.py',
    'tests/test_deploy/test_openvino.py',
    'tests/test_datasets/test_sada_reference.py',
    'tests/test_datasets/test_mix_transforms_reference.py',
    'tests/test_datasets/test_train_pipeline_pinned.py',
    'tests/test_nas/test_scores.py',
)

CAPABILITIES = {
    'native': {},
    'avx2': dict(ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2'),
    'default': dict(ATEN_CPU_CAPABILITY='default', ONEDNN_MAX_CPU_ISA='AVX2'),
}
SETTINGS = ('native/2', 'native/1', 'avx2/2', 'avx2/1', 'default/1')


def parse_setting(text):
    cap, _, n = text.partition('/')
    if cap not in CAPABILITIES or not n.isdigit() or int(n) < 1:
        raise argparse.ArgumentTypeError(
            f'setting {text!r}: expected CAPABILITY/THREADS with CAPABILITY '
            f'one of {", ".join(CAPABILITIES)} (e.g. avx2/1)')
    return cap, int(n)


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    p.add_argument('--settings', nargs='+', type=parse_setting,
                   default=[parse_setting(s) for s in SETTINGS],
                   help='CAPABILITY/THREADS pairs (default: %s)' %
                   ' '.join(SETTINGS))
    p.add_argument('--tests', nargs='+', default=list(NUMERIC_TESTS),
                   help='test files or folders (default: the numeric tests)')
    p.add_argument('-k', default=None, help="pytest's -k expression")
    p.add_argument('--json', default=None,
                   help='also write every measurement to this JSON file')
    return p.parse_args()


def run_setting(cap, n, tests, k, log):
    env = dict(os.environ, DAMOYOLO_TEST_THREADS=str(n),
               DAMOYOLO_TOLERANCE_LOG=log, **CAPABILITIES[cap])
    for key in ('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA'):
        if key not in CAPABILITIES[cap]:
            env.pop(key, None)
    cmd = [sys.executable, '-m', 'pytest', '-q', *tests] + (['-k', k] if k else [])
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True)
    tail = (proc.stdout.strip().splitlines() or [''])[-1]
    return proc.returncode, time.time() - t0, tail, proc.stdout


def main():
    args = parse_args()
    names = [f'{c}/{n}' for c, n in args.settings]
    worst = defaultdict(dict)  # name -> setting -> (measured, tol, kind)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for (cap, n), setting in zip(args.settings, names):
            log = osp.join(tmp, setting.replace('/', '_') + '.jsonl')
            rc, dt, tail, out = run_setting(cap, n, args.tests, args.k, log)
            print(f'{setting:<10} {dt:6.0f} s  {tail}', flush=True)
            if rc != 0:
                failed.append(setting)
                print('\n'.join(l for l in out.splitlines()
                                if l.startswith(('FAILED', 'ERROR'))))
            if not osp.exists(log):
                continue
            with open(log) as f:
                for line in f:
                    r = json.loads(line)
                    prev = worst[r['name']].get(setting)
                    bad = (lambda a, b: a > b) if r['kind'] == 'max' else (
                        lambda a, b: a < b)
                    if prev is None or bad(r['measured'], prev[0]):
                        worst[r['name']][setting] = (r['measured'], r['tol'],
                                                     r['kind'])
    print()
    header = ['measurement', 'tolerance', 'worst'] + names
    rows = []
    for name in sorted(worst):
        per = worst[name]
        kind = next(iter(per.values()))[2]
        tol = max(v[1] for v in per.values()) if kind == 'max' else min(
            v[1] for v in per.values())
        vals = [v[0] for v in per.values()]
        w = max(vals) if kind == 'max' else min(vals)
        rows.append([name, ('<= ' if kind == 'max' else '>= ') + f'{tol:.3g}',
                     f'{w:.3g}'] +
                    [f'{per[s][0]:.3g}' if s in per else '-' for s in names])
    print(tabulate(rows, headers=header, tablefmt='github'))
    if args.json:
        sys.path.insert(0, REPO)
        from damoyolo_mm.utils.fileio import atomic_open
        with atomic_open(args.json, 'w', encoding='utf-8') as f:
            json.dump({k: {s: v[0] for s, v in per.items()}
                       for k, per in worst.items()}, f, indent=1)
    if failed:
        print(f'\nfailed under: {", ".join(failed)}')
        return 1
    print(f'\nall {len(names)} settings passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
