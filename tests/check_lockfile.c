/*
 * check_lockfile.c: the lock file: the limits on max_readers and max_size,
 * checked before any file is made.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapkv.h"
#include "testutil.h"

static void put_counter(mapkv_env *env, uint64_t n)
{
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_val kv = {"counter", 7}, vv = {&n, 8};
	ck_assert_rc(mapkv_put(txn, 0, &kv, &vv, 0), 0);
	tu_commit(txn);
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- limits (issue 11, bug 8) ---- */

START_TEST(test_max_readers_is_bounded_and_checked_before_any_file)
{
	const unsigned bad[] = {UINT_MAX, MAPKV_MAX_READERS + 1, 200000000u};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mapkv_options o = {tu_default_max_size(), 0, 0, bad[i], 0};
		mapkv_env *env;
		ck_assert_rc(mapkv_open(&env, tu_path("db"), &o),
			     MAPKV_INVALID);
		ck_assert_ptr_null(env);
		ck_assert(!exists(tu_path("db")));
		ck_assert(!exists(tu_path("db-lock")));
	}
	mapkv_options o = {tu_default_max_size(), 0, 0, MAPKV_MAX_READERS, 0};
	mapkv_env *env;
	ck_assert_rc(mapkv_open(&env, tu_path("db"), &o), 0);
	ck_assert_uint_eq(tu_file_size(tu_path("db-lock")),
			  512 + (MAPKV_MAX_READERS + 1ull) * 64);
	ck_assert_uint_eq(tu_env_info(env).max_readers, MAPKV_MAX_READERS);
	put_counter(env, 1);
	tu_reader *rd = tu_reader_start(env);
	put_counter(env, 2);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 1);
	tu_reader_stop(rd);
	mapkv_close(env);
}
END_TEST

START_TEST(test_max_size_below_two_pages_is_refused_before_any_file)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t unit = ps > 4096 ? (uint64_t)ps : 4096;
	const uint64_t bad[] = {1, 4096, 2 * unit - 1};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mapkv_options o = {bad[i], 0, 0, 0, 0};
		mapkv_env *env;
		ck_assert_rc(mapkv_open(&env, tu_path("db"), &o),
			     MAPKV_INVALID);
		ck_assert(!exists(tu_path("db")));
		ck_assert(!exists(tu_path("db-lock")));
	}
	/* Two pages is the smallest database: it opens, and a commit that
	 * needs a third page says the map is full. */
	mapkv_options o = {2 * unit, 0, 0, 0, 0};
	mapkv_env *env;
	ck_assert_rc(mapkv_open(&env, tu_path("db"), &o), 0);
	ck_assert_uint_eq(tu_file_size(tu_path("db")), 2 * unit);
	mapkv_txn *txn = tu_begin(env, 0);
	ck_assert_rc(tu_put_rc(txn, 0, "k", 1, "v", 1, 0), MAPKV_FULL);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lockfile");
	TCase *tc = tu_tcase(s, "lockfile", 120);
	tcase_add_test(tc,
		       test_max_readers_is_bounded_and_checked_before_any_file);
	tcase_add_test(
		tc, test_max_size_below_two_pages_is_refused_before_any_file);
	return tu_run_suite(s);
}
