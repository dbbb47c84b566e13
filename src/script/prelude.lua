-- loadgen's Lua prelude: the Lua half of the `wrk` table. Written for loadgen from wrk's
-- documented behaviour; loaded into every Lua state before the user's script.

local default_port = { http = "80", https = "443" }

-- True when `headers` has a key equal to `name`, ignoring case.
local function has(headers, name)
  for k in pairs(headers) do
    if type(k) == "string" and k:lower() == name then return true end
  end
  return false
end

-- The Host header value: host (bracketed if IPv6), plus the port when not the default.
local function authority()
  local h = wrk.host
  if h:find(":", 1, true) then h = "[" .. h .. "]" end
  if wrk.port and wrk.port ~= default_port[wrk.scheme] then h = h .. ":" .. wrk.port end
  return h
end

-- wrk.format(method, path, headers, body): one raw HTTP/1.1 request. Arguments left nil are
-- taken from the wrk table; Host is added when missing, Content-Length when there is a body.
function wrk.format(method, path, headers, body)
  method = method or wrk.method
  path = path or wrk.path
  headers = headers or wrk.headers
  body = body or wrk.body
  local out = { method .. " " .. path .. " HTTP/1.1" }
  if not has(headers, "host") then out[#out + 1] = "Host: " .. authority() end
  for k, v in pairs(headers) do out[#out + 1] = k .. ": " .. tostring(v) end
  if body and not has(headers, "content-length") then
    out[#out + 1] = "Content-Length: " .. #body
  end
  out[#out + 1] = ""
  out[#out + 1] = body or ""
  return table.concat(out, "\r\n")
end
