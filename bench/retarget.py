#!/usr/bin/env python3
"""Block-interval convergence (issue 10, item 2): figures for
docs/performance.md "Block-interval convergence".

One node with --block-interval INTERVAL --half-life HALF_LIFE and an easy
starting target, one miner, mining continuously (CONTINUOUS, imported from
tests/functional/test_retarget.py with its helpers; False mines with
back-to-back GET /mine):
  1. from the start: blocks until the target is within 25 % (log2 within
     0.32) of where it settles, then the mean and spread (standard
     deviation, quartiles) of the intervals over the settled blocks;
  2. a second miner started: the intervals right after it, and blocks (and
     seconds) until the target is within 25 % of where it settles again,
     with the miners' own hash rates (their log lines) beside it: the
     hash-rate ratio is the change the rule answers.
The reference in the same run is the interval itself (the rule's aim) and
the half-life (the time it should take to absorb a doubling). Prints a
table and the JSON (--out FILE). No figure is asserted.
"""

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "functional"))

from chainbus_node import Node, bin_dir  # noqa: E402

#  The mining switch and helpers are the functional test's (one place).
from test_retarget import CONTINUOUS, advance, mine_for, target  # noqa: E402,F401


def log2t(block):
    return math.log2(target(block["bits"]))


def mine_blocks(node, count):
    advance(node, node.height() + count, timeout=30 * count + 60)


def settle_index(blocks, level, tolerance=math.log2(1.25), window=8):
    """First index from which the mean log2 target of every run of window
    blocks stays within tolerance of level (one block's target is noisy:
    about 1/sqrt(2 * half_life) in log2)."""
    logs = [log2t(b) for b in blocks]
    means = [statistics.mean(logs[i:i + window]) for i in range(len(logs) - window + 1)]
    for index in range(len(means)):
        if all(abs(m - level) <= tolerance for m in means[index:]):
            return index
    return len(blocks)


def interval_figures(blocks):
    gaps = [b["timestamp"] - a["timestamp"] for a, b in zip(blocks, blocks[1:])]
    if len(gaps) < 2:
        return {"blocks": len(gaps), "mean_s": float("nan"), "stdev_s": float("nan"),
                "q1_s": float("nan"), "median_s": float("nan"), "q3_s": float("nan")}
    quartiles = statistics.quantiles(gaps, n=4)
    return {"blocks": len(gaps), "mean_s": round(statistics.mean(gaps), 3),
            "stdev_s": round(statistics.pstdev(gaps), 3),
            "q1_s": round(quartiles[0], 3), "median_s": round(quartiles[1], 3),
            "q3_s": round(quartiles[2], 3)}


def rates(text):
    return [float(r) for r in re.findall(r"hash rate=(\d+)/s", text)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=int, default=1)
    parser.add_argument("--half-life", type=int, default=8)
    parser.add_argument("--start-bits", default="0x1f003fff")
    parser.add_argument("--blocks", type=int, default=120, help="blocks with one miner")
    parser.add_argument("--after", type=int, default=80, help="blocks after the second miner")
    parser.add_argument("--out")
    args = parser.parse_args()
    rule = ["--block-interval", str(args.interval), "--half-life", str(args.half_life)]
    mining = ["--mining", "continuous"] if CONTINUOUS else []
    node = Node(miners=1, pow_bits=args.start_bits, extra_args=rule + mining)
    node.start()
    miner = None
    try:
        mine_blocks(node, args.blocks)
        first = node.chain()["chain"]
        one = first[1:]
        level = statistics.mean(log2t(b) for b in one[-40:])
        settled = settle_index(one, level)
        before_rates = rates(node.log_text())[-5:]
        log_path = os.path.join(node.root, "miner2.log")
        with open(log_path, "ab") as log:
            miner = subprocess.Popen(
                [os.path.join(bin_dir(), "chainbus-miner"), "--data-dir", node.data_dir,
                 "--pow-bits", args.start_bits] + rule + mining,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        #  Mining goes on while it comes up (a pause would ease the target).
        while len(node.status().get("services", {}).get("miners") or []) < 2:
            mine_for(node, 0.2)
        change = node.height()
        started = time.monotonic()
        mine_blocks(node, args.after)
        elapsed = time.monotonic() - started
        with open(log_path, encoding="utf-8", errors="replace") as log:
            second_rates = rates(log.read())[-5:]
        after_rates = rates(node.log_text())[-5:]
        chain = node.chain()["chain"]
        two = chain[change:]
        level_two = statistics.mean(log2t(b) for b in two[-40:])
        adapt = settle_index(two, level_two)
        adapt_s = two[min(adapt, len(two) - 1)]["timestamp"] - two[0]["timestamp"]
        early = [b for b in two if b["timestamp"] <= two[0]["timestamp"] + args.half_life * args.interval]
        figures = {
            "interval_s": args.interval, "half_life_blocks": args.half_life,
            "start_bits": args.start_bits,
            "one_miner": {"blocks_to_converge": settled,
                          "settled": interval_figures(one[settled:]),
                          "last_60_of_120": interval_figures(first[60:121]) if len(first) > 120 else None,
                          "miner_rates_per_s": before_rates},
            "second_miner": {"target_log2_change": round(level - level_two, 3),
                             "first_half_life": interval_figures(early) if len(early) > 2 else None,
                             "blocks_to_converge": adapt, "seconds_to_converge": round(adapt_s, 1),
                             "settled": interval_figures(two[adapt:]),
                             "first_miner_rates_per_s": after_rates,
                             "second_miner_rates_per_s": second_rates,
                             "wall_s": round(elapsed, 1)},
            "series": [(b["index"], b["timestamp"], round(log2t(b), 3)) for b in chain[1:]],
        }
    finally:
        if miner:
            miner.terminate()
            miner.wait(timeout=30)
        node.close()
    one, two = figures["one_miner"], figures["second_miner"]
    print("block interval %d s, half-life %d intervals, start %s" % (
        args.interval, args.half_life, args.start_bits))
    print("one miner: converged after %d blocks; settled mean %.3f s, stdev %.3f s "
          "(median %.3f, quartiles %.3f-%.3f) over %d blocks" % (
              one["blocks_to_converge"], one["settled"]["mean_s"], one["settled"]["stdev_s"],
              one["settled"]["median_s"], one["settled"]["q1_s"], one["settled"]["q3_s"],
              one["settled"]["blocks"]))
    if one["last_60_of_120"]:
        print("  last 60 of 120 blocks: mean %.3f s, stdev %.3f s" % (
            one["last_60_of_120"]["mean_s"], one["last_60_of_120"]["stdev_s"]))
    print("second miner: target log2 lower by %.2f (a doubling asks 1.00); first half-life "
          "mean %s s; converged after %d blocks / %.1f s (half-life %d s); settled mean %.3f s, "
          "stdev %.3f s" % (
              two["target_log2_change"],
              two["first_half_life"]["mean_s"] if two["first_half_life"] else "-",
              two["blocks_to_converge"], two["seconds_to_converge"],
              args.half_life * args.interval, two["settled"]["mean_s"], two["settled"]["stdev_s"]))
    print("hash rates: one miner %s; then first %s, second %s" % (
        one["miner_rates_per_s"], two["first_miner_rates_per_s"], two["second_miner_rates_per_s"]))
    print(json.dumps({k: v for k, v in figures.items() if k != "series"}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
