-- Plaintext keep-alive: GET /plaintext on persistent connections (TechEmpower-style).
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/plaintext"
done = common.done
