/*
 * pager.h: pages of one transaction.
 *
 * A read transaction reads pages straight from the map. A write
 * transaction never writes into the map: the first time it changes a page
 * that the committed snapshot owns, pager_touch() copies it into a private
 * buffer under a new page number (copy-on-write) and records the old
 * number as freed by this transaction. New pages come from the pages this
 * transaction may reuse (free pages no reader can see any more) or from the
 * end of the file. At commit the private buffers are written with pwrite in
 * page order (pager_write_dirty) and the file grows first if needed.
 *
 * Invariant: a page number below snap_pages that is not in the dirty table
 * belongs to the committed snapshot and is never written by this
 * transaction; a page number at or above snap_pages is always in the dirty
 * table.
 */
#ifndef MAPKV_PAGER_H
#define MAPKV_PAGER_H

#include <stddef.h>
#include <stdint.h>

#include "mapkv.h"
#include "page.h"

struct mapkv_env;

/* A growable array of page numbers. */
typedef struct pgvec {
	pgno_t *v;
	size_t n, cap;
} pgvec;

typedef struct dirty_ent {
	pgno_t pgno;   /* 0: empty slot */
	uint32_t mark; /* pager_check_refs: counted in pass number mark */
	page *p;
} dirty_ent;

typedef struct pager {
	struct mapkv_env *env;
	const uint8_t *map;
	unsigned psize;
	uint64_t snap_pages; /* high-water mark of the snapshot read */
	int writable;

	/* Write transactions only. */
	uint64_t next_pgno; /* first page never allocated */
	uint64_t max_pages; /* the file may not grow past this */
	dirty_ent *dirty;
	size_t dcap, dcount;
	/* Pages that may be private branch pages, for pager_check_refs:
	 * copies of committed branches and pages pager_alloc handed out. */
	pgvec maybe_branch;
	uint32_t ref_pass; /* passes of pager_check_refs so far */
	/* Pages inside the private runs (overflow values) that came from
	 * free pages of the snapshot, but for each run's first page (which
	 * the dirty table holds); sorted ascending. */
	pgvec runin;
	pgvec freed; /* committed pages this transaction stopped using */
	pgvec reuse; /* free pages it may use; kept sorted descending */
	int reuse_unsorted;
	/* Called when reuse is empty, to load more free pages (the free-page
	 * tree lives above this layer). Returns 0 or an error; may leave
	 * reuse empty. */
	int (*reclaim)(void *ctx);
	void *reclaim_ctx;
	int reclaim_busy;
	uint64_t loaded;  /* pages the reclaim hook has added so far */
	uint8_t *scratch; /* 4 pages of scratch for splits (btree.c) */
	const uint8_t **split_node; /* psize / 8 + 2 entries each */
	unsigned *split_size;
	pgno_t last_leaf; /* where the last leaf insert went (btree.c) */
	unsigned last_idx;
} pager;

/* Set up for a transaction over a snapshot of @snap_pages pages. */
int pager_begin(pager *pg, struct mapkv_env *env, uint64_t snap_pages,
		int writable);
/* Release every buffer (abort, or after commit). */
void pager_end(pager *pg);

/* The page @pgno (a private copy if this transaction changed it). Checks
 * that the page exists. Returns 0 or MAPKV_CORRUPT. */
static inline int pager_get(const pager *pg, pgno_t pgno, const page **out);

/* Is @pgno a private (dirty) page of this transaction? NULL if not. */
page *pager_dirty(const pager *pg, pgno_t pgno);

/* Is @pgno inside a private run (not its first page) that came from free
 * pages (pager.runin)? */
int pager_in_run(const pager *pg, pgno_t pgno);

/* Does this transaction write page @pgno: a private page, or a page inside
 * a private run? (The checks against reused live pages.) */
static inline int pager_reused(const pager *pg, pgno_t pgno)
{
	return pager_dirty(pg, pgno) || (pg->runin.n && pager_in_run(pg, pgno));
}

/* A new private run of @n pages, zeroed but for the page number in the
 * first header: the best fit among the free pages loaded so far (loading
 * more free-page records for a run), else at the end of the file. Returns
 * 0, MAPKV_FULL, MAPKV_NOMEM, MAPKV_CORRUPT (free-page records list a page
 * twice), or the reclaim hook's error. */
int pager_alloc(pager *pg, unsigned n, page **out);

/* A private, writable version of page @p (itself if already private). */
int pager_touch(pager *pg, const page *p, page **out);

/* This transaction no longer uses the run of @n pages at @pgno. */
int pager_free(pager *pg, pgno_t pgno, unsigned n);

/* Add pages to the reuse list (the reclaim hook uses it). */
int pager_add_reuse(pager *pg, const pgno_t *v, size_t n);

/* Sort and deduplicate helpers for page lists. */
int pgvec_push(pager *pg, pgvec *v, pgno_t p);
void pgvec_sort(pgvec *v, int descending);
void pgvec_free(pager *pg, pgvec *v);
/* Order @v for the free-page records: the pages of short extents (runs of
 * consecutive page numbers shorter than PAGER_LONG_RUN) in page order,
 * then the long extents from the shortest. A writer loads records oldest
 * first, one at a time, and takes single pages from what it has loaded;
 * with the short extents first it finds them before it has loaded a part
 * of a long run (which a single page would break). Returns 0 or
 * MAPKV_NOMEM (@v then sorted). */
int pgvec_order_extents(pager *pg, pgvec *v);

/* Before the freed pages are recorded: a committed page may be freed
 * once, and only if it is neither free (in the reuse list) nor reused
 * (dirty). Otherwise the file is damaged (a page reachable twice, or a
 * reachable page listed free) and recording it would hand out a live page
 * later: MAPKV_CORRUPT. Sorts both lists. */
int pager_check_freed(pager *pg);

/* At commit, before anything is written: each private page is reached at
 * most once from the private branch pages and the tree roots @roots (0
 * entries are skipped). A second reference is a stale link, in a copied
 * branch, to a page that was listed free while reachable and has been
 * reused: MAPKV_CORRUPT. */
int pager_check_refs(pager *pg, const pgno_t *roots, size_t nroots);

/* Give pages at the top of the reuse list back to the end of the file
 * (lowers next_pgno) so a commit does not record them as free. */
int pager_trim_tail(pager *pg);

/* Write every private page to the file, in page order (runs of
 * consecutive pages in one gathered write), growing the file first.
 * When the runs number at most @maxruns and hold at most
 * PAGER_VERIFY_MAX pages, they are stored in @runs (page, count pairs),
 * *nruns gets their number and *crc the CRC-32C of their contents in
 * order; otherwise *nruns is 0. Returns 0, MAPKV_IO, MAPKV_FULL,
 * MAPKV_NOMEM. */
#define PAGER_VERIFY_MAX 256u
int pager_write_dirty(pager *pg, uint32_t *runs, unsigned maxruns,
		      unsigned *nruns, uint32_t *crc);

/* Make the file at least @bytes long (amortised steps) and extend the map
 * to match. */
int pager_grow(struct mapkv_env *env, uint64_t bytes);

/* Is @p a page of the committed snapshot (in the map), not a private
 * copy? */
static inline int pager_committed(const pager *pg, const page *p)
{
	uintptr_t a = (uintptr_t)p, m = (uintptr_t)pg->map;
	return a >= m && a - m < pg->snap_pages * (uint64_t)pg->psize;
}

/* pager_get for the child @pgno of branch @parent. A committed branch
 * points only to committed pages: if the child is a private page of this
 * transaction, it was listed free while @parent reached it and has been
 * reused (its old contents are gone): MAPKV_CORRUPT. */
static inline int pager_get_child(const pager *pg, const page *parent,
				  pgno_t pgno, const page **out)
{
	/* A reader has no private pages: the check is the writer's. */
	if (pg->writable && pg->dcount) {
		if (!pager_committed(pg, parent))
			return pager_get(pg, pgno, out);
		if (pager_reused(pg, pgno))
			return MAPKV_CORRUPT;
	}
	if (pgno < MK_NUM_META || pgno >= pg->snap_pages)
		return MAPKV_CORRUPT;
	*out = pg->map + (size_t)pgno * pg->psize;
	return 0;
}

static inline int pager_get(const pager *pg, pgno_t pgno, const page **out)
{
	if (pg->writable && pg->dcount) {
		page *d = pager_dirty(pg, pgno);
		if (d) {
			*out = d;
			return 0;
		}
	}
	if (pgno < MK_NUM_META || pgno >= pg->snap_pages)
		return MAPKV_CORRUPT;
	*out = pg->map + (size_t)pgno * pg->psize;
	return 0;
}

#endif
