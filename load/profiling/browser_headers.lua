-- Ten fields a browser sends with a page request (for load/profiling/callgrind_requests.sh:
-- the cost of a realistic head; wrk alone sends only Host).
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
wrk.headers["Accept-Language"] = "en-US,en;q=0.5"
wrk.headers["Accept-Encoding"] = "identity"
wrk.headers["Connection"] = "keep-alive"
wrk.headers["Cookie"] = "session=0123456789abcdef; theme=dark"
wrk.headers["Upgrade-Insecure-Requests"] = "1"
wrk.headers["Sec-Fetch-Dest"] = "document"
wrk.headers["Sec-Fetch-Mode"] = "navigate"
wrk.headers["Cache-Control"] = "max-age=0"
