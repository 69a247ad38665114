-- wrk script: POST hook requests in turn, each with the next pre-signed JWT (a jti is accepted
-- once), and print one JSON line of results. Run with one thread (-t1): the token list is not
-- shared between threads.
--   wrk -t1 -c16 -d10s -s wrk.lua URL -- TOKENS_FILE BODY_FILE [BODY_FILE ...]
-- TOKENS_FILE may be "-" for no Authorization header; with no BODY_FILE it sends GETs.
local bodies, tokens, sent = {}, {}, 0

function init(args)
  if args[1] ~= "-" then
    for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  end
  for i = 2, #args do
    local file = assert(io.open(args[i], "rb"))
    bodies[#bodies + 1] = file:read("*a")
    file:close()
  end
end

function request()
  sent = sent + 1
  local headers = {}
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[((sent - 1) % #tokens) + 1]
  end
  if #bodies == 0 then
    return wrk.format("GET", nil, headers)
  end
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, headers, bodies[((sent - 1) % #bodies) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
