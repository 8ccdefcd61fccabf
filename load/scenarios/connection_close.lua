-- A new connection per request: GET /plaintext with "Connection: close"; wrk reconnects
-- after each response, so this measures accept + first request + close.
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/plaintext"
wrk.headers["Connection"] = "close"
done = common.done
