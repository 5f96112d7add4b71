/*
 * env.h: the environment (one open database file) and the transaction and
 * cursor structures that the internal layers share. Only the library's own
 * files include this.
 */
#ifndef MAPKV_ENV_H
#define MAPKV_ENV_H

#include <stdatomic.h>
#include <stdint.h>

#include "btree.h"
#include "lock.h"
#include "mapkv.h"
#include "os.h"
#include "page.h"
#include "pager.h"

/* A slot of the tree-handle table (txn.c). Slot 0 is the main tree (no
 * name). A named tree's handle is its slot number plus a generation in
 * the high bits, so a closed handle never names the slot's next tree.
 * Under env->mutex, except that handle is read without it. */
typedef struct dbi_slot {
	char *name; /* NULL: free (or retired) */
	size_t nlen;
	_Atomic uint32_t handle; /* the valid handle, 0 while closed */
	uint32_t gen;            /* generation of that (or the next) handle */
	unsigned refs;           /* transactions with state for the slot */
	/* The write transaction that created the tree and bound the slot:
	 * unless it commits, its end closes the handle. */
	struct mapkv_txn *owner;
} dbi_slot;

struct mapkv_env {
	os_vfs *vfs;
	os_file *file;
	char *path; /* as given, then with symbolic links followed (env.c) */
	unsigned flags;
	unsigned psize;
	uint64_t max_size; /* bytes reserved for the map */
	uint8_t *map;
	uint64_t map_len; /* bytes of the file mapped (== file_size) */
	uint64_t file_size;
	size_t gran; /* map granularity */

	os_mutex *wmutex; /* one writer in this process */
	os_mutex *mutex;  /* the dbi table */

	/* The lock file (lock.h): the last published commit, under a
	 * sequence lock that readers copy without taking a lock, and the
	 * reader table. lk_private: the lock file could not be created
	 * (read-only file system) and this table is private memory. */
	os_file *lkfile;
	lk_header *lk;
	size_t lk_len;
	int lk_private;
	os_mutex *map_mutex; /* growing the map (readers and the writer) */
	/* Where growth replaces the map at the same base (the Windows remap
	 * path, os_win32.c): transactions hold this shared for their
	 * lifetime and growth takes it exclusively; NULL elsewhere. */
	os_rwlock *map_lock;
	const char *map_growth; /* the os layer's name for how it grows */
	/* The map could not be put back at its base (MAPKV_MAP_LOST): every
	 * new transaction is refused until the environment is closed. */
	_Atomic int map_lost;
	/* The lock file was found truncated, removed or replaced
	 * (env_check_lock): every new transaction is refused. */
	_Atomic int lk_lost;
	lk_table readers;
	uint64_t pid; /* of the process that opened it (env_forked) */

	unsigned max_dbs; /* slots, including the main tree's */
	dbi_slot *dbis;
	_Atomic unsigned ndbis; /* slots ever used (high-water mark) */

	/* Set when a commit could not make its meta page durable: the file's
	 * state is unknown until reopened, so writing is refused. */
	_Atomic int panic;
	struct mapkv_txn *wtxn;

	/* Scratch space of the (single) writer, allocated at open. */
	uint8_t *wscratch; /* 4 pages */
	const uint8_t **split_node;
	unsigned *split_size;
};

/* Per-transaction state of a tree handle. */
#define TT_LOADED 0x1u  /* rec is valid */
#define TT_DIRTY 0x2u   /* rec changed: store it at commit */
#define TT_DELETED 0x4u /* dropped with del: remove from catalog */
#define TT_HELD 0x8u    /* counted in the slot's refs */

typedef struct txn_tree {
	tree_rec rec;
	unsigned state;
} txn_tree;

/* The check of a reference from txn_tree_ref (txn.h), on every cursor
 * operation: the handle @dbi is still open (@live: its slot's word, NULL
 * for the main tree) and the tree exists. */
static inline int txn_tree_check(const txn_tree *tt, _Atomic uint32_t *live,
				 mapkv_dbi dbi)
{
	if (live && atomic_load_explicit(live, memory_order_acquire) != dbi)
		return MAPKV_BAD_DBI;
	if ((tt->state & (TT_LOADED | TT_DELETED)) != TT_LOADED)
		return MAPKV_BAD_DBI;
	return 0;
}

#define TXN_ACTIVE 0
#define TXN_FAILED 1

struct mapkv_txn {
	mapkv_env *env;
	unsigned flags; /* MAPKV_RDONLY for readers */
	int state;
	uint64_t txnid; /* snapshot read, or id this writer commits as */
	mk_meta meta;   /* snapshot; a writer updates trees[] in place */
	pager pg;
	txn_tree main;
	txn_tree *named;  /* max_dbs entries, allocated on first use */
	unsigned slot;    /* reader slot */
	uint64_t mod_seq; /* bumped by every change (cursors re-seek) */
	struct mapkv_cursor *cursors;
};

struct mapkv_cursor {
	mapkv_txn *txn; /* NULL once the transaction ended */
	os_vfs *vfs;    /* to free the cursor after its txn is gone */
	mapkv_dbi dbi;
	/* Its tree in txn (txn_tree_ref): the state, and the slot word
	 * that holds dbi while the handle is open (NULL: main tree). */
	txn_tree *tt;
	_Atomic uint32_t *live;
	struct mapkv_cursor *next, *prev;
	int positioned; /* at a key (0: before the first successful move) */
	/* The place of the key in the tree, as of txn->mod_seq == seq
	 * (cursor.h): where (CUR_*) and the path. */
	int where;
	uint64_t seq;
	bt_path path;
	size_t klen;
	uint8_t key[MAPKV_MAX_KEY_SIZE]; /* writers: the position */
};

/* 1 in a child after fork(): the environment is the parent's
 * (MAPKV_FORKED). */
int env_forked(const mapkv_env *env);
/* 0, or MAPKV_LOCK_LOST once the lock file was found truncated, removed or
 * replaced (then for good), or the error of asking. */
int env_check_lock(mapkv_env *env);

#endif
