"""``Predictor``: one class that runs a DAMO-YOLO model on images.

The model is either a config + checkpoint (PyTorch, through mmdet's
``init_detector`` and the config's own test pipeline) or a file written by
``tools/deploy.py`` (``end2end.onnx`` FP32 / INT8, OpenVINO ``end2end.xml``,
TensorRT ``end2end.engine``) with the ``deploy_meta.json`` beside it.

For deployed files the test preprocessing is reproduced with numpy and
OpenCV from the metadata (the same operations as mmdet's
``LoadImageFromFile`` (``cv2.imdecode``), ``Resize`` (``cv2.resize``),
``Pad`` and ``DetDataPreprocessor``), and the model runs through
:mod:`damoyolo_mm.deploy.runtime`: this path imports numpy, OpenCV and ONNX
Runtime or OpenVINO only (no torch, mmcv, mmengine, mmdet), so applications
can ship a deployed model without the training stack.

Boxes are returned in original-image pixels (x1, y1, x2, y2), as
``tools/test.py`` / ``tools/test_deployed.py`` report them.

Example::

    from damoyolo_mm.apis import Predictor
    predictor = Predictor('work_dirs/t_ov/end2end.xml')
    result = predictor('demo.jpg')       # dict: bboxes, scores, labels, ...
    for frame in predictor.stream('video.mp4'):
        print(frame.index, frame.result['class_names'])
"""
import os.path as osp
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

#: file suffixes of deployed models
DEPLOYED_SUFFIXES = ('.onnx', '.xml', '.engine')
#: file suffixes of model configs
CONFIG_SUFFIXES = ('.py', )
#: OpenCV interpolation of mmcv's names
_CV2_INTERP = {'nearest': 0, 'bilinear': 1, 'bicubic': 2, 'area': 3,
               'lanczos': 4}

ImageLike = Union[str, np.ndarray]


def imread(path: str) -> np.ndarray:
    """Decode an image file as mmdet's ``LoadImageFromFile`` does (BGR,
    ``cv2.imdecode`` with ``IMREAD_COLOR``).

    Raises:
        ValueError: the file is missing or not an image OpenCV decodes.
    """
    import cv2
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ValueError(f'cannot read image {path}: {e}') from None
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise ValueError(f'cannot decode image {path} (not an image OpenCV '
                         'reads, or a truncated file)')
    return img


class NumpyPreprocessor:
    """The test preprocessing of ``deploy_meta.json`` with numpy + OpenCV.

    Args:
        spec (dict): ``meta['preprocess']`` (see
            :func:`damoyolo_mm.deploy.meta.preprocess_of`).
        input_hw (tuple, optional): The static input size of the model;
            the padded image must have it.
    """

    def __init__(self, spec: Dict[str, Any],
                 input_hw: Optional[Sequence[int]] = None) -> None:
        self.spec = spec
        self.input_hw = tuple(input_hw) if input_hw else None
        self.mean = np.asarray(spec['mean'], np.float32).reshape(1, 1, 3)
        self.std = np.asarray(spec['std'], np.float32).reshape(1, 1, 3)
        self._normalise = bool(np.any(self.mean != 0) or np.any(
            self.std != 1))
        interp = spec['resize'].get('interpolation', 'bilinear')
        if interp not in _CV2_INTERP:
            raise ValueError(f'Resize interpolation {interp!r} unknown; '
                             f'expected one of {sorted(_CV2_INTERP)}')
        self.interp = _CV2_INTERP[interp]

    def __call__(self, img: np.ndarray) -> Dict[str, Any]:
        """BGR uint8 (H, W, 3) -> ``inputs`` (3, h, w) float32 and the
        ``scale_factor`` (w, h) of the resize."""
        import cv2
        h0, w0 = img.shape[:2]
        rs = self.spec['resize']
        sw, sh = rs['scale']
        if rs['keep_ratio']:  # mmcv.imrescale
            s = min(max(sw, sh) / max(h0, w0), min(sw, sh) / min(h0, w0))
            nw, nh = int(w0 * s + 0.5), int(h0 * s + 0.5)
        else:
            nw, nh = int(sw), int(sh)
        img = cv2.resize(img, (nw, nh), interpolation=self.interp)
        scale = np.array([nw / w0, nh / h0], np.float32)
        pad = self.spec.get('pad')
        if pad:  # mmdet Pad, on the uint8 image
            if pad.get('size'):
                tw, th = pad['size']
            else:
                d = pad['size_divisor']
                th, tw = -(-nh // d) * d, -(-nw // d) * d
            img = cv2.copyMakeBorder(img, 0, th - nh, 0, tw - nw,
                                     cv2.BORDER_CONSTANT,
                                     value=[pad['pad_value']] * 3)
        if self.spec['bgr_to_rgb']:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # a copy, uint8
        bp = self.spec['batch_pad']
        d = bp['size_divisor']
        h, w = img.shape[:2]
        th, tw = (self.input_hw if self.input_hw else
                  (-(-h // d) * d, -(-w // d) * d))
        if th < h or tw < w:
            raise ValueError(
                f'preprocessed image {h}x{w} is larger than the model input '
                f'{th}x{tw}; deploy_meta.json and the model file disagree: '
                're-export with tools/deploy.py')
        # CHW float32 in one pass, then (x - mean) / std in place (skipped
        # where it is the identity), then the padding of the data
        # preprocessor (applied to the normalised image, as mmdet does)
        x = np.empty((3, th, tw), np.float32)
        view = x[:, :h, :w]
        view[...] = img.transpose(2, 0, 1)
        if self._normalise:
            view -= self.mean.reshape(3, 1, 1)
            view /= self.std.reshape(3, 1, 1)
        if (th, tw) != (h, w):
            x[:, h:, :] = bp['pad_value']
            x[:, :h, w:] = bp['pad_value']
        return dict(inputs=x, scale_factor=scale, ori_shape=(h0, w0))


class _DeployedBackend:
    """A deployed file + its metadata: numpy preprocessing, runtime."""

    def __init__(self, model_file: str, device: str = 'cpu',
                 threads: Optional[int] = None) -> None:
        from damoyolo_mm.deploy.meta import load_deploy_meta
        from damoyolo_mm.deploy.runtime import ExportedModel, backend_of_file
        backend_of_file(model_file)  # unknown kind: clear error first
        if not osp.isfile(model_file):
            raise FileNotFoundError(f'model file {model_file} not found')
        self.meta = load_deploy_meta(model_file)
        meta_shape = self.meta['input']['shape']
        self.model = ExportedModel(model_file, threads=threads,
                                   device=device)
        shape = self.model.input_shape
        for axis, name in ((2, 'height'), (3, 'width')):
            a, b = shape[axis] if len(shape) > axis else None, \
                meta_shape[axis]
            if a is not None and b is not None and int(a) != int(b):
                raise ValueError(
                    f'{model_file}: input {name} {a} disagrees with '
                    f'deploy_meta.json beside it ({b}; input shape '
                    f'{meta_shape}): the metadata belongs to another export; '
                    're-export with tools/deploy.py so that both are '
                    'written together')
        static = all(isinstance(d, int) for d in shape[2:4])
        self.static_batch = shape[0] if isinstance(shape[0], int) else None
        self.preprocess = NumpyPreprocessor(
            self.meta['preprocess'], tuple(shape[2:4]) if static else None)
        self.classes = list(self.meta['classes'])
        self.palette = [tuple(c) for c in self.meta['palette']]
        self.score_thr = float(self.meta['postprocess']['score_thr'])
        self.name = f'{self.model.backend} {self.meta.get("precision", "")}'

    def infer(self, items: List[Dict]) -> List[Dict]:
        xs = np.stack([it['inputs'] for it in items])
        if self.static_batch is not None and self.static_batch != len(xs):
            dets = []
            for i in range(0, len(xs), self.static_batch):
                dets.extend(self.model.detections(xs[i:i + self.static_batch]))
        else:
            dets = self.model.detections(xs)
        return dets

    def postprocess(self, items, dets) -> List[Dict]:
        out = []
        for it, d in zip(items, dets):
            sf = np.tile(it['scale_factor'], 2)
            out.append(dict(bboxes=(d['bboxes'] / sf).astype(np.float32),
                            scores=np.asarray(d['scores'], np.float32),
                            labels=np.asarray(d['labels'], np.int64)))
        return out


class _TorchBackend:
    """Config + checkpoint: mmdet's ``init_detector`` and the config's
    test pipeline (what ``tools/test.py`` runs), batched."""

    def __init__(self, config: str, checkpoint: Optional[str],
                 device: str = 'cpu', cfg_options=None) -> None:
        import damoyolo_mm  # noqa: F401  (registers the plugin)
        from mmcv.transforms import Compose
        from mmdet.apis import init_detector
        from mmdet.utils import get_test_pipeline_cfg
        from mmengine.config import Config
        if not osp.isfile(config):
            raise FileNotFoundError(f'model config {config} not found')
        if checkpoint is None:
            raise ValueError(f'{config} is a model config: give its '
                             'checkpoint too (--weights CKPT)')
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint {checkpoint} not found')
        from damoyolo_mm.utils import register_all_modules
        register_all_modules(init_default_scope=True)
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        self.model = init_detector(cfg, checkpoint, device=device)
        pipeline = get_test_pipeline_cfg(self.model.cfg).copy()
        pipeline[0] = dict(pipeline[0], type='mmdet.LoadImageFromNDArray')
        pipeline = [p for p in pipeline if 'LoadAnnotations' not in p['type']]
        self.pipeline = Compose(pipeline)
        meta = self.model.dataset_meta or {}
        self.classes = [str(c) for c in meta.get('classes', ())]
        from damoyolo_mm.deploy.meta import default_palette
        palette = meta.get('palette')
        if not palette or len(palette) < len(self.classes):
            palette = default_palette(len(self.classes))
        self.palette = [tuple(int(v) for v in c) for c in palette]
        test_cfg = self.model.bbox_head.test_cfg if hasattr(
            self.model, 'bbox_head') else {}
        self.score_thr = float((test_cfg or {}).get('score_thr', 0.))
        self.name = 'pytorch'

    def preprocess(self, img: np.ndarray) -> Dict[str, Any]:
        return self.pipeline(dict(img=img, img_id=0))

    def infer(self, items: List[Dict]) -> List[Any]:
        import torch
        from mmengine.dataset import pseudo_collate
        with torch.no_grad():
            data = self.model.data_preprocessor(pseudo_collate(items), False)
            return self.model(**data, mode='predict')

    def postprocess(self, items, samples) -> List[Dict]:
        out = []
        for s in samples:
            p = s.pred_instances
            out.append(dict(bboxes=p.bboxes.cpu().numpy().astype(np.float32),
                            scores=p.scores.cpu().numpy().astype(np.float32),
                            labels=p.labels.cpu().numpy().astype(np.int64)))
        return out


class Predictor:
    """Run a DAMO-YOLO model on images, folders, videos and streams.

    Args:
        model (str): A model config (``.py``; with ``weights``), or a
            deployed file (``end2end.onnx`` / ``end2end.xml`` /
            ``end2end.engine``) with ``deploy_meta.json`` beside it.
        weights (str, optional): Checkpoint of a model config (ours, or an
            official DAMO-YOLO release file, converted in memory).
        device (str): ``'cpu'`` or ``'cuda:N'``.
        score_thr (float, optional): Drop detections below it (default:
            keep what the model returns, i.e. its ``test_cfg.score_thr``).
        threads (int, optional): CPU threads of ONNX Runtime / OpenVINO.
        cfg_options (dict, optional): Overrides of a model config.

    Calling it on one image (path or BGR array) returns one result dict,
    on a list a list: ``bboxes`` (N, 4) float32 x1y1x2y2 in original-image
    pixels, ``scores`` (N,), ``labels`` (N,) int64, ``class_names``
    (list[str]). :attr:`timings` accumulates seconds per stage.
    """

    def __init__(self, model: str, weights: Optional[str] = None,
                 device: str = 'cpu', score_thr: Optional[float] = None,
                 threads: Optional[int] = None, cfg_options=None) -> None:
        suffix = osp.splitext(str(model))[1].lower()
        if suffix in DEPLOYED_SUFFIXES:
            if weights is not None:
                raise ValueError(f'{model} is a deployed model (weights '
                                 'inside); drop --weights')
            self.backend = _DeployedBackend(model, device=device,
                                            threads=threads)
        elif suffix in CONFIG_SUFFIXES:
            self.backend = _TorchBackend(model, weights, device=device,
                                         cfg_options=cfg_options)
        else:
            raise ValueError(
                f'{model}: unknown model file kind {suffix or "(none)"!r}; '
                'expected a model config (.py, with --weights CKPT) or a '
                'file written by tools/deploy.py (end2end.onnx, '
                'end2end.xml, end2end.engine)')
        self.model = model
        self.score_thr = score_thr
        self.timings: Dict[str, float] = {}

    @property
    def classes(self) -> List[str]:
        return self.backend.classes

    @property
    def palette(self) -> List[tuple]:
        return self.backend.palette

    @property
    def name(self) -> str:
        return self.backend.name

    def _add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.) + seconds

    def preprocess(self, img: ImageLike) -> Dict[str, Any]:
        """One image (path or BGR array) -> network input item (thread
        safe: used by the reader thread of :meth:`stream`)."""
        if isinstance(img, str):
            img = imread(img)
        return self.backend.preprocess(img)

    def predict_items(self, items: List[Dict]) -> List[Dict]:
        """Inference + postprocessing of preprocessed items."""
        t0 = time.perf_counter()
        raw = self.backend.infer(items)
        t1 = time.perf_counter()
        res = [self._finish(r) for r in self.backend.postprocess(items, raw)]
        t2 = time.perf_counter()
        self._add_time('inference', t1 - t0)
        self._add_time('postprocess', t2 - t1)
        return res

    def _finish(self, r: Dict) -> Dict:
        if self.score_thr is not None:
            keep = r['scores'] >= self.score_thr
            r = {k: v[keep] for k, v in r.items()}
        names = self.classes
        r['class_names'] = [names[i] if 0 <= i < len(names) else str(i)
                            for i in r['labels'].tolist()]
        return r

    def __call__(self, imgs: Union[ImageLike, Sequence[ImageLike]],
                 batch_size: int = 1):
        single = isinstance(imgs, (str, np.ndarray))
        imgs = [imgs] if single else list(imgs)
        out = []
        for i in range(0, len(imgs), max(1, batch_size)):
            t0 = time.perf_counter()
            items = [self.preprocess(x) for x in imgs[i:i + batch_size]]
            self._add_time('preprocess', time.perf_counter() - t0)
            out.extend(self.predict_items(items))
        return out[0] if single else out

    def stream(self, source, batch_size: int = 1, queue_size: int = 8,
               **source_kwargs) -> Iterator[Any]:
        """Frames of ``source`` (see :func:`damoyolo_mm.apis.sources.
        open_source`) with their results, read and preprocessed in a
        thread beside the inference (bounded queue, no frame dropped).

        Yields:
            :class:`damoyolo_mm.apis.sources.Frame` with ``result`` set
            (``None`` and ``error`` set for an unreadable image).
        """
        from .sources import ThreadedReader, open_source
        src = source if hasattr(source, 'frames') else open_source(
            source, **source_kwargs)
        reader = ThreadedReader(src, self.preprocess, queue_size=queue_size,
                                timings=self.timings)
        with reader:
            batch = []
            for frame in reader:
                if frame.error is not None:
                    yield frame
                    continue
                batch.append(frame)
                if len(batch) >= batch_size or not src.batchable:
                    yield from self._run_batch(batch)
                    batch = []
            if batch:
                yield from self._run_batch(batch)

    def _run_batch(self, frames):
        results = self.predict_items([f.item for f in frames])
        for f, r in zip(frames, results):
            f.result = r
            f.item = None
            yield f


__all__ = ['Predictor', 'NumpyPreprocessor', 'imread', 'DEPLOYED_SUFFIXES']
