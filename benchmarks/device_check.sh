#!/usr/bin/env bash
# One call that measures the GPU path (issue 15): written to finish in <= 8 minutes on one
# H100/H200 from a fresh machine, every step time-boxed so that a slow one cannot eat the others'
# time. Prints everything and writes it under $OUT (default benchmarks/out/), at most 8 files:
#
#   summary.txt       one line per step: name, exit status, seconds, limit
#   device_check.log  the whole output
#   nvidia-smi.txt    GPU name, driver, memory
#   gpu_tests.txt     pytest -m gpu (determinism, compile on/off, resume after SIGKILL, RNG state)
#   bench_train.json  naive vs fast vs fast+compile: gout 3-block at 700x320, ResNet50 at 224
#   bench_paper.json  the paper preset on a bounded slice, projected to the full run vs 15 min
#
# Usage, from the repository root:
#   bash benchmarks/device_check.sh                      # on the GPU machine
#   DEVICE_CHECK_CPU=1 bash benchmarks/device_check.sh   # dry run on a CPU: small sizes, no pip
#   DEVICE_CHECK_FETCH=1 bash benchmarks/device_check.sh # here, before: wheels into .whl/
#
# The GPU machines of this workplace cannot reach PyPI and bring their own torch: when
# `pip install -e '.[all,dev]'` cannot complete there, the script installs the few pure-Python
# packages the checks need that the machine lacks from .whl/ (fetched beforehand with
# DEVICE_CHECK_FETCH=1 and carried with the call) and runs the project from src/ on the
# machine's torch; summary.txt says which way it went.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-benchmarks/out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
CPU=${DEVICE_CHECK_CPU:-0}
: >"$OUT/summary.txt"
exec > >(tee "$OUT/device_check.log") 2>&1

# pure-Python (or abi3) packages the checks import that a bare torch image may lack
WHEELS="jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1"

if [ "${DEVICE_CHECK_FETCH:-0}" = 1 ]; then
    mkdir -p .whl
    git check-ignore -q .whl/x.whl || echo '/.whl/' >>"$(git rev-parse --git-path info/exclude)"
    # shellcheck disable=SC2086
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl $WHEELS
    exit $?
fi

# step NAME LIMIT_SECONDS COMMAND...: run with a time limit, record status and duration
step() {
    local name=$1 limit=$2
    shift 2
    echo
    echo "=== $name (limit ${limit} s) $(date -u +%H:%M:%S)"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    local took=$((SECONDS - t0))
    [ $rc -eq 124 ] && echo "=== $name: TIMED OUT after ${limit} s"
    echo "=== $name: exit $rc, ${took} s"
    printf '%-12s exit %-3s %4s s (limit %s s)\n' "$name" "$rc" "$took" "$limit" >>"$OUT/summary.txt"
    return 0
}

install() {
    if [ "$CPU" = 1 ]; then
        echo "CPU dry run: no pip install (the environment is already set up)"
        return 0
    fi
    if "$PY" -m pip install -q --retries 0 --timeout 5 -c envs/constraints.txt -e '.[all,dev]'; then
        echo "installed: pip install -c envs/constraints.txt -e '.[all,dev]'"
        return 0
    fi
    echo "pip install -e '.[all,dev]' failed (offline machine?): the machine's torch + .whl/ + src/"
    if ls .whl/*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    fi
    return 1
}

if [ "$CPU" = 1 ]; then
    DEVICE=cpu
    TRAIN_ARGS=(--device cpu --scale 0.1 --images 32 --batch-size 4 --steps 2 --warmup 1
        --threads 2 --loops naive fast fast+compile --cases gout_blocks3)
    PAPER_ARGS=(--device cpu --scale 0.1 --images-scale 0.03 --epochs 2 --threads 2
        --only gout/blocks3 olt/T2)
    LIMITS=(install=30 smi=60 tests=240 train=420 paper=420)
else
    DEVICE=cuda
    TRAIN_ARGS=(--device cuda --batch-size 128 --steps 15 --warmup 3)
    PAPER_ARGS=(--device cuda --epochs 3)
    LIMITS=(install=60 smi=30 tests=140 train=130 paper=110)
fi
limit() { local kv; for kv in "${LIMITS[@]}"; do [ "${kv%%=*}" = "$1" ] && echo "${kv#*=}"; done; }

echo "device_check: $(date -u), mode ${DEVICE}, output in $OUT"
step install "$(limit install)" bash -c "$(declare -f install); CPU=$CPU PY=$PY install"
# the project from src/ and the carried wheels, whichever way the install went
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d /tmp/site ] && export PYTHONPATH="$PYTHONPATH:/tmp/site"
export PYTHONUNBUFFERED=1

smi() {
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        nvidia-smi
    else
        echo "nvidia-smi: not found (no NVIDIA driver on this machine)"
    fi
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
        'available', torch.cuda.is_available(),
        torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
}
step smi "$(limit smi)" bash -c "$(declare -f smi); PY=$PY smi" | tee "$OUT/nvidia-smi.txt"

step tests "$(limit tests)" "$PY" -m pytest tests/unit/test_train.py -m gpu -rs -q -p no:cacheprovider \
    | tee "$OUT/gpu_tests.txt"

step train "$(limit train)" "$PY" benchmarks/bench_train.py "${TRAIN_ARGS[@]}" \
    --json "$OUT/bench_train.json"

step paper "$(limit paper)" "$PY" benchmarks/bench_paper.py "${PAPER_ARGS[@]}" \
    --json "$OUT/bench_paper.json"

echo
echo "=== summary ($DEVICE)"
cat "$OUT/summary.txt"
