#!/usr/bin/env bash
# Idempotent environment setup for damoyolo_mm (CPU, Python 3.11).
#
#   bash tools/setup_env.sh            # creates/updates ./.venv and installs everything
#
# Environment variables:
#   DAMOYOLO_VENV   where the virtual environment lives (default: <repo>/.venv)
#   DAMOYOLO_CACHE  wheel cache outside the clone (default: ~/.cache/damoyolo_mm)
#   PYTHON          interpreter used to create the venv (default: python3)
#   DAMOYOLO_EXTRAS extras to install, comma separated (default: tests,deploy;
#                   add "tools" for the optional packages of mmdet's analysis
#                   tools: seaborn, psutil, tensorboard)
#
# The mmcv 2.1.0 ops wheel does not exist for torch 2.13: it is compiled from the
# sdist once (20-25 min on 2 cores) and cached in $DAMOYOLO_CACHE/wheels/<key>/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DAMOYOLO_VENV:-$REPO/.venv}"
CACHE="${DAMOYOLO_CACHE:-$HOME/.cache/damoyolo_mm}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${DAMOYOLO_EXTRAS:-tests,deploy}"

TORCH_VERSION=2.13.0
MMCV_VERSION=2.1.0
log() { printf '[setup_env] %s\n' "$*"; }
SECONDS=0

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

have() {  # have "pkg==ver" ... -> true when every requirement is satisfied
    "$PY" - "$@" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for req in sys.argv[1:]:
    name, _, want = req.partition('==')
    try:
        if version(name).split('+')[0] != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
}

# 1. torch first and alone: any other torch pulls GBs of CUDA packages.
if ! have "torch==$TORCH_VERSION"; then
    log "installing torch==$TORCH_VERSION (CPU)"
    "${PIP[@]}" install -q "torch==$TORCH_VERSION"
fi

# 2. build tooling; setuptools >= 77.0.3 for torch, < 81 because pkg_resources
#    (removed in 82) is imported by mmcv's build, mmengine's mmdet:: inheritance and mim.
"${PIP[@]}" install -q "setuptools>=77.0.3,<81" wheel ninja "numpy>=1.24,<2.3"

# 3. mmcv with compiled ops, from the wheel cache or built once.
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-$PYTAG-torch$TORCH_VERSION-cpu"
mmcv_ok() { "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; }
if ! mmcv_ok; then
    mkdir -p "$WHEEL_DIR"
    WHEEL="$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
    if [ -z "$WHEEL" ]; then
        log "compiling mmcv==$MMCV_VERSION with ops from source (no wheel exists for torch $TORCH_VERSION)."
        log "this takes 20-25 minutes on 2 cores and happens once; the wheel is cached in $WHEEL_DIR"
        BUILD="$(mktemp -d "$CACHE/build.XXXXXX")"
        MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
            "${PIP[@]}" wheel -q --no-build-isolation --no-deps "mmcv==$MMCV_VERSION" -w "$BUILD"
        # move into the cache only once complete, so an interrupted build leaves no half wheel
        mv "$BUILD"/mmcv-*.whl "$WHEEL_DIR"/
        rm -rf "$BUILD"
        WHEEL="$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
        log "mmcv compiled in $((SECONDS / 60)) min"
    else
        log "using cached mmcv wheel $WHEEL"
    fi
    # mmcv's own deps (addict, yapf, packaging, ...) come with it; torch is already satisfied.
    # --force-reinstall: replaces an mmcv of the same version built without ops
    "${PIP[@]}" install -q --force-reinstall --no-deps "$WHEEL"
    "${PIP[@]}" install -q addict yapf packaging pyyaml regex "mmengine==0.10.7"
fi

# 4. the rest of the stack, pinned. mmdet, openmim and mmdeploy go in with --no-deps:
#    openmim's chain downgrades setuptools/requests/rich and mmdeploy pins a protobuf
#    that conflicts with onnx; their real dependencies are listed here instead.
#    opencv-python (required by mmengine/mmcv) and -headless both own `cv2`: same version.
OPENCV_VERSION=5.0.0.93
"${PIP[@]}" install -q "mmengine==0.10.7" "pycocotools>=2.0.7" \
    "opencv-python==$OPENCV_VERSION" "opencv-python-headless==$OPENCV_VERSION" \
    matplotlib scipy shapely terminaltables tqdm six pytest hypothesis \
    click colorama model-index pandas requests rich tabulate
"${PIP[@]}" install -q --no-deps "mmdet==3.3.0" "openmim==0.3.9"
if [[ ",$EXTRAS," == *",deploy,"* ]]; then
    "${PIP[@]}" install -q "onnx>=1.16" "onnxruntime>=1.17" prettytable aenum multiprocess grpcio
    # OpenVINO backend (FP32 / INT8 IR); needs only numpy and openvino-telemetry
    "${PIP[@]}" install -q "openvino>=2024"
    "${PIP[@]}" install -q --no-deps "mmdeploy==1.3.1"
fi
if [[ ",$EXTRAS," == *",tools,"* ]]; then
    "${PIP[@]}" install -q seaborn psutil tensorboard
fi

# 5. the project itself (regular install so that `mim` finds damoyolo_mm/.mim/{configs,tools}).
log "installing damoyolo_mm[$EXTRAS]"
# --no-deps: everything above is already pinned and installed; a resolver run here
# could only replace a pin. `pip check` below reports what is missing.
"${PIP[@]}" install -q --no-deps --no-build-isolation "$REPO"

"$PY" - <<'PYEOF'
import torch, mmcv, mmcv.ops, mmengine, mmdet, damoyolo_mm
print(f'[setup_env] torch {torch.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, damoyolo_mm {damoyolo_mm.__version__}')
PYEOF
log "done in ${SECONDS}s; activate with: source $VENV/bin/activate"
