"""tools/benchmark_demo.py: the official demo row, without an official
checkout (skipped cleanly), and the NMS stand-in its post-processing uses."""
import pytest
import torch

from damoyolo_mm.benchmark.demo_fps import (OFFICIAL_ROW, format_rows,
                                            official_demo_fps,
                                            official_demo_row)
from damoyolo_mm.benchmark.official_code import _stand_ins


def _row(name, fps):
    return dict(name=name, fps=fps, non_inference_share=.25,
                ms=dict(read=1., preprocess=2., inference=3., postprocess=4.,
                        draw=5., write=6.))


def test_official_row_skipped_without_checkout(tmp_path):
    lines = []
    for official in (None, dict(root=None, config='c.py', ckpt='T.pth')):
        assert official_demo_row('no_video.mp4', official, str(tmp_path),
                                 log=lines.append) is None
    assert len(lines) == 2
    assert all(ln.startswith(f'{OFFICIAL_ROW}: skipped') and
               '--official-root' in ln for ln in lines)
    assert list(tmp_path.iterdir()) == []  # nothing run, nothing written
    # without the official row: no ratio column
    table = format_rows([_row('ours', 5.)])
    assert 'official' not in table[0]
    assert table[2].startswith('| ours | 5.00 | 1.0 |')


def test_ratio_column_with_official_row():
    table = format_rows([_row(OFFICIAL_ROW, 2.), _row('ours', 5.)])
    assert '| FPS ours / official |' in table[0]
    assert table[1].count('---') == 10
    assert table[2].startswith(f'| {OFFICIAL_ROW} | 2.00 | 1.00x | 1.0 |')
    assert table[3].startswith('| ours | 5.00 | 2.50x | 1.0 | 2.0 | 3.0 |')
    assert table[3].endswith('| 25 % |')


def test_official_row_bad_checkout_and_arguments(tmp_path, load_tool):
    with pytest.raises(FileNotFoundError, match='tools/demo.py not found'):
        official_demo_fps('v.mp4', str(tmp_path), 'c.py', 'o.onnx',
                          str(tmp_path / 'out'))
    with pytest.raises(ValueError, match='--official-ckpt'):
        official_demo_row('v.mp4', dict(root=str(tmp_path), config='c.py'),
                          str(tmp_path), log=lambda s: None)
    tool = load_tool('benchmark_demo')
    with pytest.raises(SystemExit) as e:
        tool.parse_args(['--images', 'x', '--engine', 'a=b.onnx',
                         '--official-root', str(tmp_path)])
    assert e.value.code == 2


def _greedy_nms(boxes, scores, labels, thr):
    """Per-class greedy NMS by decreasing score (the definition)."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    for i in order:
        if all(labels[j] != labels[i] or
               _iou(boxes[i], boxes[j]) <= thr for j in keep):
            keep.append(i)
    return keep


def _iou(a, b):
    iw = max(0., min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0., min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def test_batched_nms_stand_in_matches_definition():
    ops = _stand_ins()['torchvision']['torchvision.ops']
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 10 + torch.rand(200, 2, generator=g) * 30],
                      1)
    scores = torch.randperm(200, generator=g).float() / 200  # no ties
    labels = torch.randint(0, 3, (200, ), generator=g)
    keep = ops.batched_nms(boxes, scores, labels, 0.5)
    ref = _greedy_nms(boxes.tolist(), scores, labels.tolist(), 0.5)
    assert keep.dtype == torch.int64
    assert keep.tolist() == ref
    assert 20 < len(ref) < 180  # some suppressed, some kept
    assert ops.nms(boxes, scores, 0.5).tolist() == _greedy_nms(
        boxes.tolist(), scores, [0] * 200, 0.5)
    assert ops.batched_nms(boxes[:0], scores[:0], labels[:0], .5).numel() == 0
