"""The demo run behind ``tools/demo.py``: a source through a
:class:`~damoyolo_mm.apis.predictor.Predictor` into drawn images / a drawn
video, ``predictions.jsonl``, a COCO results file, with a progress bar and
a per-stage time summary.

numpy + OpenCV (+ the model's runtime) only; the progress bar is mmengine's
``ProgressBar`` or tqdm where installed, else a plain line.
"""
import json
import os
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional, TextIO

import numpy as np

#: stages of the time summary, in pipeline order
STAGES = ('read', 'preprocess', 'inference', 'postprocess', 'draw', 'write')
#: ``predictions.jsonl``, ``coco_results.json``, ``coco_images.json``
PRED_FILE = 'predictions.jsonl'
COCO_RESULTS_FILE = 'coco_results.json'
COCO_IMAGES_FILE = 'coco_images.json'


class Progress:
    """A progress bar with frames per second and (known length) ETA."""

    def __init__(self, total: Optional[int], file: TextIO = sys.stdout,
                 enabled: bool = True) -> None:
        self.total, self.file, self.enabled = total, file, enabled
        self.count = 0
        self.start = time.perf_counter()
        self._bar = None
        self._last = 0.
        if not enabled:
            return
        try:
            from tqdm import tqdm
            self._bar = tqdm(total=total, unit='frame', file=file,
                             dynamic_ncols=True)
        except ImportError:
            self._bar = None

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last < 0.5 and self.count != self.total:
            return
        self._last = now
        elapsed = now - self.start
        fps = self.count / max(elapsed, 1e-9)
        if self.total:
            eta = (self.total - self.count) / max(fps, 1e-9)
            width = 30
            done = int(width * self.count / self.total)
            line = (f'[{">" * done}{" " * (width - done)}] {self.count}/'
                    f'{self.total}, {fps:.1f} frame/s, elapsed: '
                    f'{elapsed:.0f}s, ETA: {eta:.0f}s')
        else:
            line = (f'{self.count} frames, {fps:.1f} frame/s, elapsed: '
                    f'{elapsed:.0f}s')
        self.file.write('\r' + line)
        self.file.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self.file.write('\n')
            self.file.flush()


def result_record(frame, result: Dict) -> Dict[str, Any]:
    """One line of ``predictions.jsonl``."""
    h, w = frame.image.shape[:2]
    return dict(
        source=frame.name,
        frame=frame.index,
        width=int(w),
        height=int(h),
        bboxes=[[round(float(v), 4) for v in b] for b in result['bboxes']],
        scores=[round(float(s), 6) for s in result['scores']],
        labels=[int(v) for v in result['labels']],
        class_names=list(result['class_names']))


class CocoResults:
    """COCO detection results of an image set (``loadRes`` input).

    With ``ann_file`` the image and category ids are those of the
    annotation file (images matched by file name, categories by class
    name, as mmdet's ``CocoDataset`` does); without, images are numbered
    in order and ``coco_images.json`` (images and categories, no
    annotations) is written beside so that ``COCO(coco_images.json).
    loadRes(coco_results.json)`` works.
    """

    def __init__(self, classes: List[str], ann_file: Optional[str] = None):
        self.classes = classes
        self.results: List[Dict] = []
        self.images: List[Dict] = []
        self.ann_file = ann_file
        self._ids_by_name: Optional[Dict[str, int]] = None
        self._cat_ids = list(range(1, len(classes) + 1))
        if ann_file:
            with open(ann_file, encoding='utf-8') as f:
                ann = json.load(f)
            self._ids_by_name = {
                osp.basename(im['file_name']): im['id']
                for im in ann['images']
            }
            by_name = {c['name']: c['id'] for c in ann['categories']}
            missing = [c for c in classes if c not in by_name]
            if missing:
                raise ValueError(f'{ann_file}: no category named {missing}; '
                                 'give the annotation file of the model\'s '
                                 'classes')
            self._cat_ids = [by_name[c] for c in classes]

    def add(self, frame, result: Dict) -> None:
        name = osp.basename(frame.name)
        if self._ids_by_name is not None:
            if name not in self._ids_by_name:
                raise ValueError(f'{frame.name} is not an image of '
                                 f'{self.ann_file}; drop --ann-file or give '
                                 'the annotation file of these images')
            img_id = self._ids_by_name[name]
        else:
            img_id = len(self.images) + 1
            h, w = frame.image.shape[:2]
            self.images.append(dict(id=img_id, file_name=name, width=int(w),
                                    height=int(h)))
        for b, s, lab in zip(result['bboxes'], result['scores'],
                             result['labels']):
            x1, y1, x2, y2 = (float(v) for v in b)
            self.results.append(dict(
                image_id=img_id, category_id=self._cat_ids[int(lab)],
                bbox=[round(x1, 4), round(y1, 4), round(x2 - x1, 4),
                      round(y2 - y1, 4)], score=round(float(s), 6)))

    def write(self, out_dir: str) -> List[str]:
        from damoyolo_mm.utils.fileio import atomic_open
        written = []
        path = osp.join(out_dir, COCO_RESULTS_FILE)
        with atomic_open(path, 'w', encoding='utf-8') as f:
            json.dump(self.results, f)
        written.append(path)
        if self._ids_by_name is None:
            path = osp.join(out_dir, COCO_IMAGES_FILE)
            cats = [dict(id=i, name=c) for i, c in zip(self._cat_ids,
                                                        self.classes)]
            with atomic_open(path, 'w', encoding='utf-8') as f:
                json.dump(dict(images=self.images, annotations=[],
                               categories=cats), f)
            written.append(path)
        return written


class _VideoOut:
    """A drawn video written under a temporary name and renamed when
    closed (also after Ctrl-C), so the file is complete when it appears."""

    FOURCC = {'.avi': 'MJPG', '.mp4': 'mp4v', '.m4v': 'mp4v',
              '.mov': 'mp4v', '.mkv': 'mp4v'}

    def __init__(self, path: str, fps: float) -> None:
        self.path = path
        stem, ext = osp.splitext(path)
        if ext.lower() not in self.FOURCC:
            ext = '.mp4'
            self.path = stem + ext
        self.tmp = osp.join(osp.dirname(self.path),
                            f'.{osp.basename(stem)}.partial{ext}')
        self.fourcc = self.FOURCC[ext.lower()]
        self.fps = fps
        self.writer = None
        self.frames = 0

    def write(self, img: np.ndarray) -> None:
        import cv2
        if self.writer is None:
            h, w = img.shape[:2]
            self.writer = cv2.VideoWriter(
                self.tmp, cv2.VideoWriter_fourcc(*self.fourcc), self.fps,
                (w, h))
            if not self.writer.isOpened():
                raise RuntimeError(
                    f'cannot write video {self.path} (OpenCV VideoWriter, '
                    f'codec {self.fourcc}); write into another --out-dir or '
                    'install opencv-python with FFmpeg')
        self.writer.write(img)
        self.frames += 1

    def close(self) -> Optional[str]:
        if self.writer is None:
            return None
        self.writer.release()
        os.replace(self.tmp, self.path)
        return self.path


def run_demo(source, model: str, weights: Optional[str] = None,
             out_dir: Optional[str] = 'outputs', device: str = 'cpu',
             score_thr: Optional[float] = None, batch_size: int = 1,
             show: bool = False, threads: Optional[int] = None,
             ann_file: Optional[str] = None, draw: bool = True,
             progress: bool = True, predictor=None, capture_factory=None,
             log=print) -> Dict[str, Any]:
    """Run ``model`` on ``source`` and write the outputs to ``out_dir``.

    Returns:
        dict: ``frames`` (done), ``skipped`` (list of (name, reason)),
        ``interrupted`` (Ctrl-C), ``outputs`` (files written), ``timings``
        (seconds per stage), ``wall`` (seconds), ``exit_code`` (0; 1 if an
        image was skipped; 130 after Ctrl-C).
    """
    import cv2

    from .predictor import Predictor
    from .sources import open_source
    from .draw import draw_detections
    src = open_source(source, capture_factory=capture_factory)
    if predictor is None:
        predictor = Predictor(model, weights, device=device,
                              score_thr=score_thr, threads=threads)
    predictor.timings = {}
    is_video = src.kind != 'images'
    outputs: List[str] = []
    skipped: List[tuple] = []
    coco = None if is_video else CocoResults(predictor.classes, ann_file)
    video = None
    jsonl = None
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        jsonl_path = osp.join(out_dir, PRED_FILE)
        jsonl = open(jsonl_path, 'w', encoding='utf-8')
        outputs.append(jsonl_path)
        if is_video and draw:
            name = src.name if src.kind == 'video' else f'{src.name}.mp4'
            video = _VideoOut(osp.join(out_dir, name), src.fps)
    total = len(src) if src.kind == 'images' else getattr(src, 'length',
                                                          None)
    bar = Progress(total, enabled=progress)
    timings = predictor.timings
    interrupted = False
    frames = 0
    t_start = time.perf_counter()
    stream = predictor.stream(src, batch_size=batch_size)
    try:
        for frame in stream:
            if frame.error is not None:
                skipped.append((frame.name, frame.error))
                bar.update()
                continue
            res = frame.result
            t0 = time.perf_counter()
            drawn = draw_detections(frame.image, res, predictor.palette) \
                if (draw and (out_dir or show)) else None
            t1 = time.perf_counter()
            if jsonl is not None:
                jsonl.write(json.dumps(result_record(frame, res)) + '\n')
                jsonl.flush()
            if coco is not None:
                coco.add(frame, res)
            if drawn is not None and out_dir:
                if video is not None:
                    video.write(drawn)
                else:
                    path = osp.join(out_dir, osp.basename(frame.name))
                    if not cv2.imwrite(path, drawn):
                        raise RuntimeError(f'cannot write {path}')
            t2 = time.perf_counter()
            timings['draw'] = timings.get('draw', 0.) + t1 - t0
            timings['write'] = timings.get('write', 0.) + t2 - t1
            frames += 1
            bar.update()
            if show:
                cv2.imshow('damoyolo_mm', drawn)
                if cv2.waitKey(1) & 0xFF in (27, ord('q')):
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stream.close()  # stops the reader thread, closes the source
        bar.close()
        if jsonl is not None:
            jsonl.close()
        if video is not None:
            path = video.close()
            if path:
                outputs.append(path)
        if show:
            cv2.destroyAllWindows()
    wall = time.perf_counter() - t_start
    if coco is not None and out_dir and not interrupted:
        outputs.extend(coco.write(out_dir))
    if out_dir and draw and not is_video and frames:
        outputs.append(f'{out_dir}/ ({frames} drawn images)')
    exit_code = 130 if interrupted else (1 if skipped else 0)
    summary = dict(frames=frames, skipped=skipped, interrupted=interrupted,
                   outputs=outputs, timings=dict(timings), wall=wall,
                   exit_code=exit_code, model=predictor.name,
                   source_kind=src.kind)
    if log:
        for line in summary_lines(summary):
            log(line)
    return summary


def summary_lines(summary: Dict[str, Any]) -> List[str]:
    """The end-of-run summary: frames, fps, time per stage, skipped."""
    n = max(summary['frames'], 1)
    t = summary['timings']
    lines = [f'{summary["frames"]} frames ({summary["source_kind"]}, '
             f'{summary["model"]}) in {summary["wall"]:.2f} s: '
             f'{summary["frames"] / max(summary["wall"], 1e-9):.1f} frame/s '
             'end to end']
    busy = sum(t.get(s, 0.) for s in STAGES)
    lines.append('time per frame (read + preprocess run in a thread beside '
                 'the rest):')
    for s in STAGES:
        v = t.get(s, 0.)
        lines.append(f'  {s:<12}{1e3 * v / n:8.2f} ms  '
                     f'{100 * v / max(busy, 1e-12):5.1f} %')
    for path in summary['outputs']:
        lines.append(f'wrote {path}')
    if summary['interrupted']:
        lines.append('interrupted (Ctrl-C): outputs finalised up to the last '
                     'processed frame')
    if summary['skipped']:
        lines.append(f'skipped {len(summary["skipped"])} unreadable '
                     'image(s):')
        for name, why in summary['skipped']:
            lines.append(f'  {name}: {why}')
    return lines


__all__ = ['run_demo', 'summary_lines', 'CocoResults', 'Progress',
           'result_record', 'STAGES']
