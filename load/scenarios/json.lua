-- JSON: GET /json on persistent connections.
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/json"
done = common.done
