-- Accepted Cloud Sync writes. Each thread writes BENCH_DOCUMENTS documents of its own,
-- BENCH_SLUG<thread>-<n>, round-robin, each with the version the server expects next (its
-- stored version + 1; any version >= 1 on an empty document, so every run starts on fresh
-- slugs). There are many more documents than connections, so a document's write is answered
-- long before its next one is sent. Only "updated" answers count as accepted. The payload
-- starts with the document's number: an "out-of-sync" answer carries the stored payload and
-- version, and that document's next write follows the stored version.
--   BENCH_QUERY    id=<trustchain>&path=<path>, URL-encoded
--   BENCH_TOKEN    a member token for that trustchain and path
--   BENCH_PAYLOAD  the rest of the payload (base64 text; 8 digits come first)
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "common.lua")

bench.expect = '"updated"'

local documents = 1
local next_document = 1
local stored = {}
local paths = {}
local bodies = {}
local headers = {}

function init(args)
   documents = tonumber(os.getenv("BENCH_DOCUMENTS"))
   local prefix = "/atomic/v1/" .. os.getenv("BENCH_SLUG") .. thread_id .. "-"
   local query = "?" .. os.getenv("BENCH_QUERY") .. "&version="
   local payload = os.getenv("BENCH_PAYLOAD")
   for index = 1, documents do
      stored[index] = 0
      paths[index] = prefix .. index .. query
      bodies[index] = '{"payload": "' .. string.format("%08d", index) .. payload .. '"}'
   end
   headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
   headers["Content-Type"] = "application/json"
end

local function write(index)
   return wrk.format("POST", paths[index] .. (stored[index] + 1), headers, bodies[index])
end

function request()
   if bench.checking() then
      return write(1)
   end
   local index = next_document
   next_document = index % documents + 1
   local text = write(index)
   stored[index] = stored[index] + 1 -- as it will be once this write is accepted
   return text
end

function response(status, response_headers, body)
   if not bench.count(status, body) then
      local index = string.match(body, '"payload"%s*:%s*"(%d%d%d%d%d%d%d%d)')
      local version = string.match(body, '"version"%s*:%s*(%d+)')
      if index and version and stored[tonumber(index)] then
         stored[tonumber(index)] = tonumber(version)
      end
   end
end
