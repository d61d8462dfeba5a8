#!/usr/bin/env bash
# CI: a newcomer's first run: in a fresh clone, the README's run command exactly as written,
# until /readyz answers; then one /classify call, a clean stop (SIGTERM to its process group), and
# a log with no error-looking lines.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
ready_timeout_s=${NEWCOMER_READY_TIMEOUT_S:-900}
stop_timeout_s=${NEWCOMER_STOP_TIMEOUT_S:-60}

work=$(mktemp -d "${TMPDIR:-/tmp}/textcls-newcomer.XXXXXX")
log="$work/run.log"
pgid=""

say() { echo "newcomer: $*"; }
die() {
    echo "newcomer: FAIL: $*" >&2
    if [ -f "$log" ]; then
        echo "---- last lines of the run's output ----" >&2
        tail -n 60 "$log" >&2
    fi
    exit 1
}
# True while a process of the group runs; zombies (exited, not yet reaped) do not count.
group_alive() {
    [ -n "$pgid" ] || return 1
    python3 - "$pgid" <<'PYEOF'
import os
import sys

group = int(sys.argv[1])
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state, _ppid, pgrp = f.read().rsplit(")", 1)[1].split()[:3]
    except OSError:
        continue
    if int(pgrp) == group and state != "Z":
        sys.exit(0)
sys.exit(1)
PYEOF
}
cleanup() {
    if group_alive; then
        kill -KILL -- "-$pgid" 2> /dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "newcomer: FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR

# The README is the source of truth: the first ```sh block under "## Set-up commands".
run_cmd=$(awk '
    /^## / { in_section = ($0 == "## Set-up commands"); next }
    in_section && !in_fence && /^```sh[[:space:]]*$/ { in_fence = 1; next }
    in_fence && /^```/ { exit }
    in_fence { print }
' "$repo/README.md")
[ -n "$run_cmd" ] || die "no \`\`\`sh block under '## Set-up commands' in README.md"
say "README run command: $run_cmd"

git clone --quiet "$repo" "$work/textcls"
cd "$work/textcls"

# Where the command serves: the Makefile's defaults, which the README command does not override.
host=$(sed -n 's/^HOST ?= *//p' Makefile)
port=$(sed -n 's/^PORT ?= *//p' Makefile)
[ -n "$host" ] && [ -n "$port" ] || die "cannot read HOST ?= and PORT ?= from the Makefile"
base="http://$host:$port"

# A newcomer has none of CI's settings: the run must work on the defaults alone.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TEXTCLS_' || true)
unset VIRTUAL_ENV PYTHONPATH

if ! python3 - "$host" "$port" <<'PYEOF'
import socket
import sys

with socket.socket() as s:
    try:
        s.bind((sys.argv[1], int(sys.argv[2])))
    except OSError as exc:
        sys.exit(f"{sys.argv[1]}:{sys.argv[2]} is taken ({exc})")
PYEOF
then
    die "the README's command serves on $base, and something else already listens there"
fi
# gRPC (Open Inference Protocol) is on by default on 8001, beside HTTP.
if ! python3 - "$host" 8001 <<'PYEOF'
import socket
import sys

with socket.socket() as s:
    try:
        s.bind((sys.argv[1], int(sys.argv[2])))
    except OSError as exc:
        sys.exit(f"{sys.argv[1]}:{sys.argv[2]} is taken ({exc})")
PYEOF
then
    die "the README's command serves gRPC on $host:8001, and something else already listens there"
fi

# setsid: the command and everything it starts (make, pip, the trainer, the server) share a
# new process group, which is what a newcomer's Ctrl-C reaches and what the stop below signals.
say "starting it in $work/textcls (log: $log)"
setsid bash -c "$run_cmd" > "$log" 2>&1 < /dev/null &
pgid=$!

http() {
    # http METHOD PATH [JSON_BODY] -> prints "STATUS\nBODY"; STATUS 0 when nothing answers.
    python3 - "$base" "$@" <<'PYEOF'
import sys
import urllib.error
import urllib.request

base, method, path = sys.argv[1:4]
body = sys.argv[4].encode() if len(sys.argv) > 4 else None
request = urllib.request.Request(base + path, data=body, method=method)
if body is not None:
    request.add_header("Content-Type", "application/json")
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status)
        print(response.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code)
    print(exc.read().decode(errors="replace"))
except (OSError, urllib.error.URLError):
    print(0)
PYEOF
}

say "waiting up to ${ready_timeout_s}s for $base/readyz (venv, install, training, start-up)"
start=$SECONDS
while :; do
    response=$(http GET /readyz)
    status=${response%%$'\n'*}
    [ "$status" = 200 ] && break
    group_alive || die "the run command exited before /readyz answered 200"
    [ $((SECONDS - start)) -lt "$ready_timeout_s" ] \
        || die "/readyz did not answer 200 within ${ready_timeout_s}s (last status: $status)"
    sleep 5
done
say "ready after $((SECONDS - start))s"

response=$(http POST /classify '{"text": "I was charged twice for my order, please refund one"}')
say "POST /classify -> $response"
python3 - "$response" <<'PYEOF' || die "/classify did not answer as the README's API says"
import json
import sys

status, _, body = sys.argv[1].partition("\n")
if status != "200":
    sys.exit(f"status {status}")
answer = json.loads(body)
for key in ("request_id", "model", "version", "predictions"):
    if key not in answer:
        sys.exit(f"no {key!r} in the answer")
predictions = answer["predictions"]
if not isinstance(predictions, list) or len(predictions) != 1:
    sys.exit(f"expected one prediction, got {predictions!r}")
p = predictions[0]
if not isinstance(p.get("label"), str) or not p["label"]:
    sys.exit(f"no label in {p!r}")
if not 0.0 <= float(p["confidence"]) <= 1.0:
    sys.exit(f"confidence out of [0, 1] in {p!r}")
if not isinstance(p.get("fallback"), bool):
    sys.exit(f"fallback is not a boolean in {p!r}")
ranking = p.get("ranking")
if not ranking or ranking[0]["label"] != p["label"]:
    sys.exit(f"the ranking does not start with the label in {p!r}")
PYEOF

say "stopping: SIGTERM to process group $pgid"
kill -TERM -- "-$pgid"
start=$SECONDS
while group_alive; do
    [ $((SECONDS - start)) -lt "$stop_timeout_s" ] \
        || die "still running ${stop_timeout_s}s after SIGTERM"
    sleep 1
done
wait "$pgid" || true
pgid=""
response=$(http GET /healthz)
[ "${response%%$'\n'*}" = 0 ] || die "something still answers on $base after the stop"
grep -qi "shutdown complete" "$log" \
    || die "the server did not log a completed shutdown (lifespan shutdown did not run)"
say "stopped cleanly in $((SECONDS - start))s"

# What a newcomer reads: each step announced, and nothing that looks like a failure on a CPU
# machine (TensorFlow's E0000 cuInit line, a stack trace).
grep -q "^==> setting up" "$log" || die "the run did not say it was setting up the venv"
grep -q "^==> serving" "$log" || die "the run did not say where it serves"
if grep -n -E "^E[0-9]{4} |Traceback" "$log" >&2; then
    die "the run's output holds error-looking lines (above)"
fi
say "the log has no E0000 or Traceback lines"
say "passed"
