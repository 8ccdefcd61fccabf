-- Many connections: GET /plaintext over 1,000 active keep-alive connections (the runner
-- passes -c 1000 and raises RLIMIT_NOFILE).
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/plaintext"
done = common.done
