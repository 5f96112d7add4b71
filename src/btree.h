/*
 * btree.h: the copy-on-write B+tree over pages of the pager.
 *
 * A tree is described by a tree_rec (root, depth, counts); the caller keeps
 * the record (in the meta page or the catalog) and passes it in; changes
 * update it in place. Writers first copy every page on the path from the
 * root to the leaf that the committed snapshot still owns (pager_touch), so
 * a reader of an older snapshot never sees a change.
 */
#ifndef MAPKV_BTREE_H
#define MAPKV_BTREE_H

#include <stddef.h>
#include <stdint.h>

#include "mapkv.h"
#include "page.h"
#include "pager.h"

#define BT_MAXDEPTH 32

/* A root-to-leaf path: pg[0] is the root, pg[depth-1] the leaf; idx[l] is
 * the node taken at level l (for the leaf, the position found). */
typedef struct bt_path {
	int depth;
	const page *pg[BT_MAXDEPTH];
	unsigned idx[BT_MAXDEPTH];
} bt_path;

/* Internal put flag: make room for the value and return where it goes
 * (*reserve) instead of copying it. */
#define BT_RESERVE 0x10000u

/* Find the leaf position of the first key >= @key. *exact tells whether it
 * is @key itself. MAPKV_NOTFOUND for an empty tree. */
int bt_search(const pager *pg, const tree_rec *t, const void *key, size_t klen,
	      bt_path *path, int *exact);

int bt_get(const pager *pg, const tree_rec *t, const void *key, size_t klen,
	   mapkv_val *val);
int bt_put(pager *pg, tree_rec *t, const void *key, size_t klen,
	   const void *val, size_t vlen, unsigned flags, void **reserve);
int bt_del(pager *pg, tree_rec *t, const void *key, size_t klen);
/* Free every page of the tree and leave it empty. */
int bt_drop(pager *pg, tree_rec *t);

/* Cursor movement over a path. Each returns MAPKV_NOTFOUND, leaving the
 * path unchanged, when there is no such position. */
int bt_first(const pager *pg, const tree_rec *t, bt_path *path);
int bt_last(const pager *pg, const tree_rec *t, bt_path *path);
int bt_next(const pager *pg, bt_path *path);
int bt_prev(const pager *pg, bt_path *path);
/* Key and value at the path's leaf position. */
int bt_path_kv(const pager *pg, const bt_path *path, mapkv_val *key,
	       mapkv_val *val);

/* Visit every page of a tree (for checks and statistics): fn gets each
 * page number, its kind (MK_P_*) and its run length. */
typedef int (*bt_visit_fn)(void *ctx, pgno_t pgno, unsigned kind,
			   unsigned npages, unsigned level);
int bt_walk(const pager *pg, const tree_rec *t, bt_visit_fn fn, void *ctx);

#endif
