-- wrk script for the Idemgate bench: POST /pay with an idempotency key chosen per request.
--
--   wrk -t2 -c32 -d10s -s bench/wrk/pay.lua http://127.0.0.1:8080/pay -- MODE PREFIX [KEYS] [API_KEY]
--
-- MODE   fresh   a new key on every request (each one is a new payment)
--        replay  a random key among PREFIX-0 .. PREFIX-(KEYS-1), primed beforehand (loadgen prime)
--        mixed   99% new keys, 1% retries of one of the last hundred keys, 5% of keys declined
-- The body of a key is a function of the key alone (merchant_reference = key), exactly as the
-- loadgen's PaymentTraffic builds it, so a replay or retry never counts as key reuse (422).
-- done() prints one line "WRK_JSON {...}" that `idemgate-bench record --tool wrk` reads.
--
-- Errors: every status other than 201 (mixed: 201, 402, 409) and every transport failure. In mixed
-- mode an answer is also an error when it does not fit its key: a 402 for a key not paid with
-- tok_decline, a 201 for one that was (read from merchant_reference in the answer, which is the
-- key), and 409s beyond the number of retries sent (a 409 does not name its key, and wrk does not
-- say which request an answer belongs to, so that part is a lower bound).

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "fresh"
  prefix = args[2] or ("wrk-" .. os.time())
  keys = tonumber(args[3] or "1000")
  api_key = args[4] or "sk_test_demo"
  sent = 0
  statuses = {}
  retries_sent = 0   -- mixed: requests that reuse a key already sent
  wrong_outcome = 0  -- mixed: a 402 on a tok_visa key, or a 201 on a tok_decline key
  math.randomseed(os.time() * 1000 + thread_id)
end

local function body(key, source)
  return '{"amount":1999,"currency":"EUR","source":"' .. source .. '","merchant_reference":"' .. key .. '"}'
end

local function pay(key, source)
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. api_key,
    ["Idempotency-Key"] = key,
    ["Content-Type"] = "application/json",
  }, body(key, source))
end

-- In mixed mode every twentieth key is paid with tok_decline; a retry reuses the same choice.
local function mixed_source(n)
  if n % 20 == 7 then return "tok_decline" end
  return "tok_visa"
end

function request()
  if mode == "replay" then
    return pay(prefix .. "-" .. math.random(0, keys - 1), "tok_visa")
  end
  if mode == "mixed" and sent > 0 and math.random(100) == 1 then
    local n = sent - math.random(math.min(sent, 100))
    retries_sent = retries_sent + 1
    return pay(prefix .. "-" .. thread_id .. "-" .. n, mixed_source(n))
  end
  local n = sent
  sent = sent + 1
  if mode == "mixed" then
    return pay(prefix .. "-" .. thread_id .. "-" .. n, mixed_source(n))
  end
  return pay(prefix .. "-" .. thread_id .. "-" .. n, "tok_visa")
end

function response(status, headers, body)
  local s = tostring(status)
  statuses[s] = (statuses[s] or 0) + 1
  if mode == "mixed" and (status == 201 or status == 402) then
    -- The key is PREFIX-THREAD-N and the answer carries it as merchant_reference.
    local n = tonumber(string.match(body or "", '"merchant_reference":"[^"]*%-(%d+)"'))
    if n == nil or (status == 402) ~= (mixed_source(n) == "tok_decline") then
      wrong_outcome = wrong_outcome + 1
    end
  end
end

function done(summary, latency, requests)
  -- done() runs in the main Lua state, where init() never ran: read the mode from a thread.
  local mode = threads[1]:get("mode")
  local merged = {}
  local retries, wrong = 0, 0
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses") or {}
    for s, n in pairs(counts) do merged[s] = (merged[s] or 0) + n end
    retries = retries + (thread:get("retries_sent") or 0)
    wrong = wrong + (thread:get("wrong_outcome") or 0)
  end
  local expected = { ["201"] = true }
  if mode == "mixed" then expected = { ["201"] = true, ["402"] = true, ["409"] = true } end
  local unexpected = 0
  local status_json = {}
  for s, n in pairs(merged) do
    if not expected[s] then unexpected = unexpected + n end
    table.insert(status_json, string.format('"%s":%d', s, n))
  end
  local mixed_json = ""
  if mode == "mixed" then
    local excess_409 = math.max(0, (merged["409"] or 0) - retries)
    unexpected = unexpected + wrong + excess_409
    mixed_json = string.format(',"retries_sent":%d,"wrong_outcome":%d,"conflicts_beyond_retries":%d', retries, wrong, excess_409)
  end
  local e = summary.errors
  local transport = e.connect + e.read + e.write + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_s":%.1f,"throughput":%.1f,"p50_ms":%.2f,"p99_ms":%.2f,"p999_ms":%.2f,'
      .. '"max_ms":%.2f,"errors":%d,"statuses":{%s},"failures":{"connect":%d,"read":%d,"write":%d,"timeout":%d}%s}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, unexpected + transport, table.concat(status_json, ","),
    e.connect, e.read, e.write, e.timeout, mixed_json))
end
