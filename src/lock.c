/*
 * lock.c: the lock-free reader table (see lock.h).
 *
 * Memory order: a reader stores its snapshot id with a sequentially
 * consistent store and then re-reads the current commit id (txn.c); the
 * writer scans the slots with sequentially consistent loads after it has
 * read the current commit id. Either the writer sees the reader's slot, or
 * the reader sees a newer commit and retries with it, so a page a reader
 * can still reach is never handed out again.
 */
#include "lock.h"

#include "mapkv.h"

int lk_reader_claim(lk_table *t, uint64_t pid, unsigned *slot)
{
	unsigned n = t->nslots;
	unsigned start = atomic_load_explicit(&t->hint, memory_order_relaxed);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (start + k) % n;
		uint64_t expect = 0;
		if (atomic_load_explicit(&t->slots[i].pid,
					 memory_order_relaxed) != 0)
			continue;
		if (atomic_compare_exchange_strong(&t->slots[i].pid, &expect,
						   pid)) {
			atomic_store_explicit(&t->hint, (i + 1) % n,
					      memory_order_relaxed);
			*slot = i;
			return 0;
		}
	}
	return MAPKV_READERS_FULL;
}

void lk_reader_set(lk_table *t, unsigned slot, uint64_t txnid)
{
	atomic_store(&t->slots[slot].txnid, txnid);
}

void lk_reader_release(lk_table *t, unsigned slot)
{
	atomic_store(&t->slots[slot].txnid, 0);
	atomic_store_explicit(&t->slots[slot].pid, 0, memory_order_release);
	atomic_store_explicit(&t->hint, slot, memory_order_relaxed);
}

uint64_t lk_oldest(lk_table *t, uint64_t none)
{
	uint64_t oldest = UINT64_MAX;
	for (unsigned i = 0; i <= t->nslots; i++) {
		uint64_t id = atomic_load(&t->slots[i].txnid);
		if (id && id < oldest)
			oldest = id;
	}
	return oldest == UINT64_MAX ? none : oldest;
}

unsigned lk_count(lk_table *t)
{
	unsigned c = 0;
	for (unsigned i = 0; i < t->nslots; i++)
		c += atomic_load_explicit(&t->slots[i].pid,
					  memory_order_relaxed) != 0;
	return c;
}
