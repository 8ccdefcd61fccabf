-- Shared by every Squall wrk scenario: emits the run's results from done() as ONE line
-- of JSON prefixed with "SQUALL_RESULT " on stdout, so that load/run.py never parses
-- wrk's human-readable text. Times are in microseconds, as wrk measures them.
--
-- A scenario loads it with:
--   local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
--   done = common.done
local M = {}

local function num(x)
  if x == nil or x ~= x or x == math.huge or x == -math.huge then return 0 end
  return x
end

function M.done(summary, latency, requests)
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
                  e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
                  '"p50":%d,"p90":%d,"p99":%d,"p99.9":%d}',
                  num(latency.min), num(latency.mean), num(latency.stdev), num(latency.max),
                  latency:percentile(50.0), latency:percentile(90.0),
                  latency:percentile(99.0), latency:percentile(99.9)),
    string.format('"scenario":"%s"', os.getenv("SQUALL_SCENARIO") or ""),
  }
  io.write("SQUALL_RESULT {" .. table.concat(parts, ",") .. "}\n")
  io.flush()
end

return M
