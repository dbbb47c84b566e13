-- Random think time between a response and the next request on the same connection
-- (wrk's delay example), in milliseconds. Think time is never counted as latency: with -R,
-- a request is intended no earlier than the end of its connection's think time.
function delay()
  return math.random(10, 50)
end
