-- Shared by the benchmark's wrk scripts (loaded with dofile by each of them).
--
-- wrk runs one thread per server (-t1 -c64 for one server, as the issue measured; -t2 -c64 for
-- two, 32 connections each). A thread's Lua state serves all its connections, in whatever order
-- they become ready: request() hands out the next prepared request as it is called, and
-- response() only counts. wrk calls request() once more, on thread 0, before it starts (to
-- check the script's request): thread 0's first call therefore hands out without advancing.
--
-- Configuration comes from environment variables, which setup() (the main Lua state) can read
-- too, unlike the script's arguments:
--   BENCH_TARGETS   comma-separated host:port of the servers; thread i talks to server i mod n
--   BENCH_STATUS    the status of an accepted answer (default 200)
--   BENCH_EXPECT    ... and text its body contains (empty: any body)
-- done() prints one line, "BENCH-JSON {...}", for bench/harness.py.

accepted = 0
rejected = 0
exhausted = 0
rejection = ""
thread_id = 0

local threads = {}
local targets = nil
local checked = false

local function split(text, separator)
   local items = {}
   for item in string.gmatch(text or "", "[^" .. separator .. "]+") do
      items[#items + 1] = item
   end
   return items
end

bench = {
   expect = os.getenv("BENCH_EXPECT") or "",
   status = tonumber(os.getenv("BENCH_STATUS") or "200"),
}

function setup(thread)
   if targets == nil then
      targets = {}
      for _, target in ipairs(split(os.getenv("BENCH_TARGETS"), ",")) do
         local host, port = string.match(target, "^(.*):(%d+)$")
         targets[#targets + 1] = wrk.lookup(host, port)[1]
      end
   end
   thread:set("thread_id", #threads)
   if #targets > 0 then
      thread.addr = targets[(#threads % #targets) + 1]
   end
   threads[#threads + 1] = thread
end

-- Whether this request() call is wrk's check of the script (thread 0's first call).
function bench.checking()
   if thread_id == 0 and not checked then
      checked = true
      return true
   end
   return false
end

-- Counts one answer; returns whether it was accepted.
function bench.count(status, body)
   if status == bench.status and (bench.expect == "" or string.find(body, bench.expect, 1, true)) then
      accepted = accepted + 1
      return true
   end
   rejected = rejected + 1
   if rejection == "" then
      rejection = status .. " " .. string.sub(body, 1, 160)
   end
   return false
end

-- The thread sent everything it was given: it stops, and the run reports it.
function bench.exhaust()
   exhausted = 1
   wrk.thread:stop()
end

local function json_text(text)
   return '"' .. string.gsub(text, '[%c"\\]', "?") .. '"'
end

function done(summary, latency, requests)
   local totals = { accepted = 0, rejected = 0, exhausted = 0 }
   local sample = ""
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + thread:get(name)
      end
      if sample == "" then
         sample = thread:get("rejection")
      end
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH-JSON {"duration_us": %d, "requests": %d, "accepted": %d, "rejected": %d, '
         .. '"exhausted_threads": %d, "socket_errors": %d, "timeouts": %d, '
         .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "rejection": %s}\n',
      summary.duration, summary.requests, totals.accepted, totals.rejected, totals.exhausted,
      errors.connect + errors.read + errors.write, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      json_text(sample)
   ))
end
