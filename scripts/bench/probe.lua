-- Light probe traffic beside the webhook load: each connection sends wrk's URL (GET) and
-- waits 5 ms before the next, about 200 requests/s per connection, as a load balancer's and
-- an orchestrator's health checks would (many times over).
--
--   wrk -t 1 -c 2 -d D --latency -s probe.lua http://127.0.0.1:PORT/health

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

function delay()
  return 5
end

function done(summary, latency, requests)
  report(summary, latency, 0)
end
