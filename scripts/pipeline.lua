-- HTTP pipelining (wrk's pipeline example): request() returns three requests back to back;
-- they are written together and each of the three responses is counted and timed.
init = function(args)
  local r = {}
  r[1] = wrk.format(nil, "/?foo")
  r[2] = wrk.format(nil, "/?bar")
  r[3] = wrk.format(nil, "/?baz")
  req = table.concat(r)
end

request = function()
  return req
end
