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

	tc = tu_tcase(s, "drop", 300);
	tcase_add_test(tc, test_drop_with_del_0_empties_tree_and_keeps_it);
	tcase_add_test(tc, test_drop_with_del_1_removes_tree);
	tcase_add_test(tc, test_dropping_a_big_tree_frees_its_pages);
	tcase_add_test(tc, test_main_tree_cannot_be_deleted_but_can_be_emptied);
	return tu_run_suite(s);
}
