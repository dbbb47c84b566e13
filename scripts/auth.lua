-- An auth header taken from a response (wrk's auth example): the first response's
-- X-Token header, once seen, is sent with every later request.
local token = nil
local path  = "/authenticate"

request = function()
  return wrk.format("GET", path)
end

response = function(status, headers, body)
  if not token and status == 200 then
    token = headers["X-Token"]
    path  = "/resource"
    wrk.headers["X-Token"] = token
  end
end
