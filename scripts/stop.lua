-- Stop after N responses per thread (wrk's stop example): thread:stop() ends this thread's
-- connections; other threads go on until the duration is up or they stop too.
--   loadgen -t2 -c4 -d10s -R1000 -s scripts/stop.lua http://127.0.0.1:8080/ -- 100
local limit = 100
local seen = 0

function init(args)
  limit = tonumber(args[1]) or limit
end

function response(status, headers, body)
  seen = seen + 1
  if seen >= limit then
    wrk.thread:stop()
  end
end
