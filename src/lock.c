/*
 * lock.c: the lock-free reader table (see lock.h).
 *
 * Memory order: a reader stores its snapshot id with a sequentially
 * consistent store and then re-reads the current commit id (txn.c); the
 * writer scans the slots with sequentially consistent loads after it has
 * read the current commit id. Either the writer sees the reader's slot, or
 * the reader sees a newer commit and retries with it, so a page a reader
 * can still reach is never handed out again. The table lives in shared
 * memory: only lock-free 64-bit atomics are used on it.
 */
#include "lock.h"

#include "mapkv.h"

static int claim_at(lk_table *t, unsigned i, uint64_t pid, uint64_t tid)
{
	uint64_t expect = 0;
	if (atomic_load_explicit(&t->slots[i].pid, memory_order_relaxed) != 0)
		return 0;
	if (!atomic_compare_exchange_strong(&t->slots[i].pid, &expect, pid))
		return 0;
	atomic_store_explicit(&t->slots[i].tid, tid, memory_order_relaxed);
	return 1;
}

int lk_reader_claim(lk_table *t, uint64_t pid, uint64_t tid, unsigned *slot)
{
	unsigned n = t->nslots;
	unsigned start = t->hint % n;
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (start + k) % n;
		if (claim_at(t, i, pid, tid)) {
			t->hint = i + 1;
			*slot = i;
			return 0;
		}
	}
	return MAPKV_READERS_FULL;
}

int lk_reader_claim_internal(lk_table *t, uint64_t pid, unsigned *slot)
{
	if (!claim_at(t, t->nslots, pid, 0))
		return MAPKV_READERS_FULL;
	*slot = t->nslots;
	return 0;
}

void lk_reader_set(lk_table *t, unsigned slot, uint64_t txnid, uint64_t start)
{
	atomic_store_explicit(&t->slots[slot].start, start,
			      memory_order_relaxed);
	atomic_store(&t->slots[slot].txnid, txnid);
}

void lk_reader_release(lk_table *t, unsigned slot)
{
	atomic_store(&t->slots[slot].txnid, 0);
	atomic_store_explicit(&t->slots[slot].pid, 0, memory_order_release);
	if (slot < t->nslots)
		t->hint = slot;
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

unsigned lk_reap(lk_table *t, uint64_t self, int (*alive)(void *, uint64_t),
		 void *ctx)
{
	unsigned freed = 0;
	for (unsigned i = 0; i <= t->nslots; i++) {
		uint64_t pid = atomic_load(&t->slots[i].pid);
		if (pid == 0 || pid == self || pid == UINT64_MAX ||
		    alive(ctx, pid))
			continue;
		/* Take the slot from the dead process (so no other reaper
		 * can), clear its snapshot, then free it. */
		uint64_t expect = pid;
		if (!atomic_compare_exchange_strong(&t->slots[i].pid, &expect,
						    UINT64_MAX))
			continue;
		atomic_store(&t->slots[i].txnid, 0);
		atomic_store(&t->slots[i].pid, 0);
		freed++;
	}
	return freed;
}
