-- A done() report printed as one JSON document: request and error counts, and latency
-- percentiles in microseconds (corrected for coordinated omission when -R is given).
function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({ 50, 90, 99, 99.9 }) do
    p[tostring(q)] = latency:percentile(q)
  end
  local errors = 0
  for _, n in pairs(summary.errors) do errors = errors + n end
  io.write(wrk.json.encode({
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = errors,
    latency_us = { min = latency.min, max = latency.max, mean = latency.mean,
                   stdev = latency.stdev, percentiles = p },
    requests_per_sec = { mean = requests.mean, max = requests.max },
  }), "\n")
end
