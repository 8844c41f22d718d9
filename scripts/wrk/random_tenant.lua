-- wrk script: GET /api/v1/clients/ on a random tenant per request. The file given after `--`
-- (wrk ... -s random_tenant.lua URL -- tenants.txt) holds one "<host> <access token>" line per
-- tenant; every request picks a line at random and sends its Host and Authorization headers.
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
end

local tenants = {}

function init(args)
    local path = args[1] or error("random_tenant.lua: pass the tenants file after --")
    for line in io.lines(path) do
        local host, token = line:match("^(%S+)%s+(%S+)$")
        if host then
            tenants[#tenants + 1] = { Host = host, Authorization = "Bearer " .. token }
        end
    end
    if #tenants == 0 then
        error("random_tenant.lua: no \"<host> <token>\" line in " .. path)
    end
    math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
    local t = tenants[math.random(#tenants)]
    return wrk.format("GET", "/api/v1/clients/", { Host = t.Host, Authorization = t.Authorization })
end
