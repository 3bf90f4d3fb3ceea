#!/usr/bin/env bash
# One script for a lent GPU machine: the CUDA tests, the benchmark and configs/gpu.toml training,
# each under a time limit, everything written to one output folder ($OUT, else runs/gpu-out).
#
# Before (here):  python tools/make_gpu_pack.py            # training photos at 256 px, ~31 MB
# On the machine: the device tool's run with carry ["runs/gpu-pack"] and timeout_s 600:
#                 bash bench/gpu_run.sh
# The whole script ends within BUDGET seconds (default 540): each step gets its own limit or what
# is left, the training whatever the steps before it left (less a minute to write back), so with
# the machine's start the call stays inside 15 minutes of device time. A training stopped by its
# limit writes a checkpoint at the step it reached. RESUME=1 continues runs/gpu from it (carry
# runs/gpu too, if the working tree stays under 64 MiB).
# What comes back ($OUT, at most 8 files of 16 MiB): log.txt (the benchmark table too),
# train-log.jsonl, and three checkpoints (below), each cut into 15 MB parts (rejoin:
# cat NAME.part-* > NAME).
set -u -o pipefail
OUT="${OUT:-runs/gpu-out}"
PY="${PYTHON:-python3}"
PACK=runs/gpu-pack
RUN=runs/gpu
mkdir -p "$OUT" "$RUN"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=20 PYTHONPATH="$PACK/site${PYTHONPATH:+:$PYTHONPATH}"

BUDGET="${BUDGET:-540}"

step() {  # step NAME SECONDS COMMAND...: run it under that limit or the budget left, log how it ended
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    local left=$((BUDGET - SECONDS))
    [ "$limit" -gt "$left" ] && limit=$left
    [ "$limit" -le 0 ] && { echo "== $name: skipped, no time left"; return; }
    echo "== $name (limit ${limit} s): $*"
    timeout --signal=INT --kill-after=20 "$limit" "$@"
    echo "== $name: exit $? after $((SECONDS - start)) s"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    [ -d "$PACK/imagenet-sample" ] || echo "no $PACK: run tools/make_gpu_pack.py here and carry it"
    step lite0 60 "$PY" tools/make_gpu_pack.py --gpu-side --out "$PACK"
    step tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_model.py tests/test_correlation.py
    step bench 90 "$PY" bench/bench_model.py --device "${DEVICE:-cuda}" --sizes 256 320
    step train $((BUDGET - SECONDS - 60)) "$PY" main.py train --config configs/gpu.toml --stage synthetic \
        --init resources/weights/rtn_lite0.safetensors --out "$RUN" --device "${DEVICE:-cuda}" ${RESUME:+--resume}
} 2>&1 | tee "$OUT/log.txt"

[ -f "$RUN/log.jsonl" ] && cp "$RUN/log.jsonl" "$OUT/train-log.jsonl"
# three checkpoints come back (6 parts + 2 logs = the 8 files allowed): the last, and those a third
# and two thirds of the way through the list (a later checkpoint has scored lower on semcorr-val)
checkpoints=($(ls "$RUN"/synthetic_step*.safetensors 2>/dev/null | sort))
count=${#checkpoints[@]}
if [ "$count" -gt 0 ]; then
    for i in $(printf '%s\n' $(( (count - 1) / 3 )) $(( 2 * (count - 1) / 3 )) $(( count - 1 )) | sort -un); do
        c=${checkpoints[$i]}
        split -b 15m "$c" "$OUT/$(basename "$c").part-"
        echo "weights: $c -> $OUT/$(basename "$c").part-*" | tee -a "$OUT/log.txt"
    done
fi
