"""Where frames come from: an image, a folder or glob of images, a video
file, a camera index, an RTSP / HTTP stream (OpenCV), and the reader thread
that decodes and preprocesses them beside the inference.

numpy + OpenCV only.
"""
import glob
import os
import os.path as osp
import queue
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                  '.ppm', '.pgm')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.m4v', '.webm', '.mpg',
                  '.mpeg', '.wmv', '.flv', '.ts')
STREAM_PREFIXES = ('rtsp://', 'rtmp://', 'http://', 'https://', 'udp://',
                   'tcp://')


class Frame:
    """One image or video frame.

    Attributes:
        index (int): position in the source (0-based).
        name (str): file name (images) or ``<source>#<index>`` (video).
        image (ndarray | None): BGR uint8, None if it could not be read.
        error (str | None): why it could not be read.
        item: the preprocessed network input (set by the reader).
        result (dict | None): the detections (set by the predictor).
        read_time (float), preprocess_time (float): seconds.
    """
    __slots__ = ('index', 'name', 'image', 'error', 'item', 'result',
                 'read_time', 'preprocess_time')

    def __init__(self, index: int, name: str,
                 image: Optional[np.ndarray] = None,
                 error: Optional[str] = None) -> None:
        self.index, self.name, self.image, self.error = (index, name, image,
                                                         error)
        self.item = self.result = None
        self.read_time = self.preprocess_time = 0.


class ImageSource:
    """Image files, in the order given (a folder: sorted names)."""
    kind = 'images'
    batchable = True

    def __init__(self, files: List[str], name: str) -> None:
        self.files = files
        self.name = name
        self.fps = None
        self.frame_size = None

    def __len__(self) -> int:
        return len(self.files)

    def frames(self) -> Iterator[Frame]:
        from .predictor import imread
        for i, f in enumerate(self.files):
            t0 = time.perf_counter()
            try:
                img, err = imread(f), None
            except ValueError as e:
                img, err = None, str(e)
            fr = Frame(i, f, img, err)
            fr.read_time = time.perf_counter() - t0
            yield fr

    def close(self) -> None:
        pass


class VideoSource:
    """A ``cv2.VideoCapture`` (video file, camera index or stream URL).

    Args:
        target (str | int): what ``cv2.VideoCapture`` opens.
        kind (str): ``'video'``, ``'camera'`` or ``'stream'``.
        capture_factory (callable): builds the capture (a test double in
            the tests); default ``cv2.VideoCapture``.
    """
    batchable = False

    def __init__(self, target, kind: str, name: str,
                 capture_factory: Optional[Callable[[Any], Any]] = None
                 ) -> None:
        import cv2
        factory = capture_factory or cv2.VideoCapture
        self.cap = factory(target)
        self.kind = kind
        self.name = name
        if not self.cap.isOpened():
            self.cap.release()
            fix = {
                'video': 'check that the file exists and is a video '
                'OpenCV decodes (FFmpeg backend: mp4, avi, mkv, ...)',
                'camera': 'check the camera index (0 is the first camera) '
                'and that no other program holds the camera',
                'stream': 'check the URL, the network and that the server '
                'sends a stream OpenCV/FFmpeg reads',
            }[kind]
            raise ValueError(f'cannot open {kind} {target}: {fix}')
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 0 < fps < 1000 else 25.
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._len = n if kind == 'video' and n > 0 else None
        w = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self.frame_size = (w, h) if w and h else None

    def __len__(self) -> int:
        if self._len is None:
            raise TypeError('a camera or stream has no known length')
        return self._len

    @property
    def length(self) -> Optional[int]:
        return self._len

    def frames(self) -> Iterator[Frame]:
        i = 0
        while True:
            t0 = time.perf_counter()
            ok, img = self.cap.read()
            if not ok or img is None:
                return
            fr = Frame(i, f'{self.name}#{i}', img)
            fr.read_time = time.perf_counter() - t0
            yield fr
            i += 1

    def close(self) -> None:
        self.cap.release()


def open_source(source, capture_factory=None):
    """The frames of ``source``.

    Args:
        source (str | int): an image file, a folder (its images, sorted), a
            glob pattern, a video file, a camera index (``0`` or ``'0'``),
            or a stream URL (``rtsp://``, ``http(s)://``, ...).
        capture_factory (callable, optional): replaces ``cv2.VideoCapture``.

    Raises:
        ValueError: nothing there, or a video / camera / stream that does
            not open (the message names it and the fix).
    """
    if isinstance(source, int) or (isinstance(source, str)
                                   and source.isdigit()):
        return VideoSource(int(source), 'camera', f'camera{int(source)}',
                           capture_factory)
    source = str(source)
    if source.lower().startswith(STREAM_PREFIXES):
        return VideoSource(source, 'stream', 'stream', capture_factory)
    if osp.isdir(source):
        files = sorted(
            osp.join(source, f) for f in os.listdir(source)
            if f.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            raise ValueError(f'folder {source} holds no image '
                             f'({", ".join(IMAGE_SUFFIXES)})')
        return ImageSource(files, osp.basename(osp.normpath(source)))
    if any(c in source for c in '*?['):
        files = sorted(f for f in glob.glob(source, recursive=True)
                       if f.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            raise ValueError(f'no image matches {source}')
        return ImageSource(files, 'glob')
    suffix = osp.splitext(source)[1].lower()
    if suffix in VIDEO_SUFFIXES:
        if not osp.isfile(source):
            raise ValueError(f'cannot open video {source}: no such file')
        return VideoSource(source, 'video', osp.basename(source),
                           capture_factory)
    if not osp.exists(source):
        raise ValueError(
            f'source {source} not found: give an image, a folder, a glob '
            "pattern ('imgs/*.jpg'), a video file, a camera index (0) or a "
            'stream URL (rtsp://...)')
    if suffix in IMAGE_SUFFIXES:
        return ImageSource([source], osp.basename(source))
    raise ValueError(f'{source}: unknown source kind {suffix!r}; images: '
                     f'{", ".join(IMAGE_SUFFIXES)}; videos: '
                     f'{", ".join(VIDEO_SUFFIXES)}')


_END = object()


class ThreadedReader:
    """Read and preprocess the frames of ``source`` in a thread.

    A bounded queue of ``queue_size`` frames sits between the thread and
    the consumer: the thread waits when it is full, so no frame is dropped
    and memory stays bounded. Leaving the ``with`` block (also on an
    exception or ``KeyboardInterrupt``) stops the thread and closes the
    source.

    Args:
        source: an :func:`open_source` object.
        preprocess (callable): image -> network input item.
        timings (dict, optional): ``read`` / ``preprocess`` seconds are
            added to it.
    """

    def __init__(self, source, preprocess: Callable[[np.ndarray], Any],
                 queue_size: int = 8,
                 timings: Optional[Dict[str, float]] = None) -> None:
        self.source = source
        self.preprocess = preprocess
        self.queue: 'queue.Queue' = queue.Queue(maxsize=max(1, queue_size))
        self.timings = timings if timings is not None else {}
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._work, daemon=True,
                                        name='damoyolo-reader')

    def _put(self, obj) -> bool:
        while not self._stop.is_set():
            try:
                self.queue.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for frame in self.source.frames():
                if frame.image is not None:
                    t0 = time.perf_counter()
                    frame.item = self.preprocess(frame.image)
                    frame.preprocess_time = time.perf_counter() - t0
                if not self._put(frame):
                    return
        except BaseException as e:  # handed to the consumer, re-raised there
            self._error = e
        finally:
            self._put(_END)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.source.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            obj = self.queue.get()
            if obj is _END:
                if self._error is not None:
                    raise self._error
                return
            t = self.timings
            t['read'] = t.get('read', 0.) + obj.read_time
            t['preprocess'] = t.get('preprocess', 0.) + obj.preprocess_time
            yield obj


__all__ = [
    'Frame', 'ImageSource', 'VideoSource', 'open_source', 'ThreadedReader',
    'IMAGE_SUFFIXES', 'VIDEO_SUFFIXES'
]
