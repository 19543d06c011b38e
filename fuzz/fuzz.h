/*  =========================================================================
    fuzz - what the libFuzzer harnesses of fuzz/ share

    Each harness (fuzz_<name>.c) feeds libFuzzer's bytes to one decoder of
    outside bytes the way the node does, then checks what the decoder
    promises (a decoded value encodes back to bytes that decode to the
    same value). A broken promise is FUZZ_CHECK's abort: libFuzzer keeps
    the input as a crash, like a sanitizer report. docs/operations.md
    ("Fuzzing the decoders") says how to run them.
    =========================================================================
*/
#ifndef FUZZ_H_INCLUDED
#define FUZZ_H_INCLUDED

#include "cbus.h"
#include <sodium.h>

//  A property the decoder promises; abort (a crash to libFuzzer) if not.
#define FUZZ_CHECK(condition) \
    do { \
        if (!(condition)) { \
            fprintf (stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
            abort (); \
        } \
    } while (0)

//  libFuzzer's entry points.
int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Once per process: CZMQ without its signal handlers (libFuzzer's own
//  stop it) and without log lines (the decoders log what they refuse).
void
    fuzz_init (void);

//  Unpack exactly one msgpack map from data, as the bus and the peer
//  link do (s_decode_map, peersync_on_peer_message): the map, or NULL.
const msgpack_object *
    fuzz_unpack_map (msgpack_unpacked *unpacked, const void *data, size_t size);

//  Read every byte (ASan sees a read past the end; the result keeps the
//  compiler from dropping the reads).
uint8_t
    fuzz_touch (const void *data, size_t size);

//  Write data to this process's scratch file under /dev/shm (or TMPDIR)
//  with mode, for decoders that take a path. Returns the path (static).
const char *
    fuzz_write_file (const char *name, const void *data, size_t size, mode_t mode);

//  A scratch folder of this process (created once, removed at exit),
//  for name inside it.
//  Returns a static path.
const char *
    fuzz_scratch (const char *name);

//  What every decoded transaction must satisfy: its bytes decode again
//  to the same transaction, its JSON (cbus_tx_write_json, as users get
//  it) equals cbus_tx_bytes_to_json of its bytes and builds the same
//  transaction back through cbus_tx_new_from_json.
void
    fuzz_check_tx (cbus_tx_t *tx);

#endif
