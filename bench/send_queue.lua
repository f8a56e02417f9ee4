-- wrk script for bench/send_throughput.py: queues template sends through POST /api/v1/messages.
--
--   wrk -t1 -cC -dDs -s bench/send_queue.lua URL -- API_KEY NUMBER_IDS PREFIX [RATE] [STOP_AFTER]
--
-- NUMBER_IDS is a comma-separated list of the product's number ids: requests rotate over them (round
-- robin, so every number's queue grows evenly). Every request goes to a distinct recipient, PREFIX
-- followed by a 6-digit counter (PREFIX like "6281210" gives valid Indonesian mobile numbers), so no
-- recipient's pair rate is ever involved. The body is a `hello_world` template (no 24-hour window
-- needed). RATE > 0 paces the requests (Poisson arrivals at RATE/s from one schedule shared by all
-- connections, as in bench/wrk_webhooks.lua); STOP_AFTER > 0 stops the thread once that many
-- responses arrived and prints "STOPPED". done() prints `WRK_RESULT {json}` (latencies in microseconds).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

sent = 0
responses = 0
local numbers = {}
local prefix = "6281210"
local rate = 0
local stop_after = 0
local headers = {}

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
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. args[1],
  }
  for id in string.gmatch(args[2], "[^,]+") do
    table.insert(numbers, id)
  end
  prefix = args[3]
  rate = tonumber(args[4] or "0") or 0
  stop_after = tonumber(args[5] or "0") or 0
  math.randomseed(os.time())
  if rate > 0 then
    local mean_gap = 1000 / rate
    local next_send = nil
    function delay()
      local now = now_ms()
      if next_send == nil or next_send < now then
        next_send = now
      end
      local wait = next_send - now
      next_send = next_send - math.log(1 - math.random()) * mean_gap
      return math.floor(wait + 0.5)
    end
  end
  function response(status, headers, body)
    responses = responses + 1
    if stop_after > 0 and responses == stop_after then
      io.write("STOPPED\n")
      io.flush()
      wrk.thread:stop()
    end
  end
end

function request()
  local number = numbers[(sent % #numbers) + 1]
  local body = '{"number_id":' .. number .. ',"to":"+' .. prefix .. string.format("%06d", sent) ..
    '","content":{"type":"template","name":"hello_world","language":"en_US"}}'
  sent = sent + 1
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local sent_total = 0
  for _, thread in ipairs(threads) do
    sent_total = sent_total + (thread:get("sent") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"duration_us":%d,"requests":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"latency_us":{"p50":%d,"p99":%d,"max":%d},'
      .. '"sent":%d}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, sent_total))
end
