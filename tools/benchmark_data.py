"""Images/s of DAMO-YOLO's full training data pipeline, ours vs the official.

Ours: the config's train_dataloader (load, Mosaic, RandomAffine, MixUp,
resize, flip, SADA at full strength, pack). Official (--official-root):
COCODataset + MosaicWrapper + transforms (resize, flip, to tensor, normalise,
SA_Aug at full strength); same settings, images, batch and workers. Each:
images/s through a DataLoader, then CPU ms per image of each part in this
process (one thread, as in a worker).

    python tools/benchmark_data.py --official-root ../DAMO-YOLO --workers 2
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # clone

from damoyolo_mm.benchmark.data_pipeline import \
    benchmark_data_pipeline  # noqa: E402
from damoyolo_mm.benchmark.timing import cpu_name, load_average  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', nargs='?', default='configs/damoyolo_s_coco.py',
                   help='config whose train_dataloader is measured')
    p.add_argument('--official-root', help='tinyvision/DAMO-YOLO checkout')
    p.add_argument('--data-root', help='COCO-style set (annotations/instances'
                   '_train.json, train/); default: generated demo data')
    for name, default in (('num-images', 64), ('workers', 2),
                          ('batch-size', 8), ('num-batches', 12),
                          ('profile-images', 32)):
        p.add_argument('--' + name, type=int, default=default)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def print_machine(root):
        print(f'machine: {cpu_name()}, {os.cpu_count()} CPUs, torch '
              f'{torch.__version__}, load {load_average()}; '
              f'{args.workers} workers, batch {args.batch_size}, '
              f'{args.num_batches} batches, data {root}')

    results = benchmark_data_pipeline(
        args.config, args.official_root, args.data_root, args.num_images,
        args.workers, args.batch_size, args.num_batches, args.profile_images,
        on_data=print_machine)
    for name, (rate, (parts, per_img, cpu)) in results.items():
        print(f'\n{name}: {rate:.1f} images/s ({args.workers} workers); '
              f'in-process {per_img:.1f} ms/image wall, {cpu:.1f} ms/image '
              'CPU; slowest parts (CPU ms/image):')
        for part, ms in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f'  {part:<36}{ms:8.2f}')
    if 'official' in results:
        (o_rate, o_prof), (r_rate, r_prof) = results.values()
        print(f'\nours / official: images/s {o_rate / r_rate:.2f}x, CPU '
              f'time per image {r_prof[2] / o_prof[2]:.2f}x less')
    return results


if __name__ == '__main__':
    main()
