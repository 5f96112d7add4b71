/*
 * check_cursor.c: positioned iteration: scans, seeks, the ends of a tree,
 * deletion under the cursor, changes made between cursor steps, and a
 * cursor that outlives its transaction.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "k%06u" keys: numeric order is key order. */
static size_t mk(char *buf, unsigned n)
{
	return (size_t)snprintf(buf, 16, "k%06u", n);
}

static size_t mv(char *buf, unsigned n)
{
	return (size_t)snprintf(buf, 24, "value-%u", n);
}

/* Assert a cursor result: @ek NULL means MAPKV_NOTFOUND expected. */
#define expect_at(rc, k, v, ek, ev)                                            \
	do {                                                                   \
		int rc_ = (rc);                                                \
		const char *ek_ = (ek), *ev_ = (ev);                           \
		if (!ek_) {                                                    \
			tu_check(                                              \
				rc_ == MAPKV_NOTFOUND,                         \
				"expected MAPKV_NOTFOUND, got %d (%s) key %s", \
				rc_, mapkv_strerror(rc_),                      \
				rc_ == 0 ? tu_fmt((k).data, (k).size) : "-");  \
			break;                                                 \
		}                                                              \
		tu_check(rc_ == 0, "expected key %s, got %d (%s)", ek_, rc_,   \
			 mapkv_strerror(rc_));                                 \
		tu_check((k).size == strlen(ek_) &&                            \
				 memcmp((k).data, ek_, (k).size) == 0,         \
			 "expected key %s, got %s", ek_,                       \
			 tu_fmt((k).data, (k).size));                          \
		if (ev_)                                                       \
			tu_check((v).size == strlen(ev_) &&                    \
					 memcmp((v).data, ev_, (v).size) == 0, \
				 "key %s: expected value %s, got %s", ek_,     \
				 ev_, tu_fmt((v).data, (v).size));             \
	} while (0)

/* Commit keys k(start), k(start+step), ... (count of them) with values
 * value-<n>, and return them in a model. */
static tu_model *load_seq(mapkv_env *env, unsigned start, unsigned step,
			  unsigned count)
{
	tu_model *m = tu_model_new();
	char k[16], v[24];
	mapkv_txn *txn = tu_begin(env, 0);
	for (unsigned i = 0; i < count; i++) {
		unsigned n = start + i * step;
		size_t kl = mk(k, n), vl = mv(v, n);
		tu_put(txn, 0, k, kl, v, vl);
		tu_model_put(m, k, kl, v, vl);
	}
	tu_commit(txn);
	return m;
}

START_TEST(test_forward_and_backward_scans_equal_model)
{
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xc0501));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new();
	unsigned char k[300], v[300];
	const int n = (int)tu_scale(5000, 50000);

	mapkv_txn *txn = tu_begin(env, 0);
	for (int i = 0; i < n; i++) {
		size_t kl = tu_rng_range(&r, 1, 300);
		size_t vl = tu_rng_below(&r, 300);
		tu_fill_bytes(k, kl, tu_rng_next(&r));
		tu_fill_bytes(v, vl, (uint64_t)i);
		tu_put(txn, 0, k, kl, v, vl);
		tu_model_put(m, k, kl, v, vl);
	}
	tu_verify_txn(txn, 0, m); /* the writer sees its own changes */
	tu_commit(txn);
	tu_verify_db(env, 0, m);

	/* Some deletes and replacements, scanned before and after commit. */
	txn = tu_begin(env, 0);
	for (int i = 0; i < n / 3; i++) {
		const tu_entry *e =
			tu_model_at(m, tu_rng_below(&r, tu_model_count(m)));
		memcpy(k, e->key, e->klen);
		size_t kl = e->klen;
		if (i % 2) {
			ck_assert_rc(tu_del_rc(txn, 0, k, kl), 0);
			tu_model_del(m, k, kl);
		} else {
			tu_fill_bytes(v, 17, (uint64_t)i);
			tu_put(txn, 0, k, kl, v, 17);
			tu_model_put(m, k, kl, v, 17);
		}
	}
	tu_verify_txn(txn, 0, m);
	tu_commit(txn);
	tu_verify_db(env, 0, m);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_keys_sort_in_memcmp_order_shorter_first)
{
	/* Expected order; inserted in a scrambled order. */
	static const struct {
		const char *k;
		size_t n;
	} want[] = {
		{"\x00", 1},     {"\x00\x00", 2}, {"\x01", 1},
		{"A", 1},        {"a", 1},        {"a\x00", 2},
		{"aa", 2},       {"ab", 2},       {"b", 1},
		{"\x7f", 1},     {"\x80", 1},     {"\x80\x00", 2},
		{"\xfe\xff", 2}, {"\xff", 1},     {"\xff\xff", 2},
	};
	const size_t n = sizeof(want) / sizeof(want[0]);
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	for (size_t i = 0; i < n; i++) {
		size_t j = (i * 7 + 3) % n; /* 7 is prime to 15 */
		tu_put(txn, 0, want[j].k, want[j].n, "v", 1);
	}
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	mapkv_val k, v;
	size_t i = 0;
	for (int rc = mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST); rc == 0;
	     rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), i++) {
		ck_assert_uint_lt(i, n);
		tu_check(k.size == want[i].n &&
				 memcmp(k.data, want[i].k, k.size) == 0,
			 "position %zu: expected %s, cursor gave %s", i,
			 tu_fmt(want[i].k, want[i].n), tu_fmt(k.data, k.size));
	}
	ck_assert_uint_eq(i, n);
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_seek_lands_on_first_key_greater_or_equal)
{
	const unsigned n = (unsigned)tu_scale(3000, 30000);
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 2, n); /* k000000, k000002, ... */
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	char p[32], ek[16], ev[24];
	mapkv_val k, v;

	/* Every stored key and every key between two stored keys. */
	for (unsigned i = 0; i <= 2 * n; i++) {
		k.data = p;
		k.size = mk(p, i);
		int rc = mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK);
		unsigned want = (i + 1) / 2 * 2;
		if (want >= 2 * n) {
			expect_at(rc, k, v, NULL, NULL);
		} else {
			mk(ek, want);
			mv(ev, want);
			expect_at(rc, k, v, ek, ev);
		}
	}
	/* Probes that are prefixes or extensions of stored keys. */
	static const struct {
		const char *probe;
		unsigned want;
	} cases[] = {
		{"a", 0},           {"k", 0},           {"k0", 0},
		{"k000000", 0},     {"k000000\x00", 2}, {"k000001", 2},
		{"k000002\xff", 4}, {"k00001", 10},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		k.data = cases[i].probe;
		k.size = strlen(cases[i].probe);
		if (i == 4)
			k.size = 8; /* embedded NUL */
		mk(ek, cases[i].want);
		mv(ev, cases[i].want);
		expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK), k, v, ek,
			  ev);
	}
	/* Past the last key. */
	const char *after[] = {"l", "k999999", "\xff"};
	for (size_t i = 0; i < 3; i++) {
		k.data = after[i];
		k.size = strlen(after[i]);
		expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK), k, v, NULL,
			  NULL);
	}
	/* Random byte-string probes against the model. */
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xc0502));
	unsigned char rp[12];
	for (int i = 0; i < 5000; i++) {
		size_t pl = tu_rng_range(&r, 1, sizeof(rp));
		rp[0] = 'k';
		for (size_t j = 1; j < pl; j++)
			rp[j] = (unsigned char)('0' + tu_rng_below(&r, 11));
		const tu_entry *e = tu_model_ceil(m, rp, pl, 0);
		k.data = rp;
		k.size = pl;
		int rc = mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK);
		if (!e) {
			ck_assert_rc(rc, MAPKV_NOTFOUND);
			continue;
		}
		ck_assert_rc(rc, 0);
		tu_check(tu_keycmp(k.data, k.size, e->key, e->klen) == 0,
			 "seek %s: expected %s, got %s", tu_fmt(rp, pl),
			 tu_fmt(e->key, e->klen), tu_fmt(k.data, k.size));
		/* The cursor is positioned: NEXT continues after it. */
		const tu_entry *nx = tu_model_ceil(m, e->key, e->klen, 1);
		rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT);
		if (!nx) {
			ck_assert_rc(rc, MAPKV_NOTFOUND);
		} else {
			ck_assert_rc(rc, 0);
			tu_check(tu_keycmp(k.data, k.size, nx->key, nx->klen) ==
					 0,
				 "NEXT after seek %s: expected %s, got %s",
				 tu_fmt(rp, pl), tu_fmt(nx->key, nx->klen),
				 tu_fmt(k.data, k.size));
		}
	}
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_seek_exact_finds_present_and_reports_missing)
{
	const unsigned n = 2000;
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 2, n);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	char p[16], ek[16], ev[24];
	mapkv_val k, v;
	for (unsigned i = 0; i < 2 * n + 2; i++) {
		k.data = p;
		k.size = mk(p, i);
		int rc = mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK_EXACT);
		if (i % 2 || i >= 2 * n) {
			ck_assert_rc(rc, MAPKV_NOTFOUND);
			continue;
		}
		mk(ek, i);
		mv(ev, i);
		expect_at(rc, k, v, ek, ev);
		/* Positioned there: PREV and NEXT are the neighbours. */
		if (i > 0 && i % 50 == 0) {
			mk(ek, i - 2);
			mv(ev, i - 2);
			expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), k,
				  v, ek, ev);
			mk(ek, i);
			mv(ev, i);
			expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), k,
				  v, ek, ev);
		}
	}
	/* Prefix and extension of a stored key are not exact matches. */
	k.data = "k00000";
	k.size = 6;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK_EXACT),
		     MAPKV_NOTFOUND);
	k.data = "k0000000";
	k.size = 8;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK_EXACT),
		     MAPKV_NOTFOUND);
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

static void check_empty_tree_ops(mapkv_txn *txn)
{
	mapkv_cursor *cur;
	mapkv_val k = {"x", 1}, v;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST),
		     MAPKV_NOTFOUND);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_LAST), MAPKV_NOTFOUND);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), MAPKV_NOTFOUND);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), MAPKV_NOTFOUND);
	k.data = "x";
	k.size = 1;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK), MAPKV_NOTFOUND);
	k.data = "x";
	k.size = 1;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK_EXACT),
		     MAPKV_NOTFOUND);
	mapkv_cursor_close(cur);
}

START_TEST(test_cursor_ops_on_empty_tree_give_notfound)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY); /* brand-new file */
	check_empty_tree_ops(txn);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, 0);
	check_empty_tree_ops(txn);
	/* A tree emptied inside the transaction. */
	tu_put_str(txn, 0, "a", "1");
	ck_assert_rc(tu_del_rc(txn, 0, "a", 1), 0);
	check_empty_tree_ops(txn);
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	check_empty_tree_ops(txn);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_next_at_end_gives_notfound_and_cursor_stays)
{
	const unsigned n = 1000;
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 1, n);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	char ek[16], ev[24];
	mapkv_val k, v;

	/* At the end. */
	mk(ek, n - 1);
	mv(ev, n - 1);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_LAST), k, v, ek, ev);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), MAPKV_NOTFOUND);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), MAPKV_NOTFOUND);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_GET_CURRENT), k, v, ek,
		  ev);
	mk(ek, n - 2);
	mv(ev, n - 2);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), k, v, ek, ev);

	/* At the start. */
	mk(ek, 0);
	mv(ev, 0);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), k, v, ek, ev);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), MAPKV_NOTFOUND);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), MAPKV_NOTFOUND);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_GET_CURRENT), k, v, ek,
		  ev);
	mk(ek, 1);
	mv(ev, 1);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), k, v, ek, ev);

	/* Walking off the end after a full scan, then back. */
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
	unsigned steps = 1;
	while (mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT) == 0)
		steps++;
	ck_assert_uint_eq(steps, n);
	mk(ek, n - 2);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), k, v, ek, NULL);

	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_unpositioned_next_gives_first_and_prev_gives_last)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 10, 1, 500);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_cursor *cur;
	char ek[16], ev[24];
	mapkv_val k, v;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	mk(ek, 10);
	mv(ev, 10);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), k, v, ek, ev);
	mapkv_cursor_close(cur);
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	mk(ek, 509);
	mv(ev, 509);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), k, v, ek, ev);
	/* key and value outputs may be NULL. */
	ck_assert_rc(mapkv_cursor_get(cur, NULL, NULL, MAPKV_PREV), 0);
	expect_at(mapkv_cursor_get(cur, &k, NULL, MAPKV_GET_CURRENT), k, v,
		  "k000508", NULL);
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_cursor_del_every_other_key_while_iterating_leaves_the_others)
{
	const unsigned n = (unsigned)tu_scale(5000, 50000);
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 1, n);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	char ek[16], ev[24];
	mapkv_val k, v;
	int rc = mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST);
	for (unsigned i = 0; i < n; i++) {
		mk(ek, i);
		mv(ev, i);
		expect_at(rc, k, v, ek, ev);
		if (i % 2 == 0) {
			ck_assert_rc(mapkv_cursor_del(cur), 0);
			tu_model_del(m, ek, strlen(ek));
		}
		rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT);
	}
	ck_assert_rc(rc, MAPKV_NOTFOUND);
	mapkv_cursor_close(cur);
	tu_verify_txn(txn, 0, m);
	tu_commit(txn);
	tu_verify_db(env, 0, m);
	ck_assert_uint_eq(tu_model_count(m), n / 2);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_after_cursor_del_next_returns_successor_and_prev_predecessor)
{
	const unsigned n = 3000;
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xc0503));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 1, n);
	unsigned pos[48] = {0, 1, 2, n / 2, n - 2, n - 1};
	for (int i = 6; i < 48; i++)
		pos[i] = (unsigned)tu_rng_below(&r, n);
	char p[16], ek[16], ev[24];
	mapkv_val k, v;
	for (int i = 0; i < 48; i++) {
		for (int dir = 0; dir < 2; dir++) {
			unsigned at = pos[i];
			mapkv_txn *txn = tu_begin(env, 0);
			mapkv_cursor *cur;
			ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
			k.data = p;
			k.size = mk(p, at);
			ck_assert_rc(
				mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK_EXACT),
				0);
			ck_assert_rc(mapkv_cursor_del(cur), 0);
			int rc = mapkv_cursor_get(
				cur, &k, &v, dir ? MAPKV_PREV : MAPKV_NEXT);
			if (dir == 0 && at + 1 < n) {
				mk(ek, at + 1);
				mv(ev, at + 1);
				expect_at(rc, k, v, ek, ev);
			} else if (dir == 1 && at > 0) {
				mk(ek, at - 1);
				mv(ev, at - 1);
				expect_at(rc, k, v, ek, ev);
			} else {
				expect_at(rc, k, v, NULL, NULL);
			}
			mapkv_cursor_close(cur);
			ck_assert_rc(tu_get_rc(txn, 0, p, strlen(p), &v),
				     MAPKV_NOTFOUND);
			ck_assert_uint_eq(tu_stat(txn, 0).entries, n - 1);
			mapkv_txn_abort(txn);
		}
	}
	tu_verify_db(env, 0, m); /* all those transactions were aborted */
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_cursor_del_of_every_key_forward_and_backward_empties_tree)
{
	const unsigned n = (unsigned)tu_scale(4000, 40000);
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 1, n);
	char ek[16], ev[24];
	mapkv_val k, v;
	for (int dir = 0; dir < 2; dir++) {
		mapkv_txn *txn = tu_begin(env, 0);
		mapkv_cursor *cur;
		ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
		int rc = mapkv_cursor_get(cur, &k, &v,
					  dir ? MAPKV_LAST : MAPKV_FIRST);
		for (unsigned i = 0; i < n; i++) {
			unsigned want = dir ? n - 1 - i : i;
			mk(ek, want);
			mv(ev, want);
			expect_at(rc, k, v, ek, ev);
			ck_assert_rc(mapkv_cursor_del(cur), 0);
			rc = mapkv_cursor_get(cur, &k, &v,
					      dir ? MAPKV_PREV : MAPKV_NEXT);
		}
		ck_assert_rc(rc, MAPKV_NOTFOUND);
		ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST),
			     MAPKV_NOTFOUND);
		mapkv_cursor_close(cur);
		mapkv_stat_info st = tu_stat(txn, 0);
		ck_assert_uint_eq(st.entries, 0);
		if (dir == 0) {
			mapkv_txn_abort(txn);
			tu_verify_db(env, 0, m);
		} else {
			tu_commit(txn);
			tu_model_clear(m);
			tu_verify_db(env, 0, m);
		}
	}
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

/* Write-transaction cursor interleaved with mapkv_put (and with mapkv_del
 * of other keys when @with_dels): after each batch of changes, NEXT must
 * return the successor of the cursor's key in the changed tree. */
static void interleave(int with_dels)
{
	const unsigned n = (unsigned)tu_scale(2000, 20000);
	tu_rng r;
	tu_rng_init(&r, tu_seed(with_dels ? 0xc0505 : 0xc0504));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 4, n); /* k000000, k000004, ... */
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	char cur_key[16], k2[16], v2[24];
	size_t cur_len;
	mapkv_val k, v;
	int rc = mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST);
	unsigned steps = 0;
	while (rc == 0) {
		steps++;
		tu_check(steps < 10 * n, "cursor does not reach the end");
		/* The returned memory is valid only until the next change:
		 * copy the key first. */
		ck_assert_uint_lt(k.size, sizeof(cur_key));
		memcpy(cur_key, k.data, k.size);
		cur_len = k.size;
		cur_key[cur_len] = 0;
		unsigned at = (unsigned)strtoul(cur_key + 1, NULL, 10);
		unsigned nchg = (unsigned)tu_rng_below(&r, 4);
		if (tu_rng_below(&r, 20) == 0)
			nchg = 60; /* a burst: splits the cursor's page */
		for (unsigned c = 0; c < nchg; c++) {
			/* Mostly near the cursor, either side. */
			long d = (long)tu_rng_range(&r, 0, 40) - 20;
			if (nchg > 4)
				d = (long)tu_rng_range(&r, 1, 120);
			if (d == 0)
				d = 1;
			long t = (long)at + d;
			if (t < 0)
				t = 0;
			if ((unsigned)t == at)
				continue; /* never the cursor's own key */
			size_t kl = mk(k2, (unsigned)t);
			if (with_dels && tu_rng_below(&r, 2) == 0) {
				const tu_entry *e = tu_model_get(m, k2, kl);
				rc = tu_del_rc(txn, 0, k2, kl);
				ck_assert_rc(rc, e ? 0 : MAPKV_NOTFOUND);
				tu_model_del(m, k2, kl);
			} else {
				size_t vl =
					mv(v2, (unsigned)t +
						       1000000u * (steps % 7));
				tu_put(txn, 0, k2, kl, v2, vl);
				tu_model_put(m, k2, kl, v2, vl);
			}
		}
		/* Sometimes overwrite the key under the cursor itself. */
		if (tu_rng_below(&r, 10) == 0) {
			size_t vl = mv(v2, 7777777u + steps);
			tu_put(txn, 0, cur_key, cur_len, v2, vl);
			tu_model_put(m, cur_key, cur_len, v2, vl);
			v2[vl] = 0;
			expect_at(mapkv_cursor_get(cur, &k, &v,
						   MAPKV_GET_CURRENT),
				  k, v, cur_key, v2);
		}
		const tu_entry *e = tu_model_ceil(m, cur_key, cur_len, 1);
		rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT);
		if (!e) {
			tu_check(rc == MAPKV_NOTFOUND,
				 "after %s, NEXT gave %d (%s) %s, expected "
				 "the end",
				 cur_key, rc, mapkv_strerror(rc),
				 rc == 0 ? tu_fmt(k.data, k.size) : "-");
			break;
		}
		tu_check(rc == 0 &&
				 tu_keycmp(k.data, k.size, e->key, e->klen) ==
					 0 &&
				 v.size == e->vlen &&
				 memcmp(v.data, e->val, v.size) == 0,
			 "step %u: after %s, NEXT gave %d (%s) %s -> %s, "
			 "expected %s -> %s",
			 steps, cur_key, rc, mapkv_strerror(rc),
			 rc == 0 ? tu_fmt(k.data, k.size) : "-",
			 rc == 0 ? tu_fmt(v.data, v.size) : "-",
			 tu_fmt(e->key, e->klen), tu_fmt(e->val, e->vlen));
	}
	mapkv_cursor_close(cur);
	tu_verify_txn(txn, 0, m);
	tu_commit(txn);
	tu_verify_db(env, 0, m);
	tu_model_free(m);
	mapkv_close(env);
}

START_TEST(test_cursor_continues_from_its_key_after_puts_between_steps)
{
	interleave(0);
}
END_TEST

START_TEST(test_cursor_continues_from_its_key_after_dels_of_other_keys)
{
	interleave(1);
}
END_TEST

/* The header: "close it before the transaction ends; using it afterwards
 * returns MAPKV_BAD_TXN as long as the cursor has not been closed". */
static void expect_cursor_dead(mapkv_cursor *cur)
{
	mapkv_val k = {"k000001", 7}, v;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), MAPKV_BAD_TXN);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), MAPKV_BAD_TXN);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_GET_CURRENT),
		     MAPKV_BAD_TXN);
	k.data = "k000001";
	k.size = 7;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK), MAPKV_BAD_TXN);
	ck_assert_rc(mapkv_cursor_del(cur), MAPKV_BAD_TXN);
}

START_TEST(test_cursor_used_after_its_txn_ended_returns_bad_txn)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 1, 100);
	mapkv_val k, v;

	/* 0: write txn committed, 1: write txn aborted, 2: read txn aborted,
	 * 3: read txn committed. Each time another transaction of the same
	 * kind begins before the stale cursor is used (it may reuse the
	 * memory of the old one). */
	for (int mode = 0; mode < 4; mode++) {
		unsigned fl = mode >= 2 ? MAPKV_RDONLY : 0;
		mapkv_txn *txn = tu_begin(env, fl);
		mapkv_cursor *cur;
		ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
		ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
		if (mode == 0)
			tu_put_str(txn, 0, "new", "1");
		if (mode == 0 || mode == 3)
			(void)mapkv_txn_commit(txn); /* rc: see comment */
		else
			mapkv_txn_abort(txn);
		expect_cursor_dead(cur);
		mapkv_txn *txn2 = tu_begin(env, fl);
		expect_cursor_dead(cur);
		mapkv_cursor *cur2;
		ck_assert_rc(mapkv_cursor_open(txn2, 0, &cur2), 0);
		ck_assert_rc(mapkv_cursor_get(cur2, &k, &v, MAPKV_FIRST), 0);
		expect_cursor_dead(cur);
		mapkv_cursor_close(cur); /* closing a dead cursor is fine */
		ck_assert_rc(mapkv_cursor_get(cur2, &k, &v, MAPKV_NEXT), 0);
		mapkv_cursor_close(cur2);
		mapkv_txn_abort(txn2);
	}
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_cursor_del_in_read_txn_gives_readonly_and_unpositioned_notfound)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 1, 10);
	mapkv_val k, v;
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
	ck_assert_rc(mapkv_cursor_del(cur), MAPKV_READONLY);
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);

	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	ck_assert_rc(mapkv_cursor_del(cur), MAPKV_NOTFOUND);
	/* NOTFOUND does not fail the transaction. */
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
	ck_assert_rc(mapkv_cursor_del(cur), 0);
	tu_model_del(m, "k000000", 7);
	mapkv_cursor_close(cur);
	tu_commit(txn);
	tu_verify_db(env, 0, m);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

START_TEST(test_get_current_returns_the_pair_under_the_cursor)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = load_seq(env, 0, 3, 700);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_cursor *cur;
	mapkv_val k, v, k2, v2;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	int rc = mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST);
	int i = 0;
	while (rc == 0) {
		ck_assert_rc(mapkv_cursor_get(cur, &k2, &v2, MAPKV_GET_CURRENT),
			     0);
		tu_check(k2.size == k.size &&
				 memcmp(k2.data, k.data, k.size) == 0 &&
				 v2.size == v.size &&
				 memcmp(v2.data, v.data, v.size) == 0,
			 "GET_CURRENT gave %s, the last move gave %s",
			 tu_fmt(k2.data, k2.size), tu_fmt(k.data, k.size));
		rc = mapkv_cursor_get(cur, &k, &v,
				      (i++ % 3 == 2) ? MAPKV_PREV : MAPKV_NEXT);
		if (rc == 0 && i % 3 == 0)
			rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT);
	}
	ck_assert_rc(rc, MAPKV_NOTFOUND);
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);
	tu_model_free(m);
	mapkv_close(env);
}
END_TEST

/* ---- a model of the cursor semantics (mapkv.h, mapkv_cursor_get) ----
 *
 * mc runs operations on a write transaction's tree and its cursors and on
 * an in-memory model side by side, and fails the test at the first
 * difference in a return code, a key or a value. The model of a cursor is
 * its position alone: unpositioned, or a key K (present in the model or
 * not); every answer follows from K and the model's keys. */

#define MC_CURSORS 2

enum mc_op {
	MC_FIRST,
	MC_LAST,
	MC_NEXT,
	MC_PREV,
	MC_CURRENT,
	MC_SEEK,
	MC_SEEK_EXACT,
	MC_CDEL, /* mapkv_cursor_del */
	MC_PUT,
	MC_DEL, /* mapkv_del */
	MC_DROP /* mapkv_dbi_drop(del = 0) */
};

static const char *const mc_names[] = {
	"FIRST",      "LAST",       "NEXT", "PREV", "GET_CURRENT", "SEEK",
	"SEEK_EXACT", "CURSOR_DEL", "PUT",  "DEL",  "DROP"};

typedef struct mc_cursor {
	mapkv_cursor *cur;
	int positioned;
	size_t klen;
	unsigned char key[MAPKV_MAX_KEY_SIZE];
} mc_cursor;

typedef struct mc {
	mapkv_txn *txn;
	mapkv_dbi dbi;
	tu_model *m;
	mc_cursor c[MC_CURSORS];
	unsigned ver;   /* makes each put's value new */
	int gone;       /* the tree was deleted: everything is MAPKV_BAD_DBI */
	char what[512]; /* the state the test started from, for messages */
	char log[1024]; /* the operations since */
} mc;

static void mc_init(mc *x, mapkv_txn *txn, mapkv_dbi dbi, tu_model *m)
{
	memset(x, 0, sizeof(*x));
	x->txn = txn;
	x->dbi = dbi;
	x->m = m;
	for (int i = 0; i < MC_CURSORS; i++)
		ck_assert_rc(mapkv_cursor_open(txn, dbi, &x->c[i].cur), 0);
}

static void mc_close(mc *x)
{
	for (int i = 0; i < MC_CURSORS; i++)
		mapkv_cursor_close(x->c[i].cur);
}

static void mc_log(mc *x, int ci, int op, const void *k, size_t kl)
{
	size_t n = strlen(x->log);
	if (n + 80 >= sizeof(x->log)) { /* keep the latest */
		memmove(x->log, x->log + n / 2, n - n / 2 + 1);
		n -= n / 2;
	}
	snprintf(x->log + n, sizeof(x->log) - n, " c%d.%s%s%s", ci,
		 mc_names[op], k ? ":" : "", k ? tu_fmt(k, kl) : "");
}

/* The value a put stores: its size, and bytes that depend on the key and
 * on the put. */
static void mc_val(unsigned char *buf, size_t n, const void *k, size_t kl,
		   unsigned ver)
{
	tu_fill_bytes(buf, n, tu_hash64(k, kl) ^ ver);
}

/* Run @op on cursor @ci (or the transaction), with key @k for SEEK, PUT
 * and DEL, and a value of @vlen bytes for PUT; compare with the model. */
static void mc_step(mc *x, int ci, int op, const void *k, size_t kl,
		    size_t vlen)
{
	static unsigned char vbuf[4 * 16384];
	mc_cursor *c = &x->c[ci];
	const tu_entry *e = NULL; /* the model's answer, NULL: NOTFOUND */
	int want = 0, rc;
	mapkv_val key = {k, kl}, val = {NULL, 0};
	mc_log(x, ci, op, k, kl);
	if (x->gone) {
		switch (op) {
		case MC_PUT:
			rc = tu_put_rc(x->txn, x->dbi, k, kl, "", 0, 0);
			break;
		case MC_DEL:
			rc = tu_del_rc(x->txn, x->dbi, k, kl);
			break;
		case MC_DROP:
			rc = mapkv_dbi_drop(x->txn, x->dbi, 0);
			break;
		case MC_CDEL:
			rc = mapkv_cursor_del(c->cur);
			break;
		default:
			rc = mapkv_cursor_get(c->cur, &key, &val,
					      op == MC_FIRST  ? MAPKV_FIRST
					      : op == MC_LAST ? MAPKV_LAST
					      : op == MC_NEXT ? MAPKV_NEXT
					      : op == MC_PREV ? MAPKV_PREV
					      : op == MC_SEEK ? MAPKV_SEEK
					      : op == MC_SEEK_EXACT
						      ? MAPKV_SEEK_EXACT
						      : MAPKV_GET_CURRENT);
		}
		tu_check(rc == MAPKV_BAD_DBI,
			 "%s: %s on a deleted tree returned %d (%s); "
			 "operations:%s",
			 x->what, mc_names[op], rc, mapkv_strerror(rc), x->log);
		return;
	}
	switch (op) {
	case MC_FIRST:
		e = tu_model_first(x->m);
		rc = mapkv_cursor_get(c->cur, &key, &val, MAPKV_FIRST);
		break;
	case MC_LAST:
		e = tu_model_last(x->m);
		rc = mapkv_cursor_get(c->cur, &key, &val, MAPKV_LAST);
		break;
	case MC_NEXT:
		e = c->positioned ? tu_model_ceil(x->m, c->key, c->klen, 1)
				  : tu_model_first(x->m);
		rc = mapkv_cursor_get(c->cur, &key, &val, MAPKV_NEXT);
		break;
	case MC_PREV:
		e = c->positioned ? tu_model_floor(x->m, c->key, c->klen, 1)
				  : tu_model_last(x->m);
		rc = mapkv_cursor_get(c->cur, &key, &val, MAPKV_PREV);
		break;
	case MC_CURRENT:
		e = c->positioned ? tu_model_get(x->m, c->key, c->klen) : NULL;
		rc = mapkv_cursor_get(c->cur, &key, &val, MAPKV_GET_CURRENT);
		break;
	case MC_SEEK:
		e = tu_model_ceil(x->m, k, kl, 0);
		rc = mapkv_cursor_get(c->cur, &key, &val, MAPKV_SEEK);
		break;
	case MC_SEEK_EXACT:
		e = tu_model_get(x->m, k, kl);
		rc = mapkv_cursor_get(c->cur, &key, &val, MAPKV_SEEK_EXACT);
		break;
	case MC_CDEL:
		want = c->positioned && tu_model_del(x->m, c->key, c->klen)
			       ? 0
			       : MAPKV_NOTFOUND;
		rc = mapkv_cursor_del(c->cur);
		break;
	case MC_PUT:
		ck_assert_uint_le(vlen, sizeof(vbuf));
		mc_val(vbuf, vlen, k, kl, ++x->ver);
		tu_model_put(x->m, k, kl, vbuf, vlen);
		rc = tu_put_rc(x->txn, x->dbi, k, kl, vbuf, vlen, 0);
		break;
	case MC_DEL:
		want = tu_model_del(x->m, k, kl) ? 0 : MAPKV_NOTFOUND;
		rc = tu_del_rc(x->txn, x->dbi, k, kl);
		break;
	default: /* MC_DROP */
		tu_model_clear(x->m);
		rc = mapkv_dbi_drop(x->txn, x->dbi, 0);
		break;
	}
	if (op <= MC_SEEK_EXACT)
		want = e ? 0 : MAPKV_NOTFOUND;
	tu_check(rc == want,
		 "%s: %s returned %d (%s), the model says %d (%s); "
		 "operations:%s",
		 x->what, mc_names[op], rc, mapkv_strerror(rc), want,
		 mapkv_strerror(want), x->log);
	if (op > MC_SEEK_EXACT || !e)
		return;
	tu_check(tu_keycmp(key.data, key.size, e->key, e->klen) == 0 &&
			 val.size == e->vlen &&
			 memcmp(val.data, e->val, e->vlen) == 0,
		 "%s: %s gave key %s (%zu-byte value), the model says %s "
		 "(%zu-byte value); operations:%s",
		 x->what, mc_names[op], tu_fmt(key.data, key.size), val.size,
		 tu_fmt(e->key, e->klen), e->vlen, x->log);
	/* A successful move (GET_CURRENT included) is the new position. */
	memcpy(c->key, e->key, e->klen);
	c->klen = e->klen;
	c->positioned = 1;
}

/* Check both cursors' positions exactly, from inside the transaction:
 * each reports its pair (or NOTFOUND) through GET_CURRENT. Does not move
 * them. */
static void mc_check_current(mc *x)
{
	for (int i = 0; i < MC_CURSORS; i++)
		mc_step(x, i, MC_CURRENT, NULL, 0, 0);
}

/* Every operation from every cursor state, on every set of the keys b, d,
 * f, h: a cursor unpositioned, on each present key, and in the gap of each
 * absent key of a..i (reached by mapkv_del, by its own mapkv_cursor_del or
 * by another cursor's). After the operation, two probes check where the
 * cursor stands: moves without changes (GET_CURRENT, NEXT, PREV, PREV,
 * NEXT), and GET_CURRENT after every key of a..i has been stored (which
 * names the cursor's key exactly). @vlen: 1,200-byte values spread the
 * keys over several leaves, so moves cross leaf boundaries. */
static void exhaust(size_t vlen)
{
	static const char U[] = "abcdefghi"; /* content: b, d, f, h */
	enum { NU = 9 };
	struct {
		int ci, op, k; /* k: index into U, or -1 */
	} ops[64];
	int nops = 0;
	for (int op = MC_FIRST; op <= MC_CURRENT; op++)
		ops[nops].ci = 0, ops[nops].op = op, ops[nops++].k = -1;
	ops[nops].ci = 0, ops[nops].op = MC_CDEL, ops[nops++].k = -1;
	ops[nops].ci = 0, ops[nops].op = MC_DROP, ops[nops++].k = -1;
	for (int i = 0; i < NU; i++) {
		static const int kop[] = {MC_SEEK, MC_SEEK_EXACT, MC_PUT,
					  MC_DEL, -1};
		for (int j = 0; j < 5; j++)
			ops[nops].ci = j == 4, ops[nops].op = kop[j],
			ops[nops++].k = i; /* -1: c1 deletes U[i] */
	}
	mapkv_env *env = tu_open("db", 0, 0);
	unsigned long runs = 0;
	for (int set = 0; set < 16; set++) {
		for (int pos = -1; pos < NU; pos++) {
			for (int oi = 0; oi < nops; oi++) {
				for (int probe = 0; probe < 2; probe++) {
					mapkv_txn *txn = tu_begin(env, 0);
					tu_model *m = tu_model_new();
					mc x;
					mc_init(&x, txn, 0, m);
					char keys[8] = "";
					for (int i = 0, nk = 0; i < 4; i++)
						if (set >> i & 1) {
							keys[nk++] =
								U[2 * i + 1];
							mc_step(&x, 0, MC_PUT,
								&U[2 * i + 1],
								1, vlen);
						}
					int present =
						pos >= 0 &&
						strchr(keys, U[pos]) != NULL;
					int how = (set + pos + 1) % 3;
					snprintf(x.what, sizeof(x.what),
						 "keys {%s}, %zu-byte values, "
						 "cursor %s%c%s",
						 keys, vlen,
						 pos < 0   ? "unpositioned"
						 : present ? "on "
							   : "in the gap of ",
						 pos < 0 ? ' ' : U[pos],
						 pos < 0 || present ? ""
						 : how == 0 ? " (mapkv_del)"
						 : how == 1 ? " (its own del)"
							    : " (other's del)");
					if (pos >= 0) {
						const char *k = &U[pos];
						if (!present)
							mc_step(&x, 0, MC_PUT,
								k, 1, vlen);
						mc_step(&x, 0, MC_SEEK_EXACT, k,
							1, 0);
						if (!present && how == 0)
							mc_step(&x, 0, MC_DEL,
								k, 1, 0);
						if (!present && how == 1)
							mc_step(&x, 0, MC_CDEL,
								NULL, 0, 0);
						if (!present && how == 2) {
							mc_step(&x, 1,
								MC_SEEK_EXACT,
								k, 1, 0);
							mc_step(&x, 1, MC_CDEL,
								NULL, 0, 0);
						}
					}
					strcat(x.log, " |");
					int ci = ops[oi].ci, op = ops[oi].op;
					const char *k = ops[oi].k < 0
								? NULL
								: &U[ops[oi].k];
					if (ci == 1) { /* another cursor */
						mc_step(&x, 1, MC_SEEK_EXACT, k,
							1, 0);
						mc_step(&x, 1, MC_CDEL, NULL, 0,
							0);
					} else {
						mc_step(&x, 0, op, k, k ? 1 : 0,
							vlen);
					}
					strcat(x.log, " |");
					if (probe == 0) {
						static const int seq[] = {
							MC_CURRENT, MC_NEXT,
							MC_PREV, MC_PREV,
							MC_NEXT};
						for (int i = 0; i < 5; i++)
							mc_step(&x, 0, seq[i],
								NULL, 0, 0);
					} else {
						for (int i = 0; i < NU; i++)
							if (!tu_model_get(m,
									  &U[i],
									  1))
								mc_step(&x, 0,
									MC_PUT,
									&U[i],
									1,
									vlen);
						mc_check_current(&x);
						mc_step(&x, 0, MC_PREV, NULL, 0,
							0);
						mc_step(&x, 0, MC_NEXT, NULL, 0,
							0);
					}
					mc_close(&x);
					mapkv_txn_abort(txn);
					tu_model_free(m);
					runs++;
				}
			}
		}
	}
	ck_assert_uint_eq(runs, 16ul * (NU + 1) * nops * 2);
	mapkv_close(env);
}

START_TEST(test_every_cursor_op_from_every_position_matches_the_model)
{
	exhaust(5);
}
END_TEST

START_TEST(
	test_every_cursor_op_from_every_position_matches_the_model_across_leaves)
{
	exhaust(1200);
}
END_TEST

/* Value sizes with weight on every threshold: empty, small, around the
 * largest inline node (2,038 bytes at 4 KiB pages), half a page, a page,
 * a few pages. */
static size_t pick_vlen(tu_rng *r)
{
	static const size_t edge[] = {0,    1,    2037, 2038, 2039, 2040,
				      2048, 4080, 4096, 4097, 8192, 12000};
	if (tu_rng_below(r, 3))
		return tu_rng_below(r, 64);
	if (tu_rng_below(r, 2))
		return edge[tu_rng_below(r, sizeof(edge) / sizeof(edge[0]))];
	return tu_rng_below(r, 12001);
}

/* Key number @i of a universe of 48: lengths 1 to MAPKV_MAX_KEY_SIZE,
 * many sharing prefixes. */
static size_t pick_key(unsigned char *k, unsigned i)
{
	static const size_t len[] = {1,  2,   3,    8,
				     40, 200, 1000, MAPKV_MAX_KEY_SIZE};
	size_t n = len[i % 8];
	memset(k, 'k', n);
	k[0] = (unsigned char)('a' + i / 8);
	if (n > 1)
		k[n - 1] = (unsigned char)('0' + i % 5);
	return n;
}

/* Long random sequences over two trees (the main tree and a named one),
 * two cursors on each, with every operation, commits, aborts, and the
 * named tree deleted and created again under its cursors; every result
 * and, every few steps, every cursor's position and both trees are
 * compared with the model. */
static void random_walk(uint64_t seed)
{
	tu_rng r;
	tu_rng_init(&r, tu_seed(seed));
	const long steps = (long)tu_scale(4000, 200000);
	char file[32];
	snprintf(file, sizeof(file), "db%llu", (unsigned long long)seed);
	mapkv_env *env = tu_open(file, 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi named;
	ck_assert_rc(mapkv_dbi_open(txn, "named", MAPKV_CREATE, &named), 0);
	tu_commit(txn);
	tu_model *m[2] = {tu_model_new(), tu_model_new()};
	tu_model *saved[2] = {tu_model_new(), tu_model_new()};
	int saved_gone = 0;
	mc x[2];
	unsigned char k[MAPKV_MAX_KEY_SIZE];
	txn = tu_begin(env, 0);
	for (int t = 0; t < 2; t++) {
		mc_init(&x[t], txn, t ? named : 0, m[t]);
		snprintf(x[t].what, sizeof(x[t].what), "seed %llu, tree %s",
			 (unsigned long long)r.seed, t ? "named" : "main");
	}
	for (long i = 0; i < steps; i++) {
		int t = (int)tu_rng_below(&r, 2);
		int ci = (int)tu_rng_below(&r, MC_CURSORS);
		unsigned roll = (unsigned)tu_rng_below(&r, 1000);
		size_t kl = pick_key(k, (unsigned)tu_rng_below(&r, 48));
		if (roll < 8) { /* end the transaction */
			int commit = roll < 5;
			mc_close(&x[0]);
			mc_close(&x[1]);
			if (commit) {
				tu_commit(txn);
				for (int j = 0; j < 2; j++) {
					tu_model_free(saved[j]);
					saved[j] = tu_model_clone(m[j]);
				}
				saved_gone = x[1].gone;
			} else {
				mapkv_txn_abort(txn);
				for (int j = 0; j < 2; j++) {
					tu_model_free(m[j]);
					m[j] = tu_model_clone(saved[j]);
				}
			}
			txn = tu_begin(env, 0);
			int gone = saved_gone;
			if (gone) { /* create it again */
				mapkv_dbi d;
				ck_assert_rc(mapkv_dbi_open(txn, "named",
							    MAPKV_CREATE, &d),
					     0);
				ck_assert_uint_eq(d, named);
				tu_model_clear(m[1]);
			}
			for (int j = 0; j < 2; j++) {
				char what[sizeof(x[j].what)];
				memcpy(what, x[j].what, sizeof(what));
				mc_init(&x[j], txn, j ? named : 0, m[j]);
				memcpy(x[j].what, what, sizeof(what));
			}
			continue;
		}
		if (roll < 12 && t == 1) { /* delete the named tree */
			if (!x[1].gone) {
				ck_assert_rc(mapkv_dbi_drop(txn, named, 1), 0);
				tu_model_clear(m[1]);
				x[1].gone = 1;
				mc_log(&x[1], 0, MC_DROP, "(del)", 5);
			} else { /* and create it again, under its cursors */
				mapkv_dbi d;
				ck_assert_rc(mapkv_dbi_open(txn, "named",
							    MAPKV_CREATE, &d),
					     0);
				ck_assert_uint_eq(d, named);
				x[1].gone = 0;
				mc_log(&x[1], 0, MC_PUT, "(create)", 8);
			}
			continue;
		}
		int op;
		if (roll < 15)
			op = MC_DROP;
		else if (roll < 300)
			op = MC_PUT;
		else if (roll < 400)
			op = MC_DEL;
		else if (roll < 480)
			op = MC_CDEL;
		else if (roll < 560)
			op = MC_SEEK;
		else if (roll < 620)
			op = MC_SEEK_EXACT;
		else if (roll < 660)
			op = MC_FIRST;
		else if (roll < 700)
			op = MC_LAST;
		else if (roll < 820)
			op = MC_NEXT;
		else if (roll < 940)
			op = MC_PREV;
		else
			op = MC_CURRENT;
		/* Half the deletes and puts take the key under a cursor. */
		mc_cursor *c = &x[t].c[(ci + 1) % MC_CURSORS];
		if ((op == MC_DEL || op == MC_PUT) && c->positioned &&
		    tu_rng_below(&r, 2)) {
			memcpy(k, c->key, c->klen);
			kl = c->klen;
		}
		mc_step(&x[t], ci, op, k, kl, op == MC_PUT ? pick_vlen(&r) : 0);
		if (i % 64 == 0) {
			mc_check_current(&x[0]);
			mc_check_current(&x[1]);
		}
		if (i % 997 == 0) {
			tu_verify_txn(txn, 0, m[0]);
			if (!x[1].gone)
				tu_verify_txn(txn, named, m[1]);
		}
	}
	mc_close(&x[0]);
	mc_close(&x[1]);
	tu_commit(txn);
	tu_verify_db(env, 0, m[0]);
	if (!x[1].gone)
		tu_verify_db(env, named, m[1]);
	for (int j = 0; j < 2; j++) {
		tu_model_free(m[j]);
		tu_model_free(saved[j]);
	}
	mapkv_close(env);
}

START_TEST(test_random_operation_sequences_with_cursors_match_the_model)
{
	for (uint64_t i = 0; i < 4; i++)
		random_walk(0xc0510 + i);
}
END_TEST

/* The two cases: a writer's cursor whose key is deleted through
 * mapkv_del stands in the gap it left, whatever failed operation came
 * in between. */
START_TEST(test_cursor_keeps_its_gap_after_mapkv_del_and_a_failed_get_current)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "a", "1");
	tu_put_str(txn, 0, "b", "2");
	tu_put_str(txn, 0, "c", "3");
	mapkv_cursor *cur;
	mapkv_val k, v;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), k, v, "a", "1");
	ck_assert_rc(tu_del_rc(txn, 0, "a", 1), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_GET_CURRENT),
		     MAPKV_NOTFOUND);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), k, v, "b", "2");
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);

	txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "b", "2");
	tu_put_str(txn, 0, "d", "4");
	tu_put_str(txn, 0, "f", "6");
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_LAST), k, v, "f", "6");
	ck_assert_rc(tu_del_rc(txn, 0, "f", 1), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_GET_CURRENT),
		     MAPKV_NOTFOUND);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), k, v, "d", "4");
	/* Any failed move in the gap keeps it too. */
	ck_assert_rc(tu_del_rc(txn, 0, "d", 1), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), MAPKV_NOTFOUND);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_GET_CURRENT),
		     MAPKV_NOTFOUND);
	k.data = "z";
	k.size = 1;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_SEEK), MAPKV_NOTFOUND);
	expect_at(mapkv_cursor_get(cur, &k, &v, MAPKV_PREV), k, v, "b", "2");
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* Issue 11, bug 5: a damaged leaf whose node claims a 2,000-byte key (the
 * node still inside its page) made a write transaction's cursor copy
 * 2,000 bytes into its 1,024-byte key and a read cursor return the key.
 * Both must refuse it. The leaf is written by one commit and damaged,
 * and a later commit leaves it alone, so the file still opens. */
START_TEST(test_cursor_refuses_a_key_longer_than_the_maximum_in_a_damaged_leaf)
{
	static unsigned char big[MAPKV_MAX_KEY_SIZE], v[1000];
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_fill_bytes(v, sizeof(v), 1);
	/* Nodes fill the page from its end: the big key's node, put last,
	 * lies low enough for 2,000 bytes to stay inside the page. */
	tu_put(txn, 0, "b", 1, v, sizeof(v));
	tu_put(txn, 0, "c", 1, v, sizeof(v));
	tu_fill_bytes(big, sizeof(big), 0xbad);
	big[0] = 0x01; /* the first key */
	tu_put(txn, 0, big, sizeof(big), v, 800);
	tu_commit(txn);
	txn = tu_begin(env, 0);
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "other", MAPKV_CREATE, &d), 0);
	tu_put_str(txn, d, "k", "v");
	tu_commit(txn);
	mapkv_close(env);

	size_t n;
	unsigned char *img = tu_read_file(tu_path("db"), &n);
	unsigned char *at = NULL; /* (no memmem on Windows) */
	for (size_t i = 0; !at && i + sizeof(big) <= n; i++)
		if (img[i] == big[0] && memcmp(img + i, big, sizeof(big)) == 0)
			at = img + i;
	ck_assert_ptr_nonnull(at);
	unsigned char *node = at - 8; /* flags, 0, ksize, vsize */
	ck_assert_uint_eq(node[2] | node[3] << 8, sizeof(big));
	node[2] = 2000 & 0xff;
	node[3] = 2000 >> 8;
	memset(node + 4, 0, 4);
	tu_write_file(tu_path("db"), img, n);
	free(img);

	env = tu_open("db", 0, 0);
	for (int w = 0; w < 2; w++) {
		mapkv_cursor *cur;
		mapkv_val k, val;
		txn = tu_begin(env, w ? 0 : MAPKV_RDONLY);
		ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
		int rc = mapkv_cursor_get(cur, &k, &val, MAPKV_FIRST);
		tu_check(rc == MAPKV_CORRUPT,
			 "%s cursor: FIRST gave %d (%s), key of %zu bytes",
			 w ? "write" : "read", rc, mapkv_strerror(rc),
			 rc ? (size_t)0 : k.size);
		/* The rest of the leaf is still there. */
		k.data = "b";
		k.size = 1;
		ck_assert_rc(mapkv_cursor_get(cur, &k, &val, MAPKV_SEEK_EXACT),
			     0);
		mapkv_cursor_close(cur);
		mapkv_txn_abort(txn);
	}
	mapkv_close(env);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cursor");
	TCase *tc = tu_tcase(s, "scan", 300);
	tcase_add_test(tc, test_forward_and_backward_scans_equal_model);
	tcase_add_test(tc, test_keys_sort_in_memcmp_order_shorter_first);
	tcase_add_test(tc, test_seek_lands_on_first_key_greater_or_equal);
	tcase_add_test(tc, test_seek_exact_finds_present_and_reports_missing);
	tcase_add_test(tc, test_cursor_ops_on_empty_tree_give_notfound);
	tcase_add_test(tc, test_next_at_end_gives_notfound_and_cursor_stays);
	tcase_add_test(tc,
		       test_unpositioned_next_gives_first_and_prev_gives_last);
	tcase_add_test(tc, test_get_current_returns_the_pair_under_the_cursor);

	tc = tu_tcase(s, "delete", 300);
	tcase_add_test(
		tc,
		test_cursor_del_every_other_key_while_iterating_leaves_the_others);
	tcase_add_test(
		tc,
		test_after_cursor_del_next_returns_successor_and_prev_predecessor);
	tcase_add_test(
		tc,
		test_cursor_del_of_every_key_forward_and_backward_empties_tree);
	tcase_add_test(
		tc,
		test_cursor_del_in_read_txn_gives_readonly_and_unpositioned_notfound);
	tcase_add_test(
		tc,
		test_cursor_refuses_a_key_longer_than_the_maximum_in_a_damaged_leaf);

	tc = tu_tcase(s, "model", 300);
	tcase_add_test(
		tc, test_every_cursor_op_from_every_position_matches_the_model);
	tcase_add_test(
		tc,
		test_every_cursor_op_from_every_position_matches_the_model_across_leaves);
	tcase_add_test(
		tc,
		test_random_operation_sequences_with_cursors_match_the_model);

	tc = tu_tcase(s, "changes", 300);
	tcase_add_test(
		tc,
		test_cursor_continues_from_its_key_after_puts_between_steps);
	tcase_add_test(
		tc,
		test_cursor_continues_from_its_key_after_dels_of_other_keys);
	tcase_add_test(tc,
		       test_cursor_used_after_its_txn_ended_returns_bad_txn);
	tcase_add_test(
		tc,
		test_cursor_keeps_its_gap_after_mapkv_del_and_a_failed_get_current);
	return tu_run_suite(s);
}
