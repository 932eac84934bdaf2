#!/usr/bin/env bash
# bench_ground and the official model under PyTorch (bench_ground_torch.py) in one run, on the same
# threads, one after the other on an otherwise idle machine, then the ratios per frame size.
#   bench/ground_vs_torch.sh [threads] [repeats]     (build-bench/bench/bench_ground built first)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
repeats=${2:-2}
py=${PY:-$(../shared/tools/reference-env)}
ours=$(mktemp) theirs=$(mktemp)
trap 'rm -f "$ours" "$theirs"' EXIT
build-bench/bench/bench_ground --threads "$threads" --repeats "$repeats" | tee "$ours"
"$py" bench/bench_ground_torch.py --threads "$threads" --repeats "$repeats" 2>/dev/null | tee "$theirs"
# "frame WxH (model input PWxPH): S s/frame" and "model input PWxPH: model S s/frame"
echo
echo "| model input | ours s/frame (whole) | PyTorch s/frame (model only) | ours faster by |"
echo "| --- | ---: | ---: | ---: |"
awk '
  FNR == NR && /^frame .* s\/frame/ { match($0, /model input [0-9]+x[0-9]+/); size = substr($0, RSTART + 12, RLENGTH - 12);
                                      split($0, a, "): "); split(a[2], b, " "); ours[size] = b[1]; order[++n] = size; next }
  FNR != NR && /^model input .* s\/frame/ { split($3, s, ":"); split($0, a, "model "); split(a[3], b, " "); theirs[s[1]] = b[1] }
  END { for (i = 1; i <= n; ++i) { k = order[i];
          if (k in theirs) printf "| %s | %.3f | %.3f | %.2fx |\n", k, ours[k], theirs[k], theirs[k] / ours[k];
          else printf "| %s | %.3f | (missing) | |\n", k, ours[k] } }' "$ours" "$theirs"
