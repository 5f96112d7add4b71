/*
 * cursor.c: cursors (see cursor.h).
 */
#include "cursor.h"

#include <string.h>

#include "txn.h"

int cur_open(mapkv_txn *txn, mapkv_dbi dbi, mapkv_cursor **out)
{
	txn_tree *tt;
	int rc = txn_tree_get(txn, dbi, &tt);
	if (rc)
		return rc;
	os_vfs *vfs = txn->env->vfs;
	mapkv_cursor *c = vfs->alloc(vfs, sizeof(*c));
	if (!c)
		return MAPKV_NOMEM;
	memset(c, 0, offsetof(mapkv_cursor, key));
	c->txn = txn;
	c->vfs = vfs;
	c->dbi = dbi;
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

/* Position at the first key >= key. Returns 0 (on an element), 1 (every
 * key is smaller: the path is on the last element), or an error
 * (MAPKV_NOTFOUND for an empty tree). */
static int lower_bound(mapkv_cursor *c, const tree_rec *t, const void *key,
		       size_t klen, int *exact)
{
	const pager *pg = &c->txn->pg;
	bt_path path;
	int rc = bt_search(pg, t, key, klen, &path, exact);
	if (rc)
		return rc;
	int l = path.depth - 1;
	unsigned n = pg_nkeys(path.pg[l]);
	if (n == 0)
		return MAPKV_NOTFOUND;
	if (path.idx[l] >= n) {
		path.idx[l] = n - 1;
		rc = bt_next(pg, &path);
		if (rc == MAPKV_NOTFOUND) {
			c->path = path;
			return 1;
		}
		if (rc)
			return rc;
	}
	c->path = path;
	return 0;
}

int cur_get(mapkv_cursor *c, mapkv_val *key, mapkv_val *val, int op)
{
	mapkv_txn *txn = c->txn;
	if (!txn || txn->state != TXN_ACTIVE)
		return MAPKV_BAD_TXN;
	/* The scan fast path: a reader stepping within a leaf. */
	if (op == MAPKV_NEXT && c->positioned && (txn->flags & MAPKV_RDONLY)) {
		int l = c->path.depth - 1;
		if (c->path.idx[l] + 1 < pg_nkeys(c->path.pg[l])) {
			c->path.idx[l]++;
			mapkv_val k, v;
			int rc = bt_path_kv(&txn->pg, &c->path, &k, &v);
			if (rc)
				return rc;
			if (key)
				*key = k;
			if (val)
				*val = v;
			return 0;
		}
	}
	txn_tree *tt;
	int rc = txn_tree_get(txn, c->dbi, &tt);
	if (rc)
		return rc;
	const tree_rec *t = &tt->rec;
	const pager *pg = &txn->pg;
	int writer = !(txn->flags & MAPKV_RDONLY);
	int gap = 0, past = 0, exact;

	/* A writer's cursor finds its key again after any change. */
	if (c->positioned && writer && (c->seq != txn->mod_seq || c->deleted)) {
		rc = lower_bound(c, t, c->key, c->klen, &exact);
		if (rc == MAPKV_NOTFOUND) {
			c->positioned = 0;
		} else if (rc < 0) {
			return rc;
		} else {
			past = rc == 1;
			gap = past || !exact;
		}
		c->seq = txn->mod_seq;
	}

	/* Moves leave the path alone when they fail; a seek does not, so
	 * it restores the saved one. */
	bt_path save;
	if (op == MAPKV_SEEK || op == MAPKV_SEEK_EXACT)
		save = c->path;
	switch (op) {
	case MAPKV_FIRST:
		rc = bt_first(pg, t, &c->path);
		break;
	case MAPKV_LAST:
		rc = bt_last(pg, t, &c->path);
		break;
	case MAPKV_NEXT:
		if (!c->positioned)
			rc = bt_first(pg, t, &c->path);
		else if (gap)
			rc = past ? MAPKV_NOTFOUND : 0;
		else
			rc = bt_next(pg, &c->path);
		break;
	case MAPKV_PREV:
		if (!c->positioned)
			rc = bt_last(pg, t, &c->path);
		else if (gap && past)
			rc = 0;
		else
			rc = bt_prev(pg, &c->path);
		break;
	case MAPKV_SEEK:
	case MAPKV_SEEK_EXACT:
		if (!key || !key->data || key->size == 0 ||
		    key->size > MAPKV_MAX_KEY_SIZE)
			return key ? MAPKV_BAD_KEY : MAPKV_INVALID;
		rc = lower_bound(c, t, key->data, key->size, &exact);
		if (rc == 1 || (rc == 0 && op == MAPKV_SEEK_EXACT && !exact))
			rc = MAPKV_NOTFOUND;
		break;
	case MAPKV_GET_CURRENT:
		rc = (c->positioned && !gap) ? 0 : MAPKV_NOTFOUND;
		break;
	default:
		return MAPKV_INVALID;
	}
	if (rc) {
		/* Stay where we were (a writer's cursor keeps its key and,
		 * after a delete, its gap). */
		if (op == MAPKV_SEEK || op == MAPKV_SEEK_EXACT)
			c->path = save;
		return rc;
	}
	mapkv_val k, v;
	if ((rc = bt_path_kv(pg, &c->path, &k, &v)))
		return rc;
	c->positioned = 1;
	c->deleted = 0;
	if (writer) {
		memcpy(c->key, k.data, k.size);
		c->klen = k.size;
		c->seq = txn->mod_seq;
	}
	if (key)
		*key = k;
	if (val)
		*val = v;
	return 0;
}

int cur_del(mapkv_cursor *c)
{
	mapkv_txn *txn = c->txn;
	if (!txn || txn->state != TXN_ACTIVE)
		return MAPKV_BAD_TXN;
	if (txn->flags & MAPKV_RDONLY)
		return MAPKV_READONLY;
	if (!c->positioned || c->deleted)
		return MAPKV_NOTFOUND;
	txn_tree *tt;
	int rc = txn_tree_get(txn, c->dbi, &tt);
	if (rc)
		return rc;
	tt->state |= TT_DIRTY;
	txn->mod_seq++;
	rc = bt_del(&txn->pg, &tt->rec, c->key, c->klen);
	if (rc == MAPKV_NOTFOUND)
		return rc;
	if (rc)
		return txn_fail(txn, rc);
	c->deleted = 1;
	return 0;
}
