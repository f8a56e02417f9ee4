-- wrk script for bench/webhook_ingest.py: replays pre-signed webhook bodies.
--
--   wrk -t1 -cC -dDs -s bench/wrk_webhooks.lua URL -- BODIES [RATE] [STOP_AFTER] [PACE_SECONDS]
--
-- BODIES has one request per line: `<X-Hub-Signature-256 value><TAB><compact JSON body>`. Requests
-- are built once in init() (before wrk starts its clock) and sent in file order, wrapping around
-- when the file is exhausted (the number of wraps is reported, since a wrap re-sends old bodies).
-- RATE > 0 (requests/s) paces the load, since Debian's wrk has no -R: wrk asks delay() before every
-- request, and delay() hands out send times from one schedule shared by all connections, with
-- exponentially distributed gaps (Poisson arrivals at RATE, read from CLOCK_MONOTONIC through LuaJIT's
-- ffi). A connection is only free again once its response is in, so C connections sustain RATE while
-- latency < C / RATE; when the server falls behind, the schedule does not burst to catch up and the
-- achieved rate (reported) drops below RATE. With PACE_SECONDS > 0 the schedule ends that long after
-- the first send: no request is sent after it, so the requests still in flight then get their answers
-- (and their latency in the histogram) during the rest of -d instead of being cut off.
-- STOP_AFTER > 0 makes the thread stop sending once that many responses arrived and print "STOPPED"
-- (wrk itself exits at -d or on SIGINT). `sent` leaves out wrk's own call of request() before the run
-- (it looks at the request once on the thread's script, and sends nothing).
-- done() prints one line `WRK_RESULT {json}` with the summary and latency percentiles (microseconds).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

requests_built = 0
sent = 0
wraps = 0
responses = 0
local built = {}
local index = 0
local rate = 0
local stop_after = 0
local pace_ms = 0

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local timespec = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

function init(args)
  local path = args[1]
  rate = tonumber(args[2] or "0") or 0
  stop_after = tonumber(args[3] or "0") or 0
  pace_ms = (tonumber(args[4] or "0") or 0) * 1000
  for line in io.lines(path) do
    local tab = line:find("\t", 1, true)
    if tab then
      local headers = {
        ["Content-Type"] = "application/json",
        ["X-Hub-Signature-256"] = line:sub(1, tab - 1),
      }
      requests_built = requests_built + 1
      built[requests_built] = wrk.format("POST", nil, headers, line:sub(tab + 1))
    end
  end
  if requests_built == 0 then
    error("no requests in " .. tostring(path))
  end
  math.randomseed(os.time())
  if rate > 0 then
    -- Defined only when pacing: wrk schedules a timer per request as soon as delay() exists.
    local mean_gap = 1000 / rate
    local next_send = nil
    local pace_end = nil
    function delay()
      local now = now_ms()
      if pace_end == nil and pace_ms > 0 then
        pace_end = now + pace_ms
      end
      if pace_end ~= nil and now >= pace_end then
        return 3600000 -- the schedule is over: this connection sends nothing more
      end
      if next_send == nil or next_send < now then
        next_send = now
      end
      local wait = next_send - now
      next_send = next_send - math.log(1 - math.random()) * mean_gap
      return math.floor(wait + 0.5)
    end
  end
  if stop_after > 0 then
    function response(status, headers, body)
      responses = responses + 1
      if responses == stop_after then
        io.write("STOPPED\n")
        io.flush()
        wrk.thread:stop()
      end
    end
  end
end

local checked = false

function request()
  index = index + 1
  if index > requests_built then
    index = 1
    wraps = wraps + 1
  end
  if checked then
    sent = sent + 1
  else
    checked = true -- the first call is wrk's own look at the request, before the run: never sent
  end
  return built[index]
end

function done(summary, latency, requests)
  local built_total, sent_total, wraps_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    built_total = built_total + (thread:get("requests_built") or 0)
    sent_total = sent_total + (thread:get("sent") or 0)
    wraps_total = wraps_total + (thread:get("wraps") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"duration_us":%d,"requests":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"latency_us":{"mean":%.1f,"p50":%d,'
      .. '"p90":%d,"p99":%d,"p999":%d,"max":%d},"bodies":%d,"sent":%d,"wraps":%d}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, built_total, sent_total, wraps_total))
end
