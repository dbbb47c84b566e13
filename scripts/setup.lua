-- Per-thread state (wrk's setup example): setup() numbers the threads with thread:set, each
-- thread counts its requests and responses in its own globals, done() reads them with
-- thread:get and prints one line per thread.
local counter = 1
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  requests  = 0
  responses = 0
end

function request()
  requests = requests + 1
  return wrk.request()
end

function response(status, headers, body)
  responses = responses + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local msg = "thread %d made %d requests and got %d responses"
    print(msg:format(thread:get("id"), thread:get("requests"), thread:get("responses")))
  end
end
