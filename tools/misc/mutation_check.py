"""Mutation spot-check of the default test suite.

Applies deliberate bugs one at a time to a temporary copy of the
repository (the working tree is never modified), runs the default
(non-``heavy``) tests that protect the mutated code, and reports which tests
fail. Every mutation must make at least one test fail; the exit status is 1
when one does not (or when a mutation site is not found).

The mutation sites are found by text pattern anywhere under
``damoyolo_mm/`` and the test files by name anywhere under ``tests/``, so
the script keeps working when files move; a pattern that matches nothing
(or more often than expected) is an error naming the pattern.

Examples::

    python tools/misc/mutation_check.py               # all mutations
    python tools/misc/mutation_check.py --only sada_radius shear_radians
    python tools/misc/mutation_check.py --list
"""
import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from typing import Dict, List, NamedTuple, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class Mutation(NamedTuple):
    name: str
    description: str
    pattern: str  # regular expression, searched in damoyolo_mm/**/*.py
    replacement: str
    count: int  # expected number of matches
    tests: Tuple[str, ...]  # test file names (searched under tests/)


MUTATIONS = (
    Mutation(
        'giou_detach',
        'GIoU loss fed decoded.detach() (no box gradient from GIoU)',
        r'self\.loss_bbox\(\s*decoded\.reshape\(',
        'self.loss_bbox(decoded.detach().reshape(', 1,
        ('test_loss_zero_head.py', 'test_zero_head.py')),
    Mutation(
        'csp_concat_order',
        'TinyNAS CSP stage concatenates (short, x) instead of (x, short)',
        r'torch\.cat\(\(x, short\), dim=1\)',
        'torch.cat((short, x), dim=1)', 1,
        ('test_tinynas_backbones.py', 'test_damoyolo_m_parity.py')),
    Mutation(
        'sada_radius',
        'SADA Gaussian window radius /(2 pi) -> /pi',
        r'radius = math\.sqrt\(scale \* height \* width / \(2\. \* math\.pi\)'
        r'\)',
        'radius = math.sqrt(scale * height * width / math.pi)', 1,
        ('test_sada.py', 'test_sada_reference.py')),
    Mutation(
        'shear_radians',
        'RandomAffine shear used in degrees instead of radians',
        r'math\.tan\(\s*math\.radians\(', 'math.tan((', 2,
        ('test_mix_transforms.py', 'test_mix_transforms_reference.py')),
    Mutation(
        'fold_eps',
        'conv+BN fold with eps 1e-5 instead of bn.eps',
        r'\(bn\.running_var \+ bn\.eps\)', '(bn.running_var + 1e-5)', 1,
        ('test_conv_bn_fold.py', 'test_tinynas_backbones.py')),
    # strict checkpoint loading, one rule each
    Mutation(
        'skip_prefix_match',
        'partial_load.skip patterns searched at the start of a key '
        '(re.match) instead of matching the whole key',
        r'return any\(p\.fullmatch\(key\) for p in self\.patterns\)',
        'return any(p.match(key) for p in self.patterns)', 1,
        ('test_strict_load_rules.py', )),
    Mutation(
        'skip_fill_without_prefix',
        'a skipped model key is filled in without the module prefix',
        r'state_dict\[prefix \+ k\] = own\[k\]', 'state_dict[k] = own[k]',
        1, ('test_strict_load_rules.py', )),
    Mutation(
        'shapeless_value_compared',
        'a checkpoint value without a shape is compared by shape',
        r"hasattr\(\s*state_dict\[incoming\[k\]\], 'shape'\) and ", '', 1,
        ('test_strict_load_rules.py', )),
    Mutation(
        'class_hint_any',
        "'only the class layers differ' hint when any (not every) "
        'mismatched key is a class layer',
        r"all\((\s*)k\.startswith\('bbox_head\.gfl_cls\.'\)",
        r"any(\1k.startswith('bbox_head.gfl_cls.')", 1,
        ('test_strict_load_rules.py', )),
    Mutation(
        'variant_hint_own_release',
        "'fits the released variant' hint also when the checkpoint fits the "
        "model's own release",
        r'if fits is not None and fits != ours:', 'if fits is not None:', 1,
        ('test_strict_load_rules.py', )),
    Mutation(
        'key_list_cap',
        "mismatch message adds '...' after exactly 3 keys (>= instead of >)",
        r'if len\(keys\) > _SHOWN else', 'if len(keys) >= _SHOWN else', 1,
        ('test_strict_load_rules.py', )),
    Mutation(
        'official_key_prefix_match',
        'official key rules matched at the start (re.match) instead of the '
        'whole key',
        r'm = pattern\.fullmatch\(key\)', 'm = pattern.match(key)', 1,
        ('test_strict_load_rules.py', )),
    Mutation(
        'official_duplicate_key',
        'an official key given twice (with and without module.) overwrites '
        'the first instead of being refused',
        r'if new_key is None or new_key in converted:',
        'if new_key is None:', 1, ('test_strict_load_rules.py', )),
    # loss targets and normalisers, one boundary each
    Mutation(
        'dfl_clamp_max',
        'DFL distance targets clamped at reg_max instead of reg_max - 0.1',
        r'max=self\.reg_max - 0\.1\)', 'max=self.reg_max)', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'dfl_clamp_min',
        'DFL distance targets not clamped at 0',
        r'\.clamp\(min=0, max=self\.reg_max', '.clamp(max=self.reg_max', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'gt_inds_clamp',
        'matched-GT index clamped at 1 instead of 0 (positives of GT 0 get '
        'GT 1)',
        r"assign\['gt_inds'\]\.clamp\(min=0\)",
        "assign['gt_inds'].clamp(min=1)", 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'avg_factor_mean_clamp',
        'loss normaliser clamps the per-process mean, not the global sum',
        r'max\(float\(total\), 1\.0\) / get_world_size\(\)',
        'max(float(total) / get_world_size(), 1.0)', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'box_norm_unclamped',
        'GIoU / DFL normaliser is the weight sum, not max(sum, 1)',
        r'norm_factor = global_avg_factor\(weight_targets\.sum\(\)\)',
        'norm_factor = float(weight_targets.sum())', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'dfl_avg_factor',
        'DFL averaged over the weight sum instead of 4 x (one per side)',
        r'avg_factor=4\.0 \* norm_factor', 'avg_factor=norm_factor', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'iou_union_eps_added',
        'IoU union + eps instead of max(union, eps)',
        r'union = torch\.max\(union, union\.new_tensor\(\[eps\]\)\)',
        'union = union + eps', 1, ('test_loss_targets_boundaries.py', )),
    Mutation(
        'iou_cost_eps',
        'IoU cost -log(IoU + 1e-6) instead of + 1e-7',
        r'iou_eps: float = 1e-7', 'iou_eps: float = 1e-6', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'in_box_inclusive',
        'a prior on the left edge of a GT box counts as inside',
        r'\(px - x1 > 0\)', '(px - x1 >= 0)', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'in_centre_inclusive',
        'a prior on the left edge of the centre square counts as inside',
        r'\(\(px - \(cx - self\.center_radius \* sx\) > 0\)',
        '((px - (cx - self.center_radius * sx) >= 0)', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'dynamic_k_min_one',
        'dynamic k not clamped to at least 1',
        r'\.int\(\)\.clamp\(min=1\)', '.int()', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'dynamic_k_rounded',
        'dynamic k rounds the IoU sum instead of truncating it',
        r'topk_ious\.sum\(dim=1\)\.int\(\)',
        'topk_ious.sum(dim=1).round().int()', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'dynamic_k_topk',
        'dynamic k sums topk - 1 IoUs',
        r'k_iou = min\(self\.topk, num_priors\)',
        'k_iou = min(self.topk - 1, num_priors)', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'kth_index_clamp',
        'k-th cost gathered at dynamic_k - 1 without clamping (GT without '
        'candidates)',
        r'\(dynamic_k - 1\)\.clamp\(min=0\)', '(dynamic_k - 1)', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'kth_ties',
        'priors tied at the k-th cost: one fewer taken (< instead of <=)',
        r'<= remaining\[\.\.\., None\]', '< remaining[..., None]', 1,
        ('test_loss_targets_boundaries.py', )),
    Mutation(
        'conflict_single_match',
        'a prior matched by one GT also moved to its cheapest GT',
        r'torch\.where\(num_matched > 1, cheapest, first_match\)',
        'torch.where(num_matched > 0, cheapest, first_match)', 1,
        ('test_loss_targets_boundaries.py', )),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Apply deliberate bugs one at a time (in a temporary '
        'copy of the repository) and check that the default tests catch '
        'each of them.')
    parser.add_argument('--only', nargs='+', metavar='NAME',
                        choices=[m.name for m in MUTATIONS],
                        help='run these mutations only')
    parser.add_argument('--list', action='store_true',
                        help='list the mutations and exit')
    parser.add_argument('--baseline', action='store_true',
                        help='first run the same tests unmutated (they '
                        'must pass)')
    parser.add_argument('--without-official', action='store_true',
                        help='hide the official checkout from the tests, as '
                        'in CI (its reference tests skip)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter with the test dependencies')
    parser.add_argument('--pytest-args', default='-q -x',
                        help='extra pytest arguments (default: %(default)s; '
                        'drop -x to list every failing test)')
    return parser.parse_args(argv)


def _copy_repo(dst: str) -> None:
    shutil.copytree(
        REPO, dst,
        ignore=shutil.ignore_patterns('.git', '.venv', '__pycache__',
                                      'work_dirs', '*.egg-info', 'build'))


def find_site(root: str, mutation: Mutation) -> str:
    """Path of the one file under ``damoyolo_mm/`` where the pattern
    matches ``mutation.count`` times."""
    regex = re.compile(mutation.pattern)
    hits = []
    for dirpath, _, files in os.walk(osp.join(root, 'damoyolo_mm')):
        for f in files:
            if f.endswith('.py'):
                path = osp.join(dirpath, f)
                with open(path, encoding='utf-8') as fh:
                    n = len(regex.findall(fh.read()))
                if n:
                    hits.append((path, n))
    if len(hits) != 1 or hits[0][1] != mutation.count:
        found = ', '.join(f'{osp.relpath(p, root)} ({n}x)'
                          for p, n in hits) or 'nothing'
        raise LookupError(
            f'mutation {mutation.name!r}: pattern {mutation.pattern!r} '
            f'must match {mutation.count}x in one file under damoyolo_mm/, '
            f'found {found}; update MUTATIONS in '
            f'{osp.relpath(__file__, REPO)}')
    return hits[0][0]


def find_tests(root: str, mutation: Mutation) -> List[str]:
    found = {}
    for dirpath, _, files in os.walk(osp.join(root, 'tests')):
        for f in files:
            if f in mutation.tests:
                found.setdefault(f, []).append(osp.join(dirpath, f))
    missing = [t for t in mutation.tests if len(found.get(t, [])) != 1]
    if missing:
        raise LookupError(
            f'mutation {mutation.name!r}: test files {missing} not found '
            'exactly once under tests/; update MUTATIONS in '
            f'{osp.relpath(__file__, REPO)}')
    return [found[t][0] for t in mutation.tests]


def run_tests(root: str, tests: List[str], python: str, pytest_args: str,
              without_official: bool) -> Tuple[int, List[str], float]:
    """Run the tests in ``root``; return the exit code, the failing test
    ids and the time taken."""
    report = osp.join(root, '_mutation_report.xml')
    env = dict(os.environ)
    env.setdefault('DAMOYOLO_GOLDEN',
                   osp.join(osp.dirname(REPO), 'shared', 'golden'))
    if without_official:
        env['DAMOYOLO_OFFICIAL_ROOT'] = osp.join(root, 'no_official_checkout')
    else:
        env.setdefault(
            'DAMOYOLO_OFFICIAL_ROOT',
            osp.join(osp.dirname(REPO), 'ref', 'damoyolo_official'))
    cmd = [python, '-m', 'pytest', *pytest_args.split(), '-m', 'not heavy',
           '-p', 'no:cacheprovider', f'--junitxml={report}',
           *[osp.relpath(t, root) for t in tests]]
    start = time.time()
    proc = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    elapsed = time.time() - start
    failed = []
    if osp.isfile(report):
        for case in ET.parse(report).getroot().iter('testcase'):
            if case.find('failure') is not None or \
                    case.find('error') is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
        os.remove(report)
    if proc.returncode not in (0, 1):
        tail = '\n'.join(proc.stdout.splitlines()[-30:])
        raise RuntimeError(f'pytest exited with {proc.returncode}:\n{tail}')
    return proc.returncode, failed, elapsed


def main(argv=None) -> int:
    args = parse_args(argv)
    selected = [m for m in MUTATIONS
                if args.only is None or m.name in args.only]
    width = max([len(m.name) for m in selected] + [18]) + 2
    if args.list:
        for m in selected:
            print(f'{m.name:{width}s}{m.description}\n{"":{width}s}tests: '
                  f'{", ".join(m.tests)}')
        return 0
    results: Dict[str, Tuple[bool, List[str], float]] = {}
    with tempfile.TemporaryDirectory(prefix='mutation_check_') as tmp:
        root = osp.join(tmp, osp.basename(REPO))
        _copy_repo(root)
        # check every site first: a stale pattern fails before any test run
        sites = {m.name: find_site(root, m) for m in selected}
        tests = {m.name: find_tests(root, m) for m in selected}
        if args.baseline:
            all_tests = sorted({t for m in selected for t in tests[m.name]})
            code, failed, sec = run_tests(root, all_tests, args.python,
                                          args.pytest_args,
                                          args.without_official)
            print(f'baseline: {len(all_tests)} files, exit {code}, '
                  f'{sec:.0f} s')
            if code != 0:
                print('baseline fails, fix that first:', *failed,
                      sep='\n  ')
                return 1
        for m in selected:
            path = sites[m.name]
            with open(path, encoding='utf-8') as f:
                original = f.read()
            mutated = re.sub(m.pattern, m.replacement, original)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(mutated)
            try:
                code, failed, sec = run_tests(root, tests[m.name],
                                              args.python, args.pytest_args,
                                              args.without_official)
            finally:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(original)
            caught = code == 1 and bool(failed)
            results[m.name] = (caught, failed, sec)
            print(f'{m.name}: {"caught" if caught else "NOT CAUGHT"} '
                  f'({sec:.0f} s) {osp.relpath(path, root)}')
            for t in failed:
                print(f'    {t}')
    print(f'\n{"mutation":{width}s}caught  failing tests')
    for m in selected:
        caught, failed, _ = results[m.name]
        print(f'{m.name:{width}s}{"yes" if caught else "NO":8s}{len(failed)}')
    missed = [name for name, (caught, _, _) in results.items() if not caught]
    if missed:
        print(f'not caught: {", ".join(missed)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
