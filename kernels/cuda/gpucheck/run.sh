#!/usr/bin/env bash
# GPU check of the CUDA backend, run from the bundle `make gpu-check` builds
# (bin/gpu-check): test binaries, the sluice binary and a subset of
# ../shared, for a machine with an NVIDIA GPU and neither Go nor network.
#
#   bin/gpu-check/run.sh [OUTDIR]     (default OUTDIR: ./gpu-check-out)
#
# Steps, each under its own time limit, each logged to OUTDIR/<step>.log:
#   ops     every op on the GPU against the CPU backend / quant reference
#           (GPU_CHECK_NVRTC=1: also every kernel through this machine's
#           NVRTC, with the warnings and spills check)
#   golden  ../shared's golden tests on --backend cuda (model package)
#   engine  engine equivalence on cuda vs the CPU backend's tokens: alone,
#           batched, prefix cache, chunked prefill, preemption
#   bench   sluice bench engine on dummy models made here by sluice synth
#           --fast (skip with GPU_CHECK_BENCH=0)
# and OUTDIR/report.json gathers every step's status, test results and the
# benchmark JSON. The exit status is 0 only when every step passed.
set -uo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export SLUICE_SHARED="$DIR/shared" SLUICE_GPU_CHECK=1
export SLUICE_HOME="${SLUICE_HOME:-$OUT/home}"
MODELS="${GPU_CHECK_MODELS_DIR:-/tmp/sluice-gpu-check-models}"
export DIR OUT MODELS

# NVRTC: the standard names, else the first libnvrtc found on the machine.
if [ -z "${SLUICE_NVRTC:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so\.1[23] '; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 /opt /usr; do
    f="$(find "$d" -name 'libnvrtc.so.1[23]' 2>/dev/null | sort -r | head -n1)"
    if [ -n "$f" ]; then export SLUICE_NVRTC="$f"; break; fi
  done
fi
echo "NVRTC: ${SLUICE_NVRTC:-standard library names}" | tee "$OUT/env.log"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.free --format=csv >>"$OUT/env.log" 2>&1

step() { # step NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $name"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "$name $rc $(($(date +%s) - start))" >>"$OUT/steps.txt"
  grep -E '^(--- |ok |FAIL|PASS)' "$OUT/$name.log" | tail -n 40
  echo "== $name: exit $rc in $(($(date +%s) - start)) s"
}
: >"$OUT/steps.txt"

OPS='GPU'
[ "${GPU_CHECK_NVRTC:-0}" = 1 ] && OPS='GPU|NVRTC' # this machine's NVRTC too (about a minute)
step ops 120 "$DIR/cuda.test" -test.v -test.count=1 -test.run "$OPS"
step golden 120 env SLUICE_TEST_BACKEND=cuda "$DIR/model.test" -test.v -test.count=1 -test.run 'TestGolden$'
step engine 180 env SLUICE_TEST_BACKEND=cuda "$DIR/engine.test" -test.v -test.count=1 -test.run 'TestEquivalence$|TestGoldenGreedy$'

bench() { # bench SHAPE TYPE
  local f="$MODELS/$1-$2.gguf"
  mkdir -p "$MODELS"
  [ -s "$f" ] || "$DIR/sluice" synth --shape "$1" --type "$2" --fast -q -o "$f" || return 1
  "$DIR/sluice" bench engine -m "$f" --backend cuda -p 512 -n 128 -b 1,16,64 -pb 128 -nb 32 -r 2 -q -json \
    >"$OUT/bench-$1-$2.json"
}
export -f bench
if [ "${GPU_CHECK_BENCH:-1}" != 0 ]; then
  step bench-1b-q4_k 150 bash -c 'bench llama-3.2-1b Q4_K'
  step bench-8b-q4_0 200 bash -c 'bench llama-3.1-8b Q4_0'
  step bench-8b-q4_k 200 bash -c 'bench llama-3.1-8b Q4_K'
fi

python3 - "$OUT" <<'PY'
import json, os, re, sys
out = sys.argv[1]
report = {"env": open(os.path.join(out, "env.log")).read(), "steps": []}
ok = True
for line in open(os.path.join(out, "steps.txt")):
    name, rc, secs = line.split()
    log = open(os.path.join(out, name + ".log"), errors="replace").read()
    s = {"step": name, "exit": int(rc), "seconds": int(secs),
         "passed": re.findall(r"--- PASS: (\S+)", log), "failed": re.findall(r"--- FAIL: (\S+)", log),
         "skipped": re.findall(r"--- SKIP: (\S+)", log), "log_tail": log[-4000:]}
    ok = ok and s["exit"] == 0
    report["steps"].append(s)
report["bench"] = {}
for f in sorted(os.listdir(out)):
    if f.startswith("bench-") and f.endswith(".json"):
        try:
            report["bench"][f[:-5]] = json.load(open(os.path.join(out, f)))
        except Exception as e:
            report["bench"][f[:-5]] = {"error": str(e)}
report["ok"] = ok
json.dump(report, open(os.path.join(out, "report.json"), "w"), indent=1)
print("report:", os.path.join(out, "report.json"), "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
