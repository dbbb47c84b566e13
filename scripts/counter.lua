-- A different path for every request: /1, /2, /3, ... (per thread; counters are per-thread
-- globals because each thread has its own Lua state). Random paths work the same way:
--   return wrk.format(nil, "/item/" .. math.random(1, 1000))
local counter = 1

function request()
  local path = "/" .. counter
  counter = counter + 1
  return wrk.format(nil, path)
end
