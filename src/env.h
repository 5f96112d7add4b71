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

/* A name bound to a tree handle. Slot 0 is the main tree (no name). */
typedef struct dbi_slot {
	char *name;
	size_t nlen;
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

	unsigned max_dbs;
	dbi_slot *dbis;
	_Atomic unsigned ndbis;

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

typedef struct txn_tree {
	tree_rec rec;
	unsigned state;
} txn_tree;

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
	struct mapkv_cursor *next, *prev;
	int positioned; /* path is valid */
	int deleted;    /* the key under the cursor was deleted */
	uint64_t seq;   /* txn->mod_seq the path was built at */
	bt_path path;
	size_t klen;
	uint8_t key[MAPKV_MAX_KEY_SIZE]; /* writers: key under the cursor */
};

/* 1 in a child after fork(): the environment is the parent's
 * (MAPKV_FORKED). */
int env_forked(const mapkv_env *env);
/* 0, or MAPKV_LOCK_LOST once the lock file was found truncated, removed or
 * replaced (then for good), or the error of asking. */
int env_check_lock(mapkv_env *env);

#endif
