-- POST echo: a 4 KiB body to / which the server echoes back (SQUALL_BODY_BYTES to change).
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
local size = tonumber(os.getenv("SQUALL_BODY_BYTES") or "4096")
wrk.method = "POST"
wrk.path = "/"
wrk.body = string.rep("squall-load-body", math.ceil(size / 16)):sub(1, size)
wrk.headers["Content-Type"] = "application/octet-stream"
done = common.done
