-- wrk script: POST /transactions/new with pre-signed transactions, one
-- per line of the file in $CHAINBUS_SIGNED (made by cbus_bench_signed).
-- Each thread takes every Nth line, so no transaction is sent twice;
-- a thread that runs out starts over (those answers are duplicates, 200,
-- and are counted apart). Prints "statuses 201=N 200=M ..." at the end.

local threads = {}

function setup (thread)
    thread:set ("id", #threads)
    table.insert (threads, thread)
end

function init (args)
    counts = {}
    lines = {}
    local stride = tonumber (os.getenv ("CHAINBUS_THREADS") or "2")
    local n = 0
    for line in io.lines (os.getenv ("CHAINBUS_SIGNED")) do
        if n % stride == id then
            table.insert (lines, line)
        end
        n = n + 1
    end
    cursor = 0
end

function request ()
    cursor = cursor % #lines + 1
    return wrk.format ("POST", "/transactions/new",
                       { ["Content-Type"] = "application/json" }, lines [cursor])
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
        table.insert (parts, status .. "=" .. n)
    end
    table.sort (parts)
    io.write ("statuses " .. table.concat (parts, " ") .. "\n")
end
