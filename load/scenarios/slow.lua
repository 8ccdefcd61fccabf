-- Async slow endpoint: GET /slow/N (SQUALL_SLOW_MS, default 50) under concurrency. An
-- asynchronous server answers every waiting request after ~N ms, so p50 should be close
-- to N and throughput close to connections * 1000 / N; a server that blocks shows it.
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/slow/" .. (os.getenv("SQUALL_SLOW_MS") or "50")
done = common.done
