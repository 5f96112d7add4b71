/*
 * fuzz_ops.c: libFuzzer target: any bytes as a sequence of operations on
 * three trees (the main tree and the named trees "t1", "t2") of a fresh
 * database, run side by side on an in-memory model; after every step the
 * library must agree with the model, including where every open cursor
 * stands (the cursor semantics of mapkv.h, mapkv_cursor_get). On the first
 * difference, or any unexpected error, the target prints what happened and
 * calls abort() (a fuzz target may abort; the library may not).
 *
 * Built two ways: with clang -fsanitize=fuzzer by `make fuzz`, and with
 * replay.c as an ordinary program that `make check` runs over the corpus
 * in tests/fuzz/corpus/ops (seeds and every input that once failed).
 *
 * Decoding (a missing byte reads as 0; the input ends the sequence). The
 * first byte chooses the sizes: bit 0 set, small ones (keys of at most 40
 * bytes, values of at most 300, so trees grow many keys deep and wide
 * quickly); clear, the whole range below. Then, for each operation, one
 * byte chooses it (its value modulo 20), then:
 *   0-3  put      tree, key, value size (2 bytes)
 *   4    del      tree, key (mapkv_del)
 *   5    del-under    cursor: mapkv_del of the key under it
 *   6    put-under    cursor, value size: replace the key under it
 *   7    open     tree: a new cursor (at most 4)
 *   8    close    cursor
 *   9-12 move     cursor, op (FIRST..GET_CURRENT, modulo 7), and a key
 *                 for SEEK / SEEK_EXACT
 *   13   cdel     cursor (mapkv_cursor_del)
 *   14   commit
 *   15   abort
 *   16   reopen   1 byte: commit (odd) or abort (even) first; then the
 *                 environment is closed and opened again
 *   17   create   tree (mapkv_dbi_open with MAPKV_CREATE)
 *   18   drop     tree, del (low bit)
 *   19   handle   1 byte: bit 0 picks t1/t2, bit 1 close (mapkv_dbi_close)
 *                 or open by name
 * A tree byte is taken modulo 3 (0: main), a cursor byte modulo the
 * cursors open. A key byte picks one of 256 keys: its top 3 bits a
 * length of 1, 2, 3, 5, 16, 100, 700 or MAPKV_MAX_KEY_SIZE bytes (small
 * sizes: 1, 2, 3, 5, 16, 20, 30, 40), its low 5 bits the first byte (keys
 * share prefixes). The value size's first byte picks a class, the second
 * a size in it: around every threshold (the largest inline value for that
 * key, +-2; half a page, a page, the room of one and of two overflow
 * pages, +-2), small, and up to 5 pages (small sizes: at most 300).
 *
 * Model of a cursor: unpositioned or at a key K, set only by a successful
 * move; NEXT is the smallest key > K, PREV the largest < K, GET_CURRENT
 * K's pair if K is in the tree; MAPKV_BAD_DBI while its tree is deleted
 * or its handle closed. Handles: one per name while open; a closed one is
 * refused; a tree created by a transaction that aborts loses its handle
 * if the creation bound it.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapkv.h"
#include "page.h" /* pg_node_max, MK_LEAF_HDR: the inline threshold */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NTREES 3
#define NCUR 4

/* ---- the model of one tree: a sorted array ---- */

typedef struct ent {
	uint8_t *k, *v;
	size_t kl, vl;
} ent;

typedef struct mtree {
	ent *e;
	size_t n, cap;
	int exists;
} mtree;

static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

/* Index of the first entry >= key (> key when @strict). */
static size_t lb(const mtree *t, const void *k, size_t kl, int strict)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = kcmp(t->e[mid].k, t->e[mid].kl, k, kl);
		if (c < 0 || (strict && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

static void *mdup(const void *p, size_t n)
{
	void *q = xmalloc(n);
	if (n)
		memcpy(q, p, n);
	return q;
}

static const ent *m_get(const mtree *t, const void *k, size_t kl)
{
	size_t i = lb(t, k, kl, 0);
	if (i < t->n && kcmp(t->e[i].k, t->e[i].kl, k, kl) == 0)
		return &t->e[i];
	return NULL;
}

static void m_put(mtree *t, const void *k, size_t kl, const void *v, size_t vl)
{
	size_t i = lb(t, k, kl, 0);
	if (i < t->n && kcmp(t->e[i].k, t->e[i].kl, k, kl) == 0) {
		free(t->e[i].v);
		t->e[i].v = mdup(v, vl);
		t->e[i].vl = vl;
		return;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->e = realloc(t->e, t->cap * sizeof(ent));
		if (!t->e)
			abort();
	}
	memmove(&t->e[i + 1], &t->e[i], (t->n - i) * sizeof(ent));
	t->e[i].k = mdup(k, kl);
	t->e[i].kl = kl;
	t->e[i].v = mdup(v, vl);
	t->e[i].vl = vl;
	t->n++;
}

static int m_del(mtree *t, const void *k, size_t kl)
{
	size_t i = lb(t, k, kl, 0);
	if (i >= t->n || kcmp(t->e[i].k, t->e[i].kl, k, kl) != 0)
		return 0;
	free(t->e[i].k);
	free(t->e[i].v);
	memmove(&t->e[i], &t->e[i + 1], (t->n - i - 1) * sizeof(ent));
	t->n--;
	return 1;
}

static void m_clear(mtree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].k);
		free(t->e[i].v);
	}
	t->n = 0;
}

static void m_free(mtree *t)
{
	m_clear(t);
	free(t->e);
	memset(t, 0, sizeof(*t));
}

static void m_copy(mtree *dst, const mtree *src)
{
	m_clear(dst);
	for (size_t i = 0; i < src->n; i++)
		m_put(dst, src->e[i].k, src->e[i].kl, src->e[i].v,
		      src->e[i].vl);
	dst->exists = src->exists;
}

/* ---- the run ---- */

enum { H_NONE, H_OPEN, H_CLOSED }; /* a named tree's handle */

typedef struct mcur {
	int open;
	int tree;
	mapkv_dbi h; /* the handle it was opened with */
	mapkv_cursor *c;
	int pos;
	size_t kl;
	uint8_t k[MAPKV_MAX_KEY_SIZE];
} mcur;

typedef struct run {
	const uint8_t *in;
	size_t n, at;
	unsigned step;
	const char *op;
	char path[512], lock[600];
	mapkv_env *env;
	mapkv_txn *txn;
	unsigned psize;
	mtree cur[NTREES], done[NTREES]; /* this transaction, committed */
	int hstate[NTREES];
	mapkv_dbi h[NTREES];
	int owned[NTREES]; /* the creation in this txn bound the handle */
	mcur c[NCUR];
	int small; /* the small sizes (first byte) */
	unsigned ver;
	uint8_t *vbuf;
} run;

static const char *const tname[NTREES] = {NULL, "t1", "t2"};

static void fail(run *r, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fuzz_ops: step %u (%s, input byte %zu): ", r->step,
		r->op ? r->op : "-", r->at);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void expect_rc(run *r, int rc, int want, const char *what)
{
	if (rc != want)
		fail(r, "%s returned %d (%s), the model says %d (%s)", what, rc,
		     mapkv_strerror(rc), want, mapkv_strerror(want));
}

static unsigned byte(run *r)
{
	return r->at < r->n ? r->in[r->at++] : 0;
}

static size_t make_key(run *r, uint8_t *k, unsigned b)
{
	static const size_t len[2][8] = {
		{1, 2, 3, 5, 16, 100, 700, MAPKV_MAX_KEY_SIZE},
		{1, 2, 3, 5, 16, 20, 30, 40}};
	size_t n = len[r->small][b >> 5];
	unsigned id = b & 31;
	memset(k, 'k', n);
	k[0] = (uint8_t)('A' + id);
	if (n > 1)
		k[n - 1] = (uint8_t)('0' + id % 10);
	return n;
}

static size_t value_size(run *r, size_t kl)
{
	unsigned c = byte(r) % 16, b = byte(r);
	long ps = (long)r->psize, d = (long)(b % 5) - 2;
	long inl = (long)pg_node_max(r->psize) - MK_LEAF_HDR - (long)kl;
	long v;
	switch (c) {
	case 0:
		v = 0;
		break;
	case 1:
		v = 1 + b % 16;
		break;
	case 2:
		v = b;
		break;
	case 3:
		v = inl + d;
		break;
	case 4:
		v = ps / 2 + d;
		break;
	case 5:
		v = ps + d;
		break;
	case 6: /* exactly one overflow page, +-2 */
		v = ps - 16 + d;
		break;
	case 7:
		v = 2 * ps - 16 + d;
		break;
	case 8:
		v = (long)b * 64;
		break;
	case 9:
		v = (long)b * 16;
		break;
	case 10:
		v = inl - (long)b;
		break;
	case 11:
		v = 3 * ps + (long)b * 8;
		break;
	default:
		v = b % 40;
		break;
	}
	if (v < 0)
		v = 0;
	if (v > (r->small ? 300 : 5 * ps))
		v = r->small ? 300 : 5 * ps;
	return (size_t)v;
}

/* The value of the next put: bytes that depend on the key and the put. */
static void fill_value(run *r, const uint8_t *k, size_t kl, size_t vl)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < kl; i++)
		h = (h ^ k[i]) * 16777619u;
	h ^= ++r->ver * 2654435761u;
	for (size_t i = 0; i < vl; i++) {
		h ^= h << 13;
		h ^= h >> 17;
		h ^= h << 5;
		r->vbuf[i] = (uint8_t)h;
	}
}

static const char *fmt_key(const void *p, size_t n)
{
	static char buf[4][64];
	static int which;
	char *b = buf[which++ & 3];
	size_t o = (size_t)snprintf(b, 64, "[%zu]", n);
	for (size_t i = 0; i < n && o + 5 < 64; i++) {
		unsigned char ch = ((const unsigned char *)p)[i];
		o += (size_t)snprintf(b + o, 64 - o,
				      ch >= 32 && ch < 127 ? "%c" : "\\x%02x",
				      ch);
	}
	return b;
}

/* Whether tree @t's handle reaches a tree in this transaction. */
static int tree_ok(run *r, int t)
{
	return t == 0 || (r->hstate[t] == H_OPEN && r->cur[t].exists);
}

/* A named tree's handle state before a tree operation: open it by name
 * if this run has no handle for it yet. */
static void need_handle(run *r, int t)
{
	if (t == 0 || r->hstate[t] != H_NONE)
		return;
	mapkv_dbi d;
	int rc = mapkv_dbi_open(r->txn, tname[t], 0, &d);
	expect_rc(r, rc, r->cur[t].exists ? 0 : MAPKV_NOTFOUND, "dbi_open");
	if (rc == 0) {
		r->h[t] = d;
		r->hstate[t] = H_OPEN;
	}
}

static void same_pair(run *r, const char *what, const mapkv_val *k,
		      const mapkv_val *v, const ent *e)
{
	if (kcmp(k->data, k->size, e->k, e->kl) != 0)
		fail(r, "%s gave key %s, the model says %s", what,
		     fmt_key(k->data, k->size), fmt_key(e->k, e->kl));
	if (v->size != e->vl || (e->vl && memcmp(v->data, e->v, e->vl)))
		fail(r,
		     "%s gave key %s with a %zu-byte value, the model "
		     "has %zu bytes%s",
		     what, fmt_key(e->k, e->kl), v->size, e->vl,
		     v->size == e->vl ? " (other bytes)" : "");
}

/* Compare the whole of tree @t through handle @h with @m: scans both
 * ways with a cursor of its own, a get of every key, and the count. */
static void verify_tree(run *r, mapkv_txn *txn, mapkv_dbi h, const mtree *m,
			const char *when)
{
	mapkv_cursor *c;
	mapkv_val k, v;
	char what[96];
	snprintf(what, sizeof(what), "%s: scan", when);
	expect_rc(r, mapkv_cursor_open(txn, h, &c), 0, what);
	int rc = mapkv_cursor_get(c, &k, &v, MAPKV_FIRST);
	for (size_t i = 0; i < m->n; i++) {
		expect_rc(r, rc, 0, what);
		same_pair(r, what, &k, &v, &m->e[i]);
		rc = mapkv_cursor_get(c, &k, &v, MAPKV_NEXT);
	}
	expect_rc(r, rc, MAPKV_NOTFOUND, what);
	snprintf(what, sizeof(what), "%s: backward scan", when);
	rc = mapkv_cursor_get(c, &k, &v, MAPKV_LAST);
	for (size_t i = m->n; i-- > 0;) {
		expect_rc(r, rc, 0, what);
		same_pair(r, what, &k, &v, &m->e[i]);
		rc = mapkv_cursor_get(c, &k, &v, MAPKV_PREV);
	}
	expect_rc(r, rc, MAPKV_NOTFOUND, what);
	mapkv_cursor_close(c);
	snprintf(what, sizeof(what), "%s: get", when);
	for (size_t i = 0; i < m->n; i++) {
		mapkv_val key = {m->e[i].k, m->e[i].kl};
		expect_rc(r, mapkv_get(txn, h, &key, &v), 0, what);
		same_pair(r, what, &key, &v, &m->e[i]);
	}
	mapkv_stat_info st;
	snprintf(what, sizeof(what), "%s: stat", when);
	expect_rc(r, mapkv_stat(txn, h, &st), 0, what);
	if (st.entries != m->n)
		fail(r, "%s: mapkv_stat counts %llu entries, the model %zu",
		     when, (unsigned long long)st.entries, m->n);
}

/* Every tree this run has a handle for, in the write transaction. */
static void verify_all(run *r, const char *when)
{
	for (int t = 0; t < NTREES; t++) {
		if (tree_ok(r, t)) {
			verify_tree(r, r->txn, r->h[t], &r->cur[t], when);
		} else if (t && r->hstate[t] != H_NONE) {
			mapkv_stat_info st;
			expect_rc(r, mapkv_stat(r->txn, r->h[t], &st),
				  MAPKV_BAD_DBI, "stat of a missing tree");
		}
	}
}

/* Every cursor's position, through GET_CURRENT (which does not move it).
 */
static void check_cursors(run *r)
{
	for (int i = 0; i < NCUR; i++) {
		mcur *c = &r->c[i];
		if (!c->open)
			continue;
		mapkv_val k, v;
		int rc = mapkv_cursor_get(c->c, &k, &v, MAPKV_GET_CURRENT);
		char what[64];
		snprintf(what, sizeof(what), "cursor %d GET_CURRENT (check)",
			 i);
		if (!tree_ok(r, c->tree) || c->h != r->h[c->tree]) {
			expect_rc(r, rc, MAPKV_BAD_DBI, what);
			continue;
		}
		const ent *e =
			c->pos ? m_get(&r->cur[c->tree], c->k, c->kl) : NULL;
		expect_rc(r, rc, e ? 0 : MAPKV_NOTFOUND, what);
		if (e)
			same_pair(r, what, &k, &v, e);
	}
}

static void begin(run *r)
{
	int rc = mapkv_txn_begin(r->env, 0, &r->txn);
	expect_rc(r, rc, 0, "txn_begin");
}

static void open_env(run *r)
{
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.max_size = 1u << 30;
	o.flags = MAPKV_NOSYNC; /* no power loss here: speed */
	expect_rc(r, mapkv_open(&r->env, r->path, &o), 0, "open");
	mapkv_envinfo info;
	expect_rc(r, mapkv_env_info(r->env, &info), 0, "env_info");
	r->psize = info.page_size;
	r->vbuf = realloc(r->vbuf, 5 * (size_t)r->psize + 1);
	if (!r->vbuf)
		abort();
}

/* The end of the write transaction: its cursors die with it (they answer
 * MAPKV_BAD_TXN until closed). */
static void end_txn(run *r, int commit)
{
	for (int i = 0; i < NCUR; i++)
		if (r->c[i].open)
			r->c[i].open = 2; /* to be checked, then closed */
	if (commit) {
		expect_rc(r, mapkv_txn_commit(r->txn), 0, "commit");
		for (int t = 0; t < NTREES; t++) {
			m_copy(&r->done[t], &r->cur[t]);
			r->owned[t] = 0;
		}
	} else {
		mapkv_txn_abort(r->txn);
		for (int t = 0; t < NTREES; t++) {
			m_copy(&r->cur[t], &r->done[t]);
			if (r->owned[t] && r->hstate[t] == H_OPEN)
				r->hstate[t] = H_CLOSED;
			r->owned[t] = 0;
		}
	}
	r->txn = NULL;
	for (int i = 0; i < NCUR; i++) {
		mcur *c = &r->c[i];
		if (c->open != 2)
			continue;
		mapkv_val k, v;
		expect_rc(r, mapkv_cursor_get(c->c, &k, &v, MAPKV_NEXT),
			  MAPKV_BAD_TXN, "cursor after its transaction");
		mapkv_cursor_close(c->c);
		c->open = 0;
	}
}

/* The committed state, as a new read transaction sees it. */
static void verify_committed(run *r, const char *when)
{
	mapkv_txn *rt;
	expect_rc(r, mapkv_txn_begin(r->env, MAPKV_RDONLY, &rt), 0,
		  "read txn_begin");
	for (int t = 0; t < NTREES; t++) {
		if (t && r->hstate[t] != H_OPEN)
			continue;
		if (t && !r->done[t].exists) {
			mapkv_stat_info st;
			expect_rc(r, mapkv_stat(rt, r->h[t], &st),
				  MAPKV_BAD_DBI,
				  "reader's stat of a deleted tree");
			continue;
		}
		verify_tree(r, rt, r->h[t], &r->done[t], when);
	}
	mapkv_txn_abort(rt);
}

/* ---- operations ---- */

static mcur *pick_cursor(run *r)
{
	unsigned b = byte(r), n = 0;
	for (int i = 0; i < NCUR; i++)
		n += r->c[i].open != 0;
	if (n == 0)
		return NULL;
	b %= n;
	for (int i = 0; i < NCUR; i++)
		if (r->c[i].open && b-- == 0)
			return &r->c[i];
	return NULL;
}

static void op_put(run *r, int t, const uint8_t *k, size_t kl, size_t vl)
{
	need_handle(r, t);
	if (t && r->hstate[t] == H_NONE)
		return;
	fill_value(r, k, kl, vl);
	mapkv_val key = {k, kl}, val = {r->vbuf, vl};
	int rc = mapkv_put(r->txn, r->h[t], &key, &val, 0);
	if (!tree_ok(r, t)) {
		expect_rc(r, rc, MAPKV_BAD_DBI, "put");
		return;
	}
	expect_rc(r, rc, 0, "put");
	m_put(&r->cur[t], k, kl, r->vbuf, vl);
}

static void op_del(run *r, int t, const uint8_t *k, size_t kl)
{
	need_handle(r, t);
	if (t && r->hstate[t] == H_NONE)
		return;
	mapkv_val key = {k, kl};
	int rc = mapkv_del(r->txn, r->h[t], &key);
	if (!tree_ok(r, t)) {
		expect_rc(r, rc, MAPKV_BAD_DBI, "del");
		return;
	}
	expect_rc(r, rc, m_del(&r->cur[t], k, kl) ? 0 : MAPKV_NOTFOUND, "del");
}

static void op_move(run *r, mcur *c, int op, const uint8_t *k, size_t kl)
{
	static const char *const names[7] = {"FIRST",      "LAST", "NEXT",
					     "PREV",       "SEEK", "SEEK_EXACT",
					     "GET_CURRENT"};
	mapkv_val key = {k, kl}, val;
	int rc = mapkv_cursor_get(c->c, &key, &val, op);
	char what[64];
	snprintf(what, sizeof(what), "cursor %d %s%s%s", (int)(c - r->c),
		 names[op], k ? " " : "", k ? fmt_key(k, kl) : "");
	if (!tree_ok(r, c->tree) || c->h != r->h[c->tree]) {
		expect_rc(r, rc, MAPKV_BAD_DBI, what);
		return;
	}
	const mtree *m = &r->cur[c->tree];
	size_t i = 0;
	int found = 0;
	switch (op) {
	case MAPKV_FIRST:
		found = m->n > 0;
		i = 0;
		break;
	case MAPKV_LAST:
		found = m->n > 0;
		i = m->n - 1;
		break;
	case MAPKV_NEXT:
		i = c->pos ? lb(m, c->k, c->kl, 1) : 0;
		found = i < m->n;
		break;
	case MAPKV_PREV:
		i = c->pos ? lb(m, c->k, c->kl, 0) : m->n;
		found = i > 0;
		i--;
		break;
	case MAPKV_SEEK:
		i = lb(m, k, kl, 0);
		found = i < m->n;
		break;
	case MAPKV_SEEK_EXACT:
		i = lb(m, k, kl, 0);
		found = i < m->n && kcmp(m->e[i].k, m->e[i].kl, k, kl) == 0;
		break;
	default: /* GET_CURRENT */
		i = c->pos ? lb(m, c->k, c->kl, 0) : m->n;
		found = i < m->n &&
			kcmp(m->e[i].k, m->e[i].kl, c->k, c->kl) == 0;
		break;
	}
	expect_rc(r, rc, found ? 0 : MAPKV_NOTFOUND, what);
	if (!found)
		return; /* and the position stays */
	same_pair(r, what, &key, &val, &m->e[i]);
	memcpy(c->k, m->e[i].k, m->e[i].kl);
	c->kl = m->e[i].kl;
	c->pos = 1;
}

static void op_cdel(run *r, mcur *c)
{
	int rc = mapkv_cursor_del(c->c);
	if (!tree_ok(r, c->tree) || c->h != r->h[c->tree]) {
		expect_rc(r, rc, MAPKV_BAD_DBI, "cursor_del");
		return;
	}
	int had = c->pos && m_del(&r->cur[c->tree], c->k, c->kl);
	expect_rc(r, rc, had ? 0 : MAPKV_NOTFOUND, "cursor_del");
}

static void op_create(run *r, int t)
{
	if (t == 0)
		return;
	mapkv_dbi d;
	int rc = mapkv_dbi_open(r->txn, tname[t], MAPKV_CREATE, &d);
	expect_rc(r, rc, 0, "dbi_open(CREATE)");
	if (r->hstate[t] == H_OPEN && d != r->h[t])
		fail(r, "dbi_open gave handle %u, the open one is %u",
		     (unsigned)d, (unsigned)r->h[t]);
	if (r->hstate[t] == H_CLOSED && d == r->h[t])
		fail(r, "dbi_open gave the closed handle %u again",
		     (unsigned)d);
	if (!r->cur[t].exists) {
		if (r->hstate[t] != H_OPEN)
			r->owned[t] = 1;
		r->cur[t].exists = 1;
		m_clear(&r->cur[t]);
	}
	r->h[t] = d;
	r->hstate[t] = H_OPEN;
}

static void op_drop(run *r, int t, int del)
{
	need_handle(r, t);
	if (t && r->hstate[t] == H_NONE)
		return;
	int rc = mapkv_dbi_drop(r->txn, r->h[t], del);
	if (!tree_ok(r, t)) {
		expect_rc(r, rc, MAPKV_BAD_DBI, "dbi_drop");
		return;
	}
	if (t == 0 && del) {
		expect_rc(r, rc, MAPKV_INVALID, "dbi_drop(main, 1)");
		return;
	}
	expect_rc(r, rc, 0, "dbi_drop");
	m_clear(&r->cur[t]);
	if (del)
		r->cur[t].exists = 0;
}

static void op_handle(run *r, unsigned b)
{
	int t = 1 + (int)(b & 1);
	if (b & 2) { /* close */
		if (r->hstate[t] == H_NONE)
			return;
		int rc = mapkv_dbi_close(r->env, r->h[t]);
		expect_rc(r, rc, r->hstate[t] == H_OPEN ? 0 : MAPKV_BAD_DBI,
			  "dbi_close");
		r->hstate[t] = H_CLOSED;
		return;
	}
	mapkv_dbi d;
	int rc = mapkv_dbi_open(r->txn, tname[t], 0, &d);
	expect_rc(r, rc, r->cur[t].exists ? 0 : MAPKV_NOTFOUND, "dbi_open");
	if (rc)
		return;
	if (r->hstate[t] == H_OPEN && d != r->h[t])
		fail(r, "dbi_open gave handle %u, the open one is %u",
		     (unsigned)d, (unsigned)r->h[t]);
	if (r->hstate[t] == H_CLOSED && d == r->h[t])
		fail(r, "dbi_open gave the closed handle %u again",
		     (unsigned)d);
	r->h[t] = d;
	r->hstate[t] = H_OPEN;
}

static void op_reopen(run *r, int commit)
{
	end_txn(r, commit);
	if (commit)
		verify_committed(r, "after commit, before reopen");
	mapkv_close(r->env);
	r->env = NULL;
	open_env(r);
	for (int t = 1; t < NTREES; t++)
		r->hstate[t] = H_NONE;
	/* Every tree as the file has it. */
	mapkv_txn *rt;
	expect_rc(r, mapkv_txn_begin(r->env, MAPKV_RDONLY, &rt), 0,
		  "read txn_begin");
	for (int t = 0; t < NTREES; t++) {
		mapkv_dbi d = 0;
		if (t) {
			int rc = mapkv_dbi_open(rt, tname[t], 0, &d);
			expect_rc(r, rc, r->done[t].exists ? 0 : MAPKV_NOTFOUND,
				  "dbi_open after reopen");
			if (rc)
				continue;
			r->h[t] = d;
			r->hstate[t] = H_OPEN;
		}
		verify_tree(r, rt, d, &r->done[t], "after reopen");
	}
	mapkv_txn_abort(rt);
	begin(r);
}

static void step(run *r)
{
	uint8_t k[MAPKV_MAX_KEY_SIZE];
	unsigned op = byte(r) % 20;
	mcur *c;
	size_t kl;
	switch (op) {
	case 0:
	case 1:
	case 2:
	case 3: {
		r->op = "put";
		int t = (int)(byte(r) % NTREES);
		kl = make_key(r, k, byte(r));
		op_put(r, t, k, kl, value_size(r, kl));
		break;
	}
	case 4: {
		r->op = "del";
		int t = (int)(byte(r) % NTREES);
		kl = make_key(r, k, byte(r));
		op_del(r, t, k, kl);
		break;
	}
	case 5:
		r->op = "del of the key under a cursor";
		if ((c = pick_cursor(r)) && c->pos) {
			memcpy(k, c->k, c->kl);
			op_del(r, c->tree, k, c->kl);
		}
		break;
	case 6:
		r->op = "put of the key under a cursor";
		if ((c = pick_cursor(r)) && c->pos) {
			memcpy(k, c->k, c->kl);
			op_put(r, c->tree, k, c->kl, value_size(r, c->kl));
		}
		break;
	case 7: {
		r->op = "cursor_open";
		int t = (int)(byte(r) % NTREES);
		int i;
		for (i = 0; i < NCUR && r->c[i].open; i++)
			;
		need_handle(r, t);
		if (i == NCUR || (t && r->hstate[t] == H_NONE))
			break;
		mcur *n = &r->c[i];
		int rc = mapkv_cursor_open(r->txn, r->h[t], &n->c);
		if (!tree_ok(r, t)) {
			expect_rc(r, rc, MAPKV_BAD_DBI, "cursor_open");
			break;
		}
		expect_rc(r, rc, 0, "cursor_open");
		n->open = 1;
		n->tree = t;
		n->h = r->h[t];
		n->pos = 0;
		break;
	}
	case 8:
		r->op = "cursor_close";
		if ((c = pick_cursor(r))) {
			mapkv_cursor_close(c->c);
			c->open = 0;
		}
		break;
	case 9:
	case 10:
	case 11:
	case 12: {
		r->op = "cursor_get";
		c = pick_cursor(r);
		int mop = (int)(byte(r) % 7);
		kl = 0;
		if (mop == MAPKV_SEEK || mop == MAPKV_SEEK_EXACT)
			kl = make_key(r, k, byte(r));
		if (c)
			op_move(r, c, mop, kl ? k : NULL, kl);
		break;
	}
	case 13:
		r->op = "cursor_del";
		if ((c = pick_cursor(r)))
			op_cdel(r, c);
		break;
	case 14:
		r->op = "commit";
		end_txn(r, 1);
		verify_committed(r, "after commit");
		begin(r);
		break;
	case 15:
		r->op = "abort";
		end_txn(r, 0);
		begin(r);
		verify_all(r, "after abort");
		break;
	case 16:
		r->op = "reopen";
		op_reopen(r, byte(r) & 1);
		break;
	case 17:
		r->op = "create";
		op_create(r, (int)(byte(r) % NTREES));
		break;
	case 18: {
		r->op = "drop";
		int t = (int)(byte(r) % NTREES);
		op_drop(r, t, (int)(byte(r) & 1));
		break;
	}
	default:
		r->op = "dbi handle";
		op_handle(r, byte(r));
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static run r;
	memset(&r, 0, sizeof(r));
	const char *dir = getenv("TMPDIR");
	snprintf(r.path, sizeof(r.path), "%s/mapkv-fuzz-ops-%d.db",
		 dir && *dir ? dir : "/tmp", (int)getpid());
	snprintf(r.lock, sizeof(r.lock), "%s-lock", r.path);
	unlink(r.path);
	unlink(r.lock);
	r.in = data;
	r.n = size;
	r.small = byte(&r) & 1;
	r.cur[0].exists = r.done[0].exists = 1;
	r.hstate[0] = H_OPEN;
	open_env(&r);
	begin(&r);
	while (r.at < r.n) {
		r.step++;
		step(&r);
		check_cursors(&r);
		if (r.step % 16 == 0)
			verify_all(&r, "every 16 steps");
		r.op = NULL;
	}
	r.op = "end";
	verify_all(&r, "at the end");
	end_txn(&r, 1);
	verify_committed(&r, "at the end");
	mapkv_close(r.env);
	for (int t = 0; t < NTREES; t++) {
		m_free(&r.cur[t]);
		m_free(&r.done[t]);
	}
	free(r.vbuf);
	unlink(r.path);
	unlink(r.lock);
	return 0;
}
