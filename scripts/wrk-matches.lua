-- wrk script for `scripts/bench api`: GET a random page of 50 (of 100) of a
-- random member listed in MEMBERS_FILE (one id per line), with the bearer
-- token from TOKEN. Non-200 answers are counted and printed at the end.
local token = os.getenv("TOKEN") or ""
local headers = { ["Authorization"] = "Bearer " .. token }
local members = {}
for line in io.lines(os.getenv("MEMBERS_FILE")) do
  members[#members + 1] = tonumber(line)
end
local threads = {}

function setup(thread)
  thread:set("seed", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0) * 7919)
  failures = 0
end

function request()
  local id = members[math.random(1, #members)]
  local offset = 50 * math.random(0, 99)
  return wrk.format("GET", "/v1/members/" .. id .. "/matches?offset=" .. offset .. "&limit=50", headers)
end

function response(status, headers, body)
  if status ~= 200 then failures = failures + 1 end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + (thread:get("failures") or 0) end
  io.write(string.format("members: %d, non-200 answers: %d\n", #members, total))
end
