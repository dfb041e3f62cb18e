-- The RESULT line that scripts/bench-ingress reads: one run's numbers, latencies in µs.
-- Loaded with dofile() by the other scripts here.

function report(summary, latency, reused)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d"
      .. " errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d"
      .. " reused=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, reused))
end

