-- wrk script: POSTs JSON bodies read from a file (one per line, in turn), counts non-2xx
-- responses, and prints exact latency percentiles as one JSON line when the run ends.
-- usage: wrk ... -s post_bodies.lua <url> -- <bodies file> <path>
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  requests_made = {}
  local path = args[2] or "/"
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(args[1]) do
    if #line > 0 then
      table.insert(requests_made, wrk.format("POST", path, headers, line))
    end
  end
  if #requests_made == 0 then
    error("no request bodies in " .. tostring(args[1]))
  end
  next_index = 0
end

function request()
  next_index = next_index % #requests_made + 1
  return requests_made[next_index]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

local function finite(x)
  if x ~= x or x == math.huge or x == -math.huge then return 0 end
  return x
end

function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (t:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"status_errors":%d,' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,' ..
    '"p50":%d,"p90":%d,"p95":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes, n,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.min, finite(latency.mean), latency.max, finite(latency.stdev),
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(95.0),
    latency:percentile(99.0), latency:percentile(99.9)))
end
