/*
 * pager.c: private pages of a write transaction, page allocation and reuse,
 * writing pages at commit and growing the file (see pager.h).
 */
#include "pager.h"

#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "env.h"

/* ---- page lists ---- */

int pgvec_push(pager *pg, pgvec *v, pgno_t p)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		pgno_t *nv = pg->env->vfs->realloc(pg->env->vfs, v->v,
						   cap * sizeof(pgno_t));
		if (!nv)
			return MAPKV_NOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = p;
	return 0;
}

static int cmp_asc(const void *a, const void *b)
{
	pgno_t x = *(const pgno_t *)a, y = *(const pgno_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_desc(const void *a, const void *b)
{
	return cmp_asc(b, a);
}

void pgvec_sort(pgvec *v, int descending)
{
	/* Lists are often sorted already (a commit sorts the freed list on
	 * each round of save_free): one pass tells. */
	size_t i = 1;
	if (descending)
		while (i < v->n && v->v[i] <= v->v[i - 1])
			i++;
	else
		while (i < v->n && v->v[i] >= v->v[i - 1])
			i++;
	if (i < v->n)
		qsort(v->v, v->n, sizeof(pgno_t),
		      descending ? cmp_desc : cmp_asc);
}

void pgvec_free(pager *pg, pgvec *v)
{
	if (v->v)
		pg->env->vfs->free(pg->env->vfs, v->v);
	v->v = NULL;
	v->n = v->cap = 0;
}

/* Extents of at least this many consecutive pages are kept for runs
 * (reuse_take) and listed last in free-page records. */
#define PAGER_LONG_RUN 16u

/* An extent of a page list: its first page and length. */
typedef struct pg_extent {
	pgno_t start;
	pgno_t len;
} pg_extent;

static int cmp_extent(const void *a, const void *b)
{
	const pg_extent *x = a, *y = b;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Length of the extent of the ascending list @v that starts at index @i. */
static size_t extent_len_asc(const pgvec *v, size_t i)
{
	size_t j = i + 1;
	while (j < v->n && v->v[j] == v->v[j - 1] + 1)
		j++;
	return j - i;
}

int pgvec_order_extents(pager *pg, pgvec *v)
{
	os_vfs *vfs = pg->env->vfs;
	if (v->n < 2)
		return 0;
	pgvec_sort(v, 0);
	size_t nlong = 0;
	for (size_t i = 0, len; i < v->n; i += len)
		if ((len = extent_len_asc(v, i)) >= PAGER_LONG_RUN)
			nlong++;
	if (!nlong)
		return 0;
	pg_extent *e = vfs->alloc(vfs, nlong * sizeof(pg_extent));
	if (!e)
		return MAPKV_NOMEM;
	/* Compact the pages of short extents to the front, in page order;
	 * a long extent is kept as its first page and length. */
	size_t k = 0, o = 0;
	for (size_t i = 0, len; i < v->n; i += len) {
		len = extent_len_asc(v, i);
		if (len >= PAGER_LONG_RUN) {
			e[k++] = (pg_extent){v->v[i], (pgno_t)len};
		} else {
			memmove(&v->v[o], &v->v[i], len * sizeof(pgno_t));
			o += len;
		}
	}
	qsort(e, nlong, sizeof(pg_extent), cmp_extent);
	for (size_t j = 0; j < nlong; j++)
		for (pgno_t i = 0; i < e[j].len; i++)
			v->v[o++] = e[j].start + i;
	vfs->free(vfs, e);
	return 0;
}

/* ---- the dirty table: open addressing on the page number ---- */

static size_t dhash(pgno_t p, size_t cap)
{
	return (size_t)((p * 2654435761u) & (cap - 1));
}

static inline dirty_ent *dirty_find(const pager *pg, pgno_t pgno)
{
	if (!pg->dcap)
		return NULL;
	size_t mask = pg->dcap - 1;
	for (size_t i = dhash(pgno, pg->dcap);; i = (i + 1) & mask) {
		if (pg->dirty[i].pgno == pgno)
			return &pg->dirty[i];
		if (pg->dirty[i].pgno == 0)
			return NULL;
	}
}

page *pager_dirty(const pager *pg, pgno_t pgno)
{
	dirty_ent *e = dirty_find(pg, pgno);
	return e ? e->p : NULL;
}

/* Run interiors (pager.h: runin). */

static int runin_add(pager *pg, pgno_t start, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		if ((uint64_t)start + i >= pg->snap_pages)
			break;
		int rc = pgvec_push(pg, &pg->runin, start + i);
		if (rc)
			return rc;
	}
	pgvec_sort(&pg->runin, 0); /* runs are few: keep it sorted */
	return 0;
}

/* Index of the first entry >= @p. */
static size_t runin_find(const pager *pg, pgno_t p)
{
	size_t lo = 0, hi = pg->runin.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pg->runin.v[mid] < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A private run that is given up: its interior is free again. */
static void runin_remove(pager *pg, pgno_t start, unsigned n)
{
	if (!pg->runin.n || n < 2)
		return;
	size_t a = runin_find(pg, start + 1), b = a;
	while (b < pg->runin.n && pg->runin.v[b] < (uint64_t)start + n)
		b++;
	memmove(&pg->runin.v[a], &pg->runin.v[b],
		(pg->runin.n - b) * sizeof(pgno_t));
	pg->runin.n -= b - a;
}

int pager_in_run(const pager *pg, pgno_t pgno)
{
	size_t i = runin_find(pg, pgno);
	return i < pg->runin.n && pg->runin.v[i] == pgno;
}

/* The empty slot where @pgno goes. */
static size_t dirty_slot(const dirty_ent *tab, size_t cap, pgno_t pgno)
{
	size_t mask = cap - 1;
	size_t i = dhash(pgno, cap);
	while (tab[i].pgno != 0)
		i = (i + 1) & mask;
	return i;
}

static int dirty_insert(pager *pg, pgno_t pgno, page *p)
{
	/* Two owners for one page number: only damaged free-page records
	 * can lead here (a page listed twice). */
	if (pager_reused(pg, pgno))
		return MAPKV_CORRUPT;
	if ((pg->dcount + 1) * 2 > pg->dcap) {
		size_t ncap = pg->dcap ? pg->dcap * 2 : 256;
		dirty_ent *nt = pg->env->vfs->alloc(pg->env->vfs,
						    ncap * sizeof(dirty_ent));
		if (!nt)
			return MAPKV_NOMEM;
		memset(nt, 0, ncap * sizeof(dirty_ent));
		for (size_t i = 0; i < pg->dcap; i++)
			if (pg->dirty[i].pgno)
				nt[dirty_slot(nt, ncap, pg->dirty[i].pgno)] =
					pg->dirty[i];
		if (pg->dirty)
			pg->env->vfs->free(pg->env->vfs, pg->dirty);
		pg->dirty = nt;
		pg->dcap = ncap;
	}
	pg->dirty[dirty_slot(pg->dirty, pg->dcap, pgno)] =
		(dirty_ent){pgno, 0, p};
	pg->dcount++;
	return 0;
}

/* Remove with backward-shift deletion, so lookups need no tombstones. */
static void dirty_remove(pager *pg, pgno_t pgno)
{
	size_t mask = pg->dcap - 1;
	size_t i = dhash(pgno, pg->dcap);
	while (pg->dirty[i].pgno != pgno) {
		if (pg->dirty[i].pgno == 0)
			return;
		i = (i + 1) & mask;
	}
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (pg->dirty[j].pgno == 0)
			break;
		size_t h = dhash(pg->dirty[j].pgno, pg->dcap);
		/* Move j into the hole at i unless its home lies in (i, j]. */
		int in_between =
			(i <= j) ? (h > i && h <= j) : (h > i || h <= j);
		if (!in_between) {
			pg->dirty[i] = pg->dirty[j];
			i = j;
		}
	}
	pg->dirty[i].pgno = 0;
	pg->dirty[i].p = NULL;
	pg->dcount--;
}

/* ---- transaction set-up ---- */

int pager_begin(pager *pg, mapkv_env *env, uint64_t snap_pages, int writable)
{
	memset(pg, 0, sizeof(*pg));
	pg->env = env;
	pg->map = env->map;
	pg->psize = env->psize;
	pg->snap_pages = snap_pages;
	pg->writable = writable;
	if (writable) {
		pg->next_pgno = snap_pages;
		pg->max_pages = env->max_size / env->psize;
		/* One writer at a time: its scratch space is the env's. */
		pg->scratch = env->wscratch;
		pg->split_node = env->split_node;
		pg->split_size = env->split_size;
	}
	return 0;
}

void pager_end(pager *pg)
{
	os_vfs *vfs = pg->env->vfs;
	for (size_t i = 0; i < pg->dcap; i++)
		if (pg->dirty[i].pgno)
			vfs->free(vfs, pg->dirty[i].p);
	if (pg->dirty)
		vfs->free(vfs, pg->dirty);
	pg->dirty = NULL;
	pgvec_free(pg, &pg->maybe_branch);
	pg->dcap = pg->dcount = 0;
	pgvec_free(pg, &pg->freed);
	pgvec_free(pg, &pg->reuse);
	pgvec_free(pg, &pg->runin);
	pg->scratch = NULL;
}

/* ---- allocation ---- */

int pager_add_reuse(pager *pg, const pgno_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == 0)
			continue;
		int rc = pgvec_push(pg, &pg->reuse, v[i]);
		if (rc)
			return rc;
	}
	pg->reuse_unsorted = 1;
	return 0;
}

/* Sort the reuse list (descending) after additions. A page listed twice
 * would be handed out twice: the free-page records are damaged. */
static int reuse_sort(pager *pg)
{
	if (pg->reuse_unsorted) {
		pgvec *r = &pg->reuse;
		pgvec_sort(r, 1);
		for (size_t i = 1; i < r->n; i++)
			if (r->v[i] == r->v[i - 1])
				return MAPKV_CORRUPT; /* and stays unsorted */
		pg->reuse_unsorted = 0;
	}
	return 0;
}

/* Index of the highest page of the extent (consecutive page numbers)
 * whose lowest page is at index @i of the strictly descending list @v.
 * Inside an extent v[j] - v[i] == i - j, and outside it the difference is
 * larger, so a binary search finds the edge in O(log n). */
static size_t extent_top(const pgno_t *v, size_t i)
{
	if (i == 0 || v[i - 1] != v[i] + 1)
		return i;
	size_t lo = 0, hi = i - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uint64_t)(v[mid] - v[i]) == i - mid)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/*
 * Take n consecutive pages from the reuse list.
 *
 * Runs (n > 1): the lowest pages of the smallest extent that holds n (best
 * fit, the lower extent on a tie). Single pages: the lowest free page
 * that is not part of a long extent (PAGER_LONG_RUN pages or more), found
 * among the lowest PAGER_FIT_SCAN extents; failing that, the smallest long
 * extent among them gives its lowest page.
 *
 * This is what keeps large values from growing the file: a single page (a
 * copied leaf, an edit of the free-page tree) taken from the lowest free
 * page nibbled at the run a rewritten overflow value left behind, so that
 * run never fitted the next version of the value and every rewrite went
 * to the end of the file. Taking the lowest page otherwise keeps the file
 * dense, and costs O(1) when the lowest pages are not long runs (whether
 * the extent at index i is long is one comparison: the list is strictly
 * descending). *out is 0 when nothing fits.
 */
#define PAGER_FIT_SCAN 32u

static int reuse_take(pager *pg, unsigned n, pgno_t *out)
{
	pgvec *r = &pg->reuse;
	int rc;
	*out = 0;
	if (r->n < n)
		return 0;
	if ((rc = reuse_sort(pg)))
		return rc;
	const pgno_t *v = r->v;
	size_t best = SIZE_MAX, best_len = SIZE_MAX;
	unsigned seen = 0;
	for (size_t i = r->n; i > 0;) {
		size_t lo = i - 1; /* the extent's lowest page */
		if (n == 1 && (lo + 1 < PAGER_LONG_RUN ||
			       v[lo + 1 - PAGER_LONG_RUN] !=
				       v[lo] + PAGER_LONG_RUN - 1)) {
			best = lo; /* a short extent */
			break;
		}
		size_t top = extent_top(v, lo), len = lo - top + 1;
		if (len >= n && len < best_len) {
			best = lo;
			best_len = len;
			if (len == n)
				break;
		}
		i = top;
		if (n == 1 && ++seen >= PAGER_FIT_SCAN)
			break;
	}
	if (best == SIZE_MAX)
		return 0;
	*out = r->v[best];
	/* The run is r->v[best - n + 1 .. best]. */
	memmove(&r->v[best + 1 - n], &r->v[best + 1],
		(r->n - best - 1) * sizeof(pgno_t));
	r->n -= n;
	return 0;
}

/* A run of n pages that starts with the free pages at the very end of the
 * file (if any) and continues past it: the file grows by what is missing
 * only. Returns 0 with *out = 0 when the file cannot grow by that much. */
static int take_tail(pager *pg, unsigned n, pgno_t *out)
{
	pgvec *r = &pg->reuse;
	size_t k = 0;
	*out = 0;
	int rc = reuse_sort(pg);
	if (rc)
		return rc;
	if (r->n && r->v[0] + 1ull == pg->next_pgno) {
		k = 1;
		while (k < r->n && k < n && r->v[k] + 1 == r->v[k - 1])
			k++;
	}
	uint64_t grow = n - k;
	if (pg->next_pgno + grow > pg->max_pages ||
	    pg->next_pgno + grow > 0xffffffffull)
		return 0;
	*out = (pgno_t)(pg->next_pgno - k);
	if (k) {
		memmove(r->v, r->v + k, (r->n - k) * sizeof(pgno_t));
		r->n -= k;
	}
	pg->next_pgno += grow;
	return 0;
}

/* Free-page records a run allocation may load on top of the pages in
 * its budget (see pager_alloc). */
#define PAGER_RUN_RECLAIMS 16

/* Load one more free-page record through the hook. */
static int reclaim_once(pager *pg)
{
	pg->reclaim_busy = 1;
	int rc = pg->reclaim(pg->reclaim_ctx);
	pg->reclaim_busy = 0;
	return rc;
}

/* pager_alloc without noting the page as a possible branch. With @zero
 * 0 the caller overwrites all @n pages itself (a copy) and the buffer is
 * left as the allocator gave it. */
static int alloc_run(pager *pg, unsigned n, int zero, page **out)
{
	os_vfs *vfs = pg->env->vfs;
	int rc;
	if (!pg->writable)
		return MAPKV_READONLY;
	if (pg->reuse.n < n && pg->reclaim && !pg->reclaim_busy &&
	    (rc = reclaim_once(pg)))
		return rc;
	size_t bytes = (size_t)n * pg->psize;
	page *p = vfs->alloc(vfs, bytes);
	if (!p)
		return MAPKV_NOMEM;
	pgno_t pgno;
	if ((rc = reuse_take(pg, n, &pgno)))
		goto fail;
	/* A run (an overflow value) may not be among the free pages loaded
	 * so far: load older records before growing the file, otherwise a
	 * fragmented free list would never be reused for runs and the file
	 * would grow while free pages pile up. A run may span many records
	 * (a record lists pg_free_chunk() pages), so the budget grows with
	 * the run: a few times its pages, plus a fixed number of records.
	 * Loading costs little next to writing the run; pages loaded and not
	 * used go back into the free records at commit. */
	if (!pgno && n > 1 && pg->reclaim && !pg->reclaim_busy) {
		uint64_t budget = 4ull * n + (uint64_t)PAGER_RUN_RECLAIMS *
						     pg_free_chunk(pg->psize);
		uint64_t start = pg->loaded;
		while (!pgno && pg->loaded - start < budget) {
			uint64_t before = pg->loaded;
			if ((rc = reclaim_once(pg)))
				goto fail;
			if (pg->loaded == before)
				break; /* no record left that no reader needs */
			if ((rc = reuse_take(pg, n, &pgno)))
				goto fail;
		}
	}
	if (!pgno && (rc = take_tail(pg, n, &pgno)))
		goto fail;
	if (!pgno) {
		rc = MAPKV_FULL;
		goto fail;
	}
	rc = dirty_insert(pg, pgno, p);
	if (rc) {
		/* Give the numbers back to the reuse list (the end of the
		 * file gives them back at commit: pager_trim_tail). */
		for (unsigned i = 0; i < n; i++)
			(void)pgvec_push(pg, &pg->reuse, pgno + i),
				pg->reuse_unsorted = 1;
		goto fail;
	}
	if (n > 1 && pgno < pg->snap_pages && (rc = runin_add(pg, pgno, n))) {
		dirty_remove(pg, pgno);
		goto fail;
	}
	/* Zeroed so no uninitialised heap bytes ever reach the file. */
	if (zero)
		memset(p, 0, bytes);
	pg_set_pgno(p, pgno);
	*out = p;
	return 0;
fail:
	vfs->free(vfs, p);
	return rc;
}

int pager_alloc(pager *pg, unsigned n, page **out)
{
	int rc = alloc_run(pg, n, 1, out);
	/* The caller may make it a branch (a split, a new root). */
	if (!rc && n == 1 &&
	    (rc = pgvec_push(pg, &pg->maybe_branch, pg_pgno(*out))))
		return rc; /* the page stays private: the txn fails anyway */
	return rc;
}

int pager_touch(pager *pg, const page *p, page **out)
{
	pgno_t pgno = pg_pgno(p);
	page *d = pager_dirty(pg, pgno);
	if (d) {
		/* A committed page whose number this transaction reused was
		 * listed free while reachable. */
		if (d != p)
			return MAPKV_CORRUPT;
		*out = d;
		return 0;
	}
	/* A page from the file is untrusted: before the writer edits a copy
	 * (moving nodes by their recorded sizes), every node must lie inside
	 * the page and the keys must be in order. */
	if (pg_check(p, pg->psize))
		return MAPKV_CORRUPT;
	/* A committed branch points only to committed pages; a child that
	 * is a private page of this transaction was listed free while this
	 * branch still reached it, and the copy would keep that link. */
	if (pg_flags(p) & MK_P_BRANCH)
		for (unsigned i = 0, n = pg_nkeys(p); i < n; i++) {
			pgno_t c = nd_child(pg_node(p, i));
			if (pager_reused(pg, c))
				return MAPKV_CORRUPT;
		}
	page *np;
	int rc = alloc_run(pg, 1, 0, &np);
	if (rc)
		return rc;
	pgno_t nn = pg_pgno(np);
	memcpy(np, p, pg->psize); /* the whole page: no byte left unset */
	pg_set_pgno(np, nn);
	if ((pg_flags(p) & MK_P_BRANCH) &&
	    (rc = pgvec_push(pg, &pg->maybe_branch, nn)))
		return rc;
	rc = pgvec_push(pg, &pg->freed, pgno);
	if (rc)
		return rc;
	*out = np;
	return 0;
}

int pager_free(pager *pg, pgno_t pgno, unsigned n)
{
	int rc;
	page *d = pager_dirty(pg, pgno);
	if (d) {
		/* Never written: nobody else can see it, reuse it at once. */
		dirty_remove(pg, pgno);
		runin_remove(pg, pgno, n);
		pg->env->vfs->free(pg->env->vfs, d);
		for (unsigned i = 0; i < n; i++)
			if ((rc = pgvec_push(pg, &pg->reuse, pgno + i)))
				return rc;
		pg->reuse_unsorted = 1;
		return 0;
	}
	if (pgno < MK_NUM_META || (uint64_t)pgno + n > pg->snap_pages)
		return MAPKV_CORRUPT;
	for (unsigned i = 0; i < n; i++)
		if ((rc = pgvec_push(pg, &pg->freed, pgno + i)))
			return rc;
	return 0;
}

int pager_trim_tail(pager *pg)
{
	pgvec *r = &pg->reuse;
	int rc = reuse_sort(pg);
	if (rc)
		return rc;
	/* Highest first: while the top free page is the last allocated one,
	 * hand it back to the end of the file. Only pages this transaction
	 * allocated past the snapshot qualify. */
	size_t i = 0;
	while (i < r->n && r->v[i] + 1ull == pg->next_pgno &&
	       r->v[i] >= pg->snap_pages) {
		pg->next_pgno--;
		i++;
	}
	if (i) {
		memmove(r->v, r->v + i, (r->n - i) * sizeof(pgno_t));
		r->n -= i;
	}
	return 0;
}

int pager_check_freed(pager *pg)
{
	pgvec *f = &pg->freed, *r = &pg->reuse;
	int rc = reuse_sort(pg);
	if (rc)
		return rc;
	pgvec_sort(f, 0);
	/* f ascending, r descending: walk r from its end to merge. */
	size_t j = r->n;
	for (size_t i = 0; i < f->n; i++) {
		pgno_t p = f->v[i];
		if (i && p == f->v[i - 1])
			return MAPKV_CORRUPT; /* freed twice */
		while (j > 0 && r->v[j - 1] < p)
			j--;
		if (j > 0 && r->v[j - 1] == p)
			return MAPKV_CORRUPT; /* freed while free */
		if (pager_reused(pg, p))
			return MAPKV_CORRUPT; /* freed, yet reused */
	}
	return 0;
}

/* Count one link to @pgno: MAPKV_CORRUPT if it is a private page that
 * this pass has seen linked before. */
static int ref_once(pager *pg, pgno_t pgno)
{
	dirty_ent *e = dirty_find(pg, pgno);
	if (!e) /* no link leads into a run */
		return pg->runin.n && pager_in_run(pg, pgno) ? MAPKV_CORRUPT
							     : 0;
	if (e->mark == pg->ref_pass)
		return MAPKV_CORRUPT;
	e->mark = pg->ref_pass;
	return 0;
}

int pager_check_refs(pager *pg, const pgno_t *roots, size_t nroots)
{
	int rc = 0;
	pg->ref_pass++; /* marks of earlier passes no longer count */
	for (size_t i = 0; i < nroots && !rc; i++)
		if (roots[i])
			rc = ref_once(pg, roots[i]);
	/* Every private branch is a copy of a committed one or a page that
	 * pager_alloc handed out (a number may be listed twice). */
	pgvec *mb = &pg->maybe_branch;
	pgvec_sort(mb, 0);
	for (size_t i = 0; i < mb->n && !rc; i++) {
		if (i && mb->v[i] == mb->v[i - 1])
			continue;
		const page *p = pager_dirty(pg, mb->v[i]);
		if (!p || !(pg_flags(p) & MK_P_BRANCH))
			continue;
		for (unsigned j = 0, n = pg_nkeys(p); j < n && !rc; j++)
			rc = ref_once(pg, nd_child(pg_node(p, j)));
	}
	return rc;
}

/* ---- growth ---- */

int pager_grow(mapkv_env *env, uint64_t bytes)
{
	int rc;
	if (bytes > env->file_size) {
		if (bytes > env->max_size)
			return MAPKV_FULL;
		/* Grow by an eighth of the file (at least 256 KiB), so a bulk
		 * load costs O(log n) resize calls, never one per page. */
		uint64_t step = env->file_size / 8;
		if (step < 256 * 1024)
			step = 256 * 1024;
		uint64_t want = env->file_size + step;
		if (want < bytes)
			want = bytes;
		uint64_t unit = env->gran > env->psize ? env->gran : env->psize;
		want = (want + unit - 1) / unit * unit;
		if (want > env->max_size)
			want = env->max_size / unit * unit;
		if (want < bytes)
			return MAPKV_FULL;
		if ((rc = env->vfs->resize(env->file, want)))
			return rc;
		env->file_size = want;
	}
	/* Map the whole file, also when this call did not resize it: an
	 * earlier one may have resized it and then failed to extend the map,
	 * and a commit must never publish pages its own writer cannot read.
	 * Readers of this process may be extending the map too. */
	uint64_t len = (env->file_size + env->gran - 1) / env->gran * env->gran;
	rc = 0;
	if (len <= env->map_len)
		return 0;
	/* Where growth replaces the map, every other thread must be out of
	 * it (env.h); this thread's own holds are set aside meanwhile. */
	if (env->map_lock)
		os_rwlock_wrlock(env->map_lock);
	os_mutex_lock(env->map_mutex);
	uint64_t old_map = env->map_len;
	if (len > old_map &&
	    !(rc = env->vfs->map_extend(env->file, env->map, old_map, len)))
		env->map_len = len;
	if (rc == MAPKV_MAP_LOST)
		atomic_store(&env->map_lost, 1);
	os_mutex_unlock(env->map_mutex);
	if (env->map_lock)
		os_rwlock_wrunlock(env->map_lock);
	return rc;
}

/* ---- commit ---- */

static int cmp_dirty(const void *a, const void *b)
{
	pgno_t x = ((const dirty_ent *)a)->pgno,
	       y = ((const dirty_ent *)b)->pgno;
	return x < y ? -1 : x > y;
}

static unsigned run_pages(const page *p)
{
	return (pg_flags(p) & MK_P_OVERFLOW) ? pg_ovpages(p) : 1;
}

int pager_write_dirty(pager *pg, uint32_t *runs, unsigned maxruns,
		      unsigned *nruns, uint32_t *crc)
{
	mapkv_env *env = pg->env;
	os_vfs *vfs = env->vfs;
	int rc;
	*nruns = 0;
	*crc = 0;
	if (pg->dcount == 0)
		return 0;
	rc = pager_grow(env, pg->next_pgno * (uint64_t)pg->psize);
	if (rc)
		return rc;
	dirty_ent *v = vfs->alloc(vfs, pg->dcount * sizeof(dirty_ent));
	if (!v)
		return MAPKV_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < pg->dcap; i++)
		if (pg->dirty[i].pgno)
			v[n++] = pg->dirty[i];
	qsort(v, n, sizeof(dirty_ent), cmp_dirty);

	/* Coalesce runs of consecutive pages into one gathered write, and
	 * list the runs (with a checksum of what they hold) while they are
	 * few enough for open to re-read. */
	enum { MAXIOV = 256 };
	os_iov iov[MAXIOV];
	size_t i = 0;
	unsigned nr = 0, npages = 0;
	int listing = 1;
	uint32_t c = 0;
	rc = 0;
	while (i < n && !rc) {
		pgno_t start = v[i].pgno;
		pgno_t next = start;
		int cnt = 0;
		while (i < n && cnt < MAXIOV && v[i].pgno == next) {
			unsigned np = run_pages(v[i].p);
			iov[cnt].base = v[i].p;
			iov[cnt].len = (size_t)np * pg->psize;
			cnt++;
			next += np;
			i++;
		}
		if (listing) {
			npages += next - start;
			if (nr == maxruns || npages > PAGER_VERIFY_MAX) {
				listing = 0;
			} else {
				runs[2 * nr] = start;
				runs[2 * nr + 1] = next - start;
				nr++;
				for (int j = 0; j < cnt; j++)
					c = ck_crc32c(c, iov[j].base,
						      iov[j].len);
			}
		}
		rc = vfs->write(env->file, iov, cnt,
				(uint64_t)start * pg->psize);
	}
	vfs->free(vfs, v);
	if (!rc && listing) {
		*nruns = nr;
		*crc = c;
	}
	return rc;
}
