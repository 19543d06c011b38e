/*  =========================================================================
    cbus - chainbus common library, the one header every process includes

    Everything two processes share lives here: the data model (tx, block),
    its codecs (msgpack on the bus, JSON at the edge), hashing and proof of
    work, the bus message helpers, configuration and the LevelDB wrapper.
    No service links another service's code.

    The headers are one umbrella; the code is five libraries by layer
    (CMakeLists.txt), each linking only its own dependencies, so that a
    program links what it uses: util (buffers, hex, clocks, codes), codec
    (msgpack maps, JSON), model (hash, sha256, pow, tx, key, seal, block), store
    (LevelDB, the chain), bus (messages, calls, service shell, config).
    =========================================================================
*/
#ifndef CBUS_H_INCLUDED
#define CBUS_H_INCLUDED

#include <czmq.h>
#include <msgpack.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define CBUS_VERSION "0.1.0"

//  Room for a human-readable reason left by a failed validation.
#define CBUS_REASON_MAX 256

#include "cbus_util.h"
#include "cbus_code.h"
#include "cbus_hash.h"
#include "cbus_sha256.h"
#include "cbus_pack.h"
#include "cbus_pow.h"
#include "cbus_json.h"
#include "cbus_tx.h"
#include "cbus_key.h"
#include "cbus_seal.h"
#include "cbus_block.h"
#include "cbus_retarget.h"
#include "cbus_msg.h"
#include "cbus_calls.h"
#include "cbus_caller.h"
#include "cbus_msgs.h"
#include "cbus_metrics.h"
#include "cbus_config.h"
#include "cbus_keyfile.h"
#include "cbus_endpoint.h"
#include "cbus_store.h"
#include "cbus_store_copy.h"
#include "cbus_chain.h"
#include "cbus_layout.h"
#include "cbus_service.h"

#endif
