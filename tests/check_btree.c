/*
 * check_btree.c: the B+tree through the public API: random operations
 * against a model with keys and values of every size at every page size,
 * splits at the sequential-run and size thresholds, overflow values, key
 * limits, fill factor of sequential loads, rebalancing on delete, very
 * large values; and hand-made damaged files that writers, cursors and
 * walks must refuse with MAPKV_CORRUPT (built with the accessors of
 * src/page.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "os.h"
#include "page.h"

int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs);

#define PAGE 4096u

/* ---- page sizes ---------------------------------------------------------
 * The API has no page size option: a new file takes the OS page size. A
 * file made through a test OS layer that reports another page size keeps
 * it for life, and opens normally afterwards. */

static os_vfs ps_vfs;
static size_t ps_want;

static size_t ps_page_size(os_vfs *v)
{
	(void)v;
	return ps_want;
}

/* Create tu_path(@name) as an empty database of @psize-byte pages. */
static void create_with_page_size(const char *name, unsigned psize)
{
	ps_vfs = *os_default_vfs();
	ps_vfs.page_size = ps_page_size;
	ps_want = psize;
	mapkv_env *env;
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.max_size = tu_default_max_size();
	ck_assert_rc(env_open_vfs(&env, tu_path(name), &o, &ps_vfs), 0);
	/* A file holding only the empty database's meta pages counts as one
	 * whose creation never finished (and would take the OS page size
	 * again): commit once. */
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "x", "");
	tu_commit(txn);
	txn = tu_begin(env, 0);
	ck_assert_rc(tu_del_rc(txn, 0, "x", 1), 0);
	tu_commit(txn);
	mapkv_close(env);
	env = tu_open(name, 0, 0);
	ck_assert_uint_eq(tu_env_info(env).page_size, psize);
	mapkv_close(env);
}

static const unsigned page_sizes[] = {4096, 8192, 16384, 32768};

/* mapkv_check finds nothing wrong with the file. */
static void check_file(mapkv_env *env)
{
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	uint64_t problems = 0;
	int rc = mapkv_check(txn, NULL, NULL, &problems);
	tu_check(rc == 0 && problems == 0, "mapkv_check: %s, %llu problems",
		 mapkv_strerror(rc), (unsigned long long)problems);
	mapkv_txn_abort(txn);
}

/* ---- sizes from the whole space ------------------------------------------ */

/* Largest value stored inline with a key of @klen bytes (page.h, INLINE
 * LIMIT). */
static size_t inline_max(unsigned psize, size_t klen)
{
	return (psize - 16) / 2 - 2 - 8 - klen;
}

/* Key number @id of a workload: its length is drawn from 1..
 * MAPKV_MAX_KEY_SIZE with weight on short keys and on the longest ones
 * (long separators, few per branch page); contents depend on @id only. */
static size_t model_key(uint64_t id, unsigned char *buf)
{
	uint64_t h = tu_mix64(id * 0x9e37 + 11);
	uint64_t p = h % 100, x = h >> 8;
	size_t len;
	if (p < 40)
		len = 1 + x % 16;
	else if (p < 65)
		len = 17 + x % 239;
	else if (p < 85)
		len = 256 + x % (MAPKV_MAX_KEY_SIZE - 256);
	else if (p < 95)
		len = MAPKV_MAX_KEY_SIZE;
	else
		len = MAPKV_MAX_KEY_SIZE - 1 - x % 2;
	tu_fill_bytes(buf, len, id);
	return len;
}

/* A value size for a key of @klen bytes in pages of @psize bytes: every
 * threshold and its neighbours (inline limit, half page, page, the sizes
 * where an overflow run takes one more page) and spans of several pages. */
static size_t model_vsize(tu_rng *r, unsigned psize, size_t klen)
{
	size_t lim = inline_max(psize, klen), m;
	switch (tu_rng_below(r, 16)) {
	case 0:
		return (size_t)tu_rng_below(r, 3); /* 0, 1, 2 */
	case 1:
	case 2:
	case 3:
		return (size_t)tu_rng_below(r, 200);
	case 4:
	case 5:
		return (size_t)tu_rng_below(r, lim + 1); /* any inline */
	case 6:
	case 7:
		return lim - 1 + (size_t)tu_rng_below(r, 3); /* limit +-1 */
	case 8:
		return psize / 2 - 2 + (size_t)tu_rng_below(r, 5);
	case 9:
		return psize - 16 - 1 + (size_t)tu_rng_below(r, 3);
	case 10:
		return psize - 1 + (size_t)tu_rng_below(r, 3);
	case 11:
		/* An overflow run of m pages holds up to m * P - 16 bytes. */
		m = 1 + (size_t)tu_rng_below(r, 4);
		return m * psize - 16 - 1 + (size_t)tu_rng_below(r, 3);
	case 12:
		return (size_t)tu_rng_below(r, 3 * (uint64_t)psize + 1);
	default:
		return (size_t)tu_rng_range(r, lim / 4, lim); /* fills pages */
	}
}

/* Compare a cursor walk of up to @steps moves from a random key (both
 * directions) with the model. */
static void model_cursor_walk(mapkv_txn *txn, const tu_model *m, tu_rng *r,
			      const unsigned char *k, size_t kl, int steps)
{
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	int dir = (int)tu_rng_below(r, 2);
	mapkv_val key = {k, kl}, v;
	const tu_entry *e;
	int rc;
	switch (tu_rng_below(r, 4)) {
	case 0:
		rc = mapkv_cursor_get(cur, &key, &v, MAPKV_FIRST);
		e = tu_model_first(m);
		break;
	case 1:
		rc = mapkv_cursor_get(cur, &key, &v, MAPKV_LAST);
		e = tu_model_last(m);
		break;
	default:
		rc = mapkv_cursor_get(cur, &key, &v, MAPKV_SEEK);
		e = tu_model_ceil(m, k, kl, 0);
		break;
	}
	for (int i = 0;; i++) {
		if (!e) {
			ck_assert_rc(rc, MAPKV_NOTFOUND);
			break;
		}
		ck_assert_rc(rc, 0);
		tu_check(key.size == e->klen &&
				 memcmp(key.data, e->key, e->klen) == 0 &&
				 v.size == e->vlen &&
				 memcmp(v.data, e->val, e->vlen) == 0,
			 "cursor step %d (%s): got key %s (%zu bytes, value "
			 "%zu bytes), expected %s (%zu bytes, value %zu bytes)",
			 i, dir ? "prev" : "next", tu_fmt(key.data, key.size),
			 key.size, v.size, tu_fmt(e->key, e->klen), e->klen,
			 e->vlen);
		if (i == steps)
			break;
		e = dir ? tu_model_floor(m, e->key, e->klen, 1)
			: tu_model_ceil(m, e->key, e->klen, 1);
		rc = mapkv_cursor_get(cur, &key, &v,
				      dir ? MAPKV_PREV : MAPKV_NEXT);
	}
	mapkv_cursor_close(cur);
}

/* What a batch changed in the model, to undo it when the batch aborts
 * (cheaper than a copy of the whole model per batch). */
typedef struct undo_ent {
	unsigned char *key, *val; /* val NULL: the key was absent */
	size_t klen, vlen;
} undo_ent;

typedef struct undo_log {
	undo_ent *e;
	size_t n, cap;
} undo_log;

/* Note the model's state of a key about to change. */
static void undo_note(undo_log *u, const tu_model *m, const void *k, size_t kl)
{
	if (u->n == u->cap) {
		u->cap = u->cap ? 2 * u->cap : 256;
		u->e = realloc(u->e, u->cap * sizeof(*u->e));
		ck_assert_ptr_nonnull(u->e);
	}
	undo_ent *x = &u->e[u->n++];
	const tu_entry *e = tu_model_get(m, k, kl);
	x->key = malloc(kl);
	ck_assert_ptr_nonnull(x->key);
	memcpy(x->key, k, kl);
	x->klen = kl;
	x->val = NULL;
	x->vlen = 0;
	if (e) {
		x->val = malloc(e->vlen + 1);
		ck_assert_ptr_nonnull(x->val);
		memcpy(x->val, e->val, e->vlen);
		x->vlen = e->vlen;
	}
}

/* Forget the log (@m keeps its state), or roll @m back (undo != 0). */
static void undo_end(undo_log *u, tu_model *m, int undo)
{
	for (size_t i = u->n; i-- > 0;) {
		undo_ent *x = &u->e[i];
		if (undo && x->val)
			tu_model_put(m, x->key, x->klen, x->val, x->vlen);
		else if (undo)
			tu_model_del(m, x->key, x->klen);
		free(x->key);
		free(x->val);
	}
	u->n = 0;
}

/*
 * Random operations against the model at page size @psize: puts that
 * insert or overwrite (some with MAPKV_NOOVERWRITE), runs of consecutive
 * keys (the sequential split path), deletes of present keys (merges),
 * gets, cursor walks both ways; batches end in a commit or an abort; the
 * workload alternates between growing and shrinking the tree. Keys and
 * values are drawn from the whole size space (model_key, model_vsize).
 */
static void model_run(unsigned psize, uint64_t nops, uint64_t seed)
{
	/* About 8 MiB of live data at any page size. */
	const uint64_t keyspace = 3000 * 4096 / psize + 300;
	tu_rng r;
	tu_rng_init(&r, seed);
	create_with_page_size("db", psize);
	mapkv_env *env = tu_open("db", MAPKV_NOSYNC, 0);
	tu_model *m = tu_model_new();
	undo_log undo = {NULL, 0, 0};
	unsigned char kbuf[MAPKV_MAX_KEY_SIZE];
	unsigned char *vbuf = malloc(4 * (size_t)psize + 64);
	ck_assert_ptr_nonnull(vbuf);
	uint64_t op = 0, nbatch = 0, aborts = 0;
	int shrink = 0;

	while (op < nops) {
		/* Phases of growth and shrinkage (merges), keeping the tree
		 * between a quarter and twice the key space (runs add keys
		 * outside it). */
		size_t cnt = tu_model_count(m);
		if (cnt > 2 * keyspace || cnt < keyspace / 4)
			shrink = cnt > 2 * keyspace;
		else if (nbatch % 25 == 24)
			shrink = !shrink;
		mapkv_txn *txn = tu_begin(env, 0);
		uint64_t len = 1 + tu_rng_below(&r, 150);
		for (uint64_t j = 0; j < len && op < nops; j++, op++) {
			uint64_t kind = tu_rng_below(&r, 100);
			size_t kl = model_key(tu_rng_below(&r, keyspace), kbuf);
			const tu_entry *e;
			if (kind < (shrink ? 65u : 15u) &&
			    tu_model_count(m) > 0) {
				/* Delete a present key (the next one). */
				e = tu_model_ceil(m, kbuf, kl, 0);
				if (!e)
					e = tu_model_first(m);
				kl = e->klen;
				memcpy(kbuf, e->key, kl);
				undo_note(&undo, m, kbuf, kl);
				ck_assert_rc(tu_del_rc(txn, 0, kbuf, kl), 0);
				tu_model_del(m, kbuf, kl);
				continue;
			}
			e = tu_model_get(m, kbuf, kl);
			if (kind < 70) { /* put: insert or overwrite */
				size_t vl = model_vsize(&r, psize, kl);
				tu_fill_bytes(vbuf, vl, op);
				int noov = tu_rng_below(&r, 8) == 0;
				int rc =
					tu_put_rc(txn, 0, kbuf, kl, vbuf, vl,
						  noov ? MAPKV_NOOVERWRITE : 0);
				ck_assert_rc(rc, e && noov ? MAPKV_EXISTS : 0);
				if (!(e && noov)) {
					undo_note(&undo, m, kbuf, kl);
					tu_model_put(m, kbuf, kl, vbuf, vl);
				}
			} else if (kind < 74) {
				/* A run of consecutive keys after this one,
				 * each inserted just after the previous. */
				uint64_t n = 2 + tu_rng_below(&r, 14);
				if (kl > MAPKV_MAX_KEY_SIZE - 4)
					kl = MAPKV_MAX_KEY_SIZE - 4;
				for (uint64_t i = 0; i < n; i++) {
					unsigned char *x = kbuf + kl;
					x[0] = 0xff, x[1] = 0xfe;
					x[2] = (unsigned char)(i >> 8);
					x[3] = (unsigned char)i;
					size_t vl =
						model_vsize(&r, psize, kl + 4);
					tu_fill_bytes(vbuf, vl, op * 64 + i);
					tu_put(txn, 0, kbuf, kl + 4, vbuf, vl);
					undo_note(&undo, m, kbuf, kl + 4);
					tu_model_put(m, kbuf, kl + 4, vbuf, vl);
				}
			} else if (kind < 78) {
				int rc = tu_del_rc(txn, 0, kbuf, kl);
				ck_assert_rc(rc, e ? 0 : MAPKV_NOTFOUND);
				undo_note(&undo, m, kbuf, kl);
				tu_model_del(m, kbuf, kl);
			} else if (kind < 94) {
				mapkv_val v;
				int rc = tu_get_rc(txn, 0, kbuf, kl, &v);
				ck_assert_rc(rc, e ? 0 : MAPKV_NOTFOUND);
				if (e)
					tu_check(v.size == e->vlen &&
							 memcmp(v.data, e->val,
								e->vlen) == 0,
						 "op %llu: get %s: %zu bytes, "
						 "expected %zu",
						 (unsigned long long)op,
						 tu_fmt(kbuf, kl), v.size,
						 e->vlen);
			} else {
				model_cursor_walk(txn, m, &r, kbuf, kl,
						  (int)tu_rng_below(&r, 40));
			}
		}
		if (nbatch % 16 == 15)
			tu_verify_txn(txn, 0, m); /* uncommitted state */
		if (tu_rng_below(&r, 8) == 0) {
			mapkv_txn_abort(txn);
			undo_end(&undo, m, 1);
			aborts++;
		} else {
			tu_commit(txn);
			undo_end(&undo, m, 0);
		}
		if (nbatch % 16 == 7)
			tu_verify_db(env, 0, m);
		if (nbatch % 64 == 63) {
			mapkv_close(env);
			env = tu_open("db", MAPKV_NOSYNC, 0);
		}
		nbatch++;
	}
	tu_check(aborts > 0 || nbatch < 8, "%llu batches, none aborted",
		 (unsigned long long)nbatch);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	tu_verify_db(env, 0, m);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(tu_stat(txn, 0).entries, tu_model_count(m));
	mapkv_txn_abort(txn);
	check_file(env);
	mapkv_close(env);
	free(vbuf);
	free(undo.e);
	tu_model_free(m);
}

START_TEST(test_random_ops_of_every_size_match_model_at_every_page_size)
{
	unsigned psize = page_sizes[_i];
	/* 10^6 operations at the default page size under MAPKV_TEST_LONG. */
	uint64_t nops = psize == 4096 ? tu_scale(25000, 1000000)
				      : tu_scale(8000, 250000);
	model_run(psize, nops, tu_seed(0xb7ee01 + psize));
}
END_TEST

/* Bug 1 of issue 11: a leaf insert right after the previous one split the
 * page at the new node without counting bytes, so the new node and a large
 * tail of the page went to one page and overflowed it (SIGSEGV). Leaf
 * "a b . y z": y and z take 3/4 of a page; "b" was just inserted; "c" (a
 * big node) goes after it. Then the run continues. At every page size. */
START_TEST(test_split_after_a_run_with_a_large_tail_keeps_both_pages_valid)
{
	unsigned psize = page_sizes[_i], usable = psize - 16;
	create_with_page_size("db", psize);
	mapkv_env *env = tu_open("db", MAPKV_NOSYNC, 0);
	tu_model *m = tu_model_new();
	unsigned char *v = malloc(psize);
	ck_assert_ptr_nonnull(v);
	/* (key, node bytes with slot) in insertion order */
	struct {
		const char *k;
		unsigned node;
	} seq[] = {{"a", 20},
		   {"y", usable * 37 / 100},
		   {"z", usable * 37 / 100},
		   {"b", 20},
		   {"c", usable * 45 / 100},
		   {"c1", usable * 45 / 100},
		   {"c2", usable * 30 / 100},
		   {"c3", usable * 45 / 100}};
	mapkv_txn *txn = tu_begin(env, 0);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		size_t kl = strlen(seq[i].k);
		size_t vl = seq[i].node - 2 - 8 - kl;
		ck_assert_uint_le(vl, inline_max(psize, kl));
		tu_fill_bytes(v, vl, i);
		tu_put(txn, 0, seq[i].k, kl, v, vl);
		tu_model_put(m, seq[i].k, kl, v, vl);
		tu_verify_txn(txn, 0, m);
	}
	tu_commit(txn);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	tu_verify_db(env, 0, m);
	check_file(env);
	mapkv_close(env);
	free(v);
	tu_model_free(m);
}
END_TEST

START_TEST(test_max_length_keys_split_and_merge_correctly)
{
	const int n = (int)tu_scale(3000, 20000);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xb7ee02));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new();
	unsigned char k[MAPKV_MAX_KEY_SIZE];
	char v[32];

	mapkv_txn *txn = tu_begin(env, 0);
	for (int i = 0; i < n; i++) {
		/* Keys differ only near the end: separators must be long. */
		memset(k, 'x', sizeof(k));
		tu_make_seq_key(k + sizeof(k) - 12, 12,
				tu_rng_below(&r, 1000000000000ull));
		int vl = snprintf(v, sizeof(v), "v%d", i);
		tu_put(txn, 0, k, sizeof(k), v, (size_t)vl);
		tu_model_put(m, k, sizeof(k), v, (size_t)vl);
	}
	tu_commit(txn);
	tu_verify_db(env, 0, m);
	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_stat_info st = tu_stat(txn, 0);
	mapkv_txn_abort(txn);
	tu_check(st.depth >= 3 && st.branch_pages > 0,
		 "%zu keys of %d bytes: expected a tree of depth >= 3, got "
		 "depth %u with %llu branch pages",
		 tu_model_count(m), MAPKV_MAX_KEY_SIZE, st.depth,
		 (unsigned long long)st.branch_pages);

	/* Delete all but every fifth key, in key order from both ends. */
	txn = tu_begin(env, 0);
	size_t cnt = tu_model_count(m);
	unsigned char(*keys)[MAPKV_MAX_KEY_SIZE] = malloc(cnt * sizeof(*keys));
	ck_assert_ptr_nonnull(keys);
	for (size_t i = 0; i < cnt; i++)
		memcpy(keys[i], tu_model_at(m, i)->key, MAPKV_MAX_KEY_SIZE);
	for (size_t i = 0; i < cnt; i++) {
		size_t idx = (i % 2) ? cnt - 1 - i / 2 : i / 2;
		if (idx % 5 == 0)
			continue;
		ck_assert_rc(tu_del_rc(txn, 0, keys[idx], MAPKV_MAX_KEY_SIZE),
			     0);
		tu_model_del(m, keys[idx], MAPKV_MAX_KEY_SIZE);
	}
	tu_verify_txn(txn, 0, m);
	tu_commit(txn);
	tu_verify_db(env, 0, m);
	free(keys);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

/* Overflow values of sizes around and far above the page size round trip
 * exactly, and can be replaced by small values and back. */
START_TEST(test_overflow_values_round_trip_and_shrink_and_grow)
{
	static const size_t sizes[] = {2000, 4000,  4096,   4097,    5000,
				       8192, 12289, 100000, 3u << 20};
	const size_t ns = sizeof(sizes) / sizeof(sizes[0]);
	size_t maxs = 3u << 20;
	unsigned char *buf = malloc(maxs);
	ck_assert_ptr_nonnull(buf);
	mapkv_env *env = tu_open("db", 0, 0);
	char key[32];

	for (int round = 0; round < 3; round++) {
		/* round 0: big values; 1: replaced by small; 2: big again with
		 * other contents. */
		mapkv_txn *txn = tu_begin(env, 0);
		for (size_t i = 0; i < ns; i++) {
			snprintf(key, sizeof(key), "big%zu", sizes[i]);
			size_t vl = round == 1 ? 10 : sizes[i];
			tu_fill_bytes(buf, vl, sizes[i] * 10 + (size_t)round);
			tu_put(txn, 0, key, strlen(key), buf, vl);
		}
		tu_put_str(txn, 0, "small", "neighbour");
		tu_commit(txn);

		for (int reopen = 0; reopen < 2; reopen++) {
			if (reopen) {
				mapkv_close(env);
				env = tu_open("db", 0, 0);
			}
			txn = tu_begin(env, MAPKV_RDONLY);
			for (size_t i = 0; i < ns; i++) {
				snprintf(key, sizeof(key), "big%zu", sizes[i]);
				size_t vl = round == 1 ? 10 : sizes[i];
				mapkv_val v;
				ck_assert_rc(
					tu_get_rc(txn, 0, key, strlen(key), &v),
					0);
				ck_assert_uint_eq(v.size, vl);
				size_t bad = tu_check_bytes(
					v.data, v.size,
					sizes[i] * 10 + (size_t)round);
				tu_check(bad == (size_t)-1,
					 "round %d: value of %zu bytes differs "
					 "at byte %zu",
					 round, vl, bad);
			}
			tu_expect_str(txn, 0, "small", "neighbour");
			mapkv_stat_info st = tu_stat(txn, 0);
			ck_assert_uint_eq(st.entries, ns + 1);
			if (round == 1)
				tu_check(st.overflow_pages == 0,
					 "all values small but %llu overflow "
					 "pages counted",
					 (unsigned long long)st.overflow_pages);
			else
				tu_check(st.overflow_pages >= (3u << 20) / PAGE,
					 "a 3 MiB value is stored but only "
					 "%llu overflow pages counted",
					 (unsigned long long)st.overflow_pages);
			mapkv_txn_abort(txn);
		}
	}
	mapkv_close(env);
	free(buf);
}
END_TEST

/* Every value size from 0 to two pages and a bit: catches off-by-one
 * errors at the point where a value moves to overflow pages. */
START_TEST(test_values_of_every_size_up_to_two_pages_round_trip)
{
	const size_t maxv = 2 * PAGE + 200;
	unsigned char *buf = malloc(maxv);
	ck_assert_ptr_nonnull(buf);
	mapkv_env *env = tu_open("db", 0, 0);
	char key[16];

	mapkv_txn *txn = tu_begin(env, 0);
	for (size_t s = 0; s <= maxv; s++) {
		snprintf(key, sizeof(key), "v%05zu", s);
		tu_fill_bytes(buf, s, s);
		tu_put(txn, 0, key, strlen(key), buf, s);
	}
	/* Read back inside the writing transaction, then after commit and
	 * reopen. */
	for (int pass = 0; pass < 3; pass++) {
		if (pass == 1) {
			tu_commit(txn);
			txn = tu_begin(env, MAPKV_RDONLY);
		} else if (pass == 2) {
			mapkv_txn_abort(txn);
			mapkv_close(env);
			env = tu_open("db", 0, 0);
			txn = tu_begin(env, MAPKV_RDONLY);
		}
		for (size_t s = 0; s <= maxv; s++) {
			snprintf(key, sizeof(key), "v%05zu", s);
			mapkv_val v;
			ck_assert_rc(tu_get_rc(txn, 0, key, strlen(key), &v),
				     0);
			tu_check(v.size == s,
				 "pass %d: value of %zu bytes read back as %zu "
				 "bytes",
				 pass, s, v.size);
			size_t bad = tu_check_bytes(v.data, v.size, s);
			tu_check(bad == (size_t)-1,
				 "pass %d: value of %zu bytes differs at %zu",
				 pass, s, bad);
		}
		mapkv_stat_info st = tu_stat(txn, 0);
		ck_assert_uint_eq(st.entries, maxv + 1);
		tu_check(st.overflow_pages > 0,
			 "values up to %zu bytes but no overflow pages", maxv);
	}
	mapkv_txn_abort(txn);
	mapkv_close(env);
	free(buf);
}
END_TEST

START_TEST(test_empty_and_too_long_keys_give_bad_key)
{
	mapkv_env *env = tu_open("db", 0, 0);
	static unsigned char k[MAPKV_MAX_KEY_SIZE + 1];
	memset(k, 'k', sizeof(k));
	mapkv_val tooLong = {k, MAPKV_MAX_KEY_SIZE + 1};
	mapkv_val empty = {k, 0};
	mapkv_val maxk = {k, MAPKV_MAX_KEY_SIZE};
	mapkv_val v = {"v", 1}, out;

	mapkv_txn *txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_put(txn, 0, &tooLong, &v, 0), MAPKV_BAD_KEY);
	ck_assert_rc(mapkv_put(txn, 0, &empty, &v, 0), MAPKV_BAD_KEY);
	ck_assert_rc(mapkv_get(txn, 0, &tooLong, &out), MAPKV_BAD_KEY);
	ck_assert_rc(mapkv_get(txn, 0, &empty, &out), MAPKV_BAD_KEY);
	ck_assert_rc(mapkv_del(txn, 0, &tooLong), MAPKV_BAD_KEY);
	ck_assert_rc(mapkv_del(txn, 0, &empty), MAPKV_BAD_KEY);
	/* MAPKV_BAD_KEY does not fail the transaction; the longest allowed
	 * key works. */
	ck_assert_rc(mapkv_put(txn, 0, &maxk, &v, 0), 0);
	tu_put_str(txn, 0, "a", "1");
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_get(txn, 0, &tooLong, &out), MAPKV_BAD_KEY);
	ck_assert_rc(mapkv_get(txn, 0, &empty, &out), MAPKV_BAD_KEY);
	ck_assert_rc(mapkv_get(txn, 0, &maxk, &out), 0);
	ck_assert_uint_eq(out.size, 1);
	ck_assert_int_eq(((const char *)out.data)[0], 'v');
	tu_expect_str(txn, 0, "a", "1");
	ck_assert_uint_eq(tu_stat(txn, 0).entries, 2);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_nooverwrite_gives_exists_and_keeps_old_value)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	ck_assert_rc(tu_put_rc(txn, 0, "key", 3, "old", 3, MAPKV_NOOVERWRITE),
		     0);
	ck_assert_rc(tu_put_rc(txn, 0, "key", 3, "new", 3, MAPKV_NOOVERWRITE),
		     MAPKV_EXISTS);
	tu_expect_str(txn, 0, "key", "old");
	tu_commit(txn);

	txn = tu_begin(env, 0);
	ck_assert_rc(tu_put_rc(txn, 0, "key", 3, "newer", 5, MAPKV_NOOVERWRITE),
		     MAPKV_EXISTS);
	/* MAPKV_EXISTS does not fail the transaction. */
	tu_put_str(txn, 0, "other", "x");
	tu_expect_str(txn, 0, "key", "old");
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "key", "old");
	tu_expect_str(txn, 0, "other", "x");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_empty_value_is_stored_and_read_back_with_size_0)
{
	mapkv_env *env = tu_open("db", 0, 0);
	static const char nothing[1] = {0};
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put(txn, 0, "e", 1, nothing, 0);
	tu_put(txn, 0, "f", 1, "full", 4);
	mapkv_val v = {"junk", 4};
	ck_assert_rc(tu_get_rc(txn, 0, "e", 1, &v), 0);
	ck_assert_uint_eq(v.size, 0);
	/* Replacing a non-empty value by an empty one. */
	tu_put(txn, 0, "f", 1, nothing, 0);
	tu_commit(txn);

	mapkv_close(env);
	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	v.size = 99;
	ck_assert_rc(tu_get_rc(txn, 0, "e", 1, &v), 0);
	ck_assert_uint_eq(v.size, 0);
	v.size = 99;
	ck_assert_rc(tu_get_rc(txn, 0, "f", 1, &v), 0);
	ck_assert_uint_eq(v.size, 0);
	mapkv_cursor *cur;
	mapkv_val k;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	v.size = 99;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
	ck_assert_uint_eq(k.size, 1);
	ck_assert_int_eq(((const char *)k.data)[0], 'e');
	ck_assert_uint_eq(v.size, 0);
	mapkv_cursor_close(cur);
	ck_assert_uint_eq(tu_stat(txn, 0).entries, 2);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_sequential_insert_fills_leaf_pages_nearly_full)
{
	const uint64_t n = tu_scale(100000, 1000000);
	mapkv_env *env = tu_open("db", 0, 0);
	unsigned char k[16], v[100];
	mapkv_txn *txn = NULL;
	for (uint64_t i = 0; i < n; i++) {
		if (i % 10000 == 0) {
			if (txn)
				tu_commit(txn);
			txn = tu_begin(env, 0);
		}
		tu_make_seq_key(k, 16, i);
		tu_fill_bytes(v, 100, i);
		tu_put(txn, 0, k, 16, v, 100);
	}
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_stat_info st = tu_stat(txn, 0);
	mapkv_txn_abort(txn);
	ck_assert_uint_eq(st.entries, n);
	ck_assert_uint_eq(st.overflow_pages, 0);
	ck_assert_uint_eq(st.page_size, PAGE);
	double bound = (double)n * (16 + 100 + 16) / PAGE * 1.3 + 2;
	tu_check((double)st.leaf_pages <= bound,
		 "%llu sequential 16+100-byte pairs use %llu leaf pages, more "
		 "than %.0f: the append path leaves pages half empty",
		 (unsigned long long)n, (unsigned long long)st.leaf_pages,
		 bound);
	tu_check(st.depth >= 2 && st.branch_pages >= 1,
		 "depth %u, branch pages %llu", st.depth,
		 (unsigned long long)st.branch_pages);
	tu_check(st.branch_pages * 20 < st.leaf_pages,
		 "%llu branch pages for %llu leaves",
		 (unsigned long long)st.branch_pages,
		 (unsigned long long)st.leaf_pages);
	mapkv_close(env);
}
END_TEST

/* Load @n keys in random order (some with overflow values) and return the
 * model. */
static tu_model *load_random(mapkv_env *env, uint64_t n, tu_rng *r)
{
	tu_model *m = tu_model_new();
	unsigned char k[16], v[6000];
	mapkv_txn *txn = NULL;
	for (uint64_t i = 0; i < n; i++) {
		if (i % 10000 == 0) {
			if (txn)
				tu_commit(txn);
			txn = tu_begin(env, 0);
		}
		tu_make_seq_key(k, 16, tu_rng_below(r, 10000000000000000ull));
		size_t vl = tu_rng_below(r, 100) == 0 ? 5000 : 100;
		tu_fill_bytes(v, vl, i);
		tu_put(txn, 0, k, 16, v, vl);
		tu_model_put(m, k, 16, v, vl);
	}
	tu_commit(txn);
	return m;
}

/* Keys of @m in a random order (caller frees). */
static unsigned char (*shuffled_keys(tu_model *m, tu_rng *r))[16]
{
	size_t n = tu_model_count(m);
	unsigned char(*keys)[16] = malloc((n ? n : 1) * 16);
	ck_assert_ptr_nonnull(keys);
	for (size_t i = 0; i < n; i++)
		memcpy(keys[i], tu_model_at(m, i)->key, 16);
	for (size_t i = n; i > 1; i--) {
		size_t j = tu_rng_below(r, i);
		unsigned char t[16];
		memcpy(t, keys[i - 1], 16);
		memcpy(keys[i - 1], keys[j], 16);
		memcpy(keys[j], t, 16);
	}
	return keys;
}

START_TEST(test_tree_emptied_of_all_keys_shrinks_back_to_a_root)
{
	const uint64_t n = tu_scale(50000, 500000);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xb7ee04));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_random(env, n, &r);
	size_t cnt = tu_model_count(m);
	unsigned char(*keys)[16] = shuffled_keys(m, &r);

	mapkv_txn *txn = NULL;
	for (size_t i = 0; i < cnt; i++) {
		if (i % 5000 == 0) {
			if (txn)
				tu_commit(txn);
			txn = tu_begin(env, 0);
		}
		ck_assert_rc(tu_del_rc(txn, 0, keys[i], 16), 0);
		tu_model_del(m, keys[i], 16);
		if (i == cnt / 2)
			tu_verify_txn(txn, 0, m);
	}
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_stat_info st = tu_stat(txn, 0);
	tu_check(st.entries == 0 && st.depth <= 1 && st.leaf_pages <= 1 &&
			 st.branch_pages == 0 && st.overflow_pages == 0,
		 "after deleting all %zu keys: entries %llu depth %u leaf "
		 "pages %llu branch pages %llu overflow pages %llu",
		 cnt, (unsigned long long)st.entries, st.depth,
		 (unsigned long long)st.leaf_pages,
		 (unsigned long long)st.branch_pages,
		 (unsigned long long)st.overflow_pages);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	ck_assert_rc(mapkv_cursor_get(cur, NULL, NULL, MAPKV_FIRST),
		     MAPKV_NOTFOUND);
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);

	/* The empty tree is still a working tree. */
	txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "again", "1");
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "again", "1");
	ck_assert_uint_eq(tu_stat(txn, 0).entries, 1);
	mapkv_txn_abort(txn);
	free(keys);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_deleting_90_percent_of_keys_merges_leaf_pages)
{
	const uint64_t n = tu_scale(50000, 500000);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xb7ee05));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new();
	unsigned char k[16], v[100];
	mapkv_txn *txn = tu_begin(env, 0);
	for (uint64_t i = 0; i < n; i++) {
		tu_make_seq_key(k, 16, tu_rng_below(&r, 10000000000000000ull));
		tu_fill_bytes(v, 100, i);
		tu_put(txn, 0, k, 16, v, 100);
		tu_model_put(m, k, 16, v, 100);
	}
	tu_commit(txn);
	size_t cnt = tu_model_count(m);
	unsigned char(*keys)[16] = shuffled_keys(m, &r);
	size_t ndel = cnt - cnt / 10;
	txn = NULL;
	for (size_t i = 0; i < ndel; i++) {
		if (i % 5000 == 0) {
			if (txn)
				tu_commit(txn);
			txn = tu_begin(env, 0);
		}
		ck_assert_rc(tu_del_rc(txn, 0, keys[i], 16), 0);
		tu_model_del(m, keys[i], 16);
	}
	tu_commit(txn);
	tu_verify_db(env, 0, m);

	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_stat_info st = tu_stat(txn, 0);
	mapkv_txn_abort(txn);
	size_t left = tu_model_count(m);
	/* Pages that fall under a fill threshold merge or borrow: with any
	 * threshold of at least 20 %, the leaves hold at least a fifth of a
	 * page each on average. Without merging, ~90 % of the original
	 * leaves would remain, each nearly empty. */
	double bound = (double)left * (16 + 100 + 16) / PAGE * 5 + 2;
	tu_check((double)st.leaf_pages <= bound,
		 "%zu of %zu keys left in %llu leaf pages (more than %.0f): "
		 "deletes do not merge pages",
		 left, cnt, (unsigned long long)st.leaf_pages, bound);
	free(keys);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_one_huge_value_round_trips)
{
	const size_t size = (size_t)tu_scale(64ull << 20, 1ull << 30);
	const uint64_t seed = tu_seed(0xb7ee06);
	tu_rng r;
	tu_rng_init(&r, seed);
	unsigned char *buf = malloc(size);
	ck_assert_ptr_nonnull(buf);
	tu_fill_bytes(buf, size, seed);
	uint64_t want = tu_hash64(buf, size);

	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "a", "before");
	tu_put(txn, 0, "huge", 4, buf, size);
	tu_put_str(txn, 0, "z", "after");
	tu_commit(txn);
	mapkv_close(env);

	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_val v;
	ck_assert_rc(tu_get_rc(txn, 0, "huge", 4, &v), 0);
	ck_assert_uint_eq(v.size, size);
	const unsigned char *p = v.data;
	size_t samples[] = {0,        1,        PAGE - 1,    PAGE,
			    PAGE + 1, size / 2, size - PAGE, size - 1};
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		tu_check(p[samples[i]] == buf[samples[i]],
			 "byte %zu of the huge value differs", samples[i]);
	for (int i = 0; i < 1000; i++) {
		size_t off = (size_t)tu_rng_below(&r, size);
		tu_check(p[off] == buf[off],
			 "byte %zu of the huge value differs", off);
	}
	tu_check(tu_hash64(p, size) == want,
		 "checksum of the %zu-byte value differs", size);
	tu_expect_str(txn, 0, "a", "before");
	tu_expect_str(txn, 0, "z", "after");
	mapkv_stat_info st = tu_stat(txn, 0);
	tu_check(st.overflow_pages >= size / PAGE,
		 "value of %zu bytes but %llu overflow pages", size,
		 (unsigned long long)st.overflow_pages);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	free(buf);
}
END_TEST

/* ---- hand-made damaged files ---------------------------------------------
 * Pages laid out as page.h describes them: header (pgno at 0, flags at 4,
 * nkeys at 6, lower at 8, upper at 10), slots, nodes packed at the end;
 * leaf node: flags, 0, ksize (2), vsize (4), key, value; branch node:
 * child (4), ksize (2), key. Both meta pages point at the tree. */

typedef struct img {
	unsigned ps, npages;
	uint8_t *b;
} img;

static img img_new(unsigned ps, unsigned npages)
{
	img im = {ps, npages, calloc(npages, ps)};
	ck_assert_ptr_nonnull(im.b);
	return im;
}

static page *img_page(img *im, pgno_t n, unsigned flags)
{
	ck_assert_uint_lt(n, im->npages);
	page *p = im->b + (size_t)n * im->ps;
	pg_init(p, n, flags, im->ps);
	return p;
}

/* Add a node of @size bytes after the last one (slot included). */
static uint8_t *img_node(page *p, unsigned size)
{
	unsigned n = pg_nkeys(p), upper = pg_upper(p) - size;
	ck_assert_uint_ge(upper, pg_lower(p) + 2);
	pg_st16(p + MK_PAGE_HDR + 2 * n, (uint16_t)upper);
	pg_st16(p + 6, (uint16_t)(n + 1));
	pg_st16(p + 8, (uint16_t)(pg_lower(p) + 2));
	pg_st16(p + 10, (uint16_t)upper);
	return p + upper;
}

/* A leaf node whose header says @vsize value bytes, of which @stored are
 * in the page. */
static void img_leaf(page *p, const void *k, unsigned ks, uint32_t vsize,
		     unsigned stored)
{
	uint8_t *n = img_node(p, MK_LEAF_HDR + ks + stored);
	n[0] = n[1] = 0;
	pg_st16(n + 2, (uint16_t)ks);
	pg_st32(n + 4, vsize);
	memcpy(n + MK_LEAF_HDR, k, ks);
	memset(n + MK_LEAF_HDR + ks, 'v', stored);
}

/* A branch node whose header says @ks key bytes, of which @stored are in
 * the page. */
static void img_branch(page *p, pgno_t child, const void *k, unsigned ks,
		       unsigned stored)
{
	uint8_t *n = img_node(p, MK_BRANCH_HDR + stored);
	pg_st32(n, child);
	pg_st16(n + 4, (uint16_t)ks);
	memcpy(n + MK_BRANCH_HDR, k, stored);
}

/* Write the image as tu_path(@name), main tree at @root of @depth levels
 * (meta ids 2 and 1, checksums sealed). */
static void img_save(img *im, const char *name, pgno_t root, unsigned depth,
		     uint64_t entries)
{
	mk_meta m;
	memset(&m, 0, sizeof(m));
	m.magic = MK_MAGIC;
	m.version = MK_FORMAT_VERSION;
	m.page_size = im->ps;
	m.last_pgno = im->npages;
	m.trees[MK_TREE_MAIN].root = root;
	m.trees[MK_TREE_MAIN].depth = depth;
	m.trees[MK_TREE_MAIN].entries = entries;
	for (unsigned i = 0; i < MK_NUM_META; i++) {
		m.txnid = 2 - i;
		pg_meta_encode(im->b + (size_t)i * im->ps, im->ps, &m, NULL);
	}
	tu_write_file(tu_path(name), im->b, (size_t)im->npages * im->ps);
	free(im->b);
	im->b = NULL;
}

/* Bug 5 of issue 11: a delete merges a leaf into its right sibling, whose
 * node says its value is 5,000 bytes (in a 4 KiB page): the merge copied
 * it by that size (SIGSEGV). The same one level up: a branch sibling with
 * a 5,000-byte separator; and siblings whose keys are out of order, inside
 * the right one or across the two. The sibling must be checked like a
 * page on the path; the delete gives MAPKV_CORRUPT and the file stays
 * readable. */
START_TEST(test_merge_with_a_damaged_sibling_gives_corrupt)
{
	img im = img_new(4096, 5);
	page *p = img_page(&im, 2, MK_P_BRANCH);
	img_branch(p, 3, "", 0, 0);
	img_branch(p, 4, "m", 1, 1);
	p = img_page(&im, 3, MK_P_LEAF);
	img_leaf(p, "a", 1, 10, 10);
	img_leaf(p, "b", 1, 10, 10);
	p = img_page(&im, 4, MK_P_LEAF);
	img_leaf(p, "m", 1, 5000, 40);
	img_leaf(p, "n", 1, 10, 10);
	img_save(&im, "leaf", 2, 2, 4);

	/* root 2 -> branches 3 (leaves 5, 6) and 4 (leaves 7, 8); page 4's
	 * second separator says 5,000 bytes. */
	im = img_new(4096, 9);
	p = img_page(&im, 2, MK_P_BRANCH);
	img_branch(p, 3, "", 0, 0);
	img_branch(p, 4, "m", 1, 1);
	p = img_page(&im, 3, MK_P_BRANCH);
	img_branch(p, 5, "", 0, 0);
	img_branch(p, 6, "c", 1, 1);
	p = img_page(&im, 4, MK_P_BRANCH);
	img_branch(p, 7, "", 0, 0);
	img_branch(p, 8, "nn", 5000, 2);
	const char *leaves[] = {"a", "c", "m", "n"};
	for (pgno_t i = 0; i < 4; i++)
		img_leaf(img_page(&im, 5 + i, MK_P_LEAF), leaves[i], 1, 1, 1);
	img_save(&im, "branch", 2, 3, 4);

	/* A sibling whose keys are out of order: it must not be merged
	 * into a page that then looks valid. */
	im = img_new(4096, 5);
	p = img_page(&im, 2, MK_P_BRANCH);
	img_branch(p, 3, "", 0, 0);
	img_branch(p, 4, "m", 1, 1);
	p = img_page(&im, 3, MK_P_LEAF);
	img_leaf(p, "a", 1, 10, 10);
	img_leaf(p, "b", 1, 10, 10);
	p = img_page(&im, 4, MK_P_LEAF);
	img_leaf(p, "n", 1, 10, 10);
	img_leaf(p, "m", 1, 10, 10);
	img_save(&im, "order", 2, 2, 4);

	/* Siblings each in order, but the right one starts with the left
	 * one's last key. */
	im = img_new(4096, 5);
	p = img_page(&im, 2, MK_P_BRANCH);
	img_branch(p, 3, "", 0, 0);
	img_branch(p, 4, "b", 1, 1);
	p = img_page(&im, 3, MK_P_LEAF);
	img_leaf(p, "a", 1, 10, 10);
	img_leaf(p, "b", 1, 10, 10);
	p = img_page(&im, 4, MK_P_LEAF);
	img_leaf(p, "b", 1, 10, 10);
	img_leaf(p, "n", 1, 10, 10);
	img_save(&im, "overlap", 2, 2, 4);

	const char *names[] = {"leaf", "branch", "order", "overlap"};
	for (int f = 0; f < 4; f++) {
		mapkv_env *env = tu_open(names[f], 0, 0);
		mapkv_txn *txn = tu_begin(env, 0);
		int rc = tu_del_rc(txn, 0, "a", 1);
		tu_check(rc == MAPKV_CORRUPT, "%s: the delete gave %s",
			 names[f], mapkv_strerror(rc));
		mapkv_txn_abort(txn);
		txn = tu_begin(env, MAPKV_RDONLY);
		mapkv_val v;
		ck_assert_rc(tu_get_rc(txn, 0, "a", 1, &v), 0);
		mapkv_txn_abort(txn);
		mapkv_close(env);
	}
}
END_TEST

/* Bug 5 of issue 11: a 2,000-byte key in a leaf. A write transaction's
 * cursor copied it into its 1,024-byte key buffer (heap overflow); a read
 * cursor returned it. Keys longer than MAPKV_MAX_KEY_SIZE are damage. */
START_TEST(test_key_longer_than_the_limit_gives_corrupt_to_every_reader)
{
	static unsigned char big[2000];
	memset(big, 'k', sizeof(big));
	img im = img_new(4096, 3);
	page *p = img_page(&im, 2, MK_P_LEAF);
	img_leaf(p, "a", 1, 1, 1);
	img_leaf(p, big, sizeof(big), 10, 10);
	img_save(&im, "db", 2, 1, 2);

	mapkv_env *env = tu_open("db", 0, 0);
	for (int w = 0; w < 2; w++) {
		mapkv_txn *txn = tu_begin(env, w ? 0 : MAPKV_RDONLY);
		mapkv_cursor *cur;
		mapkv_val k, v;
		ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
		ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
		ck_assert_uint_eq(k.size, 1);
		ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT),
			     MAPKV_CORRUPT);
		ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_LAST),
			     MAPKV_CORRUPT);
		ck_assert_rc(tu_get_rc(txn, 0, big, MAPKV_MAX_KEY_SIZE, &v),
			     MAPKV_CORRUPT);
		mapkv_cursor_close(cur);
		mapkv_txn_abort(txn);
	}
	mapkv_close(env);
}
END_TEST

/* A leaf of 600 nodes that overlap (each 4 bytes after the previous;
 * their keys, read through the overlap, are in order), more than a 4 KiB
 * page can hold side by side: 601 entries overflowed the split arrays
 * (514) in the put that split it. pg_check refuses it. */
static void overlapping_leaf(page *p, unsigned ps, unsigned n)
{
	const unsigned base = 1300, stride = 4;
	pg_init(p, pg_pgno(p), MK_P_LEAF, ps);
	pg_st16(p + 6, (uint16_t)n);
	pg_st16(p + 8, (uint16_t)(MK_PAGE_HDR + 2 * n));
	pg_st16(p + 10, (uint16_t)base);
	/* Every 4 bytes: flags MK_N_BIG, a byte r, ksize k (2 bytes), where
	 * (r, k) increases; node j's key starts 8 bytes on, at node j+2's
	 * (1, r, k) and is k >= 4 bytes long, so keys increase. */
	for (unsigned j = 0; base + stride * j + 4 <= ps; j++) {
		uint8_t *q = p + base + stride * j;
		q[0] = MK_N_BIG;
		q[1] = (uint8_t)(j / 8);
		pg_st16(q + 2, (uint16_t)(4 + j % 8));
	}
	for (unsigned j = 0; j < n; j++)
		pg_st16(p + MK_PAGE_HDR + 2 * j, (uint16_t)(base + stride * j));
}

START_TEST(test_leaf_of_overlapping_nodes_gives_corrupt_on_put)
{
	img im = img_new(4096, 3);
	page *p = img_page(&im, 2, MK_P_LEAF);
	overlapping_leaf(p, 4096, 2);
	ck_assert_rc(pg_check(p, 4096), MAPKV_CORRUPT);
	overlapping_leaf(p, 4096, 600);
	ck_assert_rc(pg_check(p, 4096), MAPKV_CORRUPT);
	img_save(&im, "db", 2, 1, 600);
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	static unsigned char v[200];
	ck_assert_rc(tu_put_rc(txn, 0, "zzzz", 4, v, sizeof(v), 0),
		     MAPKV_CORRUPT);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* Bug 7 of issue 11: @nbranch branch pages (2 ..) of 3 entries each, all
 * three pointing at the next page, down to one leaf of keys a, b, c: a
 * DAG with 3^nbranch paths to the leaf. */
static void dag_file(const char *name, unsigned nbranch)
{
	img im = img_new(4096, nbranch + 3);
	for (pgno_t i = 2; i < 2 + nbranch; i++) {
		page *p = img_page(&im, i, MK_P_BRANCH);
		img_branch(p, i + 1, "", 0, 0);
		img_branch(p, i + 1, "b", 1, 1);
		img_branch(p, i + 1, "c", 1, 1);
	}
	page *leaf = img_page(&im, 2 + nbranch, MK_P_LEAF);
	img_leaf(leaf, "a", 1, 1, 1);
	img_leaf(leaf, "b", 1, 1, 1);
	img_leaf(leaf, "c", 1, 1, 1);
	img_save(&im, name, 2, nbranch + 1, 3);
}

/* Cursor scans both ways, by readers and writers, end with
 * MAPKV_CORRUPT once they come back to the leaf they left (they ran for
 * 3^31 leaf visits). */
START_TEST(test_scan_of_a_dag_gives_corrupt_at_the_first_repeated_leaf)
{
	dag_file("db", 31);
	mapkv_env *env = tu_open("db", 0, 0);
	for (int w = 0; w < 2; w++) {
		mapkv_txn *txn = tu_begin(env, w ? 0 : MAPKV_RDONLY);
		mapkv_cursor *cur;
		ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
		for (int dir = 0; dir < 2; dir++) {
			int rc = mapkv_cursor_get(cur, NULL, NULL,
						  dir ? MAPKV_LAST
						      : MAPKV_FIRST);
			int steps = 0;
			while (rc == 0 && steps < 100) {
				rc = mapkv_cursor_get(cur, NULL, NULL,
						      dir ? MAPKV_PREV
							  : MAPKV_NEXT);
				steps++;
			}
			tu_check(rc == MAPKV_CORRUPT && steps == 3,
				 "%s %s scan: %d after %d steps",
				 w ? "write" : "read",
				 dir ? "backward" : "forward", rc, steps);
		}
		mapkv_cursor_close(cur);
		mapkv_txn_abort(txn);
	}
	mapkv_close(env);
}
END_TEST

static int count_visit(void *ctx, pgno_t pgno, unsigned kind, unsigned npages,
		       unsigned level)
{
	(void)pgno, (void)kind, (void)npages, (void)level;
	return ++*(unsigned *)ctx >= 1000 ? MAPKV_INVALID : 0;
}

/* A walk (what a drop frees) visits each page once: the DAG gives
 * MAPKV_CORRUPT after at most its 33 pages (the walk visited 3^31 leaves,
 * and a drop's list of freed pages grew past 3 GB). A drop of a DAG small
 * enough to finish without the check gives MAPKV_CORRUPT too. */
START_TEST(test_walk_and_drop_of_a_dag_give_corrupt_visiting_each_page_once)
{
	dag_file("db", 31);
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	unsigned visits = 0;
	int rc = bt_walk(&txn->pg, &txn->main.rec, count_visit, &visits);
	tu_check(rc == MAPKV_CORRUPT && visits <= 33,
		 "walk of the DAG: %d after %u visits", rc, visits);
	mapkv_txn_abort(txn);
	mapkv_close(env);

	dag_file("small", 12);
	env = tu_open("small", 0, 0);
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, 0, 0), MAPKV_CORRUPT);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	uint64_t problems = 0;
	ck_assert_rc(mapkv_check(txn, NULL, NULL, &problems), MAPKV_CORRUPT);
	ck_assert_uint_gt(problems, 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* A path is as deep as the tree record says: a branch where a leaf must
 * be, or a leaf above the leaf level, is MAPKV_CORRUPT for every access. */
START_TEST(test_path_deeper_or_shallower_than_the_recorded_depth_is_corrupt)
{
	for (unsigned depth = 2; depth <= 4; depth += 2) {
		/* Really 3 levels: root 2 -> branch 3 -> leaf 4. */
		img im = img_new(4096, 5);
		img_branch(img_page(&im, 2, MK_P_BRANCH), 3, "", 0, 0);
		img_branch(img_page(&im, 3, MK_P_BRANCH), 4, "", 0, 0);
		img_leaf(img_page(&im, 4, MK_P_LEAF), "a", 1, 1, 1);
		img_save(&im, "db", 2, depth, 1);
		mapkv_env *env = tu_open("db", 0, 0);
		mapkv_txn *txn = tu_begin(env, 0);
		mapkv_val v;
		ck_assert_rc(tu_get_rc(txn, 0, "a", 1, &v), MAPKV_CORRUPT);
		mapkv_cursor *cur;
		ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
		ck_assert_rc(mapkv_cursor_get(cur, NULL, NULL, MAPKV_FIRST),
			     MAPKV_CORRUPT);
		mapkv_cursor_close(cur);
		ck_assert_rc(mapkv_dbi_drop(txn, 0, 0), MAPKV_CORRUPT);
		mapkv_txn_abort(txn);
		mapkv_close(env);
		tu_rm_rf(tu_path("db"));
		tu_rm_rf(tu_path("db-lock"));
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("btree");
	TCase *tc = tu_tcase(s, "split", 60);
	tcase_add_loop_test(
		tc,
		test_split_after_a_run_with_a_large_tail_keeps_both_pages_valid,
		0, (int)(sizeof(page_sizes) / sizeof(page_sizes[0])));

	tc = tu_tcase(s, "damaged", 60);
	tcase_add_test(tc, test_merge_with_a_damaged_sibling_gives_corrupt);
	tcase_add_test(
		tc,
		test_key_longer_than_the_limit_gives_corrupt_to_every_reader);
	tcase_add_test(tc, test_leaf_of_overlapping_nodes_gives_corrupt_on_put);
	tcase_add_test(
		tc,
		test_scan_of_a_dag_gives_corrupt_at_the_first_repeated_leaf);
	tcase_add_test(
		tc,
		test_walk_and_drop_of_a_dag_give_corrupt_visiting_each_page_once);
	tcase_add_test(
		tc,
		test_path_deeper_or_shallower_than_the_recorded_depth_is_corrupt);

	tc = tu_tcase(s, "random", 600);
	tcase_add_loop_test(
		tc,
		test_random_ops_of_every_size_match_model_at_every_page_size, 0,
		(int)(sizeof(page_sizes) / sizeof(page_sizes[0])));
	tcase_add_test(tc, test_max_length_keys_split_and_merge_correctly);

	tc = tu_tcase(s, "values", 600);
	tcase_add_test(tc, test_overflow_values_round_trip_and_shrink_and_grow);
	tcase_add_test(tc,
		       test_values_of_every_size_up_to_two_pages_round_trip);
	tcase_add_test(tc,
		       test_empty_value_is_stored_and_read_back_with_size_0);
	tcase_add_test(tc, test_one_huge_value_round_trips);

	tc = tu_tcase(s, "keys", 60);
	tcase_add_test(tc, test_empty_and_too_long_keys_give_bad_key);
	tcase_add_test(tc, test_nooverwrite_gives_exists_and_keeps_old_value);

	tc = tu_tcase(s, "shape", 600);
	tcase_add_test(tc, test_sequential_insert_fills_leaf_pages_nearly_full);
	tcase_add_test(tc,
		       test_tree_emptied_of_all_keys_shrinks_back_to_a_root);
	tcase_add_test(tc, test_deleting_90_percent_of_keys_merges_leaf_pages);
	return tu_run_suite(s);
}
