"""End-to-end frames per second of ``tools/demo.py`` on a video.

A 1280x720 video is made from the demo images with OpenCV's VideoWriter;
each engine (PyTorch config + checkpoint, ONNX Runtime and OpenVINO
deployed files, FP32 or INT8) runs the whole demo on it: decode, preprocess
(in the reader thread), inference, postprocess, draw, write the drawn video
and ``predictions.jsonl``. Reported per engine: frames per second end to
end and the time per frame of each stage, with the share of everything but
inference in the wall time.

The official DAMO-YOLO ``tools/demo.py`` (its ONNX Runtime engine, on the
ONNX written by the official ``tools/converter.py``) runs on the same video
in the same process as one more row, :data:`OFFICIAL_ROW`
(:func:`official_demo_fps`), when an official checkout is given.
"""
import importlib.util
import json
import os
import os.path as osp
import sys
import time
from collections import defaultdict
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


#: the row of the official ``tools/demo.py``
OFFICIAL_ROW = 'official demo (ONNX Runtime)'


class _Timed:
    """Proxy of ``obj`` whose ``method`` adds its time to ``timings[stage]``
    (and counts successful calls in ``counts[stage]``)."""

    def __init__(self, obj, method: str, stage: str, timings, counts):
        self._obj, self._method, self._stage = obj, method, stage
        self._timings, self._counts = timings, counts

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        if name != self._method:
            return attr

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = attr(*args, **kwargs)
            self._timings[self._stage] += time.perf_counter() - t0
            ok = out[0] if isinstance(out, tuple) else True
            self._counts[self._stage] += bool(ok)
            return out
        return timed


def official_demo_fps(video: str, official_root: str, official_config: str,
                      onnx: str, out_dir: str,
                      threads: Optional[int] = None,
                      score_thr: Optional[float] = None) -> Dict:
    """Run the official ``tools/demo.py`` (``video`` input, ONNX engine,
    CPU, drawn video saved) on ``video``, in this process.

    Its ``main()`` runs as it is, with ``sys.argv`` set; only measuring is
    added around it: ``onnxruntime.InferenceSession`` gets ``threads`` intra-op
    threads (and torch, used by its pre- and post-processing,
    ``torch.set_num_threads(threads)``), and its reader, session, methods and
    writer are timed per stage. As for our rows, building the engine and two
    warm-up frames are outside the wall time; the writer, which the official
    demo never releases, is released inside it. ``score_thr`` is its
    ``--conf`` (boxes drawn); default: its own 0.6.

    Returns:
        dict: a :func:`demo_fps` row.
    """
    import cv2
    import numpy as np
    import onnxruntime
    import torch

    from damoyolo_mm.apis.demo import STAGES
    from .official_code import official_code, official_config_path
    root = osp.abspath(official_root)
    demo_py = osp.join(root, 'tools', 'demo.py')
    if not osp.isfile(demo_py):
        raise FileNotFoundError(f'{demo_py} not found (expected a checkout '
                                'of tinyvision/DAMO-YOLO as --official-root)')
    cfg_path = official_config_path(root, official_config)
    out_dir = osp.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    argv = ['demo.py', 'video', '-f', cfg_path, '-p', osp.abspath(video),
            '--engine', osp.abspath(onnx), '--device', 'cpu',
            '--output_dir', out_dir, '--infer_size', '640', '640']
    if score_thr is not None:
        argv += ['--conf', str(score_thr)]
    cap = cv2.VideoCapture(video)
    ok, first = cap.read()
    cap.release()
    if not ok:
        raise ValueError(f'cannot read a frame of {video}')

    t: Dict[str, float] = defaultdict(float)
    counts: Dict[str, int] = defaultdict(int)
    state = dict(start=None, dets=0, writers=[])

    class TimedCv2:
        """The demo module's ``cv2``: reader and writer timed."""

        def __getattr__(self, name):
            return getattr(cv2, name)

        def VideoCapture(self, *args):  # noqa: N802 (cv2's name)
            return _Timed(cv2.VideoCapture(*args), 'read', 'read', t, counts)

        def VideoWriter(self, *args):  # noqa: N802 (cv2's name)
            w = _Timed(cv2.VideoWriter(*args), 'write', 'write', t, counts)
            state['writers'].append(w)
            return w

    session_cls = onnxruntime.InferenceSession

    def session(path, *args, **kwargs):
        opts = onnxruntime.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        kwargs.setdefault('sess_options', opts)
        kwargs.setdefault('providers', ['CPUExecutionProvider'])
        return session_cls(path, *args, **kwargs)

    old_threads = torch.get_num_threads()
    with official_code(root):
        spec = importlib.util.spec_from_file_location('damo_official_demo',
                                                      demo_py)
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)

        def timed(fn, stage):
            def run(*args, **kwargs):
                t0 = time.perf_counter()
                out = fn(*args, **kwargs)
                t[stage] += time.perf_counter() - t0
                return out
            return run

        class Infer(demo.Infer):
            """The official ``Infer``, timed per stage, warmed up."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.model = _Timed(self.model, 'run', 'inference', t,
                                    counts)
                self.preprocess = timed(self.preprocess, 'preprocess')
                self.postprocess = timed(self.postprocess, 'postprocess')
                self.visualize = timed(self.visualize, 'draw')
                for _ in range(2):
                    self.forward(first)
                t.clear()
                counts.clear()
                state['dets'] = 0
                state['start'] = time.perf_counter()

            def forward(self, origin_image):
                out = super().forward(origin_image)
                conf = float(score_thr if score_thr is not None else .6)
                state['dets'] += int((out[1] >= conf).sum())
                return out

        demo.Infer, demo.cv2 = Infer, TimedCv2()
        sys.argv = argv
        onnxruntime.InferenceSession = session
        try:
            if threads:
                torch.set_num_threads(int(threads))
            demo.main()
            for w in state['writers']:
                t0 = time.perf_counter()
                w.release()
                t['write'] += time.perf_counter() - t0
        finally:
            onnxruntime.InferenceSession = session_cls
            torch.set_num_threads(old_threads)
    if state['start'] is None:
        raise RuntimeError('the official demo built no engine (see its '
                           'output above)')
    wall = time.perf_counter() - state['start']
    frames = counts['read']
    n = max(frames, 1)
    return dict(name=OFFICIAL_ROW, frames=frames, fps=frames / wall,
                wall=wall, dets_per_frame=state['dets'] / n,
                ms={k: 1e3 * t.get(k, 0.) / n for k in STAGES},
                non_inference_share=1 - t.get('inference', 0.) / wall)


def official_demo_row(video: str, official: Optional[Dict], out_dir: str,
                      threads: Optional[int] = None,
                      score_thr: Optional[float] = None,
                      log: Callable[[str], None] = print) -> Optional[Dict]:
    """The :data:`OFFICIAL_ROW`, or ``None`` (with a line saying why) when
    ``official`` (``root``, ``config``, ``onnx`` or ``ckpt``) is not given.

    Without ``official['onnx']`` the ONNX is written first by the official
    ``tools/converter.py`` from ``official['ckpt']`` (at 640).
    """
    if not official or not official.get('root'):
        log(f'{OFFICIAL_ROW}: skipped (no official checkout; give '
            '--official-root, a checkout of tinyvision/DAMO-YOLO, and '
            '--official-ckpt to run its tools/demo.py beside ours)')
        return None
    onnx = official.get('onnx')
    if not onnx:
        if not official.get('ckpt'):
            raise ValueError('the official demo needs --official-onnx or '
                             '--official-ckpt (its ONNX is exported from it)')
        from .official_code import export_official_onnx
        onnx = export_official_onnx(official['root'], official['config'],
                                    official['ckpt'], 640, out_dir)
        log(f'{OFFICIAL_ROW}: exported {onnx} with the official converter')
    row = official_demo_fps(video, official['root'], official['config'],
                            onnx, osp.join(out_dir, 'official_demo'),
                            threads=threads, score_thr=score_thr)
    log(f'{OFFICIAL_ROW}: {row["fps"]:.2f} frame/s end to end, inference '
        f'{row["ms"]["inference"]:.1f} ms/frame, everything else '
        f'{100 * row["non_inference_share"]:.1f} % of the wall time')
    return row


def format_rows(rows: List[Dict]) -> List[str]:
    """A Markdown table of :func:`demo_fps` rows; with an
    :data:`OFFICIAL_ROW`, each row's FPS over the official demo's."""
    from damoyolo_mm.apis.demo import STAGES
    official = next((r for r in rows if r['name'] == OFFICIAL_ROW), None)
    head = ('| engine | end-to-end FPS | ' +
            ('FPS ours / official | ' if official else '') +
            ' | '.join(f'{s} ms' for s in STAGES) + ' | not inference |')
    lines = [head, '|' + '---|' * (len(STAGES) + 3 + bool(official))]
    for r in rows:
        ratio = (f'{r["fps"] / official["fps"]:.2f}x | ' if official else '')
        lines.append(f'| {r["name"]} | {r["fps"]:.2f} | {ratio}' + ' | '.join(
            f'{r["ms"][s]:.1f}' for s in STAGES) +
            f' | {100 * r["non_inference_share"]:.0f} % |')
    return lines


__all__ = ['make_video', 'demo_fps', 'format_rows', 'OFFICIAL_ROW',
           'official_demo_fps', 'official_demo_row']
