-- Pipelined plaintext: 16 GET /plaintext requests written back to back per round trip
-- (HTTP/1.1 pipelining, RFC 9112 §9.3.2). Depth from SQUALL_PIPELINE (default 16).
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
local depth = tonumber(os.getenv("SQUALL_PIPELINE") or "16")
local batch
init = function(args)
  local reqs = {}
  for i = 1, depth do reqs[i] = wrk.format("GET", "/plaintext") end
  batch = table.concat(reqs)
end
request = function() return batch end
done = common.done
