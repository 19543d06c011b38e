#!/usr/bin/env python3
"""chainbus continuous-mining benchmark: figures for docs/performance.md.

For 1 and 2 miners, a node mines continuously (`--mining continuous`) at
a fixed target (--bits) for --seconds, nobody calling GET /mine. Reported:

  - blocks/s (chain height over time);
  - the miners' own hash rate (the sum in GET /status `mining.hash_rate`,
    averaged over one sample a second);
  - the network hash rate GET /status estimates from the last 60 blocks;
  - the rate the blocks imply: blocks/s times the target's expected hashes
    a block, and its ratio to the miners' own (below 1: hashes spent on
    work that went stale, or time between jobs);
  - the ceiling, measured in the same run: one miner's own rate times the
    miners (two cores: 2 miners can at best double it), and the ratio.

Real processes, LevelDB under /tmp. Prints a table and writes JSON
(--out). No figure is asserted: a benchmark reports.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

from chainbus_node import Node, wait_for  # noqa: E402


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def expected_hashes(bits):
    """2^256 / (target + 1), as cbus_pow_expected_hashes."""
    exponent, mantissa = bits >> 24, bits & 0x7fffff
    target = mantissa << (8 * (exponent - 3)) if exponent >= 3 else mantissa >> (8 * (3 - exponent))
    return 2 ** 256 / (target + 1)


def run(miners, bits, seconds):
    node = Node(miners=miners, pow_bits=bits, extra_args=["--mining", "continuous"])
    try:
        node.start()
        wait_for(lambda: len(node.status()["mining"]["miners"]) == miners, 30, "the miners' rates")
        time.sleep(3)                   # warm up: slices sized, templates flowing
        h0, t0 = node.height(), time.monotonic()
        rates = []
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            rates.append(node.status()["mining"]["hash_rate"])
        status = node.status()
        h1, t1 = status["height"], time.monotonic()
        blocks_per_s = (h1 - h0) / (t1 - t0)
        own = statistics.mean(rates)
        implied = blocks_per_s * expected_hashes(int(bits, 16))
        return {
            "miners": miners, "blocks": h1 - h0, "seconds": round(t1 - t0, 1),
            "blocks_per_s": round(blocks_per_s, 2),
            "miners_hash_rate": round(own),
            "network_hash_rate": status["mining"]["network_hash_rate"],
            "implied_hash_rate": round(implied),
            "implied_over_own": round(implied / own, 2) if own else None,
        }
    finally:
        node.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", default="0x1e0fffff", help="fixed target (about 2^20 hashes)")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = []
    for miners in (1, 2):
        log("%d miner(s), %s, %.0f s" % (miners, args.bits, args.seconds))
        results.append(run(miners, args.bits, args.seconds))
    one = results[0]["miners_hash_rate"]
    for r in results:
        r["ceiling"] = one * r["miners"]
        r["own_over_ceiling"] = round(r["miners_hash_rate"] / r["ceiling"], 2) if one else None
    print("| miners | blocks/s | miners' hash rate | network estimate | implied by blocks "
          "| implied/own | ceiling (1 miner x n) | own/ceiling |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %d | %.2f | %.2f M/s | %s | %.2f M/s | %.2f | %.2f M/s | %.2f |" % (
            r["miners"], r["blocks_per_s"], r["miners_hash_rate"] / 1e6,
            "%.2f M/s" % (r["network_hash_rate"] / 1e6) if r["network_hash_rate"] else "-",
            r["implied_hash_rate"] / 1e6, r["implied_over_own"] or 0, r["ceiling"] / 1e6,
            r["own_over_ceiling"] or 0))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"bits": args.bits, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
