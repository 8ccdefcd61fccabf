-- Chunked streaming response: GET /stream/N, N chunks flushed one by one
-- (SQUALL_STREAM_CHUNKS, default 10).
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/stream/" .. (os.getenv("SQUALL_STREAM_CHUNKS") or "10")
done = common.done
