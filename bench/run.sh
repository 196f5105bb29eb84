#!/usr/bin/env bash
# firewatch benchmarks. Figures and how to read them: docs/BENCHMARKS.md.
#
#   bench/run.sh [ingest] [-- ARGS]   ingest throughput, latency and peak memory of
#                                     `firewatch dev` (`local` profile, fresh data dir).
#                                     ARGS go to `firewatch-bench ingest` (--mode
#                                     repeat|occurrences, --alerts, --fingerprints,
#                                     --batch, --clients); without them both modes run
#                                     with webhooks of ten alerts, then of one.
#   bench/run.sh compare OLD NEW [-- ARGS]
#                                     two `firewatch` binaries run alternately, twice
#                                     each, every run on a fresh data dir under the same
#                                     load (ARGS go to `firewatch-bench ingest`): how a
#                                     change moved a figure on a machine whose speed drifts.
#   bench/run.sh latency OLD NEW      a single webhook's latency, before and after: two
#                                     `firewatch` binaries alternately, three runs each,
#                                     each run 200 sequential one-alert webhooks on one
#                                     connection (new occurrences, then repeats); prints
#                                     each run's median and fails when NEW's median of
#                                     medians is more than 10% above OLD's.
#   bench/run.sh pings [-- ARGS]      heartbeat pings per second in `firewatch dev` (ARGS go
#                                     to `firewatch-bench pings`: --pings, --heartbeats, --clients).
#   bench/run.sh lineage [-- ARGS]    OpenLineage run events per second in `firewatch dev` (ARGS
#                                     go to `firewatch-bench lineage`: --events, --pipelines, --clients).
#   bench/run.sh summary [-- ARGS]    pipelines summary, SLA counts, costs and list latency over
#                                     an embedded store seeded (through the run write path)
#                                     with 10,000 pipelines and 1,000,000 runs (ARGS go to
#                                     `firewatch-bench pipelines-summary`: --pipelines,
#                                     --runs-per-pipeline, --reads; --dir reuses a seed).
#   bench/run.sh chat                 time from an alert's 202 to its root card arriving
#                                     at a (fake, local) Slack, in `firewatch dev`.
#   bench/run.sh cost [-- ARGS]       what one alert costs on AWS: the ingest router and the
#                                     dispatcher in process on the AWS adapters, DynamoDB Local
#                                     behind a proxy that counts request units, S3 requests
#                                     counted, priced at list prices (docs/COST.md; ARGS go to
#                                     `firewatch-bench cost`: --repeats, --incidents).
#   bench/run.sh lambda               each Lambda function's zipped artifact size, and
#                                     its cold start (process start to first answered
#                                     invocation) under a local Lambda Runtime API, with
#                                     DynamoDB Local and a local S3 server behind it.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-ingest}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift

# Starts the `firewatch` binary $1 as `firewatch dev` on a fresh data dir and
# a free port, with any extra environment given as further arguments; sets
# $url, $token, $pid, $dir.
serve() {
  local bin=$1
  shift
  dir=$(mktemp -d)
  token="fw_bench_$(date +%s)_0123456789"
  env "$@" FIREWATCH_DEV_TOKEN="$token" FIREWATCH_LOG=warn FIREWATCH_RATE_LIMIT_PER_HOUR=1000000 \
    "$bin" dev --listen 127.0.0.1:0 --data-dir "$dir" >"$dir/dev.out" 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 200); do
    url=$(sed -n 's/^firewatch dev listening on //p' "$dir/dev.out")
    [ -n "$url" ] && break
    sleep 0.05
  done
}

# Builds and starts `firewatch dev` (`local` profile), as `serve` does.
start_dev() {
  cargo build --profile local --locked -p firewatch -p firewatch-bench
  serve target/local/firewatch "$@"
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
  echo "server: $url (pid $pid), $(nproc) cores"
}

case "$what" in
compare)
  old=$(realpath "$1"); new=$(realpath "$2"); shift 2
  [ "${1:-}" = "--" ] && shift
  cargo build --profile local --locked -p firewatch-bench
  for round in 1 2; do
    for bin in "$old" "$new"; do
      serve "$bin"
      echo "== round $round: $bin"
      target/local/firewatch-bench ingest --url "$url" --token "$token" "$@" | grep -E 'throughput|latency'
      echo "server peak memory: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
      kill $pid; wait $pid 2>/dev/null || true; rm -rf "$dir"
    done
  done
  ;;
latency)
  if [ $# -lt 2 ]; then
    echo "usage: bench/run.sh latency OLD NEW (two firewatch binaries)" >&2
    exit 2
  fi
  old=$(realpath "$1"); new=$(realpath "$2"); shift 2
  cargo build --profile local --locked -p firewatch-bench
  pid=""; dir=""
  trap '[ -n "$pid" ] && kill $pid 2>/dev/null; [ -n "$dir" ] && rm -rf "$dir"' EXIT
  worse=0
  for mode in occurrences repeat; do
    p50s_old=""; p50s_new=""
    for round in 1 2 3; do
      # Alternate which build goes first, so neither always runs on a
      # cooler machine.
      order="old new"; [ $((round % 2)) -eq 0 ] && order="new old"
      for which in $order; do
        bin=${!which}
        serve "$bin"
        p50=$(target/local/firewatch-bench ingest --url "$url" --token "$token" --mode "$mode" \
                --alerts 200 --batch 1 --clients 1 --fingerprints 20 |
              sed -n 's/^request latency: p50 \([0-9.]*\) ms.*/\1/p')
        kill $pid; wait $pid 2>/dev/null || true; rm -rf "$dir"; pid=""; dir=""
        if [ -z "$p50" ]; then
          echo "$mode, round $round, $which: no latency measured" >&2
          exit 1
        fi
        echo "$mode, round $round, $which: median $p50 ms"
        if [ "$which" = old ]; then p50s_old="$p50s_old $p50"; else p50s_new="$p50s_new $p50"; fi
      done
    done
    verdict=$(python3 - "$p50s_old" "$p50s_new" <<'PY'
import statistics, sys
old = statistics.median(float(x) for x in sys.argv[1].split())
new = statistics.median(float(x) for x in sys.argv[2].split())
print(f"{old:.3f} {new:.3f} {100 * (new / old - 1):+.1f}% {'ok' if new <= old * 1.10 else 'WORSE'}")
PY
)
    read -r m_old m_new change ok <<<"$verdict"
    echo "$mode: median of medians $m_old ms before, $m_new ms after ($change): $ok"
    [ "$ok" = ok ] || worse=1
  done
  exit $worse
  ;;
ingest)
  start_dev
  if [ $# -eq 0 ]; then
    # Webhooks of ten alerts (8 connections), then of one alert (what
    # Alertmanager sends when a route groups by instance, and what most
    # other providers always send; 32 connections).
    for mode in repeat occurrences; do
      target/local/firewatch-bench ingest --url "$url" --token "$token" --mode "$mode"
    done
    for mode in repeat occurrences; do
      target/local/firewatch-bench ingest --url "$url" --token "$token" --mode "$mode" \
        --batch 1 --clients 32 --alerts 40000
    done
  else
    target/local/firewatch-bench ingest --url "$url" --token "$token" "$@"
  fi
  echo "server peak memory: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
  echo "data dir size: $(du -sh "$dir" | cut -f1)"
  ;;
pings)
  start_dev
  target/local/firewatch-bench pings --url "$url" --token "$token" "$@"
  echo "server peak memory: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
  ;;
lineage)
  start_dev
  target/local/firewatch-bench lineage --url "$url" --token "$token" "$@"
  echo "server peak memory: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
  ;;
summary)
  cargo build --profile local --locked -p firewatch-bench
  if printf '%s\n' "$@" | grep -q -- '^--dir'; then
    FIREWATCH_SQLITE_SYNCHRONOUS=normal target/local/firewatch-bench pipelines-summary "$@"
  else
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    FIREWATCH_SQLITE_SYNCHRONOUS=normal target/local/firewatch-bench pipelines-summary --dir "$dir" "$@"
    echo "data dir size: $(du -sh "$dir" | cut -f1)"
  fi
  ;;
chat)
  slack_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  start_dev FIREWATCH_CONSOLE_CHAT=false SLACK_BOT_TOKEN=xoxb-bench SLACK_SIGNING_SECRET=bench \
    SLACK_DEFAULT_CHANNEL=C0BENCH SLACK_API_URL="http://127.0.0.1:$slack_port/api"
  target/local/firewatch-bench chat-latency --url "$url" --token "$token" --slack-port "$slack_port" "$@"
  ;;
cost)
  source tests/lib.sh
  ensure_tools
  cargo build --release --locked -p firewatch-bench
  start_servers
  target/release/firewatch-bench cost \
    --dynamodb-endpoint "$FIREWATCH_TEST_DYNAMODB_ENDPOINT" --s3-endpoint "$FIREWATCH_TEST_S3_ENDPOINT" "$@"
  ;;
lambda)
  source tests/lib.sh
  ensure_tools
  cargo lambda build --release --locked --output-format zip \
    -p firewatch-ingest -p firewatch-incidents -p firewatch-admin -p firewatch-dispatch -p firewatch-scheduler -p firewatch-playbooks -p firewatch-schedules -p firewatch-pipelines -p firewatch-dossier -p firewatch-silences -p firewatch-escalation \
    -p firewatch-slack -p firewatch-telegram -p firewatch-discord
  cargo build --release --locked -p firewatch-bench
  for f in ingest incidents admin dispatch scheduler checks playbooks schedules pipelines dossier silences escalation slack telegram discord; do
    echo "firewatch-$f: $(stat -c %s "target/lambda/firewatch-$f/bootstrap.zip" | awk '{printf "%.2f MB zipped", $1/1048576}')"
  done
  start_servers
  # The runtime needs the bare binary: unzip each artifact next to it.
  args=()
  for f in ingest incidents admin dispatch scheduler checks playbooks schedules pipelines dossier silences escalation slack telegram discord; do
    d=$(mktemp -d)
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "target/lambda/firewatch-$f/bootstrap.zip" "$d"
    chmod +x "$d/bootstrap"
    args+=(--function "$f=$d/bootstrap")
  done
  AWS_ACCESS_KEY_ID=AKIAFIREWATCHBENCH AWS_SECRET_ACCESS_KEY=firewatchbenchsecret AWS_REGION=us-east-1 \
  target/release/firewatch-bench cold-start "${args[@]}" \
    --dynamodb-endpoint "$FIREWATCH_TEST_DYNAMODB_ENDPOINT" --s3-endpoint "$FIREWATCH_TEST_S3_ENDPOINT"
  ;;
*)
  echo "usage: bench/run.sh [ingest [-- ARGS] | compare OLD NEW [-- ARGS] | latency OLD NEW | pings | lineage | summary | chat | cost [-- ARGS] | lambda]" >&2
  exit 2
  ;;
esac
