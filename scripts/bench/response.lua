-- Benchmark script: a response() hook that reads one header, so the cost measured is
-- handing every response's headers and body to Lua.
local seen = 0

function response(status, headers, body)
  if headers["Content-Type"] or headers["content-type"] then
    seen = seen + 1
  end
end
