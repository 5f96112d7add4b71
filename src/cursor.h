/*
 * cursor.h: positioned iteration over a tree (the state is struct
 * mapkv_cursor in env.h; the semantics are those of mapkv_cursor_get in
 * mapkv.h).
 *
 * A cursor's position is a key K (or nothing, before its first successful
 * move), and only a successful move changes it. Whether K is still in the
 * tree, and so whether the cursor is on a pair or in the gap where K was,
 * is a fact about the tree, not about the cursor: the cursor never stores
 * it beyond the change counter it was computed at.
 *
 * In a read transaction nothing changes the tree, so the root-to-leaf path
 * of the last move is K's place and the key need not be copied. In a write
 * transaction any change may copy, split or merge the pages on that path,
 * so the cursor keeps a copy of K, and the path is a cache valid while the
 * transaction's change counter (txn->mod_seq) equals the one it was
 * computed at (c->seq); otherwise the cursor finds K's place again before
 * moving. The cache is always replaced whole (path, where, seq together),
 * so a failed operation cannot leave it half-updated.
 *
 * The cursor layer gets the tree record from its caller (api.c resolves
 * the handle) and calls only the btree below it.
 */
#ifndef MAPKV_CURSOR_H
#define MAPKV_CURSOR_H

#include "env.h"

/* Where K is in the tree as of c->seq (mapkv_cursor.where). */
#define CUR_ON 0     /* K is in the tree: the path is on it */
#define CUR_BEFORE 1 /* K is not: the path is on the first key > K */
#define CUR_END                                                                \
	2 /* K is not and no key is > K: the path is on the                    \
	     last key (< K), or has depth 0 for an empty tree */

/* Open a cursor on tree @dbi of @txn, whose state @tt and handle word
 * @live the caller got from txn_tree_ref. */
int cur_open(mapkv_txn *txn, mapkv_dbi dbi, txn_tree *tt,
	     _Atomic uint32_t *live, mapkv_cursor **out);
/* mapkv_cursor_get (the caller has checked c is not NULL). */
int cur_get(mapkv_cursor *c, mapkv_val *key, mapkv_val *val, int op);
/* Delete the pair under the cursor from @t (a write transaction's tree):
 * 0, MAPKV_NOTFOUND when unpositioned or in a gap, or bt_del's error. */
int cur_del(mapkv_cursor *c, tree_rec *t);
void cur_close(mapkv_cursor *c);

#endif
