#!/usr/bin/env bash
# Ingest benchmark: builds firewatch in release mode, starts `firewatch dev`
# on a fresh data dir, posts deduplicated alerts from several clients, and
# reports throughput, latency and the server's peak memory (VmHWM).
# Usage: bench/run.sh [--mode repeat|occurrences] [--alerts N] [--fingerprints N] [--batch N] [--clients N]
# With no arguments it runs both modes with the defaults (100k alerts, 1k
# fingerprints, 10 alerts per webhook, 8 clients).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p firewatch -p firewatch-bench
dir=$(mktemp -d)
token="fw_bench_$(date +%s)_0123456789"
FIREWATCH_DEV_TOKEN="$token" FIREWATCH_LOG=warn FIREWATCH_RATE_LIMIT_PER_HOUR=1000000 \
  target/release/firewatch dev --listen 127.0.0.1:0 --data-dir "$dir" > "$dir/dev.out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  url=$(sed -n 's/^firewatch dev listening on //p' "$dir/dev.out")
  [ -n "$url" ] && break
  sleep 0.05
done
echo "server: $url (pid $pid), $(nproc) cores"
if [ $# -eq 0 ]; then
  # Both workloads, on the same server and store.
  target/release/firewatch-bench --url "$url" --token "$token" --mode repeat
  target/release/firewatch-bench --url "$url" --token "$token" --mode occurrences
else
  target/release/firewatch-bench --url "$url" --token "$token" "$@"
fi
echo "server peak memory: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MB"}')"
echo "data dir size: $(du -sh "$dir" | cut -f1)"
