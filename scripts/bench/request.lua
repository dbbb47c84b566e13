-- Benchmark script: a request() hook that returns the prebuilt request, so the only cost
-- measured is calling into Lua once per request.
function request()
  return wrk.request()
end
