/*  =========================================================================
    cbus_backup - `chainbus backup` and `chainbus restore`

    backup takes a consistent copy of a running node into a new folder:
    it asks the mempool, then the chainstore, for a point-in-time copy of
    its store (STORE.BACKUP: each owner snapshots its LevelDB on its loop
    and copies it on a thread of its own, so submissions go on), then
    copies the peer list and the keys of the data folder (peers,
    node.key, service.cert, allowlist, those present), and writes the
    manifest last (chainbus-backup.json: network, genesis, the tips the
    copies hold, every file with its size and SHA-256). A folder without
    the manifest is no backup. Mempool first: a transaction acknowledged
    before the backup started is in the mempool copy, or, confirmed
    meanwhile, in the later chain copy.

    restore checks the manifest against the configuration (the network's
    genesis) and every file against it, then copies them into a data
    folder that must be new or empty. Nothing is left half-restored: on
    any failure what it wrote is removed.

    Both print one line on success and one line with the reason on
    failure (stderr), and exit 0, 2 when refused (a bad --out or
    --data-dir, no node running, a backup already being written, no or
    a damaged manifest, another network), 1 when a copy failed on the
    way (a full disk, a service that stopped or restarted meanwhile).
    =========================================================================
*/
#ifndef CBUS_BACKUP_H_INCLUDED
#define CBUS_BACKUP_H_INCLUDED

#include "cbus.h"

//  The manifest's file name in a backup folder.
#define CBUS_BACKUP_MANIFEST "chainbus-backup.json"

//  Back up the running node of the configuration's data folder into out.
//  Returns the exit code.
int
    cbus_backup_run (cbus_config_t *config, const char *out);
//  Restore the backup in from into the configuration's data folder.
//  Returns the exit code.
int
    cbus_restore_run (cbus_config_t *config, const char *from);

#endif
