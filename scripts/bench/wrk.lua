-- make bench: closed-loop requests for wrk, credentials and ids rotating per request.
--
-- Environment: BENCH_SCENARIO (get | list | list_q | post | patch | leads | mix) and
-- BENCH_FIXTURES (the directory scripts/bench.sh writes: keys.txt, contacts.txt and
-- stages.txt, tenant-major). The same scenarios, mix and bodies as crates/loadgen
-- (src/scenario.rs): a random API key (so a random tenant), then a random row of it.

local scenario = os.getenv("BENCH_SCENARIO") or "get"
local dir = os.getenv("BENCH_FIXTURES") or "target/bench/fixtures"

local function lines(name)
  local out = {}
  for line in io.lines(dir .. "/" .. name) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

local keys, contacts, stages, tenants, keys_per_tenant, contacts_per_tenant

function init(args)
  keys = lines("keys.txt")
  contacts = lines("contacts.txt")
  stages = lines("stages.txt")
  tenants = #stages / 6
  keys_per_tenant = #keys / tenants
  contacts_per_tenant = #contacts / tenants
  -- Each wrk thread has its own Lua state: seed each differently.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

local function pick_mix()
  local r = math.random(100)
  if r <= 40 then return "get"
  elseif r <= 60 then return "list"
  elseif r <= 70 then return "list_q"
  elseif r <= 80 then return "leads"
  elseif r <= 90 then return "post"
  else return "patch" end
end

function request()
  local kind = scenario
  if kind == "mix" then kind = pick_mix() end
  local k = math.random(#keys)
  local tenant = math.floor((k - 1) / keys_per_tenant)
  local headers = { ["Authorization"] = "Bearer " .. keys[k] }
  local contact = contacts[tenant * contacts_per_tenant + math.random(contacts_per_tenant)]
  if kind == "get" then
    return wrk.format("GET", "/v1/contacts/" .. contact, headers)
  elseif kind == "list" then
    return wrk.format("GET", "/v1/contacts?limit=25", headers)
  elseif kind == "list_q" then
    return wrk.format("GET", "/v1/contacts?limit=25&q=last" .. math.random(contacts_per_tenant), headers)
  elseif kind == "post" then
    headers["Content-Type"] = "application/json"
    local body = string.format(
      '{"firstName":"Bench","lastName":"Post","email":"p%d%d@post.example","tags":["bench"]}',
      math.random(1000000000), math.random(1000000000))
    return wrk.format("POST", "/v1/contacts", headers, body)
  elseif kind == "patch" then
    headers["Content-Type"] = "application/json"
    return wrk.format("PATCH", "/v1/contacts/" .. contact,
      headers, string.format('{"title":"Title %d"}', math.random(1000000)))
  else
    local stage = stages[tenant * 6 + math.random(6)]
    return wrk.format("GET", "/v1/leads?stageId=" .. stage .. "&limit=25", headers)
  end
end

-- No response() callback: defining one makes wrk parse every body. Non-2xx answers show
-- in wrk's own "Non-2xx or 3xx responses" line and in errors_status here.
function done(summary, latency, requests)
  io.stderr:write(string.format(
    "wrk.lua: requests=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
