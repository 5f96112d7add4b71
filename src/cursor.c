/*
 * cursor.c: cursors (see cursor.h for the design, mapkv.h for the
 * semantics).
 */
#include "cursor.h"

#include <string.h>

int cur_open(mapkv_txn *txn, mapkv_dbi dbi, txn_tree *tt,
	     _Atomic uint32_t *live, mapkv_cursor **out)
{
	os_vfs *vfs = txn->env->vfs;
	mapkv_cursor *c = vfs->alloc(vfs, sizeof(*c));
	if (!c)
		return MAPKV_NOMEM;
	memset(c, 0, offsetof(mapkv_cursor, key));
	c->txn = txn;
	c->vfs = vfs;
	c->dbi = dbi;
	c->tt = tt;
	c->live = live;
	c->next = txn->cursors;
	if (txn->cursors)
		txn->cursors->prev = c;
	txn->cursors = c;
	*out = c;
	return 0;
}

void cur_close(mapkv_cursor *c)
{
	mapkv_txn *txn = c->txn;
	if (txn) {
		if (c->prev)
			c->prev->next = c->next;
		else
			txn->cursors = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	c->vfs->free(c->vfs, c);
}

/* A path is copied often (each move works on a copy): only the levels in
 * use, usually 2 to 4 of the 32. */
static void path_copy(bt_path *dst, const bt_path *src)
{
	int d = src->depth;
	dst->depth = d;
	memcpy(dst->pg, src->pg, (size_t)d * sizeof(src->pg[0]));
	memcpy(dst->idx, src->idx, (size_t)d * sizeof(src->idx[0]));
}

/* Where @key is in tree @t: *where is CUR_ON, CUR_BEFORE or CUR_END with
 * *path placed as cursor.h says. */
static int find(const pager *pg, const tree_rec *t, const void *key,
		size_t klen, bt_path *path, int *where)
{
	int exact;
	int rc = bt_search(pg, t, key, klen, path, &exact);
	if (rc == MAPKV_NOTFOUND) {
		path->depth = 0;
		*where = CUR_END;
		return 0;
	}
	if (rc)
		return rc;
	int l = path->depth - 1;
	unsigned n = pg_nkeys(path->pg[l]);
	if (n == 0) {
		/* Only a root leaf may be empty. */
		if (l != 0)
			return MAPKV_CORRUPT;
		path->depth = 0;
		*where = CUR_END;
		return 0;
	}
	if (path->idx[l] < n) {
		*where = exact ? CUR_ON : CUR_BEFORE;
		return 0;
	}
	/* Every key of this leaf is smaller: the next key, if any, is in
	 * the leaves to the right. */
	path->idx[l] = n - 1;
	bt_path nx;
	path_copy(&nx, path);
	rc = bt_next(pg, &nx);
	if (rc == MAPKV_NOTFOUND) {
		*where = CUR_END;
		return 0;
	}
	if (rc)
		return rc;
	path_copy(path, &nx);
	*where = CUR_BEFORE;
	return 0;
}

/* Bring a writer's cached place of its key up to date with the tree. */
static int locate(mapkv_cursor *c, const tree_rec *t)
{
	mapkv_txn *txn = c->txn;
	if (!c->positioned || c->seq == txn->mod_seq ||
	    (txn->flags & MAPKV_RDONLY))
		return 0;
	bt_path path;
	int where;
	int rc = find(&txn->pg, t, c->key, c->klen, &path, &where);
	if (rc)
		return rc;
	path_copy(&c->path, &path);
	c->where = where;
	c->seq = txn->mod_seq;
	return 0;
}

/* The cursor moves to the pair at @p (which may be c->path itself). */
static int land(mapkv_cursor *c, const bt_path *p, mapkv_val *key,
		mapkv_val *val)
{
	mapkv_txn *txn = c->txn;
	mapkv_val k, v;
	/* The key is 1 to MAPKV_MAX_KEY_SIZE bytes (bt_path_kv refuses a
	 * damaged one), so it fits the copy a writer keeps. */
	int rc = bt_path_kv(&txn->pg, p, &k, val ? &v : NULL);
	if (rc)
		return rc;
	if (!(txn->flags & MAPKV_RDONLY)) {
		memcpy(c->key, k.data, k.size);
		c->klen = k.size;
	}
	if (p != &c->path)
		path_copy(&c->path, p);
	c->where = CUR_ON;
	c->seq = txn->mod_seq;
	c->positioned = 1;
	if (key)
		*key = k;
	if (val)
		*val = v;
	return 0;
}

/* Every operation but a reader's step within a leaf: kept out of
 * cur_get so that the scan's step does not pay for this one's frame. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int
cur_move(mapkv_cursor *c, mapkv_val *key, mapkv_val *val, int op)
{
	mapkv_txn *txn = c->txn;
	const pager *pg = &txn->pg;
	if (txn->state != TXN_ACTIVE)
		return MAPKV_BAD_TXN;
	int rc = txn_tree_check(c->tt, c->live, c->dbi);
	if (rc)
		return rc;
	if (op == MAPKV_SEEK || op == MAPKV_SEEK_EXACT) {
		if (!key)
			return MAPKV_INVALID;
		if (key->size == 0 || key->size > MAPKV_MAX_KEY_SIZE)
			return MAPKV_BAD_KEY;
		if (!key->data)
			return MAPKV_INVALID;
	} else if (op < MAPKV_FIRST || op > MAPKV_GET_CURRENT) {
		return MAPKV_INVALID;
	}
	const tree_rec *t = &c->tt->rec;
	bt_path p;
	int where;
	if ((rc = locate(c, t)))
		return rc;

	/* Each case computes the new place in p; the cursor changes only
	 * in land(), after the move succeeded. */
	switch (op) {
	case MAPKV_FIRST:
		rc = bt_first(pg, t, &p);
		break;
	case MAPKV_LAST:
		rc = bt_last(pg, t, &p);
		break;
	case MAPKV_NEXT:
		path_copy(&p, &c->path);
		if (!c->positioned)
			rc = bt_first(pg, t, &p);
		else if (c->where == CUR_ON)
			rc = bt_next(pg, &p);
		else if (c->where == CUR_BEFORE)
			rc = 0;
		else
			rc = MAPKV_NOTFOUND;
		break;
	case MAPKV_PREV:
		path_copy(&p, &c->path);
		if (!c->positioned)
			rc = bt_last(pg, t, &p);
		else if (c->where != CUR_END)
			rc = bt_prev(pg, &p); /* on K, or on K's successor */
		else
			rc = p.depth > 0 ? 0 : MAPKV_NOTFOUND;
		break;
	case MAPKV_SEEK:
	case MAPKV_SEEK_EXACT:
		rc = find(pg, t, key->data, key->size, &p, &where);
		if (!rc && (where == CUR_END ||
			    (op == MAPKV_SEEK_EXACT && where != CUR_ON)))
			rc = MAPKV_NOTFOUND;
		break;
	default: /* MAPKV_GET_CURRENT */
		path_copy(&p, &c->path);
		rc = c->positioned && c->where == CUR_ON ? 0 : MAPKV_NOTFOUND;
		break;
	}
	if (rc)
		return rc;
	return land(c, &p, key, val);
}

/* A reader's NEXT from the last key of a leaf: cur_move's NEXT without
 * its copies (a reader's cursor is always on its key, nothing changes
 * under it). A failed move leaves the path as it was (bt_next does); a
 * failed read of the new place puts it back. Out of line, so the step
 * within a leaf does not pay for this one's frame. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int
reader_next_leaf(mapkv_cursor *c, mapkv_val *k, mapkv_val *v)
{
	const pager *pg = &c->txn->pg;
	bt_path save;
	path_copy(&save, &c->path);
	int rc = bt_next(pg, &c->path);
	if (!rc && (rc = bt_path_kv(pg, &c->path, k, v)))
		path_copy(&c->path, &save);
	return rc;
}

int cur_get(mapkv_cursor *c, mapkv_val *key, mapkv_val *val, int op)
{
	mapkv_txn *txn = c->txn;
	if (!txn)
		return MAPKV_BAD_TXN;
	/* The scan fast path: a reader stepping within a leaf (the path is
	 * then K's place, and nothing but the index moves). A read
	 * transaction neither fails nor deletes a tree, so of
	 * txn_tree_check only the handle's part applies. */
	if (op == MAPKV_NEXT && c->positioned && (txn->flags & MAPKV_RDONLY)) {
		if (c->live && atomic_load_explicit(
				       c->live, memory_order_acquire) != c->dbi)
			return MAPKV_BAD_DBI;
		int l = c->path.depth - 1;
		mapkv_val k, v;
		int rc;
		if (c->path.idx[l] + 1 < pg_nkeys(c->path.pg[l])) {
			c->path.idx[l]++;
			rc = bt_path_kv(&txn->pg, &c->path, &k,
					val ? &v : NULL);
			if (rc) {
				c->path.idx[l]--;
				return rc;
			}
		} else if ((rc = reader_next_leaf(c, &k, val ? &v : NULL))) {
			return rc;
		}
		/* bt_path_kv gives keys of 1 to MAPKV_MAX_KEY_SIZE bytes
		 * only (a damaged leaf is MAPKV_CORRUPT). */
		if (key)
			*key = k;
		if (val)
			*val = v;
		return 0;
	}
	return cur_move(c, key, val, op);
}

int cur_del(mapkv_cursor *c, tree_rec *t)
{
	mapkv_txn *txn = c->txn;
	if (txn->flags & MAPKV_RDONLY)
		return MAPKV_READONLY;
	if (!c->positioned)
		return MAPKV_NOTFOUND;
	/* By key: whether K is still there is the tree's to say. The
	 * cursor keeps K, so it now stands in K's gap. */
	return bt_del(&txn->pg, t, c->key, c->klen);
}
