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

	tc = tu_tcase(s, "changes", 300);
	tcase_add_test(
		tc,
		test_cursor_continues_from_its_key_after_puts_between_steps);
	tcase_add_test(
		tc,
		test_cursor_continues_from_its_key_after_dels_of_other_keys);
	tcase_add_test(tc,
		       test_cursor_used_after_its_txn_ended_returns_bad_txn);
	return tu_run_suite(s);
}
