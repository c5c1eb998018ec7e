-- wrk script for `scripts/bench api`: GET a random page of 50 of a random
-- member among the first MEMBERS ids, with the bearer token from TOKEN.
local members = tonumber(os.getenv("MEMBERS") or "2000")
local pages = tonumber(os.getenv("PAGES") or "100")
local token = os.getenv("TOKEN") or ""
local headers = { ["Authorization"] = "Bearer " .. token }
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() + (seed or 0) * 7919)
end

function request()
  local id = math.random(1, members)
  local offset = 50 * math.random(0, pages - 1)
  return wrk.format("GET", "/v1/members/" .. id .. "/matches?offset=" .. offset .. "&limit=50", headers)
end
