/*
 * txn.h: transactions: snapshots for readers, the commit protocol for the
 * writer, free-page records, and the per-transaction state of trees.
 */
#ifndef MAPKV_TXN_H
#define MAPKV_TXN_H

#include "env.h"

/* With MAPKV_RDONLY | TXN_INTERNAL, a read transaction that may take the
 * reserved reader slot when every public one is in use. */
#define TXN_INTERNAL 0x80000000u
int txn_begin(mapkv_env *env, unsigned flags, mapkv_txn **out);
int txn_commit(mapkv_txn *txn);
void txn_abort(mapkv_txn *txn);

/* Mark a write transaction as failed: it can only be aborted now. Returns
 * @rc for convenience. */
int txn_fail(mapkv_txn *txn, int rc);

/* The state of tree @dbi in @txn (loaded from the catalog on first use).
 * MAPKV_BAD_DBI if the handle is not open or the tree does not exist in
 * this transaction. */
int txn_tree_get(mapkv_txn *txn, mapkv_dbi dbi, txn_tree **out);

/* txn_tree_get, and where a cursor checks its handle later (*live: the
 * slot word holding @dbi while the handle is open; NULL for the main
 * tree). The state stays at *out for the transaction's life. */
int txn_tree_ref(mapkv_txn *txn, mapkv_dbi dbi, txn_tree **out,
		 _Atomic uint32_t **live);

/* Open (or create) a tree by name; see mapkv_dbi_open. */
int txn_dbi_open(mapkv_txn *txn, const char *name, unsigned flags,
		 mapkv_dbi *dbi);
int txn_dbi_drop(mapkv_txn *txn, mapkv_dbi dbi, int del);
/* mapkv_dbi_close: @dbi is invalid from now on. */
int txn_dbi_close(mapkv_env *env, mapkv_dbi dbi);
int txn_dbi_list(mapkv_txn *txn, int (*fn)(void *ctx, const char *name),
		 void *ctx);

/* Copy the last published commit's meta without taking a lock; returns
 * the publication count it was read at. */
uint64_t txn_read_meta(mapkv_env *env, mk_meta *m);
/* Publish a newer commit's meta in the lock file, to the readers of every
 * process (only under the writer lock: lock.h). */
void txn_publish_meta(mapkv_env *env, const mk_meta *m);

/* Count of pages recorded in the free-page tree of @txn's snapshot. */
int txn_count_free(mapkv_txn *txn, uint64_t *pages);

#endif
