"""Library side of the benchmarks (``tools/benchmark*.py`` only parse
arguments and print):

* :mod:`.timing` -- machine description, round-robin and median timing,
  per-part clocks (also used by the NAS latency tables);
* :mod:`.official_code` -- running the official DAMO-YOLO code in this
  process (one context manager that restores what it changes);
* :mod:`.latency` -- batch-1 latency of ours vs the official model;
* :mod:`.engines` -- exported models cut at their NMS, run on ONNX Runtime
  and OpenVINO (the deployed rows of :mod:`.latency`);
* :mod:`.demo_fps` -- end-to-end frames per second of ``tools/demo.py``
  (:mod:`damoyolo_mm.apis`) on a generated video, per engine;
* :mod:`.train_step` -- the parts of a training step, ours vs official;
* :mod:`.data_pipeline` -- images/s of the training data pipeline, ours
  vs official.

Submodules are imported on use (the timing helpers need only torch).
"""
