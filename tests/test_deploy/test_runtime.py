"""damoyolo_mm.deploy.runtime: one way to run an exported file.

A hand-made end-to-end graph (input -> ``dets``, ``labels``, padding rows
of score 0) runs through ONNX Runtime and OpenVINO with the same results;
TensorRT's output layout is split the same way; unknown files are refused.
"""
import numpy as np
import pytest


def _e2e_onnx(path):
    """``dets = input`` (B, K, 5); ``labels = int64(round(dets[..., 0]))``."""
    onnx = pytest.importorskip('onnx')
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 4, 5])
    dets = helper.make_tensor_value_info('dets', TensorProto.FLOAT,
                                         [1, 4, 5])
    labels = helper.make_tensor_value_info('labels', TensorProto.INT64,
                                           [1, 4])
    starts = helper.make_tensor('s', TensorProto.INT64, [1], [0])
    ends = helper.make_tensor('e', TensorProto.INT64, [1], [1])
    axes = helper.make_tensor('a', TensorProto.INT64, [1], [2])
    sq = helper.make_tensor('q', TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node('Identity', ['input'], ['dets']),
        helper.make_node('Slice', ['input', 's', 'e', 'a'], ['first']),
        helper.make_node('Squeeze', ['first', 'q'], ['sq']),
        helper.make_node('Round', ['sq'], ['r']),
        helper.make_node('Cast', ['r'], ['labels'], to=TensorProto.INT64),
    ]
    graph = helper.make_graph(nodes, 'e2e', [x], [dets, labels],
                              [starts, ends, axes, sq])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('',
                                                                        13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _inputs():
    x = np.zeros((1, 4, 5), np.float32)
    x[0, 0] = [1, 2, 3, 4, 0.9]
    x[0, 1] = [2, 20, 30, 40, 0.5]
    x[0, 3] = [3, 1, 1, 1, 0.]  # padding row: score 0
    return x


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_exported_model_runs_and_splits(tmp_path, backend):
    pytest.importorskip(backend)
    from damoyolo_mm.deploy.runtime import ExportedModel
    f = _e2e_onnx(str(tmp_path / 'e2e.onnx'))
    model = ExportedModel(f, backend=backend, threads=1)
    assert model.input_shape == [1, 4, 5]
    assert set(model.output_names) == {'dets', 'labels'}
    out = model(_inputs())
    np.testing.assert_array_equal(out['dets'], _inputs())
    (det, ) = model.detections(_inputs())
    np.testing.assert_array_equal(det['bboxes'], [[1, 2, 3, 4],
                                                  [2, 20, 30, 40]])
    np.testing.assert_array_equal(det['scores'], np.float32([0.9, 0.5]))
    assert det['labels'].tolist() == [1, 2] and det['labels'].dtype == \
        np.int64


def test_functions_agree_with_exported_model(tmp_path):
    pytest.importorskip('onnxruntime')
    from damoyolo_mm.deploy import runtime as rt
    f = _e2e_onnx(str(tmp_path / 'e2e.onnx'))
    (a, ) = rt.ort_detections(rt.ort_session(f, threads=1), _inputs())
    (b, ) = rt.ExportedModel(f).detections(_inputs())
    for k in ('bboxes', 'scores', 'labels'):
        np.testing.assert_array_equal(a[k], b[k])
    (res, ) = rt.run_onnx(f, [_inputs()], ['labels'])
    assert res[0].tolist() == [[1, 2, 0, 3]]


def test_tensorrt_layout_and_bad_files(tmp_path):
    from damoyolo_mm.deploy.runtime import (ExportedModel, backend_of_file,
                                            split_detections)
    out = dict(num_dets=np.array([[2], [0]], np.int32),
               det_boxes=np.arange(2 * 3 * 4, dtype=np.float32).reshape(
                   2, 3, 4),
               det_scores=np.array([[0.9, 0.8, 0.], [0., 0., 0.]],
                                   np.float32),
               det_classes=np.array([[4, 1, 0], [0, 0, 0]], np.int32))
    a, b = split_detections(out)
    np.testing.assert_array_equal(a['bboxes'], out['det_boxes'][0, :2])
    assert a['labels'].tolist() == [4, 1] and len(b['scores']) == 0
    with pytest.raises(KeyError, match='not those of an end-to-end model'):
        split_detections(dict(boxes=np.zeros(1)))
    assert backend_of_file('a/end2end.XML') == 'openvino'
    with pytest.raises(ValueError, match=r"unknown model file kind '.pth'"):
        backend_of_file('model.pth')
    with pytest.raises(FileNotFoundError, match='missing.onnx not found'):
        ExportedModel(str(tmp_path / 'missing.onnx'))
    engine = tmp_path / 'end2end.engine'
    engine.write_bytes(b'\0')
    with pytest.raises(ValueError, match='NVIDIA GPU'):
        ExportedModel(str(engine))
