"""The harness's wrk parsing, Lua script, aggregation, ratios and targets, and the limit row."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bench import loadgen, rows, service_metrics, texts
from bench.limit import SignatureRunner
from bench.loadgen import LoadgenError, LoadResult, WrkSummary, parse_wrk_output
from bench.report import add_ratios, evaluate_targets, markdown
from bench.rows import RowResult, RowSpec
from training.artifact import read_metadata

# What wrk prints with our Lua script: its own text, then the done() hook's JSON line.
CANNED_WRK = """Running 5s test @ http://127.0.0.1:8000
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    20.52ms    4.10ms  61.20ms   88.12%
  Latency Distribution
     50%   19.80ms
     99%   40.11ms
  15600 requests in 5.00s, 7.10MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   3119.87
Transfer/sec:      1.42MB
BENCH_WRK_JSON {"requests":15600,"duration_us":5000120,"bytes":7444000,"non_2xx":3,\
"connect_errors":0,"read_errors":1,"write_errors":0,"timeouts":2,"status_errors":3,\
"latency_us":{"min":812,"mean":20520.3,"max":61200,"stdev":4100.2,"p50":19800,"p90":25000,\
"p95":30000,"p99":40110,"p999":60000}}
"""


def test_parse_wrk_output_reads_the_lua_summary() -> None:
    s = parse_wrk_output(CANNED_WRK)
    assert s.requests == 15600
    assert s.duration_us == 5000120
    assert s.latency_us["p99"] == 40110
    assert s.non_2xx == 3
    assert s.errors == 3 + 1 + 2  # non-2xx + read errors + timeouts
    assert s.ok_requests == 15597


def test_parse_wrk_output_without_summary_says_so() -> None:
    with pytest.raises(LoadgenError, match="no summary"):
        parse_wrk_output(CANNED_WRK.split("BENCH_WRK_JSON")[0])
    with pytest.raises(LoadgenError, match="unreadable"):
        parse_wrk_output('BENCH_WRK_JSON {"requests": 1}\n')


def test_wrk_command_is_one_thread_with_the_lua_script() -> None:
    argv = loadgen.wrk_command("wrk", "http://127.0.0.1:9/classify", Path("b.jsonl"), 64, 2.4, 30)
    assert argv[argv.index("--threads") + 1] == "1"
    assert argv[argv.index("--connections") + 1] == "64"
    assert argv[argv.index("--duration") + 1] == "2s"
    assert "--latency" in argv
    assert argv[-4:] == ["http://127.0.0.1:9", "--", "b.jsonl", "/classify"]


def _load(rps: float, p99_ms: float, errors: int = 0, texts_per_request: int = 1) -> LoadResult:
    duration_us = 10_000_000
    requests = int(rps * 10) + errors
    latency = {"min": 1, "mean": 1, "max": 1, "stdev": 0, "p50": 1000, "p90": 2000,
               "p95": 3000, "p99": p99_ms * 1000, "p999": 1}  # fmt: skip
    summary = WrkSummary(requests, duration_us, 0, errors, 0, 0, 0, 0, errors, latency)
    return LoadResult(64, texts_per_request, 10.0, summary, 1.0, 5.0, 18.0)


def test_aggregate_http_takes_medians_and_sums_errors() -> None:
    spec = RowSpec("r", "r", "http", rows.TEXTCLS, 64)
    row = rows.aggregate_http(spec, [_load(100, 30), _load(300, 10, errors=2), _load(200, 20)])
    assert row.requests_per_s == pytest.approx(200)
    assert (row.texts_per_s_min, row.texts_per_s_max) == (pytest.approx(100), pytest.approx(300))
    assert row.p99_ms == pytest.approx(20)
    assert row.errors == 2
    assert row.client_cpu == pytest.approx(0.1)
    assert row.server_cpu == pytest.approx(0.5)
    assert row.other_cpu == pytest.approx(1.2)  # (18 - 1 - 5) / 10
    assert row.cpu_ms_per_text == pytest.approx(1000 * 5.0 / 2000)  # median run: 2000 texts


def _row(key: str, server: str | None, tps: float, p99: float = 10.0, errors: int = 0,
         tpr: int = 1, kind: str = "http") -> RowResult:  # fmt: skip
    return RowResult(key, key, kind, server, 64, tpr, 1, tps / tpr, tps, tps, tps, 1.0, 2.0, p99,
                     errors, 100, 0.1, 0.5, 0.0, 0.4)  # fmt: skip


def _rows(main_tps: float, p99: float, errors: int = 0) -> dict[str, RowResult]:
    found = [
        _row(rows.LIMIT_256, None, 10_000, kind="limit"),
        _row(rows.CEILING, rows.NOOP, 2000),
        _row(rows.BASELINE_B, rows.SIGNATURE, 250),
        _row(rows.TEXTCLS_64, rows.TEXTCLS, main_tps, p99, errors),
        _row(rows.TEXTCLS_BATCH, rows.TEXTCLS, 7500, tpr=32),
        _row(rows.TEXTCLS_PG_64, rows.TEXTCLS_PG, 0.85 * 1250),
        _row(rows.TEXTCLS_NOLOG_64, rows.TEXTCLS_NOLOG, 1250),
    ]
    by_key = {r.key: r for r in found}
    add_ratios(by_key)
    return by_key


def test_ratios_are_texts_per_second_against_the_reference_rows() -> None:
    r = _rows(main_tps=1200, p99=40)
    main = r[rows.TEXTCLS_64].ratios
    assert main["vs_http_ceiling"] == pytest.approx(0.6)
    assert main["vs_baseline_b"] == pytest.approx(4.8)
    assert main["vs_limit_b256"] == pytest.approx(0.12)
    assert main["log_on_vs_off"] == pytest.approx(0.96)
    # a 32-text row is not compared with a 1-text ceiling; limit rows have no HTTP ratios
    assert "vs_http_ceiling" not in r[rows.TEXTCLS_BATCH].ratios
    assert r[rows.TEXTCLS_BATCH].ratios["vs_limit_b256"] == pytest.approx(0.75)
    assert set(r[rows.LIMIT_256].ratios) == {"vs_limit_b256", "vs_limit_b256_per_cpu"}


def test_per_cpu_ratios_compare_cpu_cost_per_text() -> None:
    r = _rows(main_tps=1200, p99=40)
    r[rows.TEXTCLS_64].cpu_ms_per_text = 0.8
    r[rows.CEILING].cpu_ms_per_text = 0.2
    add_ratios(r)
    # textcls needs 4x the ceiling's CPU per text: a quarter of its texts per CPU-second
    assert r[rows.TEXTCLS_64].ratios["vs_http_ceiling_per_cpu"] == pytest.approx(0.25)
    assert r[rows.TEXTCLS_64].ratios["vs_baseline_b_per_cpu"] == pytest.approx(0.5)


def test_targets_met_and_missed() -> None:
    met = {t.name: t.met for t in evaluate_targets(_rows(main_tps=1200, p99=40))}
    assert met == {
        "1 text, 64 conn: share of the HTTP ceiling": True,
        "1 text, 64 conn: times baseline B": True,
        "1 text, 64 conn: p99 latency (ms)": True,
        "32 texts/request, 16 conn: share of the limit at batch 256": True,
        "log on (SQLite) vs off": True,
        "log on (PostgreSQL) vs off": False,  # 0.85 of off
        "errors in every textcls row": True,
    }
    missed = {t.name: t.met for t in evaluate_targets(_rows(main_tps=900, p99=51, errors=1))}
    assert missed["1 text, 64 conn: share of the HTTP ceiling"] is False
    assert missed["1 text, 64 conn: times baseline B"] is False
    assert missed["1 text, 64 conn: p99 latency (ms)"] is False
    assert missed["errors in every textcls row"] is False


def test_targets_without_their_rows_are_not_measured() -> None:
    only = {rows.CEILING: _row(rows.CEILING, rows.NOOP, 2000)}
    add_ratios(only)
    targets = evaluate_targets(only)
    assert all(t.met is None for t in targets)


def test_markdown_lists_rows_targets_and_servers() -> None:
    r = _rows(main_tps=1200, p99=40)
    run = {
        "started_at": "2026-01-01T00:00:00+00:00",
        "plan": {"quick": True, "reps": 1, "duration_s": 4.0},
        "model": {"name": "m", "version": 1, "labels": 3, "arch": "cnn"},
        "machine": {"cpus": 2, "loadavg_start": "1.00 1.00 1.00"},
        "servers": [{"title": "textcls", "cold_start_s": 3.2, "rss_bytes": 300 * 2**20}],
    }
    text = markdown(run, list(r.values()), evaluate_targets(r))
    assert f"| {rows.TEXTCLS_64} | 1,200 | 1,200 |" in text
    assert "| log on (PostgreSQL) vs off | 0.85 | >= 0.90 | **missed** | 1.00 |" in text
    assert "| textcls | 3.2 | 300 |" in text


def test_bodies_are_distinct_texts() -> None:
    sample = [f"text {i}" for i in range(70)]
    batches = texts.batch_bodies(sample, 32)
    assert [len(b["texts"]) for b in batches] == [32, 32]  # type: ignore[arg-type]
    assert batches[1]["texts"][0] == "text 32"  # type: ignore[index]
    assert texts.single_bodies(sample[:2]) == [{"text": "text 0"}, {"text": "text 1"}]
    assert [len(b) for b in texts.text_batches(sample, 32)] == [32, 32]


class _Handler(BaseHTTPRequestHandler):
    """200 for a JSON body with "text", 422 otherwise: enough to exercise the Lua hooks."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = "text" in json.loads(body)
        self.send_response(200 if ok else 422)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def toy_url() -> Iterator[str]:
    """The /classify URL of a toy HTTP/1.1 server (_Handler) running in this process."""
    _Handler.protocol_version = "HTTP/1.1"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/classify"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_real_wrk_run_counts_non_2xx_through_the_lua_script(tmp_path: Path, toy_url: str) -> None:
    bodies = loadgen.write_bodies(tmp_path / "b.jsonl", [{"text": "a"}, {"nope": "b"}])
    result = loadgen.run_wrk(toy_url, bodies, 2, 1.0, 1, server_pid=None)
    s = result.wrk
    assert s.requests > 10
    # bodies alternate per connection: about half the answers are 422
    assert 0.3 * s.requests <= s.non_2xx <= 0.7 * s.requests
    assert s.latency_us["p50"] <= s.latency_us["p99"]
    assert result.client_cpu_s > 0
    assert result.requests_per_s == pytest.approx(s.ok_requests / (s.duration_us / 1e6))


def test_limit_row_on_a_tiny_model(tiny_model_repo: Path) -> None:
    version_dir = tiny_model_repo / "example" / "1"
    labels = read_metadata(version_dir).labels
    runner = SignatureRunner(version_dir)
    sample = ["where is my card", "refund please", "how do I top up", "reset my password"]
    probs = runner.predict(sample)
    assert probs.shape == (4, len(labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
    result = runner.measure(sample, batch_size=4, seconds=0.5)
    assert result.calls >= 3
    assert result.texts == 4 * result.calls
    assert result.wall_s >= 0.5
    assert result.texts_per_s == pytest.approx(result.texts / result.wall_s)
    assert 0 < result.call_p50_ms <= result.call_p99_ms
    row = rows.aggregate_limit(rows.limit_row(4), [result])
    assert row.texts_per_s == pytest.approx(result.texts_per_s)
    assert row.texts_per_request == 4


METRICS_BEFORE = """# HELP textcls_inference_batch_size Texts in each model call.
textcls_inference_batch_size_count{model="m"} 10.0
textcls_inference_batch_size_sum{model="m"} 80.0
textcls_inference_duration_seconds_count{model="m",version="1"} 10.0
textcls_inference_duration_seconds_sum{model="m",version="1"} 0.05
process_cpu_seconds_total 3.0
"""
METRICS_AFTER = """textcls_inference_batch_size_count{model="m"} 110.0
textcls_inference_batch_size_sum{model="m"} 3280.0
textcls_inference_duration_seconds_count{model="m",version="1"} 60.0
textcls_inference_duration_seconds_count{model="m",version="2"} 50.0
textcls_inference_duration_seconds_sum{model="m",version="1"} 0.45
textcls_inference_duration_seconds_sum{model="m",version="2"} 0.6
"""


def test_service_metrics_window_means() -> None:
    before = service_metrics.parse_totals(METRICS_BEFORE)
    after = service_metrics.parse_totals(METRICS_AFTER)
    assert "process_cpu_seconds_total" not in before
    stats = service_metrics.window_stats(before, after, wall_s=10.0)
    assert stats["mean_batch_texts"] == pytest.approx(32.0)  # 3200 texts / 100 calls
    assert stats["mean_model_call_ms"] == pytest.approx(10.0)  # 1.0 s / 100 calls
    assert stats["model_calls_per_s"] == pytest.approx(10.0)
    assert "mean_queue_wait_ms" not in stats  # no such histogram scraped


def test_request_cost_sends_each_route_as_bench_protocols_does() -> None:
    from bench.request_cost import requests_for

    (classify,) = requests_for("classify", ["hello"])
    assert classify[0] == "/classify" and json.loads(classify[1]) == {"text": "hello"}
    (v2_json,) = requests_for("v2_json", ["hello"])
    assert v2_json[0].startswith("/v2/models/") and v2_json[0].endswith("/infer")
    assert json.loads(v2_json[1])["inputs"][0]["data"] == ["hello"]
    (path, body, headers) = requests_for("v2_binary", ["hello"])[0]
    n = int(headers["inference-header-content-length"])
    assert headers["content-type"] == "application/octet-stream"
    assert body[n:] == len(b"hello").to_bytes(4, "little") + b"hello"


def test_grpc_micro_measures_a_server_per_variant(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import grpc_micro

    args = ["http", "aio_uvloop", "sync_bridge8", "--reps", "1", "--duration", "0.3"]
    assert grpc_micro.main([*args, "--warmup", "0.1", "--concurrency", "4"]) == 0
    table = capsys.readouterr().out.split("| variant |", 1)[1]
    for variant in ("http", "aio_uvloop", "sync_bridge8"):
        assert f"| {variant} | " in table


def test_h2load_rows_speak_each_protocol(tmp_path: Path) -> None:
    from bench.protocols_h2load import row_args

    grpc_args = row_args("grpc", "http://127.0.0.1:1", 2, tmp_path)
    assert "--h1" not in grpc_args and grpc_args[-1].endswith("/ModelInfer")
    framed = (tmp_path / "grpc.bin").read_bytes()
    assert framed[0] == 0 and int.from_bytes(framed[1:5], "big") == len(framed) - 5
    for row, path in (("classify", "/classify"), ("v2_rest_binary", "/infer")):
        args = row_args(row, "http://127.0.0.1:1", 2, tmp_path)
        assert "--h1" in args and args[-1].endswith(path)


@dataclass(frozen=True)
class _Target:
    classify_url: str
    pid: int


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_rounds_warm_each_server_then_rotate_the_order(tmp_path: Path, toy_url: str) -> None:
    bodies = loadgen.write_bodies(tmp_path / "b.jsonl", [{"text": "a"}])
    targets = {name: _Target(toy_url, os.getpid()) for name in ("a", "b")}
    runs = list(loadgen.run_rounds(targets, bodies, loadgen.Rounds(2, 0.3, 0.3, 2)))
    assert [(rep, name) for rep, name, _ in runs] == [
        (0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "b"), (2, "a"),
    ]  # fmt: skip
    assert all(r.wrk.ok_requests > 0 and r.wrk.errors == 0 for _, _, r in runs)
    measured = [r for rep, _, r in runs if rep]
    assert all(r.server_cpu_s > 0 for r in measured)  # charged to this process
    assert measured[0].server_cpu_ms_per_request == pytest.approx(
        1000 * measured[0].server_cpu_s / measured[0].wrk.ok_requests
    )
