/*
 * btree.c: search, insert with splits, delete with merges, overflow values
 * and traversal of the copy-on-write B+tree (see btree.h and the format in
 * page.h).
 *
 * Every page read from the file is treated as untrusted: the page header
 * is checked on each visit (its own number, its kind, lower/upper), every
 * node's offset and sizes are checked against the page before use, and a
 * descent stops after the depth the tree record states. A writer runs the
 * full pg_check on every committed page it edits or copies nodes from (in
 * pager_touch, and the sibling of a merge), so nodes move by sizes that
 * are known to fit. A walk visits each page once, and a scan's next leaf
 * must hold larger keys, so a tree damaged into a DAG or a cycle ends in
 * MAPKV_CORRUPT at once instead of after exponentially many steps. Damage
 * gives MAPKV_CORRUPT, never a read or write outside a buffer.
 */
#include "btree.h"

#include <assert.h>
#include <string.h>

#include "env.h"

#define USABLE(ps) ((ps)-MK_PAGE_HDR)

/* The nodes of a page being split, with the new node in place (arrays
 * owned by the pager, sized for the most nodes a page can hold). */
typedef struct split_set {
	const uint8_t **node;
	unsigned *size;
	unsigned n;
} split_set;

/* ---- node access with bounds checks ---- */

/* Key of node i of a leaf (leaf=1) or branch page. */
static inline int node_key(const page *p, unsigned i, int leaf, unsigned psize,
			   const uint8_t **k, unsigned *ks)
{
	unsigned off = pg_slot(p, i);
	unsigned hdr = leaf ? MK_LEAF_HDR : MK_BRANCH_HDR;
	if (off < pg_lower(p) || off + hdr > psize)
		return MAPKV_CORRUPT;
	const uint8_t *n = p + off;
	unsigned s = leaf ? nd_leaf_ksize(n) : nd_branch_ksize(n);
	/* A stored key has 1 to MAPKV_MAX_KEY_SIZE bytes: callers (a
	 * writer's cursor keeps a copy of its key) size buffers by it. A
	 * branch's separator is never longer than a key, but a search only
	 * needs it inside the page, and it is compared at every level. */
	if (off + hdr + s > psize || (leaf && s - 1u >= MAPKV_MAX_KEY_SIZE))
		return MAPKV_CORRUPT;
	*k = n + hdr;
	*ks = s;
	return 0;
}

/* Child page number of node i of branch @p, with the node bounds-checked
 * (0, never a valid child, when the node lies outside the page). */
static inline pgno_t child_at(const page *p, unsigned i, unsigned psize)
{
	unsigned off = pg_slot(p, i);
	if (off < pg_lower(p) || off + MK_BRANCH_HDR > psize)
		return 0;
	return nd_child(p + off);
}

/* The value of leaf node @n (already bounds-checked for its key). */
static int node_val(const pager *pg, const page *p, const uint8_t *n,
		    mapkv_val *val)
{
	uint32_t vs = nd_leaf_vsize(n);
	size_t off = (size_t)(n - p) + MK_LEAF_HDR + nd_leaf_ksize(n);
	if (nd_flags(n) & MK_N_BIG) {
		if (off + 4 > pg->psize)
			return MAPKV_CORRUPT;
		pgno_t ov = pg_ld32(p + off);
		const page *op;
		int rc = pager_get(pg, ov, &op);
		if (rc)
			return rc;
		uint64_t need = pg_ov_pages(pg->psize, vs);
		if (pg_pgno(op) != ov || pg_flags(op) != MK_P_OVERFLOW ||
		    pg_ovpages(op) != need ||
		    (!pager_dirty(pg, ov) && ov + need > pg->snap_pages))
			return MAPKV_CORRUPT;
		val->data = op + MK_PAGE_HDR;
		val->size = vs;
		return 0;
	}
	if (off + vs > pg->psize)
		return MAPKV_CORRUPT;
	val->data = p + off;
	val->size = vs;
	return 0;
}

/* Fetch page @pgno expected to be of @kind, header checked. */
static inline int get_page(const pager *pg, pgno_t pgno, unsigned kind,
			   const page **out)
{
	const page *p;
	int rc = pager_get(pg, pgno, &p);
	if (rc)
		return rc;
	if (!pg_check_hdr(p, pgno, kind, pg->psize))
		return MAPKV_CORRUPT;
	*out = p;
	return 0;
}

/* get_page for a child of @parent (NULL for a root): a writer also checks
 * that a committed parent does not lead to one of its private pages
 * (pager_get_child). */
static inline int get_child(const pager *pg, const page *parent, pgno_t pgno,
			    unsigned kind, const page **out)
{
	const page *p;
	int rc = parent ? pager_get_child(pg, parent, pgno, &p)
			: pager_get(pg, pgno, &p);
	if (rc)
		return rc;
	if (!pg_check_hdr(p, pgno, kind, pg->psize))
		return MAPKV_CORRUPT;
	*out = p;
	return 0;
}

static inline unsigned level_kind(const tree_rec *t, int level)
{
	return level == (int)t->depth - 1 ? MK_P_LEAF : MK_P_BRANCH;
}

static inline unsigned used_bytes(const page *p, unsigned psize)
{
	return (pg_lower(p) - MK_PAGE_HDR) + (psize - pg_upper(p));
}

/* ---- search ---- */

/* Index of the child of branch @p that covers @key: the last node whose
 * key is <= key (node 0 stands for minus infinity). */
static int branch_find(const page *p, unsigned psize, const void *key,
		       size_t klen, unsigned *out)
{
	unsigned n = pg_nkeys(p);
	if (n == 0)
		return MAPKV_CORRUPT;
	unsigned lo = 1, hi = n; /* first node with key > search key */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const uint8_t *k;
		unsigned ks;
		if (node_key(p, mid, 0, psize, &k, &ks))
			return MAPKV_CORRUPT;
		if (mk_cmp(k, ks, key, klen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*out = lo - 1;
	return 0;
}

/* Position of the first key >= @key in leaf @p. */
static int leaf_find(const page *p, unsigned psize, const void *key,
		     size_t klen, unsigned *out, int *exact)
{
	unsigned lo = 0, hi = pg_nkeys(p);
	*exact = 0;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const uint8_t *k;
		unsigned ks;
		if (node_key(p, mid, 1, psize, &k, &ks))
			return MAPKV_CORRUPT;
		int c = mk_cmp(k, ks, key, klen);
		if (c < 0) {
			lo = mid + 1;
		} else {
			if (c == 0) {
				*exact = 1;
				*out = mid;
				return 0;
			}
			hi = mid;
		}
	}
	*out = lo;
	return 0;
}

int bt_search(const pager *pg, const tree_rec *t, const void *key, size_t klen,
	      bt_path *path, int *exact)
{
	int rc;
	*exact = 0;
	path->depth = 0;
	if (t->root == 0)
		return MAPKV_NOTFOUND;
	if (t->depth == 0 || t->depth > BT_MAXDEPTH)
		return MAPKV_CORRUPT;
	pgno_t pgno = t->root;
	for (int l = 0; l < (int)t->depth; l++) {
		const page *p;
		unsigned kind = level_kind(t, l);
		if ((rc = get_child(pg, l ? path->pg[l - 1] : NULL, pgno, kind,
				    &p)))
			return rc;
		path->pg[l] = p;
		path->depth = l + 1;
		if (kind == MK_P_LEAF)
			return leaf_find(p, pg->psize, key, klen, &path->idx[l],
					 exact);
		unsigned ci;
		if ((rc = branch_find(p, pg->psize, key, klen, &ci)))
			return rc;
		path->idx[l] = ci;
		pgno = child_at(p, ci, pg->psize);
	}
	return MAPKV_CORRUPT;
}

int bt_get(const pager *pg, const tree_rec *t, const void *key, size_t klen,
	   mapkv_val *val)
{
	bt_path path;
	int exact;
	int rc = bt_search(pg, t, key, klen, &path, &exact);
	if (rc)
		return rc;
	if (!exact)
		return MAPKV_NOTFOUND;
	const page *leaf = path.pg[path.depth - 1];
	return node_val(pg, leaf, pg_node(leaf, path.idx[path.depth - 1]), val);
}

/* ---- page editing (on private pages only) ---- */

/* Insert @node as node @i of @p. Callers make room first; the check here
 * keeps a size that slipped through from ever writing outside the page. */
static int node_insert(page *p, unsigned i, const uint8_t *node, unsigned nsize)
{
	unsigned n = pg_nkeys(p);
	if (nsize + 2 > pg_free(p) || i > n)
		return MAPKV_CORRUPT;
	unsigned upper = pg_upper(p) - nsize;
	memcpy(p + upper, node, nsize);
	uint8_t *slots = p + MK_PAGE_HDR;
	memmove(slots + 2 * (i + 1), slots + 2 * i, 2 * (n - i));
	pg_st16(slots + 2 * i, (uint16_t)upper);
	pg_st16(p + 6, (uint16_t)(n + 1));
	pg_st16(p + 8, (uint16_t)(pg_lower(p) + 2));
	pg_st16(p + 10, (uint16_t)upper);
	return 0;
}

static unsigned node_size_at(const page *p, unsigned i)
{
	const uint8_t *n = pg_node(p, i);
	return (pg_flags(p) & MK_P_LEAF) ? nd_leaf_size(n) : nd_branch_size(n);
}

static void node_delete(page *p, unsigned i)
{
	unsigned n = pg_nkeys(p);
	unsigned off = pg_slot(p, i);
	unsigned sz = node_size_at(p, i);
	unsigned upper = pg_upper(p);
	memmove(p + upper + sz, p + upper, off - upper);
	uint8_t *slots = p + MK_PAGE_HDR;
	for (unsigned j = 0; j < n; j++) {
		unsigned o = pg_ld16(slots + 2 * j);
		if (o < off)
			pg_st16(slots + 2 * j, (uint16_t)(o + sz));
	}
	memmove(slots + 2 * i, slots + 2 * (i + 1), 2 * (n - i - 1));
	pg_st16(p + 6, (uint16_t)(n - 1));
	pg_st16(p + 8, (uint16_t)(pg_lower(p) - 2));
	pg_st16(p + 10, (uint16_t)(upper + sz));
}

static int node_append(page *p, const uint8_t *node, unsigned nsize)
{
	return node_insert(p, pg_nkeys(p), node, nsize);
}

static unsigned make_branch_node(uint8_t *buf, pgno_t child, const void *key,
				 unsigned ks)
{
	pg_st32(buf, child);
	pg_st16(buf + 4, (uint16_t)ks);
	if (ks)
		memmove(buf + MK_BRANCH_HDR, key, ks);
	return MK_BRANCH_HDR + ks;
}

/* Do the keys of page @p, child @i of branch @parent, lie in the range the
 * parent gives (at or above separator i, below separator i+1)? A writer
 * that edits a page holding keys outside it would put separators out of
 * order when the page splits, and keys elsewhere could no longer be found
 * (damage that mapkv_check reports, and that a writer must not spread). */
static int in_parent_range(const pager *pg, const page *parent, unsigned i,
			   const page *p)
{
	unsigned psize = pg->psize, n = pg_nkeys(p);
	int leaf = (pg_flags(p) & MK_P_LEAF) != 0;
	unsigned first = leaf ? 0 : 1; /* node 0 of a branch has no key */
	const uint8_t *k, *s;
	unsigned ks, ss;
	if (n <= first)
		return 1;
	if (i > 0 && (node_key(parent, i, 0, psize, &s, &ss) ||
		      node_key(p, first, leaf, psize, &k, &ks) ||
		      mk_cmp(k, ks, s, ss) < 0))
		return 0;
	if (i + 1 < pg_nkeys(parent) &&
	    (node_key(parent, i + 1, 0, psize, &s, &ss) ||
	     node_key(p, n - 1, leaf, psize, &k, &ks) ||
	     mk_cmp(k, ks, s, ss) >= 0))
		return 0;
	return 1;
}

/* Make every page on the path private, top-down, relinking each copy into
 * its (already private) parent. */
static int touch_path(pager *pg, tree_rec *t, bt_path *path)
{
	for (int l = 0; l < path->depth; l++) {
		page *np;
		if (l > 0 && pager_committed(pg, path->pg[l]) &&
		    !in_parent_range(pg, path->pg[l - 1], path->idx[l - 1],
				     path->pg[l]))
			return MAPKV_CORRUPT;
		int rc = pager_touch(pg, path->pg[l], &np);
		if (rc)
			return rc;
		if (np != path->pg[l]) {
			if (l == 0)
				t->root = pg_pgno(np);
			else
				nd_set_child(
					(uint8_t *)pg_node(path->pg[l - 1],
							   path->idx[l - 1]),
					pg_pgno(np));
			path->pg[l] = np;
		}
	}
	return 0;
}

/* ---- split ---- */

static int insert_node(pager *pg, tree_rec *t, bt_path *path, int level,
		       const uint8_t *node, unsigned nsize);

/* Scratch layout (pager.scratch, 4 pages): [0, P) a copy of the page being
 * split; [2P, 3P) and [3P, 4P) two node buffers. A new node lives in one of
 * them and the separator it causes is built in the other, so each level of
 * a cascading split reads from one and writes to the other. */
static uint8_t *other_buf(pager *pg, const uint8_t *node)
{
	uint8_t *a = pg->scratch + 2 * (size_t)pg->psize;
	return node == a ? a + pg->psize : a;
}

/* Is the path at its rightmost position above @level? */
static int path_rightmost(const bt_path *path, int level)
{
	for (int l = 0; l < level; l++)
		if (path->idx[l] + 1 != pg_nkeys(path->pg[l]))
			return 0;
	return 1;
}

/* Can the split set be cut before node @k (nodes [0, k) stay, [k, n) go
 * to the new right page) with both halves fitting a page of @usable bytes?
 * @total is the bytes of all nodes and slots; in a branch, the right
 * page's first node loses its key. */
static int split_fits(const split_set *s, unsigned total, int leaf,
		      unsigned usable, unsigned k)
{
	if (k == 0 || k >= s->n)
		return 0;
	unsigned left = 0;
	for (unsigned j = 0; j < k; j++)
		left += s->size[j] + 2;
	unsigned right = total - left;
	if (!leaf)
		right -= nd_branch_ksize(s->node[k]);
	return left <= usable && right <= usable;
}

/* The cut that fits and leaves the two halves closest in bytes; 0 if none
 * fits. */
static unsigned split_balanced(const split_set *s, unsigned total, int leaf,
			       unsigned usable)
{
	unsigned best = 0, bestdiff = ~0u, left = 0;
	for (unsigned j = 1; j < s->n; j++) {
		left += s->size[j - 1] + 2;
		unsigned right = total - left;
		if (!leaf) /* node j loses its key in the right page */
			right -= nd_branch_ksize(s->node[j]);
		if (left > usable || right > usable)
			continue;
		unsigned diff = left > right ? left - right : right - left;
		if (diff < bestdiff) {
			bestdiff = diff;
			best = j;
		}
	}
	return best;
}

/*
 * Split page path->pg[level] while inserting @node at position @ins.
 * Steps: copy the page aside; list its nodes with the new one in place;
 * choose a split point; rebuild the left page in place and fill a new right
 * page; push the separator into the parent (which may split in turn) or
 * grow a new root.
 *
 * The split point: at the new node when it continues a sequential run or
 * goes at the tree's right edge, which leaves full pages behind a
 * sequential load; otherwise, or when that cut does not fit, the
 * byte-balanced one. Every cut is checked by bytes on both sides, and one
 * always fits, so two pages always suffice: the old nodes and slots fit
 * in the usable space U (the page was valid: pg_check on copy, or built
 * here) and the new node with its slot takes at most U / 2 (INLINE LIMIT in
 * page.h). If neither the cut just before the new node nor the one just
 * after it fitted, then prefix + new > U and new + tail > U, so
 * 2 * new > 2 * U - (prefix + tail) >= U: a contradiction. (Where the new
 * node is first or last, the cut on its other side puts it alone in a
 * page.)
 */
static int split_page(pager *pg, tree_rec *t, bt_path *path, int level,
		      const uint8_t *node, unsigned nsize, unsigned ins)
{
	unsigned psize = pg->psize, usable = USABLE(psize);
	page *p = (page *)path->pg[level];
	int leaf = (pg_flags(p) & MK_P_LEAF) != 0;
	uint8_t *copy = pg->scratch;
	memcpy(copy, p, psize);
	unsigned n = pg_nkeys(copy);
	/* The split arrays (psize / 8 + 2 entries, allocated in env.c) hold
	 * the nodes of any valid page and the new one. */
	assert(n <= pg_max_nodes(psize) &&
	       pg_max_nodes(psize) + 1 <= psize / 8 + 2);
	assert(nsize + 2 <= usable / 2 && ins <= n);
	if (n > pg_max_nodes(psize) || ins > n)
		return MAPKV_CORRUPT;
	split_set s = {pg->split_node, pg->split_size, 0};
	for (unsigned j = 0; j <= n; j++) {
		if (j == ins) {
			s.node[s.n] = node;
			s.size[s.n++] = nsize;
		}
		if (j < n) {
			s.node[s.n] = pg_node(copy, j);
			s.size[s.n++] = node_size_at(copy, j);
		}
	}
	unsigned total = 0;
	for (unsigned j = 0; j < s.n; j++)
		total += s.size[j] + 2;
	unsigned k = 0;
	/* A leaf insert right after the previous one (a sequential run, at
	 * the end of the tree or anywhere inside it) splits at the new node,
	 * so the run leaves full pages behind instead of half-full ones; when
	 * the new node and the rest of the page do not fit one page, the cut
	 * after it keeps the run at the end of the left page. */
	if (leaf && pg_pgno(p) == pg->last_leaf && ins == pg->last_idx + 1) {
		if (split_fits(&s, total, leaf, usable, ins))
			k = ins;
		else if (split_fits(&s, total, leaf, usable, ins + 1))
			k = ins + 1;
	} else if (ins == n && path_rightmost(path, level)) {
		if (split_fits(&s, total, leaf, usable, s.n - 1))
			k = s.n - 1;
	}
	if (k == 0)
		k = split_balanced(&s, total, leaf, usable);
	assert(k != 0); /* one always fits: see above */
	if (k == 0)
		return MAPKV_CORRUPT;

	page *rp;
	int rc = pager_alloc(pg, 1, &rp);
	if (rc)
		return rc;
	pg_init(rp, pg_pgno(rp), leaf ? MK_P_LEAF : MK_P_BRANCH, psize);

	/* The separator: for leaves, the shortest prefix of the right page's
	 * first key that is greater than the left page's last key; for
	 * branches, the key of the node that becomes the right page's first
	 * (and loses its key there). */
	const uint8_t *sep;
	unsigned seplen;
	if (leaf) {
		const uint8_t *lk = nd_leaf_key(s.node[k - 1]);
		unsigned lks = nd_leaf_ksize(s.node[k - 1]);
		sep = nd_leaf_key(s.node[k]);
		unsigned rks = nd_leaf_ksize(s.node[k]);
		unsigned c = 0;
		while (c < lks && c < rks && lk[c] == sep[c])
			c++;
		seplen = c + 1 <= rks ? c + 1 : rks;
	} else {
		sep = nd_branch_key(s.node[k]);
		seplen = nd_branch_ksize(s.node[k]);
	}

	if (leaf) {
		pg->last_leaf = ins < k ? pg_pgno(p) : pg_pgno(rp);
		pg->last_idx = ins < k ? ins : ins - k;
	}
	pg_init(p, pg_pgno(p), leaf ? MK_P_LEAF : MK_P_BRANCH, psize);
	for (unsigned j = 0; j < k && !rc; j++)
		rc = node_append(p, s.node[j], s.size[j]);
	for (unsigned j = k; j < s.n && !rc; j++) {
		if (!leaf && j == k) {
			uint8_t tmp[MK_BRANCH_HDR];
			make_branch_node(tmp, nd_child(s.node[j]), NULL, 0);
			rc = node_append(rp, tmp, MK_BRANCH_HDR);
		} else {
			rc = node_append(rp, s.node[j], s.size[j]);
		}
	}
	if (rc)
		return rc;
	if (leaf)
		t->leaf_pages++;
	else
		t->branch_pages++;

	uint8_t *snode = other_buf(pg, node);
	unsigned ssize = make_branch_node(snode, pg_pgno(rp), sep, seplen);

	if (level == 0) {
		page *root;
		if ((rc = pager_alloc(pg, 1, &root)))
			return rc;
		pg_init(root, pg_pgno(root), MK_P_BRANCH, psize);
		uint8_t tmp[MK_BRANCH_HDR];
		make_branch_node(tmp, pg_pgno(p), NULL, 0);
		if ((rc = node_append(root, tmp, MK_BRANCH_HDR)) ||
		    (rc = node_append(root, snode, ssize)))
			return rc;
		t->root = pg_pgno(root);
		t->depth++;
		t->branch_pages++;
		return 0;
	}
	path->idx[level - 1]++;
	return insert_node(pg, t, path, level - 1, snode, ssize);
}

static int insert_node(pager *pg, tree_rec *t, bt_path *path, int level,
		       const uint8_t *node, unsigned nsize)
{
	page *p = (page *)path->pg[level];
	unsigned i = path->idx[level];
	if (nsize + 2 <= pg_free(p)) {
		int rc = node_insert(p, i, node, nsize);
		if (rc)
			return rc;
		if (pg_flags(p) & MK_P_LEAF) {
			pg->last_leaf = pg_pgno(p);
			pg->last_idx = i;
		}
		return 0;
	}
	return split_page(pg, t, path, level, node, nsize, i);
}

/* ---- put ---- */

static int free_overflow(pager *pg, tree_rec *t, const page *leaf,
			 const uint8_t *n)
{
	mapkv_val v;
	int rc = node_val(pg, leaf, n, &v);
	if (rc)
		return rc;
	const page *op = (const page *)v.data - MK_PAGE_HDR;
	unsigned np = pg_ovpages(op);
	rc = pager_free(pg, pg_pgno(op), np);
	if (rc)
		return rc;
	t->overflow_pages -= np;
	return 0;
}

int bt_put(pager *pg, tree_rec *t, const void *key, size_t klen,
	   const void *val, size_t vlen, unsigned flags, void **reserve)
{
	unsigned psize = pg->psize;
	bt_path path;
	int exact, rc;
	if (!pg->writable)
		return MAPKV_READONLY;
	rc = bt_search(pg, t, key, klen, &path, &exact);
	if (rc == MAPKV_NOTFOUND && t->root == 0) {
		page *p;
		if ((rc = pager_alloc(pg, 1, &p)))
			return rc;
		pg_init(p, pg_pgno(p), MK_P_LEAF, psize);
		t->root = pg_pgno(p);
		t->depth = 1;
		t->leaf_pages = 1;
		t->branch_pages = t->overflow_pages = t->entries = 0;
		path.depth = 1;
		path.pg[0] = p;
		path.idx[0] = 0;
		exact = 0;
	} else if (rc) {
		return rc;
	}
	if (exact && (flags & MAPKV_NOOVERWRITE))
		return MAPKV_EXISTS;
	int big = MK_LEAF_HDR + klen + vlen > pg_node_max(psize);
	/* An overflow run is allocated before the path is copied: the run
	 * gets the first pick of the free pages (pager_alloc), so a copied
	 * leaf never breaks the run a rewritten value left behind. */
	uint64_t np = big ? pg_ov_pages(psize, vlen) : 0;
	page *op = NULL;
	if (np > 0xffffffffu)
		return MAPKV_BAD_VALUE;
	if (big && (rc = pager_alloc(pg, (unsigned)np, &op)))
		return rc;
	if ((rc = touch_path(pg, t, &path)))
		return rc;
	int lv = path.depth - 1;
	page *leaf = (page *)path.pg[lv];
	unsigned i = path.idx[lv];

	if (exact) {
		uint8_t *old = (uint8_t *)pg_node(leaf, i);
		if (!big && !(nd_flags(old) & MK_N_BIG) &&
		    nd_leaf_vsize(old) == vlen) {
			/* Same size: overwrite in place. */
			uint8_t *dst = old + MK_LEAF_HDR + klen;
			if (flags & BT_RESERVE)
				*reserve = dst;
			else if (vlen)
				memcpy(dst, val, vlen);
			return 0;
		}
		if (nd_flags(old) & MK_N_BIG)
			if ((rc = free_overflow(pg, t, leaf, old)))
				return rc;
		node_delete(leaf, i);
	}

	uint8_t *nb = pg->scratch + 2 * psize;
	pg_st16(nb + 2, (uint16_t)klen);
	pg_st32(nb + 4, (uint32_t)vlen);
	nb[1] = 0;
	memcpy(nb + MK_LEAF_HDR, key, klen);
	unsigned nsize;
	void *dst;
	if (big) {
		pg_st16(op + 4, MK_P_OVERFLOW);
		pg_set_ovpages(op, (uint32_t)np);
		t->overflow_pages += np;
		nb[0] = MK_N_BIG;
		pg_st32(nb + MK_LEAF_HDR + klen, pg_pgno(op));
		nsize = MK_LEAF_HDR + (unsigned)klen + 4;
		dst = op + MK_PAGE_HDR;
	} else {
		nb[0] = 0;
		nsize = MK_LEAF_HDR + (unsigned)(klen + vlen);
		dst = NULL;
	}
	if (!big && !(flags & BT_RESERVE) && vlen)
		memcpy(nb + MK_LEAF_HDR + klen, val, vlen);
	else if (big && !(flags & BT_RESERVE) && vlen)
		memcpy(dst, val, vlen);
	if (!exact)
		t->entries++;
	rc = insert_node(pg, t, &path, lv, nb, nsize);
	if (rc)
		return rc;
	if (flags & BT_RESERVE) {
		if (big) {
			*reserve = dst;
		} else {
			/* The node may have moved in a split: find it. */
			rc = bt_search(pg, t, key, klen, &path, &exact);
			if (rc)
				return rc;
			if (!exact)
				return MAPKV_CORRUPT;
			const page *lp = path.pg[path.depth - 1];
			*reserve = (uint8_t *)pg_node(
					   lp, path.idx[path.depth - 1]) +
				   MK_LEAF_HDR + klen;
		}
	}
	return 0;
}

/* ---- delete and rebalance ---- */

/* Remove node @i of branch @p; if it was node 0, the new node 0 loses its
 * key (node 0's key is always empty). */
static int branch_remove(page *p, unsigned i)
{
	node_delete(p, i);
	if (i == 0 && pg_nkeys(p) > 0 && nd_branch_ksize(pg_node(p, 0))) {
		pgno_t c = nd_child(pg_node(p, 0));
		node_delete(p, 0);
		uint8_t tmp[MK_BRANCH_HDR];
		make_branch_node(tmp, c, NULL, 0);
		return node_insert(p, 0, tmp, MK_BRANCH_HDR);
	}
	return 0;
}

/* Would the nodes of @r appended to @l (siblings, @sk the parent's
 * separator between them) stay in key order? The merge copies nodes
 * without looking at them otherwise. */
static int merge_in_order(const page *l, const page *r, int leaf,
			  const uint8_t *sk, unsigned sks, unsigned psize)
{
	unsigned ln = pg_nkeys(l), rn = pg_nkeys(r);
	const uint8_t *a, *b;
	unsigned as, bs;
	if (leaf) {
		if (ln == 0 || rn == 0)
			return 1;
		return !node_key(l, ln - 1, 1, psize, &a, &as) &&
		       !node_key(r, 0, 1, psize, &b, &bs) &&
		       mk_cmp(a, as, b, bs) < 0;
	}
	if (ln > 1 && (node_key(l, ln - 1, 0, psize, &a, &as) ||
		       mk_cmp(a, as, sk, sks) >= 0))
		return 0;
	if (rn > 1 &&
	    (node_key(r, 1, 0, psize, &b, &bs) || mk_cmp(sk, sks, b, bs) >= 0))
		return 0;
	return 1;
}

static void count_page(tree_rec *t, const page *p, int delta)
{
	if (pg_flags(p) & MK_P_LEAF)
		t->leaf_pages += delta;
	else
		t->branch_pages += delta;
}

/*
 * After a delete from path->pg[level], walk up: an empty page is removed
 * from its parent; a page under a quarter full (or a branch with one
 * child) is merged into a sibling when the two fit in one page. Merging
 * only ever shrinks the parent, so no split can follow. Finally a root
 * branch with a single child gives way to that child, and an empty root
 * leaf leaves the tree empty.
 */
static int rebalance(pager *pg, tree_rec *t, bt_path *path, int level)
{
	unsigned psize = pg->psize, usable = USABLE(psize);
	int rc;
	while (level > 0) {
		page *p = (page *)path->pg[level];
		int leaf = (pg_flags(p) & MK_P_LEAF) != 0;
		unsigned nk = pg_nkeys(p);
		unsigned used = used_bytes(p, psize);
		if (nk > 0 && used >= usable / 4 && (leaf || nk > 1))
			return 0;
		page *parent = (page *)path->pg[level - 1];
		unsigned pi = path->idx[level - 1];
		if (nk == 0) {
			count_page(t, p, -1);
			if ((rc = pager_free(pg, pg_pgno(p), 1)))
				return rc;
			if ((rc = branch_remove(parent, pi)))
				return rc;
			level--;
			continue;
		}
		unsigned pn = pg_nkeys(parent);
		unsigned li, ri;
		if (pi + 1 < pn) {
			li = pi;
			ri = pi + 1;
		} else if (pi > 0) {
			li = pi - 1;
			ri = pi;
		} else {
			level--;
			continue;
		}
		unsigned kind = leaf ? MK_P_LEAF : MK_P_BRANCH;
		const page *l, *r;
		pgno_t lno = child_at(parent, li, psize);
		pgno_t rno = child_at(parent, ri, psize);
		if (lno == rno)
			return MAPKV_CORRUPT;
		if ((rc = get_page(pg, lno, kind, &l)))
			return rc;
		if ((rc = get_page(pg, rno, kind, &r)))
			return rc;
		const uint8_t *sk;
		unsigned sks;
		if ((rc = node_key(parent, ri, 0, psize, &sk, &sks)))
			return rc;
		unsigned need = used_bytes(l, psize) + used_bytes(r, psize) +
				(leaf ? 0 : sks);
		if (need > usable)
			return 0; /* siblings too full to merge: leave it */
		/* r's nodes are copied by their recorded sizes: check it as
		 * pager_touch checks l (issue 11, bug 5). */
		if (pg_check(r, psize))
			return MAPKV_CORRUPT;
		page *lw;
		if ((rc = pager_touch(pg, l, &lw)))
			return rc;
		if (!merge_in_order(lw, r, leaf, sk, sks, psize))
			return MAPKV_CORRUPT;
		nd_set_child((uint8_t *)pg_node(parent, li), pg_pgno(lw));
		unsigned rn = pg_nkeys(r);
		for (unsigned j = 0; j < rn && !rc; j++) {
			const uint8_t *nd = pg_node(r, j);
			if (!leaf && j == 0) {
				uint8_t *tmp = pg->scratch;
				unsigned sz = make_branch_node(
					tmp, nd_child(nd), sk, sks);
				rc = node_append(lw, tmp, sz);
			} else {
				rc = node_append(lw, nd, node_size_at(r, j));
			}
		}
		if (rc)
			return rc;
		count_page(t, r, -1);
		if ((rc = pager_free(pg, pg_pgno(r), 1)))
			return rc;
		if ((rc = branch_remove(parent, ri)))
			return rc;
		level--;
	}
	/* The root. */
	while (t->depth > 0) {
		const page *root;
		unsigned kind = t->depth == 1 ? MK_P_LEAF : MK_P_BRANCH;
		if ((rc = get_page(pg, t->root, kind, &root)))
			return rc;
		if (kind == MK_P_BRANCH && pg_nkeys(root) == 1) {
			pgno_t c = child_at(root, 0, pg->psize);
			t->branch_pages--;
			if ((rc = pager_free(pg, t->root, 1)))
				return rc;
			t->root = c;
			t->depth--;
			continue;
		}
		if (kind == MK_P_LEAF && pg_nkeys(root) == 0) {
			t->leaf_pages--;
			if ((rc = pager_free(pg, t->root, 1)))
				return rc;
			t->root = 0;
			t->depth = 0;
		}
		break;
	}
	return 0;
}

int bt_del(pager *pg, tree_rec *t, const void *key, size_t klen)
{
	bt_path path;
	int exact, rc;
	if (!pg->writable)
		return MAPKV_READONLY;
	rc = bt_search(pg, t, key, klen, &path, &exact);
	if (rc)
		return rc;
	if (!exact)
		return MAPKV_NOTFOUND;
	if ((rc = touch_path(pg, t, &path)))
		return rc;
	int lv = path.depth - 1;
	page *leaf = (page *)path.pg[lv];
	const uint8_t *n = pg_node(leaf, path.idx[lv]);
	if (nd_flags(n) & MK_N_BIG)
		if ((rc = free_overflow(pg, t, leaf, n)))
			return rc;
	node_delete(leaf, path.idx[lv]);
	t->entries--;
	return rebalance(pg, t, &path, lv);
}

/* ---- walking, dropping ---- */

/* Pages one walk has seen: a bit per page number below the transaction's
 * high-water mark. In a tree every page has one parent, so a page reached
 * twice means damage (a branch entry or an overflow run shared, or a
 * DAG whose paths multiply with its depth). */
typedef struct walk_set {
	uint8_t *bits;
	uint64_t npages;
} walk_set;

static int walk_mark(walk_set *w, pgno_t pgno, uint64_t n)
{
	if ((uint64_t)pgno + n > w->npages)
		return MAPKV_CORRUPT;
	for (uint64_t p = pgno; p < (uint64_t)pgno + n; p++) {
		uint8_t bit = (uint8_t)(1u << (p % 8));
		if (w->bits[p / 8] & bit)
			return MAPKV_CORRUPT;
		w->bits[p / 8] |= bit;
	}
	return 0;
}

static int walk(const pager *pg, const tree_rec *t, walk_set *w, pgno_t pgno,
		int level, bt_visit_fn fn, void *ctx)
{
	const page *p;
	unsigned kind = level_kind(t, level);
	int rc = walk_mark(w, pgno, 1);
	if (rc)
		return rc;
	if ((rc = get_page(pg, pgno, kind, &p)))
		return rc;
	unsigned n = pg_nkeys(p);
	if (kind == MK_P_LEAF) {
		for (unsigned i = 0; i < n; i++) {
			const uint8_t *k;
			unsigned ks;
			if ((rc = node_key(p, i, 1, pg->psize, &k, &ks)))
				return rc;
			const uint8_t *nd = pg_node(p, i);
			if (nd_flags(nd) & MK_N_BIG) {
				mapkv_val v;
				if ((rc = node_val(pg, p, nd, &v)))
					return rc;
				const page *op =
					(const page *)v.data - MK_PAGE_HDR;
				if ((rc = walk_mark(w, pg_pgno(op),
						    pg_ovpages(op))))
					return rc;
				if ((rc = fn(ctx, pg_pgno(op), MK_P_OVERFLOW,
					     pg_ovpages(op), level + 1)))
					return rc;
			}
		}
	} else {
		for (unsigned i = 0; i < n; i++) {
			const uint8_t *k;
			unsigned ks;
			if ((rc = node_key(p, i, 0, pg->psize, &k, &ks)))
				return rc;
			if ((rc = walk(pg, t, w, child_at(p, i, pg->psize),
				       level + 1, fn, ctx)))
				return rc;
		}
	}
	return fn(ctx, pgno, kind, 1, level);
}

int bt_walk(const pager *pg, const tree_rec *t, bt_visit_fn fn, void *ctx)
{
	if (t->root == 0)
		return 0;
	if (t->depth == 0 || t->depth > BT_MAXDEPTH)
		return MAPKV_CORRUPT;
	walk_set w;
	w.npages = pg->writable && pg->next_pgno > pg->snap_pages
			   ? pg->next_pgno
			   : pg->snap_pages;
	os_vfs *vfs = pg->env->vfs;
	size_t nbytes = (size_t)((w.npages + 7) / 8);
	if (!(w.bits = vfs->alloc(vfs, nbytes ? nbytes : 1)))
		return MAPKV_NOMEM;
	memset(w.bits, 0, nbytes);
	int rc = walk(pg, t, &w, t->root, 0, fn, ctx);
	vfs->free(vfs, w.bits);
	return rc;
}

static int drop_visit(void *ctx, pgno_t pgno, unsigned kind, unsigned npages,
		      unsigned level)
{
	(void)kind;
	(void)level;
	return pager_free((pager *)ctx, pgno, npages);
}

int bt_drop(pager *pg, tree_rec *t)
{
	if (!pg->writable)
		return MAPKV_READONLY;
	/* Pages are freed after their children have been visited, and a
	 * private page freed here is released only after the visit of that
	 * page returned, so the walk never reads a released buffer. */
	int rc = bt_walk(pg, t, drop_visit, pg);
	if (rc)
		return rc;
	uint32_t flags = t->flags;
	memset(t, 0, sizeof(*t));
	t->flags = flags;
	return 0;
}

/* ---- cursor movement ---- */

/* A scan is bound by memory latency: a leaf's nodes lie in the order they
 * were inserted, so stepping through one misses the cache at every node.
 * On arriving at a leaf, ask for all of it and for the header of the
 * leaf the scan will visit next, so the loads overlap. */
static void prefetch_leaf(const pager *pg, const page *leaf, const page *parent,
			  unsigned pidx, int dir)
{
#if defined(__GNUC__)
	for (unsigned o = pg_upper(leaf) & ~63u; o < pg->psize; o += 64)
		__builtin_prefetch(leaf + o);
	unsigned n = pg_nkeys(parent);
	if (dir == 0 ? pidx + 1 < n : pidx > 0) {
		pgno_t next =
			child_at(parent, dir ? pidx - 1 : pidx + 1, pg->psize);
		if (next < pg->snap_pages && !pg->writable)
			__builtin_prefetch(pg->map + (size_t)next * pg->psize);
	}
#else
	(void)pg, (void)leaf, (void)parent, (void)pidx, (void)dir;
#endif
}

/* Descend from the child at path level @l (whose idx is set) to the
 * leftmost (dir=0) or rightmost (dir=1) leaf, given the tree depth. */
static int descend(const pager *pg, bt_path *path, int l, int depth, int dir)
{
	int rc;
	while (l + 1 < depth) {
		const page *p = path->pg[l];
		pgno_t c = child_at(p, path->idx[l], pg->psize);
		unsigned kind = (l + 1 == depth - 1) ? MK_P_LEAF : MK_P_BRANCH;
		const page *cp;
		if ((rc = get_child(pg, p, c, kind, &cp)))
			return rc;
		if (pg_nkeys(cp) == 0)
			return MAPKV_CORRUPT;
		l++;
		path->pg[l] = cp;
		path->idx[l] = dir ? pg_nkeys(cp) - 1u : 0;
		if (kind == MK_P_LEAF)
			prefetch_leaf(pg, cp, p, path->idx[l - 1], dir);
	}
	return 0;
}

static int edge(const pager *pg, const tree_rec *t, bt_path *path, int dir)
{
	if (t->root == 0)
		return MAPKV_NOTFOUND;
	if (t->depth == 0 || t->depth > BT_MAXDEPTH)
		return MAPKV_CORRUPT;
	const page *p;
	int rc = get_page(pg, t->root, level_kind(t, 0), &p);
	if (rc)
		return rc;
	if (pg_nkeys(p) == 0)
		return t->depth == 1 ? MAPKV_NOTFOUND : MAPKV_CORRUPT;
	bt_path np;
	np.depth = (int)t->depth;
	np.pg[0] = p;
	np.idx[0] = dir ? pg_nkeys(p) - 1u : 0;
	if ((rc = descend(pg, &np, 0, np.depth, dir)))
		return rc;
	*path = np;
	return 0;
}

int bt_first(const pager *pg, const tree_rec *t, bt_path *path)
{
	return edge(pg, t, path, 0);
}

int bt_last(const pager *pg, const tree_rec *t, bt_path *path)
{
	return edge(pg, t, path, 1);
}

/* A scan's leaves hold ever larger keys: the leaf @to that a step moves
 * to from @from must hold keys beyond @from's (first(to) > last(from)
 * forwards, last(to) < first(from) backwards), in order at its ends. So a
 * damaged tree whose branch pages reach one leaf by many paths (a DAG:
 * their number grows exponentially with depth) or in a cycle ends the
 * scan with MAPKV_CORRUPT at the first repeated leaf, at the cost of two
 * compares per leaf. */
static int leaf_follows(const pager *pg, const page *from, const page *to,
			int dir)
{
	unsigned fn = pg_nkeys(from), tn = pg_nkeys(to), ps = pg->psize;
	const uint8_t *f, *a, *b;
	unsigned fs, as, bs;
	if (fn == 0 || tn == 0 ||
	    node_key(from, dir ? 0 : fn - 1, 1, ps, &f, &fs) ||
	    node_key(to, 0, 1, ps, &a, &as) ||
	    node_key(to, tn - 1, 1, ps, &b, &bs) || mk_cmp(a, as, b, bs) > 0)
		return MAPKV_CORRUPT;
	int c = dir ? mk_cmp(b, bs, f, fs) : mk_cmp(f, fs, a, as);
	return c < 0 ? 0 : MAPKV_CORRUPT;
}

static int step(const pager *pg, bt_path *path, int dir)
{
	int d = path->depth;
	if (d <= 0)
		return MAPKV_NOTFOUND;
	int l = d - 1;
	if (dir == 0 && path->idx[l] + 1 < pg_nkeys(path->pg[l])) {
		path->idx[l]++;
		return 0;
	}
	if (dir == 1 && path->idx[l] > 0) {
		path->idx[l]--;
		return 0;
	}
	/* Find the nearest level that can move, then descend. */
	int u = l - 1;
	while (u >= 0 && (dir == 0 ? path->idx[u] + 1 >= pg_nkeys(path->pg[u])
				   : path->idx[u] == 0))
		u--;
	if (u < 0)
		return MAPKV_NOTFOUND;
	/* Descend in place, keeping the levels it changes (usually one or
	 * two) to put back if it fails: a scan steps to a new leaf every
	 * few dozen keys, and copying the whole path each time showed. */
	const page *spg[BT_MAXDEPTH];
	unsigned sidx[BT_MAXDEPTH];
	for (int i = u; i < d; i++) {
		spg[i] = path->pg[i];
		sidx[i] = path->idx[i];
	}
	path->idx[u] += dir == 0 ? 1 : -1;
	int rc = descend(pg, path, u, d, dir);
	if (!rc)
		rc = leaf_follows(pg, spg[l], path->pg[l], dir);
	if (rc) {
		for (int i = u; i < d; i++) {
			path->pg[i] = spg[i];
			path->idx[i] = sidx[i];
		}
	}
	return rc;
}

int bt_next(const pager *pg, bt_path *path)
{
	return step(pg, path, 0);
}

int bt_prev(const pager *pg, bt_path *path)
{
	return step(pg, path, 1);
}

int bt_path_kv(const pager *pg, const bt_path *path, mapkv_val *key,
	       mapkv_val *val)
{
	if (path->depth <= 0)
		return MAPKV_NOTFOUND;
	const page *p = path->pg[path->depth - 1];
	unsigned i = path->idx[path->depth - 1];
	if (i >= pg_nkeys(p))
		return MAPKV_NOTFOUND;
	const uint8_t *k;
	unsigned ks;
	int rc = node_key(p, i, 1, pg->psize, &k, &ks);
	if (rc)
		return rc;
	if (key) {
		key->data = k;
		key->size = ks;
	}
	if (val)
		return node_val(pg, p, pg_node(p, i), val);
	return 0;
}
