-- Sends the pre-signed webhooks that `webhook-bench` wrote (serve --requests-out, or sign).
--
--   wrk -t T -c C -d D --latency -s signed.lua http://127.0.0.1:PORT/event -- PREFIX
--
-- wrk thread k sends only the records of PREFIX.k, one slice per thread, so no webhook-id is
-- sent twice in a run. Each record is a raw HTTP request followed by "\n\n". A thread that
-- runs out starts its slice again; those requests would be answered from the replay window as
-- cheap duplicates, so done() reports them (`reused`) and the bench script rejects the run.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local threads = {}
local slices = 0

function setup(thread)
  thread:set("slice", slices)
  slices = slices + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1] .. "." .. slice
  local file = assert(io.open(path, "rb"))
  data = file:read("*a")
  file:close()
  position = 1
  reused = 0
  wrapped = false
end

function request()
  local stop = data:find("\n\n", position, true)
  if stop == nil then
    wrapped = true
    position = 1
    stop = data:find("\n\n", position, true)
  end
  if wrapped then
    reused = reused + 1
  end
  local record = data:sub(position, stop - 1)
  position = stop + 2
  return record
end

function done(summary, latency, requests)
  local reused = 0
  for _, thread in ipairs(threads) do
    reused = reused + thread:get("reused")
  end
  report(summary, latency, reused)
end
