/*
 * lock.h: the reader table and the writer lock.
 *
 * Each read transaction holds a slot in which it publishes the id of the
 * snapshot it reads; a writer reuses a page freed by commit T only when no
 * slot holds an id older than T. Slots are claimed and published with
 * atomics only, so beginning and ending a read transaction takes no lock.
 *
 * The table is an array of cache-line-sized slots. Today it lives in the
 * process's memory; the multi-process design places the same array in a
 * shared lock file, which is why a slot records the owner's pid (a dead
 * owner's slot can be reclaimed) and holds nothing but fixed-size
 * integers.
 */
#ifndef MAPKV_LOCK_H
#define MAPKV_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct lk_slot {
	_Atomic uint64_t pid;   /* owner, 0 when free */
	_Atomic uint64_t txnid; /* snapshot in use, 0 when none */
	uint64_t pad[6];        /* one slot per cache line */
} lk_slot;

/* nslots public slots, then one more (index nslots) that the library keeps
 * for its own short read transactions (mapkv_env_info), taken under the
 * env mutex, so that they work even when every public slot is in use. */
typedef struct lk_table {
	unsigned nslots;
	lk_slot *slots;
	_Atomic unsigned hint; /* where to start looking for a free slot */
} lk_table;

/* Claim a free slot for @pid. Returns 0 and the slot's index, or
 * MAPKV_READERS_FULL. */
int lk_reader_claim(lk_table *t, uint64_t pid, unsigned *slot);
/* Publish the snapshot a reader uses (0: none). */
void lk_reader_set(lk_table *t, unsigned slot, uint64_t txnid);
/* Give the slot back. */
void lk_reader_release(lk_table *t, unsigned slot);
/* The oldest snapshot any reader holds, or @none if no reader holds
 * one. */
uint64_t lk_oldest(lk_table *t, uint64_t none);
/* Slots in use. */
unsigned lk_count(lk_table *t);

#endif
