/*
 * cursor.h: positioned iteration over a tree (the state is struct
 * mapkv_cursor in env.h).
 *
 * In a read transaction a cursor keeps a root-to-leaf path into the map,
 * which nothing can change. In a write transaction any change may copy or
 * split the pages on that path, so the cursor also keeps a copy of its key
 * and the transaction's change counter; when the counter has moved it finds
 * its place again by key before moving.
 */
#ifndef MAPKV_CURSOR_H
#define MAPKV_CURSOR_H

#include "env.h"

int cur_open(mapkv_txn *txn, mapkv_dbi dbi, mapkv_cursor **out);
int cur_get(mapkv_cursor *c, mapkv_val *key, mapkv_val *val, int op);
int cur_del(mapkv_cursor *c);
void cur_close(mapkv_cursor *c);

#endif
