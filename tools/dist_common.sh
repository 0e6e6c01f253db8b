# Shared by tools/dist_train.sh and tools/dist_test.sh (sourced, not run):
# the launch settings and the checks made before torchrun starts.
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
PYTHON=${PYTHON:-python}

dist_fail() {
    echo "$(basename "$0"): $*" >&2
    exit 2
}

# dist_check_args N "NAMES" "$@": at least N positional arguments
dist_check_args() {
    local need=$1 names=$2
    shift 2
    if [ $# -lt "$need" ]; then
        dist_fail "expected $names, got $# argument(s); see --help"
    fi
}

# dist_check_launch GPUS: process count, port and GPU count, before torchrun
dist_check_launch() {
    local gpus=$1
    if ! [[ "$gpus" =~ ^[1-9][0-9]*$ ]]; then
        dist_fail "GPUS must be a positive number of processes per node, got '$gpus'"
    fi
    if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -gt 65535 ]; then
        dist_fail "PORT must be a TCP port number, got '$PORT'"
    fi
    command -v "$PYTHON" >/dev/null 2>&1 || \
        dist_fail "python interpreter '$PYTHON' not found: set PYTHON or activate the environment (tools/setup_env.sh)"
    local msg
    if ! msg=$("$PYTHON" - "$gpus" "$PORT" "$NODE_RANK" "$(basename "$0")" <<'PY'
import socket
import sys



def fail(msg):
    print(msg)
    sys.exit(1)


nproc, port, node_rank = (int(v) for v in sys.argv[1:4])
if node_rank == 0:  # the master node listens on PORT
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(('', port))
    except OSError as exc:
        fail(f'port {port} is already in use ({exc.strerror}): set PORT '
             f'to a free port, e.g. PORT={port + 1} bash tools/{sys.argv[4]} ...')
    finally:
        sock.close()
import torch  # noqa: E402

gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
if 0 < gpus < nproc:
    fail(f'{nproc} processes requested but only {gpus} GPU(s) are visible: '
         f'set GPUS to at most {gpus} (or CUDA_VISIBLE_DEVICES)')
PY
    ); then
        dist_fail "${msg:-the launch check failed}"
    fi
}
