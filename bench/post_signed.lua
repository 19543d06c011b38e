-- wrk script: POST /transactions/new with pre-signed transactions, one
-- per line of the file in $CHAINBUS_SIGNED (made by cbus_bench_signed).
-- Each of the $CHAINBUS_THREADS threads takes every Nth line, so no
-- transaction is sent twice; a thread that runs out starts over (those
-- answers are duplicates, not added to the mempool). No response()
-- callback: wrk then skips parsing each answer, and bench/ledger.py
-- counts what the mempool took and wrk's own non-2xx count instead.

local threads = {}

function setup (thread)
    thread:set ("id", #threads)
    table.insert (threads, thread)
end

function init (args)
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
