/*
 * check_dbi.c: named trees: creation, lookup, listing, independence,
 * dropping (emptying or deleting) with their pages freed, persistence, and
 * handle errors.
 *
 * The main tree is only checked with point lookups when named trees exist
 * (the header does not say whether a scan of the main tree may show
 * anything of the named trees).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include "env.h" /* one white-box test: a slot's generation counter */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u

static mapkv_dbi open_dbi(mapkv_txn *txn, const char *name, unsigned flags)
{
	mapkv_dbi dbi = 12345;
	int rc = mapkv_dbi_open(txn, name, flags, &dbi);
	tu_check(rc == 0, "dbi_open(\"%s\", %#x): %d (%s)", name ? name : "-",
		 flags, rc, mapkv_strerror(rc));
	return dbi;
}

/* Fill tree @dbi with @n keys "<prefix>NNNNNN" -> "<tag>-i". */
static void fill(mapkv_txn *txn, mapkv_dbi dbi, tu_model *m, const char *prefix,
		 const char *tag, int n)
{
	char k[64], v[64];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "%s%06d", prefix, i);
		snprintf(v, sizeof(v), "%s-%d", tag, i);
		tu_put_str(txn, dbi, k, v);
		if (m)
			tu_model_put(m, k, strlen(k), v, strlen(v));
	}
}

START_TEST(test_create_then_open_and_missing_tree_gives_notfound)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi a = open_dbi(txn, "alpha", MAPKV_CREATE);
	ck_assert_uint_ne(a, 0); /* 0 is the main tree */
	mapkv_dbi x = 777;
	ck_assert_rc(mapkv_dbi_open(txn, "missing", 0, &x), MAPKV_NOTFOUND);
	/* Opened again in the same transaction: the same tree. */
	tu_put_str(txn, a, "k", "v");
	mapkv_dbi a2 = open_dbi(txn, "alpha", 0);
	tu_expect_str(txn, a2, "k", "v");
	mapkv_dbi main_dbi = open_dbi(txn, NULL, 0);
	ck_assert_uint_eq(main_dbi, 0);
	tu_expect_str(txn, 0, "k", NULL);
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_dbi a3 = open_dbi(txn, "alpha", 0);
	tu_expect_str(txn, a3, "k", "v");
	ck_assert_rc(mapkv_dbi_open(txn, "missing", 0, &x), MAPKV_NOTFOUND);
	ck_assert_rc(mapkv_dbi_open(txn, "alph", 0, &x), MAPKV_NOTFOUND);
	ck_assert_rc(mapkv_dbi_open(txn, "alphaa", 0, &x), MAPKV_NOTFOUND);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_create_in_read_txn_gives_readonly)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "new", MAPKV_CREATE, &d),
		     MAPKV_READONLY);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_dbi_open(txn, "new", 0, &d), MAPKV_NOTFOUND);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_same_keys_in_different_trees_are_independent)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m1 = tu_model_new(), *m2 = tu_model_new();
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi t1 = open_dbi(txn, "t1", MAPKV_CREATE);
	mapkv_dbi t2 = open_dbi(txn, "t2", MAPKV_CREATE);
	ck_assert_uint_ne(t1, t2);
	fill(txn, t1, m1, "k", "one", 3000);
	fill(txn, t2, m2, "k", "two", 2000);
	fill(txn, 0, NULL, "k", "main", 1000);
	tu_commit(txn);
	tu_verify_db(env, t1, m1);
	tu_verify_db(env, t2, m2);

	/* Deleting in one tree leaves the others alone. */
	txn = tu_begin(env, 0);
	char k[32];
	for (int i = 0; i < 3000; i += 2) {
		snprintf(k, sizeof(k), "k%06d", i);
		ck_assert_rc(tu_del_rc(txn, t1, k, strlen(k)), 0);
		tu_model_del(m1, k, strlen(k));
	}
	ck_assert_rc(tu_del_rc(txn, t1, "k000000", 7), MAPKV_NOTFOUND);
	tu_commit(txn);
	tu_verify_db(env, t1, m1);
	tu_verify_db(env, t2, m2);
	txn = tu_begin(env, MAPKV_RDONLY);
	for (int i = 0; i < 1000; i++) {
		char v[32];
		snprintf(k, sizeof(k), "k%06d", i);
		snprintf(v, sizeof(v), "main-%d", i);
		tu_expect_str(txn, 0, k, v);
	}
	tu_expect_str(txn, 0, "k001000", NULL);
	ck_assert_uint_eq(tu_stat(txn, t1).entries, 1500);
	ck_assert_uint_eq(tu_stat(txn, t2).entries, 2000);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	tu_model_free(m1);
	tu_model_free(m2);
}
END_TEST

struct names {
	char list[16][300];
	int n;
	int stop_after; /* return 7 after this many names; 0: never */
};

static int collect(void *ctx, const char *name)
{
	struct names *c = ctx;
	if (c->n < 16)
		snprintf(c->list[c->n], sizeof(c->list[0]), "%s", name);
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

START_TEST(test_dbi_list_gives_names_in_order_and_stops_early)
{
	mapkv_env *env = tu_open("db", 0, 0);
	struct names c;
	memset(&c, 0, sizeof(c));
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_dbi_list(txn, collect, &c), 0);
	ck_assert_int_eq(c.n, 0); /* the main tree is not a named tree */
	mapkv_txn_abort(txn);

	static const char *create[] = {"b", "a",   "c",    "aa",
				       "B", "a b", "\x7f", "\xc3\xa9"};
	static const char *want[] = {"B", "a", "a b",  "aa",
				     "b", "c", "\x7f", "\xc3\xa9"};
	txn = tu_begin(env, 0);
	for (int i = 0; i < 8; i++)
		open_dbi(txn, create[i], MAPKV_CREATE);
	/* The writer lists its own creations. */
	memset(&c, 0, sizeof(c));
	ck_assert_rc(mapkv_dbi_list(txn, collect, &c), 0);
	ck_assert_int_eq(c.n, 8);
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	memset(&c, 0, sizeof(c));
	ck_assert_rc(mapkv_dbi_list(txn, collect, &c), 0);
	ck_assert_int_eq(c.n, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_msg(strcmp(c.list[i], want[i]) == 0,
			      "name %d: expected %s, listed %s", i,
			      tu_fmt(want[i], strlen(want[i])),
			      tu_fmt(c.list[i], strlen(c.list[i])));
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	ck_assert_int_eq(mapkv_dbi_list(txn, collect, &c), 7);
	ck_assert_int_eq(c.n, 3);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_tree_creation_is_undone_by_abort)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi x = open_dbi(txn, "x", MAPKV_CREATE);
	fill(txn, x, NULL, "k", "x", 500);
	mapkv_txn_abort(txn);

	txn = tu_begin(env, 0);
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "x", 0, &d), MAPKV_NOTFOUND);
	struct names c;
	memset(&c, 0, sizeof(c));
	ck_assert_rc(mapkv_dbi_list(txn, collect, &c), 0);
	ck_assert_int_eq(c.n, 0);
	/* Created again, it starts empty. */
	d = open_dbi(txn, "x", MAPKV_CREATE);
	ck_assert_uint_eq(tu_stat(txn, d).entries, 0);
	tu_commit(txn);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	d = open_dbi(txn, "x", 0);
	ck_assert_uint_eq(tu_stat(txn, d).entries, 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_drop_with_del_0_empties_tree_and_keeps_it)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *other = tu_model_new();
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi t = open_dbi(txn, "t", MAPKV_CREATE);
	mapkv_dbi o = open_dbi(txn, "other", MAPKV_CREATE);
	fill(txn, t, NULL, "k", "t", 5000);
	fill(txn, o, other, "k", "o", 100);
	tu_commit(txn);

	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, t, 0), 0);
	mapkv_stat_info st = tu_stat(txn, t);
	ck_assert_uint_eq(st.entries, 0);
	tu_expect_str(txn, t, "k000001", NULL);
	tu_commit(txn);

	tu_model *empty = tu_model_new();
	tu_verify_db(env, t, empty);
	tu_verify_db(env, o, other);
	txn = tu_begin(env, 0);
	mapkv_dbi t2 = open_dbi(txn, "t", 0); /* still exists */
	ck_assert_uint_eq(tu_stat(txn, t2).entries, 0);
	struct names c;
	memset(&c, 0, sizeof(c));
	ck_assert_rc(mapkv_dbi_list(txn, collect, &c), 0);
	ck_assert_int_eq(c.n, 2);
	tu_put_str(txn, t, "again", "1"); /* and the old handle works */
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, t2, "again", "1");
	mapkv_txn_abort(txn);
	mapkv_close(env);
	tu_model_free(empty);
	tu_model_free(other);
}
END_TEST

START_TEST(test_drop_with_del_1_removes_tree)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *keep = tu_model_new();
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi t = open_dbi(txn, "gone", MAPKV_CREATE);
	mapkv_dbi k = open_dbi(txn, "keep", MAPKV_CREATE);
	fill(txn, t, NULL, "k", "t", 3000);
	fill(txn, k, keep, "k", "keep", 300);
	tu_commit(txn);

	/* A drop that is aborted changes nothing. */
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, t, 1), 0);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(tu_stat(txn, t).entries, 3000);
	mapkv_txn_abort(txn);

	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, t, 1), 0);
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "gone", 0, &d), MAPKV_NOTFOUND);
	struct names c;
	memset(&c, 0, sizeof(c));
	ck_assert_rc(mapkv_dbi_list(txn, collect, &c), 0);
	ck_assert_int_eq(c.n, 1);
	ck_assert_str_eq(c.list[0], "keep");
	/* The dropped handle is refused. */
	mapkv_val key = {"k000001", 7}, v;
	ck_assert_rc(mapkv_get(txn, t, &key, &v), MAPKV_BAD_DBI);
	mapkv_stat_info st;
	ck_assert_rc(mapkv_stat(txn, t, &st), MAPKV_BAD_DBI);
	mapkv_cursor *cur = NULL;
	ck_assert_rc(mapkv_cursor_open(txn, t, &cur), MAPKV_BAD_DBI);
	mapkv_txn_abort(txn);
	tu_verify_db(env, k, keep);

	/* Re-created, it is a new empty tree. */
	txn = tu_begin(env, 0);
	mapkv_dbi t2 = open_dbi(txn, "gone", MAPKV_CREATE);
	ck_assert_uint_eq(tu_stat(txn, t2).entries, 0);
	tu_expect_str(txn, t2, "k000001", NULL);
	tu_commit(txn);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	t2 = open_dbi(txn, "gone", 0);
	ck_assert_uint_eq(tu_stat(txn, t2).entries, 0);
	k = open_dbi(txn, "keep", 0);
	tu_verify_txn(txn, k, keep);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	tu_model_free(keep);
}
END_TEST

START_TEST(test_dropping_a_big_tree_frees_its_pages)
{
	const int n = (int)tu_scale(20000, 200000);
	mapkv_env *env = tu_open("db", 0, 0);
	unsigned char v[100];
	char k[32];
	static unsigned char big[20000];
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi a = open_dbi(txn, "a", MAPKV_CREATE);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "key%012d", i);
		tu_fill_bytes(v, sizeof(v), (uint64_t)i);
		tu_put(txn, a, k, strlen(k), v, sizeof(v));
		if (i % 1000 == 0) /* some overflow values too */
			tu_put(txn, a, k, 12, big, sizeof(big));
	}
	tu_commit(txn);
	mapkv_envinfo i1 = tu_env_info(env);

	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, a, 1), 0);
	tu_commit(txn);
	tu_check(tu_env_info(env).pages_free > i1.pages_free,
		 "pages_free %llu after dropping a tree of %d keys, %llu "
		 "before",
		 (unsigned long long)tu_env_info(env).pages_free, n,
		 (unsigned long long)i1.pages_free);
	for (int j = 0; j < 2; j++) { /* let the freed pages age */
		txn = tu_begin(env, 0);
		tu_put_str(txn, 0, "tick", j ? "1" : "0");
		tu_commit(txn);
	}
	txn = tu_begin(env, 0);
	mapkv_dbi b = open_dbi(txn, "b", MAPKV_CREATE);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "key%012d", i);
		tu_fill_bytes(v, sizeof(v), (uint64_t)i + 1);
		tu_put(txn, b, k, strlen(k), v, sizeof(v));
		if (i % 1000 == 0)
			tu_put(txn, b, k, 12, big, sizeof(big));
	}
	tu_commit(txn);
	mapkv_envinfo i2 = tu_env_info(env);
	tu_check(i2.pages_used <= i1.pages_used + 16 + i1.pages_used / 50,
		 "re-filling the same amount in another tree after dropping "
		 "the first raised pages used from %llu to %llu",
		 (unsigned long long)i1.pages_used,
		 (unsigned long long)i2.pages_used);
	tu_check(i2.file_size <= i1.file_size + i1.file_size / 4,
		 "file grew from %llu to %llu bytes",
		 (unsigned long long)i1.file_size,
		 (unsigned long long)i2.file_size);
	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(tu_stat(txn, b).entries,
			  (uint64_t)n + n / 1000 + (n % 1000 != 0));
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_named_trees_persist_across_reopen)
{
	tu_model *m[3];
	const char *names[3] = {"first", "second", "third"};
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	for (int i = 0; i < 3; i++) {
		m[i] = tu_model_new();
		mapkv_dbi d = open_dbi(txn, names[i], MAPKV_CREATE);
		fill(txn, d, m[i], names[i], names[i], 1000 * (i + 1));
	}
	fill(txn, 0, NULL, "main", "main", 10);
	tu_commit(txn);
	mapkv_close(env);

	for (int round = 0; round < 2; round++) {
		env = tu_open("db", round ? MAPKV_RDONLY : 0, 0);
		txn = tu_begin(env, MAPKV_RDONLY);
		mapkv_dbi d[3];
		for (int i = 0; i < 3; i++)
			d[i] = open_dbi(txn, names[i], 0);
		tu_expect_str(txn, 0, "main000009", "main-9");
		mapkv_txn_abort(txn);
		for (int i = 0; i < 3; i++)
			tu_verify_db(env, d[i], m[i]);
		mapkv_close(env);
	}
	for (int i = 0; i < 3; i++)
		tu_model_free(m[i]);
}
END_TEST

START_TEST(test_dbi_handle_is_usable_in_later_txns)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new();
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi d = open_dbi(txn, "h", MAPKV_CREATE);
	fill(txn, d, m, "a", "1", 100);
	tu_commit(txn);
	/* No dbi_open in these transactions. */
	for (int i = 0; i < 5; i++) {
		txn = tu_begin(env, 0);
		char p[8];
		snprintf(p, sizeof(p), "b%d", i);
		fill(txn, d, m, p, "2", 100);
		tu_commit(txn);
		tu_verify_db(env, d, m);
	}
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_unknown_dbi_gives_bad_dbi)
{
	mapkv_env *env = tu_open("db", 0, 0);
	const mapkv_dbi bad = 9999;
	mapkv_val k = {"k", 1}, v = {"v", 1}, out;
	mapkv_stat_info st;
	mapkv_cursor *cur = NULL;

	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_get(txn, bad, &k, &out), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_stat(txn, bad, &st), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_cursor_open(txn, bad, &cur), MAPKV_BAD_DBI);
	mapkv_txn_abort(txn);

	/* In a write transaction each failing change gets its own
	 * transaction (an error may fail the transaction). */
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_get(txn, bad, &k, &out), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_put(txn, bad, &k, &v, 0), MAPKV_BAD_DBI);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_del(txn, bad, &k), MAPKV_BAD_DBI);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, bad, 0), MAPKV_BAD_DBI);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, bad, 1), MAPKV_BAD_DBI);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_cursor_open(txn, bad, &cur), MAPKV_BAD_DBI);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_main_tree_cannot_be_deleted_but_can_be_emptied)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new(), *named = tu_model_new();
	mapkv_txn *txn = tu_begin(env, 0);
	fill(txn, 0, m, "k", "main", 2000);
	tu_commit(txn);

	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, 0, 1), MAPKV_INVALID);
	tu_verify_txn(txn, 0, m); /* nothing happened */
	tu_commit(txn);
	tu_verify_db(env, 0, m);

	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, 0, 0), 0);
	ck_assert_uint_eq(tu_stat(txn, 0).entries, 0);
	tu_commit(txn);
	tu_model_clear(m);
	tu_verify_db(env, 0, m);

	/* Emptying the main tree leaves named trees alone. */
	txn = tu_begin(env, 0);
	mapkv_dbi d = open_dbi(txn, "named", MAPKV_CREATE);
	fill(txn, d, named, "n", "named", 500);
	fill(txn, 0, NULL, "k", "main", 100);
	tu_commit(txn);
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_dbi_drop(txn, 0, 0), 0);
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "k000001", NULL);
	d = open_dbi(txn, "named", 0);
	tu_verify_txn(txn, d, named);
	mapkv_txn_abort(txn);
	/* And it works afterwards. */
	txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "after", "1");
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "after", "1");
	mapkv_txn_abort(txn);
	mapkv_close(env);
	tu_model_free(m);
	tu_model_free(named);
}
END_TEST

START_TEST(test_more_trees_than_max_dbs_gives_dbs_full)
{
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.max_dbs = 4;
	mapkv_env *env = tu_open_opts("db", &o);
	mapkv_txn *txn = tu_begin(env, 0);
	char name[16];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		open_dbi(txn, name, MAPKV_CREATE);
	}
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "t4", MAPKV_CREATE, &d),
		     MAPKV_DBS_FULL);
	/* Opening one of the four again is fine. */
	open_dbi(txn, "t2", 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

static int open_new_in_reader(mapkv_txn *txn, void *ctx, char *err,
			      size_t errlen)
{
	mapkv_dbi d;
	int rc = mapkv_dbi_open(txn, (const char *)ctx, 0, &d);
	if (rc != MAPKV_NOTFOUND) {
		snprintf(err, errlen,
			 "a reader that began before tree \"%s\" was created "
			 "opened it: %d (%s)",
			 (const char *)ctx, rc, mapkv_strerror(rc));
		return -1;
	}
	return 0;
}

START_TEST(test_reader_does_not_see_trees_created_after_it_began)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_reader *r = tu_reader_start(env);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi d = open_dbi(txn, "later", MAPKV_CREATE);
	tu_put_str(txn, d, "k", "v");
	tu_commit(txn);
	tu_reader_call(r, open_new_in_reader, "later");
	tu_reader_stop(r);
	txn = tu_begin(env, MAPKV_RDONLY);
	d = open_dbi(txn, "later", 0);
	tu_expect_str(txn, d, "k", "v");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* Issue 11, bug 4: failed lookups used up the handle table. */
START_TEST(test_lookups_of_missing_trees_take_no_handle_slot)
{
	mapkv_env *env = tu_open("db", 0, 0); /* max_dbs: 128 */
	char name[32];
	mapkv_dbi d;
	for (int round = 0; round < 2; round++) {
		mapkv_txn *txn = tu_begin(env, round ? 0 : MAPKV_RDONLY);
		for (int i = 0; i < 200; i++) {
			snprintf(name, sizeof(name), "missing%d", i);
			ck_assert_rc(mapkv_dbi_open(txn, name, 0, &d),
				     MAPKV_NOTFOUND);
		}
		mapkv_txn_abort(txn);
	}
	/* Every slot is still there: 128 trees can be created. */
	mapkv_txn *txn = tu_begin(env, 0);
	for (int i = 0; i < 128; i++) {
		snprintf(name, sizeof(name), "tree%d", i);
		d = open_dbi(txn, name, MAPKV_CREATE);
		tu_put_str(txn, d, "k", name);
	}
	ck_assert_rc(mapkv_dbi_open(txn, "one-too-many", MAPKV_CREATE, &d),
		     MAPKV_DBS_FULL);
	tu_commit(txn);
	/* Full now, a lookup of a missing name is still NOTFOUND. */
	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_dbi_open(txn, "missing0", 0, &d), MAPKV_NOTFOUND);
	d = open_dbi(txn, "tree77", 0);
	tu_expect_str(txn, d, "k", "tree77");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

static mapkv_env *open_max_dbs(unsigned max_dbs, uint64_t max_size)
{
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.max_dbs = max_dbs;
	o.max_size = max_size;
	return tu_open_opts("db", &o);
}

/* Every use of @d in @txn is refused with MAPKV_BAD_DBI (the changes each
 * in a transaction of their own: an error may fail it). */
static void expect_bad_dbi(mapkv_env *env, mapkv_dbi d)
{
	mapkv_val k = {"k", 1}, v = {"v", 1}, out;
	mapkv_stat_info st;
	mapkv_cursor *cur;
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_get(txn, d, &k, &out), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_stat(txn, d, &st), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_cursor_open(txn, d, &cur), MAPKV_BAD_DBI);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, 0);
	ck_assert_rc(mapkv_put(txn, d, &k, &v, 0), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_del(txn, d, &k), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_dbi_drop(txn, d, 0), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_dbi_drop(txn, d, 1), MAPKV_BAD_DBI);
	/* None of that failed the transaction. */
	tu_put_str(txn, 0, "still", "works");
	mapkv_txn_abort(txn);
}

/* Reads through @d in @txn are refused. */
static void expect_bad_dbi_in(mapkv_txn *txn, mapkv_dbi d)
{
	mapkv_val k = {"k", 1}, out;
	mapkv_stat_info st;
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_get(txn, d, &k, &out), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_stat(txn, d, &st), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_cursor_open(txn, d, &cur), MAPKV_BAD_DBI);
}

START_TEST(test_aborted_creation_gives_back_its_slot_and_closes_its_handle)
{
	mapkv_env *env = open_max_dbs(2, 0);
	mapkv_dbi old = 0;
	for (int i = 0; i < 300; i++) {
		mapkv_txn *txn = tu_begin(env, 0);
		char name[16];
		snprintf(name, sizeof(name), "x%d", i);
		mapkv_dbi d = open_dbi(txn, name, MAPKV_CREATE);
		tu_put_str(txn, d, "k", "v");
		/* Opened again in the transaction: the same handle. */
		ck_assert_uint_eq(open_dbi(txn, name, 0), d);
		ck_assert_uint_ne(d, old);
		if (i % 2) { /* closed and opened again: still undone */
			ck_assert_rc(mapkv_dbi_close(env, d), 0);
			expect_bad_dbi_in(txn, d);
			mapkv_dbi d2 = open_dbi(txn, name, 0);
			ck_assert_uint_ne(d2, d);
			tu_expect_str(txn, d2, "k", "v");
			d = d2;
		}
		mapkv_txn_abort(txn);
		expect_bad_dbi(env, d);
		old = d;
	}
	/* Both slots are free. */
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi a = open_dbi(txn, "a", MAPKV_CREATE);
	mapkv_dbi b = open_dbi(txn, "b", MAPKV_CREATE);
	mapkv_dbi c;
	ck_assert_rc(mapkv_dbi_open(txn, "c", MAPKV_CREATE, &c),
		     MAPKV_DBS_FULL);
	tu_put_str(txn, a, "ka", "va");
	tu_put_str(txn, b, "kb", "vb");
	tu_commit(txn);
	/* A committed creation keeps its handle. */
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, a, "ka", "va");
	tu_expect_str(txn, b, "kb", "vb");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_creation_in_a_failed_commit_gives_back_its_slot)
{
	/* A transaction that fails (here: the map is full) cannot commit;
	 * its creations are undone like an abort's. */
	mapkv_env *env = open_max_dbs(1, 1u << 20);
	static unsigned char big[256 * 1024];
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi d = open_dbi(txn, "full", MAPKV_CREATE);
	int rc = 0;
	char k[16];
	for (int i = 0; i < 8 && rc == 0; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		rc = tu_put_rc(txn, d, k, strlen(k), big, sizeof(big), 0);
	}
	ck_assert_rc(rc, MAPKV_FULL);
	ck_assert_rc(mapkv_txn_commit(txn), MAPKV_BAD_TXN);
	expect_bad_dbi(env, d);
	txn = tu_begin(env, 0);
	mapkv_dbi x;
	ck_assert_rc(mapkv_dbi_open(txn, "full", 0, &x), MAPKV_NOTFOUND);
	mapkv_dbi e = open_dbi(txn, "other", MAPKV_CREATE); /* the slot */
	ck_assert_uint_ne(e, d);
	tu_commit(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_dbi_close_frees_the_slot_and_the_handle_stays_invalid)
{
	mapkv_env *env = open_max_dbs(2, 0);
	tu_model *ma = tu_model_new();
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi a = open_dbi(txn, "a", MAPKV_CREATE);
	mapkv_dbi b = open_dbi(txn, "b", MAPKV_CREATE);
	fill(txn, a, ma, "k", "a", 300);
	fill(txn, b, NULL, "k", "b", 10);
	tu_commit(txn);

	ck_assert_rc(mapkv_dbi_close(NULL, a), MAPKV_INVALID);
	ck_assert_rc(mapkv_dbi_close(env, 0), MAPKV_INVALID);
	ck_assert_rc(mapkv_dbi_close(env, 9999), MAPKV_BAD_DBI);
	txn = tu_begin(env, 0);
	mapkv_dbi c;
	ck_assert_rc(mapkv_dbi_open(txn, "c", MAPKV_CREATE, &c),
		     MAPKV_DBS_FULL);
	mapkv_txn_abort(txn);

	ck_assert_rc(mapkv_dbi_close(env, a), 0);
	ck_assert_rc(mapkv_dbi_close(env, a), MAPKV_BAD_DBI);
	expect_bad_dbi(env, a);
	/* Its slot makes room for another tree, which the old handle does
	 * not reach. */
	txn = tu_begin(env, 0);
	c = open_dbi(txn, "c", MAPKV_CREATE);
	ck_assert_uint_ne(c, a);
	tu_put_str(txn, c, "k000001", "from c");
	tu_commit(txn);
	expect_bad_dbi(env, a);
	/* The closed tree is untouched; opened again, a new handle. */
	ck_assert_rc(mapkv_dbi_close(env, c), 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_dbi a2 = open_dbi(txn, "a", 0);
	ck_assert_uint_ne(a2, a);
	ck_assert_uint_ne(a2, c);
	tu_verify_txn(txn, a2, ma);
	tu_expect_str(txn, b, "k000001", "b-1"); /* b was not involved */
	mapkv_txn_abort(txn);
	expect_bad_dbi(env, a);
	expect_bad_dbi(env, c);
	tu_model_free(ma);
	mapkv_close(env);
}
END_TEST

START_TEST(test_closed_handles_never_reach_a_later_tree_in_their_slot)
{
	/* One slot, opened and closed over and over: every handle it gave
	 * out differs and stays dead. */
	enum { N = 500 };
	static mapkv_dbi h[N];
	mapkv_env *env = open_max_dbs(1, 0);
	char name[16];
	for (int i = 0; i < N; i++) {
		mapkv_txn *txn = tu_begin(env, 0);
		snprintf(name, sizeof(name), "t%d", i % 7);
		h[i] = open_dbi(txn, name, MAPKV_CREATE);
		tu_put_str(txn, h[i], "who", name);
		tu_commit(txn);
		ck_assert_rc(mapkv_dbi_close(env, h[i]), 0);
	}
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi live = open_dbi(txn, "t3", 0);
	mapkv_val k = {"who", 3}, v;
	for (int i = 0; i < N; i++) {
		ck_assert_uint_ne(h[i], live);
		for (int j = 0; j < i; j++)
			ck_assert_uint_ne(h[i], h[j]);
		ck_assert_rc(mapkv_get(txn, h[i], &k, &v), MAPKV_BAD_DBI);
	}
	tu_expect_str(txn, live, "who", "t3");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* A handle closed while a write transaction uses it: that transaction's
 * changes through it are kept, later uses are refused, and opening the
 * name again in the transaction sees its changes. */
START_TEST(test_dbi_close_inside_a_write_txn_keeps_its_changes)
{
	mapkv_env *env = open_max_dbs(1, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi a = open_dbi(txn, "a", MAPKV_CREATE);
	tu_put_str(txn, a, "k1", "v1");
	tu_commit(txn);

	txn = tu_begin(env, 0);
	tu_put_str(txn, a, "k2", "v2");
	mapkv_cursor *cur;
	mapkv_val k, v;
	ck_assert_rc(mapkv_cursor_open(txn, a, &cur), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
	ck_assert_rc(mapkv_dbi_close(env, a), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_GET_CURRENT),
		     MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_cursor_del(cur), MAPKV_BAD_DBI);
	mapkv_cursor_close(cur);
	ck_assert_rc(tu_put_rc(txn, a, "k3", 2, "v3", 2, 0), MAPKV_BAD_DBI);
	/* The slot is still the name's (this transaction holds it): no
	 * other tree can take it, and the name gets it back. */
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "b", MAPKV_CREATE, &d),
		     MAPKV_DBS_FULL);
	mapkv_dbi a2 = open_dbi(txn, "a", 0);
	ck_assert_uint_ne(a2, a);
	tu_expect_str(txn, a2, "k2", "v2");
	tu_put_str(txn, a2, "k3", "v3");
	ck_assert_rc(mapkv_dbi_close(env, a2), 0);
	tu_commit(txn);

	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_dbi a3 = open_dbi(txn, "a", 0);
	tu_expect_str(txn, a3, "k1", "v1");
	tu_expect_str(txn, a3, "k2", "v2");
	tu_expect_str(txn, a3, "k3", "v3");
	mapkv_txn_abort(txn);
	expect_bad_dbi(env, a);
	expect_bad_dbi(env, a2);
	mapkv_close(env);
}
END_TEST

static int reader_get_a(mapkv_txn *txn, void *ctx, char *err, size_t errlen)
{
	mapkv_dbi *d = ctx;
	mapkv_val k = {"k", 1}, v;
	int rc = mapkv_get(txn, *d, &k, &v);
	int want = d[1] ? MAPKV_BAD_DBI : 0;
	if (rc != want ||
	    (rc == 0 && (v.size != 3 || memcmp(v.data, "old", 3)))) {
		snprintf(err, errlen, "reader's get through %u: %d (%s)",
			 (unsigned)*d, rc, mapkv_strerror(rc));
		return -1;
	}
	return 0;
}

static int reader_reopen_a(mapkv_txn *txn, void *ctx, char *err, size_t errlen)
{
	mapkv_dbi *d = ctx;
	int rc = mapkv_dbi_open(txn, "a", 0, d);
	if (rc) {
		snprintf(err, errlen, "reader's dbi_open: %d (%s)", rc,
			 mapkv_strerror(rc));
		return -1;
	}
	d[1] = 0;
	return reader_get_a(txn, ctx, err, errlen);
}

/* A reader that used a handle keeps its slot bound to the name while it
 * runs, though the handle is closed: the slot is not reused for another
 * tree until the reader ends, and the reader opening the name again sees
 * its own snapshot. */
START_TEST(test_slot_of_a_closed_handle_waits_for_its_readers)
{
	mapkv_env *env = open_max_dbs(1, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi d[2] = {open_dbi(txn, "a", MAPKV_CREATE), 0};
	tu_put_str(txn, d[0], "k", "old");
	tu_commit(txn);

	tu_reader *r = tu_reader_start(env);
	tu_reader_call(r, reader_get_a, d);
	txn = tu_begin(env, 0);
	tu_put_str(txn, d[0], "k", "new");
	tu_commit(txn);
	ck_assert_rc(mapkv_dbi_close(env, d[0]), 0);
	d[1] = 1; /* closed */
	tu_reader_call(r, reader_get_a, d);
	txn = tu_begin(env, 0);
	mapkv_dbi b;
	ck_assert_rc(mapkv_dbi_open(txn, "b", MAPKV_CREATE, &b),
		     MAPKV_DBS_FULL);
	mapkv_txn_abort(txn);
	tu_reader_call(r, reader_reopen_a, d); /* old value: its snapshot */
	ck_assert_rc(mapkv_dbi_close(env, d[0]), 0);
	tu_reader_stop(r);
	/* Nothing holds the slot now. */
	txn = tu_begin(env, 0);
	b = open_dbi(txn, "b", MAPKV_CREATE);
	tu_put_str(txn, b, "k", "b");
	tu_commit(txn);
	expect_bad_dbi(env, d[0]);
	mapkv_close(env);
}
END_TEST

/* A read transaction's cursor stops with MAPKV_BAD_DBI at the close of
 * its handle, in the middle of a leaf too (the scan's fast step). */
START_TEST(test_dbi_close_stops_a_read_cursor_mid_scan)
{
	mapkv_env *env = open_max_dbs(2, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi a = open_dbi(txn, "a", MAPKV_CREATE);
	fill(txn, a, NULL, "k", "a", 10); /* one leaf */
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_cursor *cur;
	mapkv_val k, v;
	ck_assert_rc(mapkv_cursor_open(txn, a, &cur), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), 0);
	ck_assert_rc(mapkv_dbi_close(env, a), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT), MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_GET_CURRENT),
		     MAPKV_BAD_DBI);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_LAST), MAPKV_BAD_DBI);
	mapkv_cursor_close(cur);
	/* Opened again, the name reaches the same data. */
	mapkv_dbi a2 = open_dbi(txn, "a", 0);
	tu_expect_str(txn, a2, "k000001", "a-1");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* A slot whose generations are used up is retired, not reused: its last
 * handle would otherwise be given out again. Reaching the last generation
 * takes 2^31 closes here (max_dbs 1), so the test sets the counter. */
START_TEST(test_a_slot_whose_generations_run_out_is_retired)
{
	mapkv_env *env = open_max_dbs(1, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi a = open_dbi(txn, "a", MAPKV_CREATE);
	tu_put_str(txn, a, "k", "v");
	tu_commit(txn);
	ck_assert_rc(mapkv_dbi_close(env, a), 0);
	ck_assert_uint_eq(env->max_dbs, 2); /* slot 0 is the main tree's */
	env->dbis[1].gen = 0x7fffffffu;     /* the last of 31 bits */

	txn = tu_begin(env, 0);
	mapkv_dbi last = open_dbi(txn, "a", 0);
	tu_expect_str(txn, last, "k", "v");
	mapkv_txn_abort(txn);
	ck_assert_rc(mapkv_dbi_close(env, last), 0);
	txn = tu_begin(env, 0);
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "a", 0, &d), MAPKV_DBS_FULL);
	ck_assert_rc(mapkv_dbi_open(txn, "b", MAPKV_CREATE, &d),
		     MAPKV_DBS_FULL);
	mapkv_txn_abort(txn);
	expect_bad_dbi(env, a);
	expect_bad_dbi(env, last);
	mapkv_close(env);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dbi");
	TCase *tc = tu_tcase(s, "named", 300);
	tcase_add_test(tc,
		       test_create_then_open_and_missing_tree_gives_notfound);
	tcase_add_test(tc, test_create_in_read_txn_gives_readonly);
	tcase_add_test(tc, test_same_keys_in_different_trees_are_independent);
	tcase_add_test(tc, test_dbi_list_gives_names_in_order_and_stops_early);
	tcase_add_test(tc, test_tree_creation_is_undone_by_abort);
	tcase_add_test(tc, test_named_trees_persist_across_reopen);
	tcase_add_test(tc, test_dbi_handle_is_usable_in_later_txns);
	tcase_add_test(tc, test_unknown_dbi_gives_bad_dbi);
	tcase_add_test(tc, test_more_trees_than_max_dbs_gives_dbs_full);
	tcase_add_test(tc,
		       test_reader_does_not_see_trees_created_after_it_began);

	tc = tu_tcase(s, "handles", 300);
	tcase_add_test(tc, test_lookups_of_missing_trees_take_no_handle_slot);
	tcase_add_test(
		tc,
		test_aborted_creation_gives_back_its_slot_and_closes_its_handle);
	tcase_add_test(tc,
		       test_creation_in_a_failed_commit_gives_back_its_slot);
	tcase_add_test(
		tc, test_dbi_close_frees_the_slot_and_the_handle_stays_invalid);
	tcase_add_test(
		tc, test_closed_handles_never_reach_a_later_tree_in_their_slot);
	tcase_add_test(tc, test_dbi_close_inside_a_write_txn_keeps_its_changes);
	tcase_add_test(tc, test_slot_of_a_closed_handle_waits_for_its_readers);
	tcase_add_test(tc, test_a_slot_whose_generations_run_out_is_retired);
	tcase_add_test(tc, test_dbi_close_stops_a_read_cursor_mid_scan);

	tc = tu_tcase(s, "drop", 300);
	tcase_add_test(tc, test_drop_with_del_0_empties_tree_and_keeps_it);
	tcase_add_test(tc, test_drop_with_del_1_removes_tree);
	tcase_add_test(tc, test_dropping_a_big_tree_frees_its_pages);
	tcase_add_test(tc, test_main_tree_cannot_be_deleted_but_can_be_emptied);
	return tu_run_suite(s);
}
