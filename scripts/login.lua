-- Login flow: every connection logs in once with a POST, takes the token from the JSON
-- response, then sends authenticated requests. Per-connection state lives in
-- wrk.connection (a loadgen addition: a table per connection, kept across reconnects), so
-- no request is ever sent without a token: until the token exists, the request IS the login.
-- A 401 (token expired or revoked) drops the token and the connection logs in again.
--
--   loadgen serve --auth &
--   loadgen -t2 -c20 -d10s -R2000 -s scripts/login.lua http://127.0.0.1:8080/ -- user secret
--
-- With a cookie-based server, take the token from headers["Set-Cookie"] instead and send
-- { Cookie = "session=" .. token }.

local login

function init(args)
  local user, password = args[1] or "demo", args[2] or "demo"
  login = wrk.format("POST", "/login", { ["Content-Type"] = "application/json" },
                     wrk.json.encode({ user = user, password = password }))
end

function request()
  local c = wrk.connection
  if c.request then
    return c.request
  end
  c.logging_in = true
  return login
end

function response(status, headers, body)
  local c = wrk.connection
  if c.logging_in then
    c.logging_in = false
    if status == 200 then
      local token = wrk.json.decode(body).token
      -- Built once per connection, so every later request() returns the same string.
      local headers = { Authorization = "Bearer " .. token }
      for k, v in pairs(wrk.headers) do headers[k] = v end
      c.request = wrk.format(nil, nil, headers)
    end
  elseif status == 401 then
    c.request = nil
  end
end
