-- signed.lua with a pause before each request, for a load below saturation:
--
--   wrk -t T -c C -d D --latency -s paced.lua http://127.0.0.1:PORT/event -- PREFIX PAUSE_MS
--
-- Each connection waits PAUSE_MS between a response and its next request, so the offered rate
-- is about C / (PAUSE_MS + latency). wrk has no fixed-rate mode; the achieved rate is reported.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "signed.lua")

local load_slice = init

function init(args)
  load_slice(args)
  pause = tonumber(args[2])
end

function delay()
  return pause
end
