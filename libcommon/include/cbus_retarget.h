/*  =========================================================================
    cbus_retarget - the network's target rule: each block's bits from its
    parent's and an anchor's header (implemented in cbus_pow.c)

    With a block interval of 0 every block carries the network's fixed
    bits. With an interval, an ASERT-like rule (Bitcoin Cash's aserti3-2d,
    re-derived): the target of a block on parent P is

        start * 2^((P.time - A.time - interval * (P.height - A.height)) / half_life)

    where A (the anchor) is block 1 of P's branch and start the network's
    starting bits: the target halves for each half-life the chain is ahead
    of its schedule and doubles for each it is behind. Integer arithmetic
    only (16.16 fixed-point exponent, a cubic approximation of 2^x on the
    fraction), clamped to [1, start]. docs/architecture.md "Retargeting".
    =========================================================================
*/
#ifndef CBUS_RETARGET_H_INCLUDED
#define CBUS_RETARGET_H_INCLUDED

//  The default half-life, in block intervals (network/half_life): the
//  target halves after the chain gets this many intervals ahead of its
//  schedule.
#define CBUS_RETARGET_HALF_LIFE_BLOCKS 16
//  The anchor: the block whose time starts the schedule.
#define CBUS_RETARGET_ANCHOR_HEIGHT 1

//  The rule itself (cbus_pow_rule_t) is in cbus_pow.h.

//  The bits a block on parent must carry. anchor is block 1 of parent's
//  branch: ignored when the interval is 0 or parent is the genesis,
//  parent itself when parent is block 1 (anchor may be NULL in those
//  cases). Returns 0 if the anchor is needed and missing (no block can
//  carry bits 0: they are invalid).
uint32_t
    cbus_pow_next_bits (const cbus_pow_rule_t *rule, const cbus_header_t *parent,
                        const cbus_header_t *anchor);
//  The rule's half-life in block intervals (its default when 0).
uint32_t
    cbus_pow_half_life (const cbus_pow_rule_t *rule);
//  True if a block on parent at height parent->height + 1 needs the anchor.
bool
    cbus_pow_needs_anchor (const cbus_pow_rule_t *rule, const cbus_header_t *parent);
//  The compact bits of a 32-byte big-endian target, rounded down to what
//  the compact form holds (a harder target, never an easier one). A zero
//  target gives the smallest, 0x03000001 (target 1).
uint32_t
    cbus_pow_compact (const uint8_t target [CBUS_U256_BYTES]);

#endif
