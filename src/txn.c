/*
 * txn.c: transactions.
 *
 * Readers: a read transaction claims a reader slot, copies the last
 * published meta (a sequence lock, no mutex), publishes the snapshot's id
 * in its slot and checks that it is still the current commit; from then on
 * every page it reaches stays untouched until it ends, because a writer
 * reuses a page freed by commit T only when no slot holds an id below T.
 *
 * The writer: one at a time (a mutex in the process, a lock on the file
 * between processes). It starts from the newest valid meta page on disk,
 * changes private copies of pages (pager.c), and commits in this order:
 *   1. store changed tree records in the catalog;
 *   2. record the pages it freed, and the free pages it did not use, in the
 *      free-page tree (save_free);
 *   3. write every private page (pwrite): the new tree is in the file but
 *      nothing points to it yet;
 *   4. write the meta page with the older id (id % 2) and sync: this one
 *      page makes the commit. When the meta page can list the runs of
 *      pages written in 3 with their checksum, this one sync is the only
 *      one (open verifies the pages and falls back to the other meta if
 *      any is missing or torn); otherwise 3 ends with a sync of its own, so
 *      the pages are durable before the meta page is written;
 *   5. publish the meta in the lock file, to the readers of every process
 *      (lock.h: the published meta is always the newest commit).
 * A crash before 4 completes leaves the previous meta as the newest valid
 * one (a torn meta page fails its checksum, an incomplete commit fails
 * verification), and the previous tree's pages were not touched: steps
 * 1-3 wrote only pages that were free. A failure in 1-3 fails the commit
 * and the file is as it was. A failure in 4 (the write or its sync) leaves
 * the file's state unknown to this process (the meta may or may not reach
 * the disk, and the kernel may have dropped the pages of a failed sync),
 * so the environment refuses further writes with MAPKV_PANIC until it is
 * reopened, which reads whatever the disk holds.
 */
#include "txn.h"

#include <stdlib.h>
#include <string.h>

#include "checksum.h"

/* env.c */
int env_load_meta(mapkv_env *env, mk_meta *m);
int env_map_to(mapkv_env *env, uint64_t pages);
int env_pid_alive(void *env, uint64_t pid);

/* ---- meta publication (sequence lock) ---- */

uint64_t txn_read_meta(mapkv_env *env, mk_meta *m)
{
	lk_header *h = env->lk;
	for (;;) {
		uint64_t s1 = atomic_load_explicit(&h->meta_seq,
						   memory_order_acquire);
		memcpy(m, &h->meta[s1 & 1], sizeof(*m));
		atomic_thread_fence(memory_order_acquire);
		uint64_t s2 = atomic_load_explicit(&h->meta_seq,
						   memory_order_relaxed);
		/* The next writer fills the other copy; only the one after
		 * it could have been writing this one. */
		if (s2 - s1 < 2)
			return s1;
	}
}

/* Only under the writer lock (or by an opener alone on the lock file),
 * and only ever a newer commit than the one published (lock.h). The store
 * is sequentially consistent: with the reader's store of its slot and
 * load of meta_seq (begin_read), and the writer's scan of the slots after
 * this, either the writer sees the reader's snapshot or the reader sees
 * this commit and takes it instead (lock.c). */
void txn_publish_meta(mapkv_env *env, const mk_meta *m)
{
	lk_header *h = env->lk;
	uint64_t s = atomic_load(&h->meta_seq);
	memcpy(&h->meta[(s + 1) & 1], m, sizeof(*m));
	atomic_store(&h->meta_seq, s + 1);
}

int txn_fail(mapkv_txn *txn, int rc)
{
	if (!(txn->flags & MAPKV_RDONLY))
		txn->state = TXN_FAILED;
	return rc;
}

/* ---- free-page records ---- */

static void free_key(uint8_t *k, uint64_t id, uint64_t seq)
{
	for (int i = 0; i < 8; i++) {
		k[i] = (uint8_t)(id >> (56 - 8 * i));
		k[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
	}
}

static uint64_t free_key_id(const uint8_t *k)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | k[i];
	return v;
}

/* The pager ran out of pages to reuse: move the oldest free-page record
 * that no reader can still need into the reuse list. */
static int reclaim(void *ctx)
{
	mapkv_txn *txn = ctx;
	mapkv_env *env = txn->env;
	tree_rec *ft = &txn->meta.trees[MK_TREE_FREE];
	bt_path path;
	mapkv_val k, v;
	uint64_t last = txn->txnid - 1;
	int rc = bt_first(&txn->pg, ft, &path);
	if (rc == MAPKV_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if ((rc = bt_path_kv(&txn->pg, &path, &k, &v)))
		return rc;
	if (k.size != MK_FREE_KEY || (v.size & 3))
		return MAPKV_CORRUPT;
	uint64_t id = free_key_id(k.data);
	if (id > last)
		return MAPKV_CORRUPT;
	if (id > lk_oldest(&env->readers, last))
		return 0; /* a reader may still see these pages */
	size_t n = v.size / 4;
	const uint8_t *p = v.data;
	for (size_t i = 0; i < n; i++) {
		pgno_t pgno = pg_ld32(p + 4 * i);
		if (pgno == 0)
			continue;
		/* A page listed twice, or one already handed out, would be
		 * given to two owners (a duplicate within the reuse list is
		 * found when it is sorted). */
		if (pgno < MK_NUM_META || pgno >= txn->pg.snap_pages ||
		    pager_reused(&txn->pg, pgno))
			return MAPKV_CORRUPT;
		if ((rc = pgvec_push(&txn->pg, &txn->pg.reuse, pgno)))
			return rc;
		txn->pg.loaded++;
	}
	txn->pg.reuse_unsorted = 1;
	uint8_t key[MK_FREE_KEY];
	memcpy(key, k.data, MK_FREE_KEY);
	return bt_del(&txn->pg, ft, key, MK_FREE_KEY);
}

/* Reserve space for chunked records of the list @v under id @id and chunk
 * numbers base, base+1, ...; cap[] remembers each chunk's reserved
 * entries. Returns 1 if anything was (re)reserved. */
static int reserve_chunks(mapkv_txn *txn, uint64_t id, uint64_t base,
			  const pgvec *v, unsigned *cap, size_t maxchunks,
			  int *changed)
{
	unsigned ch = pg_free_chunk(txn->pg.psize);
	tree_rec *ft = &txn->meta.trees[MK_TREE_FREE];
	size_t nc = (v->n + ch - 1) / ch;
	if (nc > maxchunks)
		return MAPKV_NOMEM;
	for (size_t c = 0; c < nc; c++) {
		size_t need = v->n - c * ch;
		if (need > ch)
			need = ch;
		if (need <= cap[c])
			continue;
		/* A little slack: the puts themselves free and allocate a
		 * few pages, which would otherwise force another round. */
		size_t want = need + 8 > ch ? ch : need + 8;
		uint8_t key[MK_FREE_KEY];
		void *dst;
		free_key(key, id, base + c);
		int rc = bt_put(&txn->pg, ft, key, MK_FREE_KEY, NULL, want * 4,
				BT_RESERVE, &dst);
		if (rc)
			return rc;
		cap[c] = (unsigned)want;
		*changed = 1;
	}
	return 0;
}

static int fill_chunks(mapkv_txn *txn, uint64_t id, uint64_t base,
		       const pgvec *v, const unsigned *cap, size_t maxchunks)
{
	unsigned ch = pg_free_chunk(txn->pg.psize);
	tree_rec *ft = &txn->meta.trees[MK_TREE_FREE];
	size_t done = 0;
	for (size_t c = 0; c < maxchunks && cap[c]; c++) {
		uint8_t key[MK_FREE_KEY];
		mapkv_val val;
		free_key(key, id, base + c);
		int rc = bt_get(&txn->pg, ft, key, MK_FREE_KEY, &val);
		if (rc)
			return rc;
		if (val.size != cap[c] * 4u)
			return MAPKV_CORRUPT;
		/* Every free-tree page on the way to this record was made
		 * private by the reserving put, so the value is writable. */
		uint8_t *dst = (uint8_t *)val.data;
		for (unsigned i = 0; i < cap[c]; i++) {
			pgno_t p = 0;
			if (done < v->n && i < ch)
				p = v->v[done++];
			pg_st32(dst + 4 * i, p);
		}
	}
	return done == v->n ? 0 : MAPKV_CORRUPT;
}

/*
 * Record in the free-page tree the pages this commit freed (under its own
 * id) and the free pages it loaded but did not use (under id 0). Writing
 * the records changes the free-page tree, which itself frees and allocates
 * pages, so the lists keep moving: reserve room for them (with slack) until
 * a round reserves nothing new, and only then write the page numbers into
 * the reserved space. Loading further records is switched off meanwhile
 * (new pages come from the reuse list or the end of the file).
 */
static int save_free(mapkv_txn *txn)
{
	pager *pg = &txn->pg;
	os_vfs *vfs = txn->env->vfs;
	int rc = 0;
	pg->reclaim = NULL;
	if ((rc = pager_trim_tail(pg)))
		return rc;
	if (pg->freed.n == 0 && pg->reuse.n == 0)
		return 0;
	unsigned ch = pg_free_chunk(pg->psize);
	/* Both lists can only grow by what the tree changes below cost,
	 * which is far less than their size plus a margin. */
	size_t maxf = (pg->freed.n + pg->reuse.n) / ch + 64;
	unsigned *capf = vfs->alloc(vfs, 2 * maxf * sizeof(unsigned));
	if (!capf)
		return MAPKV_NOMEM;
	memset(capf, 0, 2 * maxf * sizeof(unsigned));
	unsigned *capr = capf + maxf;
	uint64_t rbase = txn->txnid << 16;
	int changed = 1;
	for (int round = 0; changed; round++) {
		if (round > 64) {
			rc = MAPKV_CORRUPT; /* cannot converge: a bug */
			goto out;
		}
		changed = 0;
		pgvec_sort(&pg->freed, 0);
		if ((rc = reserve_chunks(txn, txn->txnid, 0, &pg->freed, capf,
					 maxf, &changed)))
			goto out;
		if ((rc = pager_trim_tail(pg)))
			goto out;
		if ((rc = reserve_chunks(txn, 0, rbase, &pg->reuse, capr, maxf,
					 &changed)))
			goto out;
	}
	/* Nothing moves any more: write the lists into their records, short
	 * extents first (pgvec_order_extents), after a last look for pages
	 * freed twice or freed while free. */
	if ((rc = pager_check_freed(pg)) ||
	    (rc = pgvec_order_extents(pg, &pg->freed)) ||
	    (rc = pgvec_order_extents(pg, &pg->reuse)))
		goto out;
	pg->reuse_unsorted = 1;
	if ((rc = fill_chunks(txn, txn->txnid, 0, &pg->freed, capf, maxf)))
		goto out;
	rc = fill_chunks(txn, 0, rbase, &pg->reuse, capr, maxf);
out:
	vfs->free(vfs, capf);
	return rc;
}

int txn_count_free(mapkv_txn *txn, uint64_t *pages)
{
	bt_path path;
	mapkv_val k, v;
	uint64_t n = 0;
	const tree_rec *ft = &txn->meta.trees[MK_TREE_FREE];
	int rc = bt_first(&txn->pg, ft, &path);
	while (rc == 0) {
		if ((rc = bt_path_kv(&txn->pg, &path, &k, &v)))
			return rc;
		const uint8_t *p = v.data;
		for (size_t i = 0; i + 4 <= v.size; i += 4)
			n += pg_ld32(p + i) != 0;
		rc = bt_next(&txn->pg, &path);
	}
	if (rc != MAPKV_NOTFOUND)
		return rc;
	*pages = n;
	return 0;
}

/* ---- trees of a transaction ----
 *
 * Handles. A named tree is reached through a slot of env->dbis, bound to
 * its name while a handle for it is open. Its handle is
 *   gen << slot_bits | slot
 * where slot_bits is what max_dbs needs (at most DBI_SLOT_BITS) and gen
 * counts the handles the slot has given out: closing a handle advances its
 * slot's generation, so the closed handle matches nothing again, and a
 * slot whose generations are used up is retired rather than reused. Every
 * use of a handle compares it with its slot's valid handle (one atomic
 * load), so a close takes effect in running transactions too.
 *
 * Transactions keep per-slot state (txn->named): the tree's record as the
 * transaction sees it, changed in place by a writer and stored in the
 * catalog at commit under the slot's name. A transaction with such state
 * holds a reference on the slot (TT_HELD, dbi_slot.refs), which keeps the
 * slot bound to its name after a close: the writer's changes still reach
 * the right name at commit, and no slot ever carries state of two names.
 * For the same reason, while a closed slot is still held, opening its
 * name again reopens that slot (with a new generation) rather than
 * binding a second slot to the name. A slot becomes free once it is closed
 * and no transaction holds it.
 *
 * Lookups that find nothing bind nothing; a slot bound by a write
 * transaction to create a tree (owner) is closed again if that
 * transaction does not commit.
 */

#define DBI_SLOT_BITS 24 /* at most 2^24 - 1 trees open at once */

/* The fewest bits (at least 1) that number the slots 0..max_dbs-1. On
 * every use of a handle, so without a loop where the compiler helps. */
static unsigned slot_bits(const mapkv_env *env)
{
	unsigned n = env->max_dbs;
	unsigned b;
#if defined(__GNUC__)
	b = n <= 2 ? 1 : 32 - (unsigned)__builtin_clz(n - 1);
#else
	for (b = 1; b < 32 && (1u << b) < n; b++)
		;
#endif
	return b < DBI_SLOT_BITS ? b : DBI_SLOT_BITS;
}

static uint32_t max_gen(const mapkv_env *env)
{
	return (uint32_t)((1ull << (32 - slot_bits(env))) - 1);
}

/* Slots that may be bound: below max_dbs and below 2^slot_bits. */
static unsigned usable_slots(const mapkv_env *env)
{
	unsigned lim = 1u << slot_bits(env);
	return env->max_dbs < lim ? env->max_dbs : lim;
}

static uint32_t make_handle(const mapkv_env *env, unsigned slot, uint32_t gen)
{
	return gen << slot_bits(env) | slot;
}

/* The slot of an open named handle, or MAPKV_BAD_DBI. */
static int dbi_slot_of(mapkv_env *env, mapkv_dbi dbi, unsigned *slot)
{
	unsigned s = dbi & ((1u << slot_bits(env)) - 1);
	if (s == 0 ||
	    s >= atomic_load_explicit(&env->ndbis, memory_order_acquire))
		return MAPKV_BAD_DBI;
	if (atomic_load_explicit(&env->dbis[s].handle, memory_order_acquire) !=
	    dbi)
		return MAPKV_BAD_DBI;
	*slot = s;
	return 0;
}

/* Under env->mutex: invalidate slot @s's handle. */
static void slot_close(mapkv_env *env, unsigned s)
{
	dbi_slot *d = &env->dbis[s];
	atomic_store_explicit(&d->handle, 0, memory_order_release);
	d->gen++; /* past max_gen: retired once free */
}

/* Under env->mutex: give the slot back if nothing uses it any more. */
static void slot_release(mapkv_env *env, unsigned s)
{
	dbi_slot *d = &env->dbis[s];
	if (d->refs || atomic_load(&d->handle) || !d->name)
		return;
	env->vfs->free(env->vfs, d->name);
	d->name = NULL;
	d->nlen = 0;
}

/* Under env->mutex: bind a free slot to @name; its handle is not valid
 * until slot_open. */
static int slot_bind(mapkv_env *env, const char *name, size_t nlen,
		     unsigned *out)
{
	unsigned n = atomic_load(&env->ndbis);
	unsigned s;
	uint32_t mg = max_gen(env);
	for (s = 1; s < n; s++)
		if (!env->dbis[s].name && env->dbis[s].gen <= mg)
			break;
	if (s == n && n >= usable_slots(env))
		return MAPKV_DBS_FULL;
	char *copy = env->vfs->alloc(env->vfs, nlen + 1);
	if (!copy)
		return MAPKV_NOMEM;
	memcpy(copy, name, nlen);
	copy[nlen] = 0;
	dbi_slot *d = &env->dbis[s];
	d->name = copy;
	d->nlen = nlen;
	d->refs = 0;
	d->owner = NULL;
	if (s == n) {
		d->gen = 0;
		atomic_store_explicit(&d->handle, 0, memory_order_relaxed);
		atomic_store_explicit(&env->ndbis, n + 1, memory_order_release);
	}
	*out = s;
	return 0;
}

/* Under env->mutex: make slot @s's handle valid (a new generation after a
 * close). */
static int slot_open(mapkv_env *env, unsigned s, mapkv_dbi *dbi)
{
	dbi_slot *d = &env->dbis[s];
	uint32_t h = atomic_load(&d->handle);
	if (!h) {
		if (d->gen > max_gen(env))
			return MAPKV_DBS_FULL; /* retired, still held */
		h = make_handle(env, s, d->gen);
		atomic_store_explicit(&d->handle, h, memory_order_release);
	}
	*dbi = h;
	return 0;
}

static int load_named(mapkv_txn *txn)
{
	if (txn->named)
		return 0;
	os_vfs *vfs = txn->env->vfs;
	size_t sz = txn->env->max_dbs * sizeof(txn_tree);
	txn->named = vfs->alloc(vfs, sz);
	if (!txn->named)
		return MAPKV_NOMEM;
	memset(txn->named, 0, sz);
	return 0;
}

static int catalog_get(mapkv_txn *txn, const char *name, size_t nlen,
		       tree_rec *rec)
{
	mapkv_val v;
	int rc = bt_get(&txn->pg, &txn->meta.trees[MK_TREE_CATALOG], name, nlen,
			&v);
	if (rc)
		return rc;
	if (v.size != MK_TREE_REC_SIZE)
		return MAPKV_CORRUPT;
	pg_tree_decode(v.data, rec);
	if (rec->depth > BT_MAXDEPTH || (rec->root == 0) != (rec->depth == 0))
		return MAPKV_CORRUPT;
	return 0;
}

/* Under env->mutex (or holding slot @s): the transaction's state for slot
 * @s, loaded from the catalog if need be. 0 if the tree exists in @txn,
 * MAPKV_NOTFOUND if not. */
static int slot_tree(mapkv_txn *txn, unsigned s, txn_tree **out)
{
	txn_tree *tt = &txn->named[s];
	*out = tt;
	if (!(tt->state & TT_LOADED)) {
		dbi_slot *d = &txn->env->dbis[s];
		int rc = catalog_get(txn, d->name, d->nlen, &tt->rec);
		if (rc)
			return rc;
		tt->state |= TT_LOADED;
	}
	return (tt->state & TT_DELETED) ? MAPKV_NOTFOUND : 0;
}

/* Under env->mutex: count @txn in slot @s's holders. A transaction's
 * state for a slot is only valid while it holds the slot (the slot may
 * have had another name before), so it starts afresh here. */
static void slot_hold(mapkv_txn *txn, unsigned s)
{
	txn_tree *tt = &txn->named[s];
	if (!(tt->state & TT_HELD)) {
		memset(tt, 0, sizeof(*tt));
		tt->state = TT_HELD;
		txn->env->dbis[s].refs++;
	}
}

int txn_tree_get(mapkv_txn *txn, mapkv_dbi dbi, txn_tree **out)
{
	mapkv_env *env = txn->env;
	if (dbi == 0) {
		*out = &txn->main;
		return 0;
	}
	unsigned s;
	int rc = dbi_slot_of(env, dbi, &s);
	if (rc)
		return rc;
	if ((rc = load_named(txn)))
		return rc;
	txn_tree *tt = &txn->named[s];
	if (!(tt->state & TT_HELD)) {
		/* First use in this transaction: hold the slot, so its name
		 * stays while the transaction has state for it. */
		os_mutex_lock(env->mutex);
		rc = atomic_load(&env->dbis[s].handle) == dbi ? 0
							      : MAPKV_BAD_DBI;
		if (!rc)
			slot_hold(txn, s);
		os_mutex_unlock(env->mutex);
		if (rc)
			return rc;
	}
	rc = slot_tree(txn, s, &tt);
	if (rc)
		return rc == MAPKV_NOTFOUND ? MAPKV_BAD_DBI : rc;
	*out = tt;
	return 0;
}

int txn_tree_ref(mapkv_txn *txn, mapkv_dbi dbi, txn_tree **out,
		 _Atomic uint32_t **live)
{
	int rc = txn_tree_get(txn, dbi, out);
	if (rc)
		return rc;
	/* The transaction holds the slot (txn_tree_get): the word stays
	 * the slot's, and a close or a reopen changes what it holds. */
	*live = dbi ? &txn->env->dbis[dbi & ((1u << slot_bits(txn->env)) - 1)]
				.handle
		    : NULL;
	return 0;
}

int txn_dbi_open(mapkv_txn *txn, const char *name, unsigned flags,
		 mapkv_dbi *dbi)
{
	if (!name) {
		*dbi = 0;
		return 0;
	}
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > MK_NAME_MAX)
		return MAPKV_INVALID;
	int rc = load_named(txn);
	if (rc)
		return rc;
	mapkv_env *env = txn->env;
	os_mutex_lock(env->mutex);
	/* The slot bound to the name, open or closed but still held. */
	unsigned n = atomic_load(&env->ndbis), s;
	for (s = 1; s < n; s++) {
		dbi_slot *d = &env->dbis[s];
		if (d->name && d->nlen == nlen &&
		    memcmp(d->name, name, nlen) == 0)
			break;
	}
	int fresh = s == n;
	txn_tree *tt = NULL;
	tree_rec rec;
	if (!fresh) {
		slot_hold(txn, s);
		rc = slot_tree(txn, s, &tt);
	} else {
		rc = catalog_get(txn, name, nlen, &rec);
	}
	if (rc && rc != MAPKV_NOTFOUND)
		goto out;
	int exists = rc == 0;
	if (!exists) {
		rc = !(flags & MAPKV_CREATE)       ? MAPKV_NOTFOUND
		     : (txn->flags & MAPKV_RDONLY) ? MAPKV_READONLY
						   : 0;
		if (rc)
			goto out; /* nothing bound */
	}
	if (fresh && (rc = slot_bind(env, name, nlen, &s)))
		goto out;
	dbi_slot *d = &env->dbis[s];
	int reopened = !atomic_load(&d->handle);
	if ((rc = slot_open(env, s, dbi))) {
		slot_release(env, s);
		goto out;
	}
	if (fresh) {
		slot_hold(txn, s);
		tt = &txn->named[s];
		if (exists) {
			tt->rec = rec;
			tt->state |= TT_LOADED;
		}
	}
	if (!exists) {
		memset(&tt->rec, 0, sizeof(tt->rec));
		tt->state = TT_HELD | TT_LOADED | TT_DIRTY;
		txn->mod_seq++;
		/* A handle no one held before exists for this creation only:
		 * it goes if the creation does. */
		if (reopened)
			d->owner = txn;
	} else if (d->owner != txn) {
		d->owner = NULL; /* another transaction has the handle */
	}
	rc = 0;
out:
	os_mutex_unlock(env->mutex);
	return rc;
}

int txn_dbi_close(mapkv_env *env, mapkv_dbi dbi)
{
	if (dbi == 0)
		return MAPKV_INVALID;
	os_mutex_lock(env->mutex);
	unsigned s;
	int rc = dbi_slot_of(env, dbi, &s);
	if (!rc) {
		slot_close(env, s);
		slot_release(env, s);
	}
	os_mutex_unlock(env->mutex);
	return rc;
}

/* The end of a transaction: let go of its slots; a write transaction that
 * did not commit closes the handles of the trees it created. */
static void dbi_end(mapkv_txn *txn, int committed)
{
	mapkv_env *env = txn->env;
	if (!txn->named)
		return;
	os_mutex_lock(env->mutex);
	unsigned n = atomic_load(&env->ndbis);
	for (unsigned s = 1; s < n; s++) {
		if (!(txn->named[s].state & TT_HELD))
			continue;
		dbi_slot *d = &env->dbis[s];
		if (d->owner == txn) {
			/* (Reopened after a close, it is closed again.) */
			if (!committed && atomic_load(&d->handle))
				slot_close(env, s);
			d->owner = NULL;
		}
		d->refs--;
		slot_release(env, s);
	}
	os_mutex_unlock(env->mutex);
}

int txn_dbi_drop(mapkv_txn *txn, mapkv_dbi dbi, int del)
{
	txn_tree *tt;
	int rc = txn_tree_get(txn, dbi, &tt);
	if (rc)
		return rc;
	if (del && dbi == 0)
		return MAPKV_INVALID;
	txn->mod_seq++;
	if ((rc = bt_drop(&txn->pg, &tt->rec)))
		return txn_fail(txn, rc);
	tt->state |= TT_DIRTY;
	if (del)
		tt->state |= TT_DELETED;
	return 0;
}

/* Store the records of changed named trees in the catalog. The slots of
 * changed trees are held by this transaction, so their names stay. */
static int flush_trees(mapkv_txn *txn)
{
	mapkv_env *env = txn->env;
	if (!txn->named)
		return 0;
	unsigned n = atomic_load(&env->ndbis);
	for (unsigned i = 1; i < n; i++) {
		txn_tree *tt = &txn->named[i];
		if (!(tt->state & TT_DIRTY))
			continue;
		dbi_slot *s = &env->dbis[i];
		tree_rec *cat = &txn->meta.trees[MK_TREE_CATALOG];
		int rc;
		if (tt->state & TT_DELETED) {
			rc = bt_del(&txn->pg, cat, s->name, s->nlen);
			if (rc == MAPKV_NOTFOUND)
				rc = 0;
		} else {
			uint8_t buf[MK_TREE_REC_SIZE];
			pg_tree_encode(buf, &tt->rec);
			rc = bt_put(&txn->pg, cat, s->name, s->nlen, buf,
				    sizeof(buf), 0, NULL);
		}
		if (rc)
			return rc;
		tt->state &= ~TT_DIRTY;
	}
	return 0;
}

int txn_dbi_list(mapkv_txn *txn, int (*fn)(void *ctx, const char *name),
		 void *ctx)
{
	int rc;
	if (!(txn->flags & MAPKV_RDONLY)) {
		/* Let the catalog reflect this transaction's changes. */
		txn->mod_seq++;
		if ((rc = flush_trees(txn)))
			return txn_fail(txn, rc);
	}
	bt_path path;
	mapkv_val k;
	char name[MK_NAME_MAX + 1];
	rc = bt_first(&txn->pg, &txn->meta.trees[MK_TREE_CATALOG], &path);
	while (rc == 0) {
		if ((rc = bt_path_kv(&txn->pg, &path, &k, NULL)))
			return rc;
		if (k.size == 0 || k.size > MK_NAME_MAX)
			return MAPKV_CORRUPT;
		memcpy(name, k.data, k.size);
		name[k.size] = 0;
		if ((rc = fn(ctx, name)))
			return rc;
		rc = bt_next(&txn->pg, &path);
	}
	return rc == MAPKV_NOTFOUND ? 0 : rc;
}

/* ---- begin / commit / abort ---- */

static int begin_read(mapkv_env *env, mapkv_txn *txn, unsigned flags)
{
	int rc;
	rc = lk_reader_claim(&env->readers, env->pid, 0, &txn->slot);
	if (rc == MAPKV_READERS_FULL &&
	    lk_reap(&env->readers, env->pid, env_pid_alive, env))
		rc = lk_reader_claim(&env->readers, env->pid, 0, &txn->slot);
	if (rc == MAPKV_READERS_FULL && (flags & TXN_INTERNAL))
		rc = lk_reader_claim_internal(&env->readers, env->pid,
					      &txn->slot);
	if (rc)
		return rc;
	for (;;) {
		uint64_t seq = txn_read_meta(env, &txn->meta);
		lk_reader_set(&env->readers, txn->slot, txn->meta.txnid,
			      env->vfs->time_ns(env->vfs));
		/* Still the last commit once the slot is visible? Then no
		 * writer can reuse a page of it (see lock.c). */
		if (atomic_load(&env->lk->meta_seq) == seq)
			break;
	}
	/* Another process may have grown the file. */
	if ((rc = env_map_to(env, txn->meta.last_pgno))) {
		lk_reader_release(&env->readers, txn->slot);
		return rc;
	}
	/* Where growth replaces the map, hold it for the transaction's
	 * lifetime (env.h). Taken after env_map_to, which may need it
	 * exclusively; the map only grows in between. */
	if (env->map_lock && (rc = os_rwlock_rdlock(env->map_lock))) {
		lk_reader_release(&env->readers, txn->slot);
		return rc;
	}
	if (atomic_load(&env->map_lost)) {
		if (env->map_lock)
			os_rwlock_rdunlock(env->map_lock);
		lk_reader_release(&env->readers, txn->slot);
		return MAPKV_MAP_LOST;
	}
	txn->txnid = txn->meta.txnid;
	rc = pager_begin(&txn->pg, env, txn->meta.last_pgno, 0);
	if (rc) {
		if (env->map_lock)
			os_rwlock_rdunlock(env->map_lock);
		lk_reader_release(&env->readers, txn->slot);
		return rc;
	}
	return 0;
}

static void writer_unlock(mapkv_env *env)
{
	if (env->map_lock)
		os_rwlock_rdunlock(env->map_lock);
	env->vfs->unlock(env->file, OS_LOCK_WRITER);
	env->wtxn = NULL;
	os_mutex_unlock(env->wmutex);
}

static int begin_write(mapkv_env *env, mapkv_txn *txn, unsigned flags)
{
	int rc;
	if (env->flags & MAPKV_RDONLY)
		return MAPKV_READONLY;
	if (atomic_load(&env->panic))
		return MAPKV_PANIC;
	/* Where growth replaces the map (env.h), this thread's holds of the
	 * map lock (its read transactions) are set aside while it waits for
	 * the writer locks: the writer it waits for may be growing the map,
	 * and waits for every other thread to leave it. */
	unsigned held = env->map_lock ? os_rwlock_suspend(env->map_lock) : 0;
	if (flags & MAPKV_TRY) {
		if (os_mutex_trylock(env->wmutex))
			rc = MAPKV_BUSY;
		else
			rc = 0;
	} else {
		os_mutex_lock(env->wmutex);
		rc = 0;
	}
	if (!rc) {
		rc = env->vfs->lock(env->file, OS_LOCK_WRITER,
				    !(flags & MAPKV_TRY));
		if (rc)
			os_mutex_unlock(env->wmutex);
	}
	if (env->map_lock) {
		/* Back, plus one hold for the write transaction itself. */
		int rc2 = os_rwlock_resume(env->map_lock, held + !rc);
		if (rc2 && !rc) {
			env->vfs->unlock(env->file, OS_LOCK_WRITER);
			os_mutex_unlock(env->wmutex);
			rc = rc2;
		}
	}
	if (rc)
		return rc;
	env->wtxn = txn;
	if (atomic_load(&env->panic)) {
		rc = MAPKV_PANIC;
		goto fail;
	}
	if (atomic_load(&env->map_lost)) {
		rc = MAPKV_MAP_LOST;
		goto fail;
	}
	/* The table must still be there before the writer reads it: one
	 * fstat per write transaction (env_check_lock). */
	if ((rc = env_check_lock(env)))
		goto fail;
	/* Start from the disk: a writer killed between its meta page and
	 * its publication left a commit only the disk knows. */
	if ((rc = env_load_meta(env, &txn->meta)))
		goto fail;
	/* Freed slots of dead readers give their pages back. */
	lk_reap(&env->readers, env->pid, env_pid_alive, env);
	mk_meta pub;
	txn_read_meta(env, &pub);
	if (txn->meta.txnid < pub.txnid) {
		/* The file lost a commit every process was told of: damaged
		 * (or truncated) by another program. Never publish backwards:
		 * readers would register a snapshot whose pages were reused. */
		rc = MAPKV_CORRUPT;
		goto fail;
	}
	if (txn->meta.txnid > pub.txnid)
		txn_publish_meta(env, &txn->meta);
	txn->txnid = txn->meta.txnid + 1;
	if ((rc = pager_begin(&txn->pg, env, txn->meta.last_pgno, 1)))
		goto fail;
	txn->pg.reclaim = reclaim;
	txn->pg.reclaim_ctx = txn;
	return 0;
fail:
	writer_unlock(env);
	return rc;
}

int txn_begin(mapkv_env *env, unsigned flags, mapkv_txn **out)
{
	/* Before anything is locked: in a child after fork() the mutexes,
	 * the file locks and the reader slots are the parent's. */
	if (env_forked(env))
		return MAPKV_FORKED;
	if (atomic_load(&env->lk_lost))
		return MAPKV_LOCK_LOST;
	mapkv_txn *txn = env->vfs->alloc(env->vfs, sizeof(*txn));
	if (!txn)
		return MAPKV_NOMEM;
	memset(txn, 0, sizeof(*txn));
	txn->env = env;
	txn->flags = flags & MAPKV_RDONLY;
	int rc = (flags & MAPKV_RDONLY) ? begin_read(env, txn, flags)
					: begin_write(env, txn, flags);
	if (rc) {
		env->vfs->free(env->vfs, txn);
		return rc;
	}
	txn->main.rec = txn->meta.trees[MK_TREE_MAIN];
	txn->main.state = TT_LOADED;
	*out = txn;
	return 0;
}

/* @committed: a write transaction's commit succeeded. */
static void txn_free(mapkv_txn *txn, int committed)
{
	mapkv_env *env = txn->env;
	/* Cursors outlive their transaction until closed: mark them. */
	for (struct mapkv_cursor *c = txn->cursors; c; c = c->next)
		c->txn = NULL;
	/* Before the writer lock goes: the next writer must find the
	 * handles of trees this one failed to create already closed. (Not
	 * in a child after fork(): its copy of the handle table is unused,
	 * and the mutex may have been copied held.) */
	if (!env_forked(env))
		dbi_end(txn, committed);
	pager_end(&txn->pg);
	if (txn->named)
		env->vfs->free(env->vfs, txn->named);
	if (env_forked(env)) {
		/* Inherited across fork(): the reader slot and the writer
		 * lock (held through the shared descriptor) are the
		 * parent's, and stay as they are. */
		if (!(txn->flags & MAPKV_RDONLY))
			env->wtxn = NULL;
	} else if (txn->flags & MAPKV_RDONLY) {
		if (env->map_lock)
			os_rwlock_rdunlock(env->map_lock);
		lk_reader_release(&env->readers, txn->slot);
	} else {
		writer_unlock(env);
	}
	env->vfs->free(env->vfs, txn);
}

void txn_abort(mapkv_txn *txn)
{
	txn_free(txn, 0);
}

/* Before anything is written: no private page is linked twice
 * (pager_check_refs), counting the roots of every tree. */
static int check_refs(mapkv_txn *txn)
{
	mapkv_env *env = txn->env;
	unsigned ndbis = txn->named ? atomic_load(&env->ndbis) : 0;
	size_t n = 0;
	pgno_t *roots = env->vfs->alloc(env->vfs, (MK_NUM_TREES + ndbis) *
							  sizeof(pgno_t));
	if (!roots)
		return MAPKV_NOMEM;
	for (unsigned t = 0; t < MK_NUM_TREES; t++)
		roots[n++] = txn->meta.trees[t].root;
	for (unsigned d = 1; d < ndbis; d++)
		if (txn->named[d].state & TT_LOADED)
			roots[n++] = txn->named[d].rec.root;
	int rc = pager_check_refs(&txn->pg, roots, n);
	env->vfs->free(env->vfs, roots);
	return rc;
}

static int commit_write(mapkv_txn *txn)
{
	mapkv_env *env = txn->env;
	pager *pg = &txn->pg;
	int rc;
	int sync = !(env->flags & MAPKV_NOSYNC);
	if ((rc = flush_trees(txn)))
		return rc;
	txn->meta.trees[MK_TREE_MAIN] = txn->main.rec;
	if (pg->dcount == 0 && pg->freed.n == 0)
		return 0; /* nothing changed: no new commit */
	if ((rc = save_free(txn)) || (rc = check_refs(txn)))
		return rc;

	/* The meta page is built in scratch page 0 and the run list in
	 * scratch page 1 (free now: no more splits). */
	mk_meta m = txn->meta;
	uint32_t *runs = (uint32_t *)(pg->scratch + env->psize);
	unsigned nruns;
	uint32_t crc;
	rc = pager_write_dirty(pg, runs, pg_meta_max_runs(env->psize), &nruns,
			       &crc);
	if (rc)
		return rc;
	/* One sync when open can verify the commit's pages (see COMMITS in
	 * page.h); otherwise the pages are made durable before the meta. */
	int one_sync = sync && nruns > 0;
	if (sync && !one_sync && (rc = env->vfs->sync(env->file)))
		return rc;

	m.txnid = txn->txnid;
	m.last_pgno = pg->next_pgno;
	m.nruns = one_sync ? nruns : 0;
	m.data_crc = one_sync ? crc : 0;
	uint8_t *buf = pg->scratch;
	pg_meta_encode(buf, env->psize, &m, runs);
	os_iov iov = {buf, env->psize};
	uint64_t off = (m.txnid % MK_NUM_META) * (uint64_t)env->psize;
	if (sync && !one_sync) {
		/* Only the meta page is left to make durable. */
		rc = env->vfs->write_sync(env->file, &iov, 1, off);
	} else {
		/* The sync must cover the pages too: a whole-file sync. */
		rc = env->vfs->write(env->file, &iov, 1, off);
		if (!rc && sync)
			rc = env->vfs->sync(env->file);
	}
	if (rc) {
		atomic_store(&env->panic, 1);
		return rc == MAPKV_FULL || rc == MAPKV_IO ? MAPKV_PANIC : rc;
	}
	txn_publish_meta(env, &m);
	return 0;
}

int txn_commit(mapkv_txn *txn)
{
	int rc = 0;
	if (env_forked(txn->env)) {
		txn_free(txn, 0);
		return MAPKV_FORKED;
	}
	if (txn->flags & MAPKV_RDONLY) {
		txn_free(txn, 1);
		return 0;
	}
	if (txn->state != TXN_ACTIVE) {
		txn_free(txn, 0);
		return MAPKV_BAD_TXN;
	}
	rc = commit_write(txn);
	txn_free(txn, rc == 0);
	return rc;
}
