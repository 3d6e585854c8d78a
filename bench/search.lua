-- wrk script for the public search benchmark (bench/search_load.py).
--
-- Usage: wrk -t1 -cN -dSs -s bench/search.lua URL -- BODIES [DELAY_MS]
--   BODIES    a file of JSON request bodies, one a line, cycled through in order
--   DELAY_MS  optional mean pause per connection between a response and its next
--             request (uniformly drawn from 0..2*DELAY_MS), to throttle the total rate
-- At the end it prints one line "SEARCH_JSON {...}" with the request count, the
-- duration, errors and the latency (microseconds) at every whole percentile 0..100.

local requests_list = {}
local count = 0
local position = 0
local mean_delay = 0

function init(args)
   local path = args[1]
   mean_delay = tonumber(args[2] or "0") or 0
   local headers = {
      ["Content-Type"] = "application/json",
      ["Accept-Language"] = "en",
   }
   local handle = assert(io.open(path, "r"))
   for line in handle:lines() do
      if #line > 0 then
         count = count + 1
         requests_list[count] = wrk.format("POST", nil, headers, line)
      end
   end
   handle:close()
   assert(count > 0, "no request bodies in " .. path)
   math.randomseed(2017)
end

function request()
   position = position % count + 1
   return requests_list[position]
end

if tonumber(os.getenv("SEARCH_LUA_THROTTLED") or "0") == 1 then
   function delay()
      return math.random(0, 2 * mean_delay)
   end
end

function done(summary, latency, requests)
   local parts = {}
   for p = 0, 100 do
      parts[#parts + 1] = string.format("%d", latency:percentile(p))
   end
   io.write(string.format(
      'SEARCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_mean_us": %.1f, "latency_max_us": %d, "percentiles_us": [%s]}\n',
      summary.requests, summary.duration, summary.bytes,
      summary.errors.connect, summary.errors.read, summary.errors.write,
      summary.errors.status, summary.errors.timeout,
      latency.mean, latency.max, table.concat(parts, ", ")))
end
