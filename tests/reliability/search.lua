-- wrk script for tests/reliability/load.sh: POST /api/search with the sound in
-- EAR_LOAD_BODY (raw body), counting the answers' statuses per thread.
local path = os.getenv("EAR_LOAD_BODY")
local file = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "audio/webm"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

statuses = {}
function response(status, headers, response_body)
  statuses[status] = (statuses[status] or 0) + 1
end

-- One line per status ("status 200 1234"), then the latency percentiles in ms.
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d %d\n", status, count))
  end
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("errors connect %d read %d write %d timeout %d status %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
  io.write(string.format("latency_ms p50 %.1f p90 %.1f p99 %.1f max %.1f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
