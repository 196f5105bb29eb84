#!/usr/bin/env bash
# Ingest benchmark: builds firewatch in release mode, starts `firewatch dev`
# on a fresh data dir, posts deduplicated alerts from several clients, and
# reports throughput, latency and the server's peak memory (VmHWM).
# Usage: bench/run.sh [--alerts N] [--fingerprints N] [--batch N] [--clients N]
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
target/release/firewatch-bench --url "$url" --token "$token" "$@"
echo "server peak memory: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MB"}')"
echo "data dir size: $(du -sh "$dir" | cut -f1)"
