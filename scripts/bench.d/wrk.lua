-- wrk script for scripts/bench: method and headers from the environment, and a
-- machine-readable summary line (WRKJSON {...}) at the end.
--   WRK_METHOD  GET (default) or HEAD
--   WRK_AUTH    full Authorization header value ("Basic ...", "Bearer ...") or empty
--   WRK_ACCEPT  Accept header value (optional)
wrk.method = os.getenv("WRK_METHOD") or "GET"
local auth = os.getenv("WRK_AUTH")
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
local accept = os.getenv("WRK_ACCEPT")
if accept ~= nil and accept ~= "" then wrk.headers["Accept"] = accept end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"err_status":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
