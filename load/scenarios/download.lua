-- Large download: GET /bytes/1048576 (SQUALL_DOWNLOAD_BYTES to change), Content-Length framed.
local common = dofile((os.getenv("SQUALL_LUA_DIR") or "load/scenarios") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/bytes/" .. (os.getenv("SQUALL_DOWNLOAD_BYTES") or "1048576")
done = common.done
