"""CI: every Grafana dashboard query, run by a real Prometheus against a real ``textcls serve``.

Usage: python .ci/dashboard_live.py PROMETHEUS_BINARY. Trains a small model on the bundled
example, publishes it to an S3 bucket on moto's server (as a fleet serves its models, so the
store and cache panels have data; one more version is left without its completion marker, so
the skipped-versions panel has some), serves it on 127.0.0.1, sends known traffic (single and
batch requests, bad input, an unknown model, feedback), lets Prometheus scrape it every second,
then runs each query of deploy/grafana/textcls.json through Prometheus's HTTP API: each must
succeed and return data.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "textcls.json"
TEXTCLS = REPO / ".venv" / "bin" / "textcls"
TEXTS = ["my card was charged twice", "how do I reset my password", "where is my parcel", "hi"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, body: object | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            if "json" in response.headers.get("Content-Type", ""):
                return response.status, json.loads(payload)
            return response.status, payload.decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for(what: str, check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"FAIL: {what} within {timeout_s:.0f}s")
        time.sleep(0.5)


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def send_traffic(base: str, seconds: float) -> None:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        status, answer = call(base + "/classify", {"texts": TEXTS})
        assert status == 200, answer
        status, single = call(base + "/classify", {"text": TEXTS[n % len(TEXTS)]})
        assert status == 200, single
        if n % 5 == 0:
            call(base + "/classify", {"text": ""})  # invalid: a 4xx
            call(base + "/classify", {"text": "hello", "model": "no-such-model"})  # a 4xx
            label = single["predictions"][0]["label"]
            feedback = {"request_id": single["request_id"], "index": 0, "label": label}
            status, answer = call(base + "/feedback", feedback)
            assert status < 300, answer
        n += 1
        time.sleep(0.2)


def add_lifecycle(model_path: Path, env: dict[str, str]) -> None:
    """Version 2 (a copy of 1) as canary at 50% and as shadow, so the lifecycle panels have
    data: half the requests answered by each version, the stable half shadowed. Both versions
    are pushed to the store, and the labels set there, by the CLI; version 3 is one file with
    no completion marker yet (an upload in progress), which the service skips at every poll."""
    shutil.copytree(model_path / "1", model_path / ".tmp-2")
    meta_file = model_path / ".tmp-2" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["version"] = 2
    meta_file.write_text(json.dumps(meta))
    (model_path / ".tmp-2").rename(model_path / "2")
    store = env["TEXTCLS_MODEL_DIR"]
    for version in ("1", "2"):
        push = ["push", str(model_path / version), "--to", store]
        subprocess.run([TEXTCLS, "models", *push], env=env, check=True, stdout=subprocess.DEVNULL)
    metadata = (model_path / "2" / "metadata.json").read_bytes()
    unfinished = {"Key": "models/example/3/metadata.json", "Body": metadata}
    s3_client(env).put_object(Bucket="dashboard", **unfinished)
    for args in (
        ["label", "example", "stable", "1"],
        ["label", "example", "canary", "2"],
        ["traffic", "example", "--canary", "0.5"],
        ["label", "example", "shadow", "2"],
    ):
        subprocess.run([TEXTCLS, "models", *args], env=env, check=True, stdout=subprocess.DEVNULL)


def start_s3() -> dict[str, str]:
    """moto's S3 server in a thread of this process, with a ``dashboard`` bucket; the AWS
    variables that point a client at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise

    port = free_port()
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3_client(env).create_bucket(Bucket="dashboard")
    return env


def s3_client(env: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def check_queries(prometheus: str) -> list[str]:
    problems = []
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "30s").replace("$model", ".*")
            query = urllib.parse.urlencode({"query": expr})
            status, answer = call(f"{prometheus}/api/v1/query?{query}")
            name = f"{panel['title']} [{target['refId']}]"
            if status != 200 or answer.get("status") != "success":
                problems.append(f"{name}: {answer}")
                continue
            series = answer["data"]["result"]
            print(f"  {len(series):3} series  {name}")
            if not series:
                problems.append(f"{name}: no data for {expr}")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            family = variable["query"]["query"].split("(")[1].split(",")[0]
            label = variable["name"]
            match = urllib.parse.urlencode({"match[]": family})
            status, answer = call(f"{prometheus}/api/v1/label/{label}/values?{match}")
            if status != 200 or not answer.get("data"):
                problems.append(f"variable ${label}: no values of {label} on {family}")
    return problems


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def main() -> None:
    prometheus_bin = sys.argv[1]
    tmp = Path(tempfile.mkdtemp(prefix="textcls-dashboard-"))
    s3 = start_s3()
    env = dict(
        os.environ,
        TEXTCLS_DATABASE_URL=f"sqlite:///{tmp / 'log.db'}",
        TEXTCLS_LOG_SPILL_PATH=str(tmp / "spill.jsonl"),
        # The drift panels need a measured window within the traffic this script sends.
        TEXTCLS_DRIFT_MIN_TEXTS="20",
    )
    subprocess.run(
        [TEXTCLS, "train", "--epochs", "2", "--quiet", "--model-dir", str(tmp / "models")],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    env.update(s3, TEXTCLS_MODEL_DIR="s3://dashboard/models", TEXTCLS_CACHE_DIR=str(tmp / "cache"))
    add_lifecycle(tmp / "models" / "example", env)
    app_port, prom_port = free_port(), free_port()
    base, prometheus = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{prom_port}"
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: textcls, static_configs: [{{targets: ['127.0.0.1:{app_port}']}}]}}\n"
    )
    server_log, prom_log = open(tmp / "serve.log", "wb"), open(tmp / "prometheus.log", "wb")
    server = subprocess.Popen(
        [TEXTCLS, "serve", "--host", "127.0.0.1", "--port", str(app_port)],
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    prom = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=prom_log,
        stderr=subprocess.STDOUT,
    )
    problems: list[str] = []
    try:
        wait_for("textcls /readyz answered 200", lambda: call(base + "/readyz")[0] == 200, 300)
        wait_for("Prometheus became ready", lambda: call(prometheus + "/-/ready")[0] == 200, 60)
        send_traffic(base, seconds=12)
        time.sleep(3)  # two more scrapes after the last request
        problems = check_queries(prometheus)
    finally:
        server_exit, prom_exit = stop(server), stop(prom)
        server_log.close()
        prom_log.close()
        if problems or server_exit != 0:
            print((tmp / "serve.log").read_text()[-3000:], file=sys.stderr)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    if server_exit != 0:
        problems.append(f"textcls serve exited {server_exit} on SIGTERM")
    if problems:
        sys.exit("FAIL:\n  " + "\n  ".join(problems))
    print(f"ok: every dashboard query returned data (prometheus exited {prom_exit})")


if __name__ == "__main__":
    main()
