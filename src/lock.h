/*
 * lock.h: the lock file: the reader table and the last published commit,
 * shared by every process that has the database open.
 *
 * LOCK FILE ("<database>-lock", beside the database; host byte order and
 * layout: it describes processes of one machine and is rebuilt whenever
 * no process has the database open, so it is never moved between
 * machines)
 *     0   4 magic      LK_MAGIC
 *     4   4 version    LK_VERSION
 *     8   4 nslots     public reader slots
 *    12   4 page_size  of the database
 *    16   8 meta_seq   number of commits published; the last one's meta
 *                      is meta[meta_seq % 2]
 *    24   .. meta[2]   two struct mk_meta: a writer fills the one not in
 *                      use, then increments meta_seq, so a writer killed
 *                      half-way leaves the previous one intact; a reader
 *                      copies meta[s % 2] and retries if meta_seq moved
 *                      by two or more meanwhile.
 *   512  64 slot[0 .. nslots]: nslots public slots and one more that the
 *           library takes for its own short reads (mapkv_env_info) when
 *           every public one is in use.
 *   Slot: pid (0 = free), txnid (snapshot in use, 0 = none), start time
 *   (ns since 1970), thread id.
 *
 * Byte locks on the lock file (os_vfs lock_byte):
 *   byte 0  held exclusively while a process sets itself up (opening);
 *   byte 1  held shared by every open environment for its lifetime. An
 *           opener that can take it exclusively is alone: the table left by
 *           processes that died is stale, and it rebuilds the file.
 * The writer lock is a byte lock on the database file itself.
 *
 * Readers publish the snapshot they read in a slot with atomics only: a
 * writer reuses a page freed by commit T only when no slot holds an id
 * below T. A slot whose process is gone (it was killed holding a read
 * transaction) is found by its pid and freed when slots run out, when a
 * write transaction starts, and by mapkv_reader_check().
 */
#ifndef MAPKV_LOCK_H
#define MAPKV_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "page.h"

#define LK_MAGIC 0x4B4C4B4Du /* "MKLK" */
#define LK_VERSION 1u
#define LK_HEADER 512u
#define LK_BYTE_INIT 0
#define LK_BYTE_ALIVE 1

typedef struct lk_header {
	uint32_t magic;
	uint32_t version;
	uint32_t nslots;
	uint32_t page_size;
	_Atomic uint64_t meta_seq;
	mk_meta meta[2];
} lk_header;

typedef struct lk_slot {
	_Atomic uint64_t pid;   /* owner, 0 when free */
	_Atomic uint64_t txnid; /* snapshot in use, 0 when none */
	_Atomic uint64_t start; /* when the snapshot was taken, ns */
	_Atomic uint64_t tid;   /* owner thread, for display */
	uint64_t pad[4];        /* one slot per cache line */
} lk_slot;

/* A view of the table: nslots public slots, then the internal one. */
typedef struct lk_table {
	unsigned nslots;
	lk_slot *slots;
	unsigned hint; /* where this process starts looking (racy, a hint) */
} lk_table;

/* Bytes of a lock file with @nslots public slots (at most
 * MAPKV_MAX_READERS: 4 MiB). */
static inline uint64_t lk_file_size(unsigned nslots)
{
	return LK_HEADER + ((uint64_t)nslots + 1) * sizeof(lk_slot);
}

/* Claim a free public slot for @pid. Returns 0 and the slot's index, or
 * MAPKV_READERS_FULL. */
int lk_reader_claim(lk_table *t, uint64_t pid, uint64_t tid, unsigned *slot);
/* Claim the internal slot (MAPKV_READERS_FULL if busy). */
int lk_reader_claim_internal(lk_table *t, uint64_t pid, unsigned *slot);
/* Publish the snapshot a reader uses (0: none) and when it began. */
void lk_reader_set(lk_table *t, unsigned slot, uint64_t txnid, uint64_t start);
/* Give the slot back. */
void lk_reader_release(lk_table *t, unsigned slot);
/* The oldest snapshot any reader holds, or @none if no reader holds
 * one. */
uint64_t lk_oldest(lk_table *t, uint64_t none);
/* Public slots in use. */
unsigned lk_count(lk_table *t);
/* Free the slots of processes that are gone; @alive answers for a pid.
 * Returns how many were freed. */
unsigned lk_reap(lk_table *t, uint64_t self, int (*alive)(void *, uint64_t),
		 void *ctx);

#endif
