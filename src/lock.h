/*
 * lock.h: the lock file: the reader table and the last published commit,
 * shared by every process that has the database open.
 *
 * LOCK FILE (the real path of the database, symbolic links followed, and
 * "-lock"; host byte order and layout: it describes processes of one
 * machine and is rebuilt whenever no process has the database open, so
 * it is never moved between machines)
 *     0   4 magic      LK_MAGIC
 *     4   4 version    LK_VERSION
 *     8   4 nslots     public reader slots
 *    12   4 page_size  of the database
 *    16   8 meta_seq   number of commits published; the last one's meta
 *                      is meta[meta_seq % 2]
 *    24 368 meta[2]   two struct mk_meta: a writer fills the one not in
 *                      use, then increments meta_seq, so a writer killed
 *                      half-way leaves the previous one intact; a reader
 *                      copies meta[s % 2] and retries if meta_seq moved
 *                      by two or more meanwhile.
 *   392  16 db_dev, db_ino: identity of the database file the table
 *                      belongs to (os_fileinfo; 0, 0 if unknown)
 *   512  64 slot[0 .. nslots]: nslots public slots and one more that the
 *           library takes for its own short reads (mapkv_env_info) when
 *           every public one is in use.
 *   Slot: pid (0 = free), txnid (snapshot in use, 0 = none), start time
 *   (ns since 1970), thread id.
 *
 * The published meta is always the newest commit in the file: it only
 * moves forward, and only under the writer lock (a commit, or a writer
 * that finds a commit on disk that a killed writer could not publish) or
 * while the opener that builds the table is alone (it reads the meta
 * pages then, under the writer lock when it can write). An opener that
 * finds the table in use opens at the published meta without reading the
 * meta pages.
 *
 * Byte locks on the lock file (os_vfs lock_byte):
 *   byte 0  held exclusively while a process sets itself up (opening);
 *   byte 1  held shared by every open environment for its lifetime. An
 *           opener that can take it exclusively is alone: the table left by
 *           processes that died is stale, and it rebuilds the file.
 * Byte locks on the database file:
 *   byte 0  the writer lock (os_vfs lock; at 2^62 + 2^40 on Windows);
 *   LK_ID_BASE + h (2^41 + h; 2^62 + 2^41 + h on Windows), h < LK_ID_SPAN
 *           (2^40) a hash of the lock file's identity (device and inode):
 *           held shared by every environment for its lifetime. An opener
 *           takes its own byte, then looks for any other byte of the range
 *           held (lock_test): if there is one, the database is in use
 *           through another lock file (a hard link or a bind-mounted file
 *           in another folder, or a lock file removed or replaced while in
 *           use) and the opener refuses with MAPKV_LOCK_CONFLICT, as it does
 *           when the table's db_dev/db_ino are not its database's (the
 *           database file was replaced while the table is in use). Two
 *           racing openers both take their byte before looking, so at
 *           least one sees the other.
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
#include <stddef.h>
#include <stdint.h>

#include "page.h"

#define LK_MAGIC 0x4B4C4B4Du /* "MKLK" */
#define LK_VERSION 2u
#define LK_HEADER 512u
#define LK_BYTE_INIT 0
#define LK_BYTE_ALIVE 1
#define LK_ID_BASE ((uint64_t)1 << 41)
#define LK_ID_SPAN ((uint64_t)1 << 40)

typedef struct lk_header {
	uint32_t magic;
	uint32_t version;
	uint32_t nslots;
	uint32_t page_size;
	_Atomic uint64_t meta_seq;
	mk_meta meta[2];
	uint64_t db_dev, db_ino;
} lk_header;

_Static_assert(sizeof(lk_header) <= LK_HEADER, "lock file header too big");
_Static_assert(offsetof(lk_header, db_dev) == 392, "lock file layout moved");

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
