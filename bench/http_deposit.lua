-- wrk script: each request deposits 1 into one of 10,000 accounts (acct-0 .. acct-9999)
-- through POST /commands/account/{id}; wrk counts non-2xx answers ("Non-2xx").
-- Used by bench/http_bench.sh.
local accounts = tonumber(os.getenv("ACCOUNTS") or "10000")
local body = '{"type":"deposit","data":{"amount":1}}'
local headers = { ["Content-Type"] = "application/json" }
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  math.randomseed(7 + id)
end

function request()
  local path = "/commands/account/acct-" .. math.random(0, accounts - 1)
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("durable commands/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50 %.2f ms  p99 %.2f ms  p999 %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
  io.write(string.format("errors: %d  (non-2xx answers: %d)\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout +
    summary.errors.status, summary.errors.status))
end
