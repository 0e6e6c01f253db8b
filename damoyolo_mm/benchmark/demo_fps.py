"""End-to-end frames per second of ``tools/demo.py`` on a video.

A 1280x720 video is made from the demo images with OpenCV's VideoWriter;
each engine (PyTorch config + checkpoint, ONNX Runtime and OpenVINO
deployed files, FP32 or INT8) runs the whole demo on it: decode, preprocess
(in the reader thread), inference, postprocess, draw, write the drawn video
and ``predictions.jsonl``. Reported per engine: frames per second end to
end and the time per frame of each stage, with the share of everything but
inference in the wall time.
"""
import json
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np


def make_video(path: str, images: Sequence[str], seconds: float = 20.,
               fps: float = 25., size=(1280, 720)) -> str:
    """A ``size`` video of ``seconds`` at ``fps`` from ``images`` (each
    scaled to the frame width, centred on grey; every frame of an image
    shifted by a few pixels so that consecutive frames differ)."""
    import cv2
    w, h = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'cannot write {path} with OpenCV')
    n = int(round(seconds * fps))
    per_image = max(1, int(fps))  # one image a second
    try:
        for i in range(n):
            img = cv2.imread(images[(i // per_image) % len(images)])
            s = min(w / img.shape[1], h / img.shape[0])
            img = cv2.resize(img, (int(img.shape[1] * s),
                                   int(img.shape[0] * s)))
            canvas = np.full((h, w, 3), 114, np.uint8)
            dx = (w - img.shape[1]) // 2 + (i % per_image) * 2
            dx = min(dx, w - img.shape[1])
            dy = (h - img.shape[0]) // 2
            canvas[dy:dy + img.shape[0], dx:dx + img.shape[1]] = img
            writer.write(canvas)
    finally:
        writer.release()
    return path


def demo_fps(video: str, engines: Dict[str, Dict], out_dir: str,
             threads: Optional[int] = None,
             score_thr: Optional[float] = None,
             log: Callable[[str], None] = print) -> List[Dict]:
    """Run the demo on ``video`` with each engine.

    Args:
        engines (dict): row name -> ``dict(model=..., weights=...)``.
        threads (int, optional): CPU threads of the runtimes (PyTorch:
            ``torch.set_num_threads``).
        score_thr (float, optional): the predictor's ``score_thr``.

    Returns:
        list[dict]: per engine ``name``, ``frames``, ``fps``, ``ms`` (per
        stage per frame), ``non_inference_share`` (1 - inference / wall).
    """
    from damoyolo_mm.apis import Predictor
    from damoyolo_mm.apis.demo import STAGES, run_demo
    rows = []
    for name, spec in engines.items():
        if threads and spec.get('weights'):
            import torch
            torch.set_num_threads(threads)
        pred = Predictor(spec['model'], spec.get('weights'), threads=threads,
                         score_thr=score_thr)
        pred([np.zeros((720, 1280, 3), np.uint8)] * 2)  # warm-up
        s = run_demo(video, None, out_dir=osp.join(out_dir, name.replace(
            ' ', '_')), predictor=pred, progress=False, log=None)
        n = max(s['frames'], 1)
        t = s['timings']
        out = osp.join(out_dir, name.replace(' ', '_'), 'predictions.jsonl')
        with open(out, encoding='utf-8') as f:
            dets = sum(len(json.loads(line)['scores']) for line in f)
        row = dict(name=name, frames=s['frames'], fps=s['frames'] / s['wall'],
                   wall=s['wall'], dets_per_frame=dets / n,
                   ms={k: 1e3 * t.get(k, 0.) / n for k in STAGES},
                   non_inference_share=1 - t.get('inference', 0.) / s['wall'])
        rows.append(row)
        log(f'{name}: {row["fps"]:.2f} frame/s end to end, inference '
            f'{row["ms"]["inference"]:.1f} ms/frame, everything else '
            f'{100 * row["non_inference_share"]:.1f} % of the wall time')
    return rows


def format_rows(rows: List[Dict]) -> List[str]:
    """A Markdown table of :func:`demo_fps` rows."""
    from damoyolo_mm.apis.demo import STAGES
    head = ('| engine | end-to-end FPS | ' +
            ' | '.join(f'{s} ms' for s in STAGES) + ' | not inference |')
    lines = [head, '|' + '---|' * (len(STAGES) + 3)]
    for r in rows:
        lines.append(f'| {r["name"]} | {r["fps"]:.2f} | ' + ' | '.join(
            f'{r["ms"][s]:.1f}' for s in STAGES) +
            f' | {100 * r["non_inference_share"]:.0f} % |')
    return lines


__all__ = ['make_video', 'demo_fps', 'format_rows']
