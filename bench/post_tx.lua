-- wrk script: POST /transactions/new with the seed's body, every request a
-- distinct transaction (the thread's number and a counter go into "data"),
-- and a count of answers by status code, printed at the end as one line
--   statuses 201=N 503=M ...
-- that bench/bench.py reads. A 201 is a durable acknowledgement: the
-- mempool has the transaction on disk before the gateway answers.

local threads = {}
local counter = 0

function setup (thread)
    thread:set ("id", #threads + 1)
    table.insert (threads, thread)
end

function init (args)
    counts = {}
    prefix = string.format ('{"users": ["bench-%d"], "data": {"thread": %d, "n": ', id, id)
    suffix = '}, "dh_parameters": "param", "server_public_key": "server_key", '
          .. '"receiver_public_key": "receiver_key", "sender_public_key": "sender_key"}'
end

function request ()
    counter = counter + 1
    return wrk.format ("POST", "/transactions/new",
                       { ["Content-Type"] = "application/json" },
                       prefix .. counter .. suffix)
end

function response (status, headers, body)
    counts [status] = (counts [status] or 0) + 1
end

function done (summary, latency, requests)
    local total = {}
    for _, thread in ipairs (threads) do
        for status, n in pairs (thread:get ("counts")) do
            total [status] = (total [status] or 0) + n
        end
    end
    local parts = {}
    for status, n in pairs (total) do
        table.insert (parts, string.format ("%d=%d", status, n))
    end
    table.sort (parts)
    io.write ("statuses " .. table.concat (parts, " ") .. "\n")
end
