"""Predictor and tools/demo.py: detections equal tools/test.py, every source
kind, the outputs, bad input, Ctrl-C, and deployed models without torch.

One small trained model (the quickstart DAMO-YOLO-Ns at 224 px, golden
``quickstart_ns_epoch55.pth``: its scores are well separated) is exported
once for ONNX Runtime with tools/deploy.py (which writes deploy_meta.json)
and converted to OpenVINO; the images are a few demo val images.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/quickstart/damoyolo_quickstart.py')
BOX_TOL, SCORE_TOL = 1e-2, 1e-4
PY = sys.executable
#: packages a deployed model must not need
BLOCKED = ('torch', 'torchvision', 'mmcv', 'mmengine', 'mmdet', 'mmdeploy')


@pytest.fixture(scope='module')
def ckpt(golden_dir):
    path = osp.join(golden_dir, 'quickstart_ns_epoch55.pth')
    if not osp.isfile(path):
        pytest.fail(f'{path} not found (shared golden folder)')
    return path


@pytest.fixture(scope='module')
def images(demo_data_root):
    folder = osp.join(demo_data_root, 'val')
    return [osp.join(folder, f) for f in sorted(os.listdir(folder))[:4]]


@pytest.fixture(scope='module')
def deployed(tmp_path_factory, ckpt, load_tool):
    """end2end.onnx (tools/deploy.py, 224x224) and end2end.xml, each with
    its deploy_meta.json."""
    pytest.importorskip('mmdeploy')
    pytest.importorskip('openvino')
    import damoyolo_mm.deploy as dp
    root = tmp_path_factory.mktemp('deployed')
    cfgs = {}
    for backend in ('onnxruntime', 'openvino'):
        cfg = root / f'{backend}_224.py'
        cfg.write_text(textwrap.dedent(f"""
            _base_ = ['{REPO}/configs/deploy/detection_{backend}_static-416x416_nano.py']
            onnx_config = dict(input_shape=[224, 224])
            """) + ("backend_config = dict(model_inputs=[dict(opt_shapes=dict("
                    "input=[1, 3, 224, 224]))])\n"
                    if backend == 'openvino' else ''))
        cfgs[backend] = str(cfg)
    ort_dir = str(root / 'ort')
    load_tool('deploy').main([cfgs['onnxruntime'], CONFIG, ckpt,
                              '--work-dir', ort_dir])
    onnx_file = osp.join(ort_dir, 'end2end.onnx')
    ov_dir = str(root / 'ov')
    xml = dp.onnx2openvino(onnx_file, ov_dir,
                           {'input': [1, 3, 224, 224]})
    deploy_cfg, model_cfg = dp.load_configs(cfgs['openvino'], CONFIG)
    dp.write_deploy_meta(dp.build_deploy_meta(deploy_cfg, model_cfg, xml),
                         ov_dir)
    return dict(onnx=onnx_file, xml=xml, root=root)


def _write_video(path, imgs, n, size=(160, 120), fps=10.):
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, size)
    assert w.isOpened()
    for i in range(n):
        w.write(cv2.resize(cv2.imread(imgs[i % len(imgs)]), size))
    w.release()
    return path


#: detections compared: the model keeps up to 500 per image down to score
#: 0.03, where near-ties at the 500th place could differ across CPUs; the
#: confident ones (one per object) are compared, with a margin at the cut
MATCH_THR = 0.2


def _match(a, b):
    """Every detection of ``a`` with score >= MATCH_THR has its partner in
    ``b`` (same label, boxes / scores within the tolerances) and the other
    way round; returns the largest box and score differences."""
    from damoyolo_mm.deploy.export import match_detections

    def above(d, thr):
        keep = d['scores'] >= thr
        return {k: np.asarray(d[k])[keep] for k in ('bboxes', 'scores',
                                                     'labels')}

    worst = [0., 0.]
    for x, y in ((a, b), (b, a)):
        un_x, _, db, ds = match_detections(
            above(x, MATCH_THR), above(y, MATCH_THR - 1e-3), BOX_TOL,
            SCORE_TOL)
        assert not un_x, (un_x, x['scores'][:10], y['scores'][:10])
        worst = [max(worst[0], db), max(worst[1], ds)]
    return worst


def test_deploy_meta(deployed):
    """tools/deploy.py writes what running the model needs beside it."""
    meta = json.load(open(osp.join(osp.dirname(deployed['onnx']),
                                   'deploy_meta.json')))
    assert meta['model_file'] == 'end2end.onnx'
    assert meta['backend'] == 'onnxruntime' and meta['precision'] == 'fp32'
    assert meta['input'] == dict(name='input', shape=[1, 3, 224, 224],
                                 dynamic=False, layout='NCHW',
                                 dtype='float32')
    pre = meta['preprocess']
    assert pre['resize'] == dict(scale=[224, 224], keep_ratio=False,
                                 interpolation='bilinear')
    assert pre['bgr_to_rgb'] is True and pre['pad'] is None
    assert pre['mean'] == [0, 0, 0] and pre['std'] == [1, 1, 1]
    assert pre['batch_pad'] == dict(size_divisor=32, pad_value=0)
    post = meta['postprocess']
    assert post['nms_in_graph'] and post['outputs'] == ['dets', 'labels']
    assert (post['score_thr'], post['nms']['iou_threshold'],
            post['max_per_img']) == (0.03, 0.65, 500)
    assert meta['classes'] == ['disk', 'rectangle', 'triangle', 'ring',
                               'cross']
    assert meta['palette'][0] == [220, 20, 60]
    ov = json.load(open(osp.join(osp.dirname(deployed['xml']),
                                 'deploy_meta.json')))
    assert ov['backend'] == 'openvino' and ov['model_file'] == 'end2end.xml'


def test_detections_equal_test_loop(deployed, ckpt, images, demo_data_root):
    """PyTorch (config + checkpoint), ONNX Runtime and OpenVINO through the
    Predictor give the detections of the test loop (tools/test.py:
    the config's test dataloader + model.test_step), in original pixels."""
    import torch
    from mmdet.apis import init_detector
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmdet.registry import DATASETS

    from damoyolo_mm.apis import Predictor
    cfg = Config.fromfile(CONFIG)
    model = init_detector(cfg, ckpt, device='cpu')
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = demo_data_root
    dataset = DATASETS.build(ds_cfg)
    names = [osp.basename(f) for f in images]
    ref = {}
    for i in range(len(dataset)):
        item = dataset[i]
        name = osp.basename(item['data_samples'].img_path)
        if name in names:
            with torch.no_grad():
                p = model.test_step(pseudo_collate([item]))[0].pred_instances
            ref[name] = dict(bboxes=p.bboxes.numpy(), scores=p.scores.numpy(),
                             labels=p.labels.numpy())
    assert len(ref) == len(images)
    # a few confident detections per image (the demo objects)
    assert sum((r['scores'] >= MATCH_THR).sum() for r in ref.values()) >= 6
    for model_file, weights in ((CONFIG, ckpt), (deployed['onnx'], None),
                                (deployed['xml'], None)):
        pred = Predictor(model_file, weights, threads=2)
        results = pred(images, batch_size=2)
        for f, r in zip(images, results):
            db, ds = _match(r, ref[osp.basename(f)])
            assert db <= BOX_TOL and ds <= SCORE_TOL
            assert r['class_names'] == [pred.classes[i] for i in r['labels']]


def test_folder_outputs_and_bad_image(deployed, images, tmp_path):
    """A folder with an unreadable image: the others are drawn, written to
    predictions.jsonl and a COCO results file pycocotools loads; the bad
    one is skipped, named, and the exit status is 1."""
    from pycocotools.coco import COCO

    from damoyolo_mm.apis.demo import run_demo
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for f in images[:3]:
        (folder / osp.basename(f)).write_bytes(open(f, 'rb').read())
    (folder / 'zz_broken.jpg').write_bytes(b'not an image')
    out = tmp_path / 'out'
    lines = []
    s = run_demo(str(folder), deployed['onnx'], out_dir=str(out),
                 batch_size=2, progress=False, log=lines.append)
    assert s['exit_code'] == 1 and s['frames'] == 3
    assert [osp.basename(n) for n, _ in s['skipped']] == ['zz_broken.jpg']
    assert any('zz_broken.jpg' in line for line in lines)
    assert any(line.strip().startswith('inference') for line in lines)
    recs = [json.loads(x) for x in open(out / 'predictions.jsonl')]
    assert [osp.basename(r['source']) for r in recs] == \
        [osp.basename(f) for f in images[:3]]
    for f in images[:3]:
        drawn = cv2.imread(str(out / osp.basename(f)))
        assert drawn.shape == cv2.imread(f).shape
    coco = COCO(str(out / 'coco_images.json'))
    res = coco.loadRes(str(out / 'coco_results.json'))
    assert len(res.getAnnIds()) == sum(len(r['scores']) for r in recs) > 0
    assert sorted(coco.cats) == [1, 2, 3, 4, 5]


class FakeCapture:
    """A cv2.VideoCapture double (camera / stream) serving fixed frames."""

    def __init__(self, frames, opened=True, fps=0.):
        self.frames, self.opened, self.fps, self.i = frames, opened, fps, 0

    def isOpened(self):
        return self.opened

    def get(self, prop):
        h, w = self.frames[0].shape[:2]
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: -1,
                cv2.CAP_PROP_FRAME_WIDTH: w,
                cv2.CAP_PROP_FRAME_HEIGHT: h}.get(prop, 0)

    def read(self):
        if self.i >= len(self.frames):
            return False, None
        self.i += 1
        return True, self.frames[self.i - 1]

    def release(self):
        pass


def test_video_camera_stream(deployed, images, tmp_path):
    """A 10-frame video gives a playable drawn video (same size, fps,
    frame count) and 10 JSON lines; a camera index and an RTSP URL run
    through a fake capture; the frames equal the predictor's per image."""
    from damoyolo_mm.apis import Predictor
    from damoyolo_mm.apis.demo import run_demo
    video = _write_video(str(tmp_path / 'clip.mp4'), images, 10)
    pred = Predictor(deployed['xml'], threads=2)
    out = tmp_path / 'out'
    s = run_demo(video, None, out_dir=str(out), predictor=pred,
                 progress=False, log=None)
    assert s['exit_code'] == 0 and s['frames'] == 10
    cap = cv2.VideoCapture(str(out / 'clip.mp4'))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 10
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH),
            cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 120)
    recs = [json.loads(x) for x in open(out / 'predictions.jsonl')]
    assert [r['frame'] for r in recs] == list(range(10))
    frames = [cv2.imread(f) for f in images[:3]]
    direct = pred(frames)
    for source, name in (('0', 'camera0.mp4'), ('rtsp://cam/live',
                                                'stream.mp4')):
        o = tmp_path / name
        s = run_demo(source, None, out_dir=str(o), predictor=pred,
                     capture_factory=lambda t: FakeCapture(frames),
                     progress=False, log=None)
        assert s['frames'] == 3 and s['source_kind'] in ('camera', 'stream')
        assert osp.isfile(o / name)
        recs = [json.loads(x) for x in open(o / 'predictions.jsonl')]
        for r, d in zip(recs, direct):
            np.testing.assert_allclose(r['scores'], d['scores'], atol=1e-5)
    with pytest.raises(ValueError, match='cannot open camera 3: check the '
                       'camera index'):
        run_demo('3', None, predictor=pred, out_dir=None, log=None,
                 capture_factory=lambda t: FakeCapture(frames, opened=False))


def _run_tool(args, env=None, **kw):
    return subprocess.run([PY, osp.join(REPO, 'tools', 'demo.py')] + args,
                          capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120, **kw)


def _blocked_env(tmp_path):
    """PYTHONPATH with a sitecustomize that makes importing torch, mmcv,
    mmengine, mmdet, mmdeploy fail as if they were not installed."""
    site = tmp_path / 'no_torch_site'
    site.mkdir(exist_ok=True)
    (site / 'sitecustomize.py').write_text(textwrap.dedent(f"""
        import sys
        BLOCKED = {BLOCKED!r}
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in BLOCKED:
                    raise ModuleNotFoundError(f'No module named {{name!r}}',
                                              name=name)
                return None
        sys.meta_path.insert(0, Blocker())
        """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), REPO]))
    return env


def test_deployed_without_torch(deployed, images, tmp_path):
    """In a process where torch, mmcv, mmengine, mmdet cannot be imported,
    the Predictor and tools/demo.py run ONNX Runtime and OpenVINO models
    and give the detections of this (full) environment."""
    from damoyolo_mm.apis import Predictor
    env = _blocked_env(tmp_path)
    script = textwrap.dedent(f"""
        import json, sys
        try:
            import torch
        except ImportError:
            pass
        else:
            raise SystemExit('torch was importable')
        from damoyolo_mm.apis import Predictor
        out = {{}}
        for f in ({deployed['onnx']!r}, {deployed['xml']!r}):
            res = Predictor(f, threads=2)({images!r})
            out[f] = [{{k: (v.tolist() if hasattr(v, 'tolist') else v)
                        for k, v in r.items()}} for r in res]
        bad = [m for m in {BLOCKED!r} if m in sys.modules]
        assert not bad, bad
        print(json.dumps(out))
        """)
    p = subprocess.run([PY, '-c', script], capture_output=True, text=True,
                       env=env, cwd=str(tmp_path), timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    for f in (deployed['onnx'], deployed['xml']):
        ref = Predictor(f, threads=2)(images)
        for g, r in zip(got[f], ref):
            g = {k: np.asarray(v) for k, v in g.items() if k != 'class_names'}
            np.testing.assert_allclose(g['scores'], r['scores'], atol=1e-6)
            np.testing.assert_allclose(g['bboxes'], r['bboxes'], atol=1e-4)
    # the command line too, on a video
    video = _write_video(str(tmp_path / 'v.mp4'), images, 3)
    p = _run_tool([video, deployed['onnx'], '--out-dir',
                   str(tmp_path / 'o'), '--no-progress'], env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'inference' in p.stdout and 'frame/s' in p.stdout
    assert len(open(tmp_path / 'o' / 'predictions.jsonl').readlines()) == 3


def test_bad_input_one_line_errors(deployed, images, tmp_path):
    from damoyolo_mm.apis import Predictor
    # unknown model kind
    with pytest.raises(ValueError, match=r'model\.pt: unknown model file '
                       "kind '.pt'"):
        Predictor(str(tmp_path / 'model.pt'))
    # a deployed file without its metadata
    bare = tmp_path / 'bare'
    bare.mkdir()
    (bare / 'end2end.onnx').write_bytes(open(deployed['onnx'], 'rb').read())
    with pytest.raises(FileNotFoundError,
                       match='deploy_meta.json not found.*tools/deploy.py'):
        Predictor(str(bare / 'end2end.onnx'))
    # metadata of another input size
    meta = json.load(open(osp.join(osp.dirname(deployed['onnx']),
                                   'deploy_meta.json')))
    meta['input']['shape'] = [1, 3, 416, 416]
    (bare / 'deploy_meta.json').write_text(json.dumps(meta))
    with pytest.raises(ValueError, match='input height 224 disagrees with '
                       r'deploy_meta.json'):
        Predictor(str(bare / 'end2end.onnx'))
    # a TensorRT engine on a CPU: what is needed
    meta['backend'] = 'tensorrt'
    (bare / 'end2end.engine').write_bytes(b'\0' * 16)
    with pytest.raises(ValueError, match='NVIDIA GPU.*--device cuda:0'):
        Predictor(str(bare / 'end2end.engine'))
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match='tensorrt'):
            Predictor(str(bare / 'end2end.engine'), device='cuda:0')
    # a video that cannot be opened, through the tool: last line names it
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'\0' * 64)
    p = _run_tool([str(broken), deployed['onnx'], '--out-dir',
                   str(tmp_path / 'o')])
    assert p.returncode == 2
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith('tools/demo.py: error: cannot open video') and \
        'broken.mp4' in last, p.stderr


def test_sigint_finalises_video_and_jsonl(deployed, images, tmp_path):
    """Ctrl-C during a video: exit 130, the drawn video plays and has as
    many frames as predictions.jsonl has lines."""
    video = _write_video(str(tmp_path / 'long.mp4'), images, 400,
                         size=(128, 96))
    out = tmp_path / 'out'
    proc = subprocess.Popen(
        [PY, osp.join(REPO, 'tools', 'demo.py'), video, deployed['onnx'],
         '--out-dir', str(out), '--threads', '1', '--no-progress'],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jsonl = out / 'predictions.jsonl'
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, 'finished before the signal'
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert 'interrupted' in stdout
    n_lines = len(jsonl.read_text().splitlines())
    assert 5 <= n_lines < 400
    cap = cv2.VideoCapture(str(out / 'long.mp4'))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == n_lines
    assert not [f for f in os.listdir(out) if 'partial' in f]


@pytest.mark.parametrize('keep_ratio', [False, True])
def test_numpy_preprocessing_equals_mmdet(keep_ratio):
    """The deployed preprocessing (numpy + OpenCV, from the metadata)
    equals mmdet's Resize (+ Pad) and DetDataPreprocessor bit for bit,
    also with the ratio kept and a pipeline Pad."""
    import torch
    from mmcv.transforms import Compose
    from mmdet.models.data_preprocessors import DetDataPreprocessor

    from damoyolo_mm.apis.predictor import NumpyPreprocessor
    from damoyolo_mm.deploy.meta import preprocess_of
    pipeline = [dict(type='mmdet.LoadImageFromNDArray'),
                dict(type='mmdet.Resize', scale=(96, 64),
                     keep_ratio=keep_ratio)]
    if keep_ratio:
        pipeline.append(dict(type='mmdet.Pad', size=(96, 64),
                             pad_val=dict(img=114)))
    pipeline.append(dict(type='mmdet.PackDetInputs'))
    dp_cfg = dict(mean=[1., 2., 3.], std=[2., 3., 4.], bgr_to_rgb=True,
                  pad_size_divisor=32, pad_value=5)
    model_cfg = dict(test_pipeline=pipeline,
                     model=dict(data_preprocessor=dp_cfg))
    spec = preprocess_of(model_cfg)
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), np.uint8)
    data = Compose(pipeline)(dict(img=img))
    ref = DetDataPreprocessor(**dp_cfg)(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
        False)
    got = NumpyPreprocessor(spec)(img)
    np.testing.assert_array_equal(got['inputs'], ref['inputs'][0].numpy())
    np.testing.assert_allclose(
        got['scale_factor'], data['data_samples'].scale_factor, rtol=1e-6)


@pytest.mark.parametrize('tool', ['demo', 'benchmark_demo'])
def test_help(tool):
    p = subprocess.run([PY, osp.join(REPO, 'tools', f'{tool}.py'), '--help'],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0, p.stderr
    assert 'usage:' in p.stdout
    assert ('--engine' if tool == 'benchmark_demo' else '--weights') in \
        p.stdout
