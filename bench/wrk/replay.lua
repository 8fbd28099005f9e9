-- Prepared requests, a list per thread (per server): BENCH_REQUESTS/<thread>.txt, one a line,
--   METHOD <tab> PATH <tab> BEARER TOKEN or - <tab> JSON BODY or -
-- handed out in order to whichever connection is ready. With BENCH_CYCLE=1 the list is
-- replayed in a loop (reads); otherwise each line is sent once (single-use challenges, blocks
-- that chain on one sent long before), and a thread that runs out stops (reported as
-- exhausted: the benchmark prepared too few).
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "common.lua")

local prepared = {}
local position = 1
local cycle = os.getenv("BENCH_CYCLE") == "1"

function init(args)
   local file = assert(io.open(os.getenv("BENCH_REQUESTS") .. "/" .. thread_id .. ".txt"))
   for line in file:lines() do
      local method, path, token, body = string.match(line, "^([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)$")
      local headers = {}
      if token ~= "-" then
         headers["Authorization"] = "Bearer " .. token
      end
      if body == "-" then
         body = nil
      else
         headers["Content-Type"] = "application/json"
      end
      prepared[#prepared + 1] = wrk.format(method, path, headers, body)
   end
   file:close()
end

function request()
   if bench.checking() then
      return prepared[1]
   end
   if position > #prepared then
      if cycle then
         position = 1
      else
         bench.exhaust()
         return prepared[#prepared]
      end
   end
   position = position + 1
   return prepared[position - 1]
end

function response(status, headers, body)
   bench.count(status, body)
end
