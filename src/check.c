/*
 * check.c: the integrity check (mapkv_check): everything the format
 * promises, verified against a read snapshot, each problem reported with
 * its page.
 *
 * Steps: decode both meta pages from the file; walk every tree (main,
 * catalog, each named tree, free-page tree) from its root, marking each
 * page in a map of the file and checking headers, node bounds, key order
 * inside the separators of the parent, leaf depth, overflow runs and the
 * counts of the tree record; mark the pages listed in free-page records;
 * finally every page below the high-water mark must be either used once or
 * free once.
 */
#include <stdio.h>
#include <string.h>

#include "checksum.h"
#include "txn.h"

#define PG_UNSEEN 0
#define PG_USED 1
#define PG_FREE 2

typedef struct checker {
	mapkv_txn *txn;
	const pager *pg;
	unsigned psize;
	uint8_t *state; /* one byte per page */
	uint64_t npages;
	uint64_t problems;
	mapkv_check_fn fn;
	mapkv_progress_fn progress;
	void *ctx;
	uint64_t done; /* pages examined, for progress */
	int stop;
	/* counts of the tree being walked */
	uint64_t entries, branch, leaf, overflow;
	uint32_t depth;
	const char *tree;
} checker;

static void report(checker *c, uint64_t pgno, const char *fmt, ...)
#ifdef __MINGW32__
	__attribute__((format(gnu_printf, 3, 4))); /* not MS printf */
#else
	__attribute__((format(printf, 3, 4)));
#endif

/* Count @n more pages examined; tell the caller every 1,024. */
static void advance(checker *c, uint64_t n)
{
	uint64_t before = c->done;
	c->done += n;
	if (c->done > c->npages)
		c->done = c->npages;
	if (c->progress && (before >> 10) != (c->done >> 10))
		c->progress(c->ctx, c->done, c->npages);
}

#include <stdarg.h>

static void report(checker *c, uint64_t pgno, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->problems++;
	if (c->fn && !c->stop && c->fn(c->ctx, pgno, msg))
		c->stop = 1;
}

/* Mark @n pages from @pgno as used by the current tree. Returns 0 if all
 * were new and in range. */
static int mark_used(checker *c, pgno_t pgno, uint64_t n)
{
	if (pgno < MK_NUM_META || pgno + n > c->npages) {
		report(c, pgno,
		       "%s: page %u (run of %llu) lies outside the "
		       "pages in use (2..%llu)",
		       c->tree, pgno, (unsigned long long)n,
		       (unsigned long long)c->npages - 1);
		return -1;
	}
	int rc = 0;
	advance(c, n);
	for (uint64_t i = 0; i < n; i++) {
		if (c->state[pgno + i] != PG_UNSEEN) {
			report(c, pgno + i,
			       "%s: page %llu is reachable more than once",
			       c->tree, (unsigned long long)(pgno + i));
			rc = -1;
		}
		c->state[pgno + i] = PG_USED;
	}
	return rc;
}

typedef struct bound {
	const uint8_t *k;
	unsigned len;
	int set;
} bound;

static int in_bounds(const uint8_t *k, unsigned ks, const bound *lo,
		     const bound *hi)
{
	if (lo->set && mk_cmp(k, ks, lo->k, lo->len) < 0)
		return 0;
	if (hi->set && mk_cmp(k, ks, hi->k, hi->len) >= 0)
		return 0;
	return 1;
}

static void check_overflow(checker *c, const page *leaf, const uint8_t *nd)
{
	unsigned off = (unsigned)(nd - leaf) + MK_LEAF_HDR + nd_leaf_ksize(nd);
	pgno_t ov = pg_ld32(leaf + off);
	uint64_t need = pg_ov_pages(c->psize, nd_leaf_vsize(nd));
	if (mark_used(c, ov, need))
		return;
	const page *op;
	if (pager_get(c->pg, ov, &op)) {
		report(c, ov, "%s: overflow page %u cannot be read", c->tree,
		       ov);
		return;
	}
	if (pg_pgno(op) != ov || pg_flags(op) != MK_P_OVERFLOW ||
	    pg_ovpages(op) != need)
		report(c, ov,
		       "%s: overflow run at page %u: header says page %u, "
		       "flags %u, %u pages; the value needs %llu",
		       c->tree, ov, pg_pgno(op), pg_flags(op), pg_ovpages(op),
		       (unsigned long long)need);
	c->overflow += need;
}

static void walk(checker *c, pgno_t pgno, uint32_t level, uint32_t depth,
		 bound lo, bound hi)
{
	if (c->stop)
		return;
	if (mark_used(c, pgno, 1))
		return;
	const page *p;
	if (pager_get(c->pg, pgno, &p)) {
		report(c, pgno, "%s: page %u cannot be read", c->tree, pgno);
		return;
	}
	unsigned kind = level + 1 == depth ? MK_P_LEAF : MK_P_BRANCH;
	if (pg_pgno(p) != pgno) {
		report(c, pgno, "%s: page %u says it is page %u", c->tree, pgno,
		       pg_pgno(p));
		return;
	}
	if (pg_flags(p) != kind) {
		report(c, pgno,
		       "%s: page %u at level %u should be a %s page, its "
		       "flags are %u",
		       c->tree, pgno, level,
		       kind == MK_P_LEAF ? "leaf" : "branch", pg_flags(p));
		return;
	}
	if (pg_check(p, c->psize)) {
		report(c, pgno,
		       "%s: page %u: bad header, node outside the page, or "
		       "keys out of order",
		       c->tree, pgno);
		return;
	}
	unsigned n = pg_nkeys(p);
	if (n == 0 && !(level == 0 && kind == MK_P_LEAF))
		report(c, pgno, "%s: page %u is empty", c->tree, pgno);
	if (kind == MK_P_LEAF) {
		c->leaf++;
		for (unsigned i = 0; i < n; i++) {
			const uint8_t *nd = pg_node(p, i);
			if (!in_bounds(nd_leaf_key(nd), nd_leaf_ksize(nd), &lo,
				       &hi))
				report(c, pgno,
				       "%s: page %u: key %u lies outside the "
				       "range its parent gives",
				       c->tree, pgno, i);
			if (nd_flags(nd) & MK_N_BIG)
				check_overflow(c, p, nd);
			c->entries++;
		}
		return;
	}
	c->branch++;
	for (unsigned i = 0; i < n && !c->stop; i++) {
		const uint8_t *nd = pg_node(p, i);
		bound clo = lo, chi = hi;
		if (i > 0) {
			clo.k = nd_branch_key(nd);
			clo.len = nd_branch_ksize(nd);
			clo.set = 1;
			if (!in_bounds(clo.k, clo.len, &lo, &hi))
				report(c, pgno,
				       "%s: page %u: separator %u lies "
				       "outside the range its parent gives",
				       c->tree, pgno, i);
		}
		if (i + 1 < n) {
			const uint8_t *nx = pg_node(p, i + 1);
			chi.k = nd_branch_key(nx);
			chi.len = nd_branch_ksize(nx);
			chi.set = 1;
		}
		walk(c, nd_child(nd), level + 1, depth, clo, chi);
	}
}

static void check_tree(checker *c, const char *name, const tree_rec *t)
{
	c->tree = name;
	c->entries = c->branch = c->leaf = c->overflow = 0;
	if (t->root == 0) {
		if (t->depth || t->entries || t->branch_pages ||
		    t->leaf_pages || t->overflow_pages)
			report(c, 0, "%s: empty tree with nonzero counts",
			       name);
		return;
	}
	if (t->depth == 0 || t->depth > BT_MAXDEPTH) {
		report(c, t->root, "%s: depth %u is impossible", name,
		       t->depth);
		return;
	}
	bound none = {NULL, 0, 0};
	walk(c, t->root, 0, t->depth, none, none);
	if (c->stop)
		return;
	if (c->entries != t->entries)
		report(c, t->root,
		       "%s: %llu entries found, the record says %llu", name,
		       (unsigned long long)c->entries,
		       (unsigned long long)t->entries);
	if (c->branch != t->branch_pages || c->leaf != t->leaf_pages ||
	    c->overflow != t->overflow_pages)
		report(c, t->root,
		       "%s: pages found (branch %llu, leaf %llu, overflow "
		       "%llu) differ from the record (%llu, %llu, %llu)",
		       name, (unsigned long long)c->branch,
		       (unsigned long long)c->leaf,
		       (unsigned long long)c->overflow,
		       (unsigned long long)t->branch_pages,
		       (unsigned long long)t->leaf_pages,
		       (unsigned long long)t->overflow_pages);
}

/* The named trees: each catalog entry is a name and a tree record. */
static int check_named(checker *c)
{
	const tree_rec *cat = &c->txn->meta.trees[MK_TREE_CATALOG];
	bt_path path;
	int rc = bt_first(c->pg, cat, &path);
	while (rc == 0 && !c->stop) {
		mapkv_val k, v;
		if ((rc = bt_path_kv(c->pg, &path, &k, &v)))
			break;
		char name[MK_NAME_MAX + 16];
		snprintf(name, sizeof(name), "tree '%.*s'",
			 (int)(k.size > MK_NAME_MAX ? MK_NAME_MAX : k.size),
			 (const char *)k.data);
		if (v.size != MK_TREE_REC_SIZE) {
			report(c, 0, "catalog: %s has a record of %zu bytes",
			       name, v.size);
		} else {
			tree_rec t;
			pg_tree_decode(v.data, &t);
			if ((t.root == 0) != (t.depth == 0))
				report(c, t.root, "%s: root and depth disagree",
				       name);
			else
				check_tree(c, name, &t);
		}
		rc = bt_next(c->pg, &path);
	}
	if (rc == MAPKV_NOTFOUND)
		return 0;
	if (rc == MAPKV_CORRUPT) {
		report(c, 0, "catalog: cannot be iterated");
		return 0;
	}
	return rc;
}

static int check_free(checker *c)
{
	const tree_rec *ft = &c->txn->meta.trees[MK_TREE_FREE];
	bt_path path;
	uint64_t last = c->txn->meta.txnid;
	int rc = bt_first(c->pg, ft, &path);
	while (rc == 0 && !c->stop) {
		mapkv_val k, v;
		if ((rc = bt_path_kv(c->pg, &path, &k, &v)))
			break;
		if (k.size != MK_FREE_KEY || (v.size & 3)) {
			report(c, 0,
			       "free-page tree: a record has a key of %zu "
			       "bytes and a value of %zu",
			       k.size, v.size);
		} else {
			const uint8_t *kb = k.data;
			uint64_t id = 0;
			for (int i = 0; i < 8; i++)
				id = id << 8 | kb[i];
			if (id > last)
				report(c, 0,
				       "free-page tree: record of commit %llu, "
				       "after the snapshot's %llu",
				       (unsigned long long)id,
				       (unsigned long long)last);
			const uint8_t *a = v.data;
			for (size_t i = 0; i < v.size / 4; i++) {
				pgno_t p = pg_ld32(a + 4 * i);
				if (p == 0)
					continue;
				if (p < MK_NUM_META || p >= c->npages) {
					report(c, p,
					       "free-page tree: page %u is "
					       "outside the file",
					       p);
				} else if (c->state[p] == PG_USED) {
					report(c, p,
					       "page %u is both used and free",
					       p);
				} else if (c->state[p] == PG_FREE) {
					report(c, p,
					       "page %u is listed free "
					       "twice",
					       p);
				} else {
					c->state[p] = PG_FREE;
					advance(c, 1);
				}
			}
		}
		rc = bt_next(c->pg, &path);
	}
	if (rc == MAPKV_NOTFOUND)
		return 0;
	if (rc == MAPKV_CORRUPT) {
		report(c, 0, "free-page tree: cannot be iterated");
		return 0;
	}
	return rc;
}

/* The meta pages, read from the file. A failed read or allocation is the
 * check's own error (MAPKV_IO, MAPKV_NOMEM), not a problem of the file. */
static int check_metas(checker *c)
{
	mapkv_env *env = c->txn->env;
	unsigned ps = env->psize;
	uint8_t *buf = env->vfs->alloc(env->vfs, ps);
	if (!buf)
		return MAPKV_NOMEM;
	int rc = 0;
	for (unsigned i = 0; i < MK_NUM_META && !rc; i++) {
		size_t got;
		mk_meta m;
		if ((rc = env->vfs->read(env->file, buf, ps, (uint64_t)i * ps,
					 &got)))
			break;
		if (got < ps) {
			report(c, i, "meta page %u cannot be read", i);
			continue;
		}
		int drc = pg_meta_decode(buf, ps, &m);
		if (drc == MAPKV_VERSION_MISMATCH)
			report(c, i, "meta page %u has format version %u", i,
			       m.version);
		else if (drc)
			report(c, i,
			       "meta page %u is invalid (magic, checksum or "
			       "fields)",
			       i);
		else if (m.page_size != ps)
			report(c, i, "meta page %u gives page size %u, not %u",
			       i, m.page_size, ps);
		else if (m.txnid != 0 && m.txnid % MK_NUM_META != i)
			report(c, i, "meta page %u holds commit %llu", i,
			       (unsigned long long)m.txnid);
	}
	env->vfs->free(env->vfs, buf);
	return rc;
}

int txn_check(mapkv_txn *txn, mapkv_check_fn fn, mapkv_progress_fn progress,
	      void *ctx, uint64_t *problems)
{
	mapkv_env *env = txn->env;
	checker c;
	memset(&c, 0, sizeof(c));
	c.txn = txn;
	c.pg = &txn->pg;
	c.psize = env->psize;
	c.fn = fn;
	c.progress = progress;
	c.ctx = ctx;
	c.npages = txn->meta.last_pgno;
	c.state = env->vfs->alloc(env->vfs, c.npages);
	if (!c.state)
		return MAPKV_NOMEM;
	memset(c.state, PG_UNSEEN, c.npages);
	c.state[0] = c.state[1] = PG_USED;

	int rc = check_metas(&c);
	if (rc) {
		env->vfs->free(env->vfs, c.state);
		return rc;
	}
	check_tree(&c, "main tree", &txn->meta.trees[MK_TREE_MAIN]);
	check_tree(&c, "catalog", &txn->meta.trees[MK_TREE_CATALOG]);
	check_tree(&c, "free-page tree", &txn->meta.trees[MK_TREE_FREE]);
	if (!c.stop)
		rc = check_named(&c);
	if (!rc && !c.stop)
		rc = check_free(&c);
	if (!rc && !c.stop) {
		uint64_t lost = 0, first = 0;
		for (uint64_t p = MK_NUM_META; p < c.npages; p++) {
			if (c.state[p] == PG_UNSEEN) {
				if (!lost)
					first = p;
				lost++;
			}
		}
		if (lost)
			report(&c, first,
			       "%llu pages are neither used nor free (the "
			       "first is page %llu)",
			       (unsigned long long)lost,
			       (unsigned long long)first);
	}
	env->vfs->free(env->vfs, c.state);
	if (progress && !rc)
		progress(ctx, c.npages, c.npages);
	if (problems)
		*problems = c.problems;
	if (rc)
		return rc;
	return c.problems ? MAPKV_CORRUPT : 0;
}
