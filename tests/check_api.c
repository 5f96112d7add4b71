/*
 * check_api.c: the public API's edges: NULL arguments and bad flags give
 * MAPKV_INVALID (never a crash), error strings, version, environment
 * facts, open options, value and name limits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int count_cb(void *ctx, const char *name)
{
	(void)name;
	(*(int *)ctx)++;
	return 0;
}

START_TEST(test_null_arguments_give_invalid_and_never_crash)
{
	mapkv_env *env = (mapkv_env *)1;
	ck_assert_rc(mapkv_open(NULL, tu_path("db"), NULL), MAPKV_INVALID);
	ck_assert_rc(mapkv_open(&env, NULL, NULL), MAPKV_INVALID);
	ck_assert_ptr_null(env);
	mapkv_close(NULL);
	ck_assert_rc(mapkv_sync(NULL), MAPKV_INVALID);
	mapkv_envinfo info;
	ck_assert_rc(mapkv_env_info(NULL, &info), MAPKV_INVALID);

	env = tu_open("db", 0, 0);
	ck_assert_rc(mapkv_env_info(env, NULL), MAPKV_INVALID);
	mapkv_txn *txn = NULL;
	ck_assert_rc(mapkv_txn_begin(NULL, 0, &txn), MAPKV_INVALID);
	ck_assert_rc(mapkv_txn_begin(env, 0, NULL), MAPKV_INVALID);
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, NULL), MAPKV_INVALID);
	ck_assert_rc(mapkv_txn_commit(NULL), MAPKV_INVALID);
	mapkv_txn_abort(NULL);
	ck_assert_uint_eq(mapkv_txn_id(NULL), 0);

	txn = tu_begin(env, 0);
	mapkv_dbi dbi;
	ck_assert_rc(mapkv_dbi_open(NULL, "x", MAPKV_CREATE, &dbi),
		     MAPKV_INVALID);
	ck_assert_rc(mapkv_dbi_open(txn, "x", MAPKV_CREATE, NULL),
		     MAPKV_INVALID);
	ck_assert_rc(mapkv_dbi_drop(NULL, 0, 0), MAPKV_INVALID);
	int n = 0;
	ck_assert_rc(mapkv_dbi_list(NULL, count_cb, &n), MAPKV_INVALID);
	ck_assert_rc(mapkv_dbi_list(txn, NULL, &n), MAPKV_INVALID);

	mapkv_val k = {"k", 1}, v = {"v", 1}, out;
	mapkv_val knull = {NULL, 5}, vnull = {NULL, 5};
	ck_assert_rc(mapkv_get(NULL, 0, &k, &out), MAPKV_INVALID);
	ck_assert_rc(mapkv_get(txn, 0, NULL, &out), MAPKV_INVALID);
	ck_assert_rc(mapkv_get(txn, 0, &k, NULL), MAPKV_INVALID);
	ck_assert_rc(mapkv_get(txn, 0, &knull, &out), MAPKV_INVALID);
	ck_assert_rc(mapkv_put(NULL, 0, &k, &v, 0), MAPKV_INVALID);
	ck_assert_rc(mapkv_put(txn, 0, NULL, &v, 0), MAPKV_INVALID);
	ck_assert_rc(mapkv_put(txn, 0, &k, NULL, 0), MAPKV_INVALID);
	ck_assert_rc(mapkv_put(txn, 0, &knull, &v, 0), MAPKV_INVALID);
	ck_assert_rc(mapkv_put(txn, 0, &k, &vnull, 0), MAPKV_INVALID);
	ck_assert_rc(mapkv_del(NULL, 0, &k), MAPKV_INVALID);
	ck_assert_rc(mapkv_del(txn, 0, NULL), MAPKV_INVALID);
	ck_assert_rc(mapkv_del(txn, 0, &knull), MAPKV_INVALID);

	mapkv_cursor *cur = NULL;
	ck_assert_rc(mapkv_cursor_open(NULL, 0, &cur), MAPKV_INVALID);
	ck_assert_rc(mapkv_cursor_open(txn, 0, NULL), MAPKV_INVALID);
	ck_assert_rc(mapkv_cursor_get(NULL, &k, &out, MAPKV_FIRST),
		     MAPKV_INVALID);
	ck_assert_rc(mapkv_cursor_del(NULL), MAPKV_INVALID);
	mapkv_cursor_close(NULL);
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	/* SEEK needs a key. */
	ck_assert_rc(mapkv_cursor_get(cur, NULL, &out, MAPKV_SEEK),
		     MAPKV_INVALID);
	ck_assert_rc(mapkv_cursor_get(cur, NULL, &out, MAPKV_SEEK_EXACT),
		     MAPKV_INVALID);
	mapkv_cursor_close(cur);
	mapkv_stat_info st;
	ck_assert_rc(mapkv_stat(NULL, 0, &st), MAPKV_INVALID);
	ck_assert_rc(mapkv_stat(txn, 0, NULL), MAPKV_INVALID);

	/* MAPKV_INVALID does not fail the transaction. */
	tu_put_str(txn, 0, "still", "works");
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "still", "works");
	ck_assert_uint_eq(tu_stat(txn, 0).entries, 1);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_unknown_flags_and_cursor_ops_give_invalid)
{
	mapkv_env *env = (mapkv_env *)1;
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.flags = 0x10000u;
	ck_assert_rc(mapkv_open(&env, tu_path("db"), &o), MAPKV_INVALID);
	ck_assert_ptr_null(env);

	env = tu_open("db", 0, 0);
	mapkv_txn *txn = NULL;
	ck_assert_rc(mapkv_txn_begin(env, 0x10000u, &txn), MAPKV_INVALID);
	txn = tu_begin(env, 0);
	mapkv_val k = {"k", 1}, v = {"v", 1}, out;
	ck_assert_rc(mapkv_put(txn, 0, &k, &v, 0x10000u), MAPKV_INVALID);
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "t", 0x10000u, &d), MAPKV_INVALID);
	tu_put_str(txn, 0, "k", "v");
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &out, 99), MAPKV_INVALID);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &out, -1), MAPKV_INVALID);
	ck_assert_rc(mapkv_cursor_get(cur, &k, &out, MAPKV_FIRST), 0);
	mapkv_cursor_close(cur);
	tu_commit(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_strerror_gives_distinct_text_for_every_code)
{
	const char *seen[24];
	int n = 0;
	for (int rc = MAPKV_NOTFOUND; rc >= MAPKV_LOCK_LOST; rc--) {
		const char *s = mapkv_strerror(rc);
		ck_assert_ptr_nonnull(s);
		ck_assert_msg(s[0] != 0, "empty text for %d", rc);
		for (int i = 0; i < n; i++)
			ck_assert_msg(strcmp(seen[i], s) != 0,
				      "codes %d and %d share the text \"%s\"",
				      MAPKV_NOTFOUND - i, rc, s);
		seen[n++] = s;
	}
	ck_assert_int_eq(n, 23);
	const char *ok = mapkv_strerror(0);
	ck_assert_ptr_nonnull(ok);
	ck_assert_msg(strcasestr(ok, "success") != NULL,
		      "mapkv_strerror(0) is \"%s\"", ok);
	static const int unknown[] = {-1,     -29999, -30000,
				      -30100, -99999, (int)0x80000000};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *s = mapkv_strerror(unknown[i]);
		ck_assert_ptr_nonnull(s);
		ck_assert_msg(s[0] != 0, "empty text for %d", unknown[i]);
	}
	/* Positive values are errno values: the operating system's text. */
	ck_assert_str_eq(mapkv_strerror(ENOENT), strerror(ENOENT));
	ck_assert_str_eq(mapkv_strerror(ENOSPC), strerror(ENOSPC));
	ck_assert_ptr_nonnull(mapkv_strerror(100000));
}
END_TEST

START_TEST(test_put_in_read_txn_gives_readonly)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(tu_put_rc(txn, 0, "k", 1, "v", 1, 0), MAPKV_READONLY);
	ck_assert_rc(tu_put_rc(txn, 0, "k", 1, "v", 1, MAPKV_NOOVERWRITE),
		     MAPKV_READONLY);
	ck_assert_rc(tu_del_rc(txn, 0, "k", 1), MAPKV_READONLY);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "k", NULL);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_tree_name_must_be_1_to_255_bytes)
{
	mapkv_env *env = tu_open("db", 0, 0);
	char name[300];
	memset(name, 'n', sizeof(name));
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi d;
	name[256] = 0;
	ck_assert_rc(mapkv_dbi_open(txn, name, MAPKV_CREATE, &d),
		     MAPKV_INVALID);
	name[299] = 0;
	ck_assert_rc(mapkv_dbi_open(txn, name, MAPKV_CREATE, &d),
		     MAPKV_INVALID);
	ck_assert_rc(mapkv_dbi_open(txn, "", MAPKV_CREATE, &d), MAPKV_INVALID);
	name[255] = 0;
	ck_assert_rc(mapkv_dbi_open(txn, name, MAPKV_CREATE, &d), 0);
	tu_put_str(txn, d, "k", "v");
	ck_assert_rc(mapkv_dbi_open(txn, "a", MAPKV_CREATE, &d), 0);
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_dbi_open(txn, name, 0, &d), 0);
	tu_expect_str(txn, d, "k", "v");
	int n = 0;
	ck_assert_rc(mapkv_dbi_list(txn, count_cb, &n), 0);
	ck_assert_int_eq(n, 2);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_version_string_matches_header)
{
	ck_assert_ptr_nonnull(mapkv_version());
	ck_assert_str_eq(mapkv_version(), MAPKV_VERSION_STRING);
	char buf[32];
	snprintf(buf, sizeof(buf), "%d.%d.%d", MAPKV_VERSION_MAJOR,
		 MAPKV_VERSION_MINOR, MAPKV_VERSION_PATCH);
	ck_assert_str_eq(MAPKV_VERSION_STRING, buf);
}
END_TEST

START_TEST(test_env_info_fields_are_sane)
{
	const uint64_t max = 1ull << 30;
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.max_size = max;
	o.max_readers = 10;
	mapkv_env *env = tu_open_opts("db", &o);
	mapkv_envinfo i = tu_env_info(env);
	long ps = sysconf(_SC_PAGESIZE);
	ck_assert_uint_eq(i.page_size, (uint64_t)ps);
	if (ps == 4096)
		ck_assert_uint_eq(i.page_size, 4096);
	ck_assert_uint_eq(i.max_size, max);
	ck_assert_uint_eq(i.max_readers, 10);
	ck_assert_uint_eq(i.num_readers, 0);
	ck_assert_uint_eq(i.oldest_reader_txnid, 0);
	/* How the map grows, named by the OS layer (README.md). */
	ck_assert_ptr_nonnull(i.map_growth);
	ck_assert_uint_gt(strlen(i.map_growth), 0);
	uint64_t last = i.last_txnid;
	for (int t = 0; t < 3; t++) {
		mapkv_txn *txn = tu_begin(env, 0);
		static unsigned char v[50000];
		char k[16];
		snprintf(k, sizeof(k), "k%d", t);
		tu_put(txn, 0, k, strlen(k), v, sizeof(v));
		tu_commit(txn);
		i = tu_env_info(env);
		ck_assert_uint_gt(i.last_txnid, last);
		last = i.last_txnid;
		ck_assert_uint_gt(i.file_size, 0);
		ck_assert_uint_eq(i.file_size % i.page_size, 0);
		ck_assert_uint_eq(i.file_size, tu_file_size(tu_path("db")));
		ck_assert_uint_ge(i.pages_used, 2 + 12 * (t + 1));
		ck_assert_uint_le(i.pages_used * i.page_size, i.file_size);
		ck_assert_uint_le(i.pages_free, i.pages_used);
	}
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_stat_info st = tu_stat(txn, 0);
	ck_assert_uint_eq(st.page_size, i.page_size);
	ck_assert_uint_eq(st.entries, 3);
	mapkv_txn_abort(txn);
	mapkv_close(env);

	/* Defaults. */
	env = tu_open("db2", 0, 0);
	i = tu_env_info(env);
	/* 64 GiB, or less where the system will not reserve that much
	 * address space (valgrind, ulimit -v), but never below the file. */
	if (sizeof(void *) == 8 && !getenv("MAPKV_TEST_MAX_SIZE")) {
		ck_assert_uint_le(i.max_size, 64ull << 30);
		ck_assert_uint_ge(i.max_size, 64u << 20);
		ck_assert_uint_ge(i.max_size, i.file_size);
	}
	ck_assert_uint_eq(i.max_readers, 126);
	txn = tu_begin(env, MAPKV_RDONLY);
	st = tu_stat(txn, 0);
	ck_assert_uint_eq(st.depth, 0);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.leaf_pages + st.branch_pages + st.overflow_pages,
			  0);
	ck_assert_uint_eq(st.page_size, i.page_size);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_new_file_gets_requested_mode)
{
	mode_t old = umask(022);
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.mode = 0600;
	mapkv_env *env = tu_open_opts("private", &o);
	mapkv_close(env);
	o.mode = 0; /* the default */
	env = tu_open_opts("default", &o);
	mapkv_close(env);
	umask(old);
	struct stat st;
	ck_assert_int_eq(stat(tu_path("private"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(stat(tu_path("default"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644);
}
END_TEST

START_TEST(test_nocreate_on_missing_file_gives_io_with_enoent)
{
	mapkv_env *env = (mapkv_env *)1;
	errno = 0;
	int rc = tu_open_rc(&env, "missing", MAPKV_NOCREATE, 0);
	int e = errno;
	ck_assert_rc(rc, MAPKV_IO);
	ck_assert_int_eq(e, ENOENT);
	ck_assert_ptr_null(env);
	ck_assert_int_ne(access(tu_path("missing"), F_OK), 0);
	/* An existing file opens with NOCREATE. */
	env = tu_open("db", 0, 0);
	mapkv_close(env);
	env = tu_open("db", MAPKV_NOCREATE, 0);
	mapkv_close(env);
}
END_TEST

START_TEST(test_open_of_a_directory_gives_io)
{
	mapkv_env *env = (mapkv_env *)1;
	ck_assert_rc(mapkv_open(&env, tu_dir(), NULL), MAPKV_IO);
	ck_assert_ptr_null(env);
}
END_TEST

START_TEST(test_file_larger_than_max_size_gives_full_on_open)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	unsigned char *v = calloc(1, 3u << 20);
	ck_assert_ptr_nonnull(v);
	tu_put(txn, 0, "big", 3, v, 3u << 20);
	tu_commit(txn);
	mapkv_close(env);
	free(v);
	ck_assert_uint_gt(tu_file_size(tu_path("db")), 1u << 20);
	env = (mapkv_env *)1;
	ck_assert_rc(tu_open_rc(&env, "db", 0, 1u << 20), MAPKV_FULL);
	ck_assert_ptr_null(env);
	env = tu_open("db", 0, 0); /* still fine with room */
	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_val out;
	ck_assert_rc(tu_get_rc(txn, 0, "big", 3, &out), 0);
	ck_assert_uint_eq(out.size, 3u << 20);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_write_txn_left_open_at_close_is_aborted)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "kept", "1");
	tu_commit(txn);
	txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "lost", "1");
	mapkv_close(env); /* txn is gone with it */

	env = tu_open("db", 0, 0);
	txn = NULL;
	/* The writer lock was released. */
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_TRY, &txn), 0);
	tu_expect_str(txn, 0, "kept", "1");
	tu_expect_str(txn, 0, "lost", NULL);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_value_over_max_size_gives_bad_value_and_txn_survives)
{
	if (sizeof(size_t) <= 4)
		return; /* a size_t cannot express it */
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	static const char small[16] = "small";
	/* The data pointer covers 16 bytes: the size must be refused
	 * before anything is read. */
	mapkv_val k = {"k", 1};
	mapkv_val v = {small, (size_t)MAPKV_MAX_VALUE_SIZE + 1};
	ck_assert_rc(mapkv_put(txn, 0, &k, &v, 0), MAPKV_BAD_VALUE);
	v.size = SIZE_MAX;
	ck_assert_rc(mapkv_put(txn, 0, &k, &v, 0), MAPKV_BAD_VALUE);
	tu_put_str(txn, 0, "k", "fine");
	tu_commit(txn);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "k", "fine");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tu_tcase(s, "api", 60);
	tcase_add_test(tc, test_null_arguments_give_invalid_and_never_crash);
	tcase_add_test(tc, test_unknown_flags_and_cursor_ops_give_invalid);
	tcase_add_test(tc, test_strerror_gives_distinct_text_for_every_code);
	tcase_add_test(tc, test_put_in_read_txn_gives_readonly);
	tcase_add_test(tc, test_tree_name_must_be_1_to_255_bytes);
	tcase_add_test(tc, test_version_string_matches_header);
	tcase_add_test(tc, test_env_info_fields_are_sane);
	tcase_add_test(tc, test_new_file_gets_requested_mode);
	tcase_add_test(tc, test_nocreate_on_missing_file_gives_io_with_enoent);
	tcase_add_test(tc, test_open_of_a_directory_gives_io);
	tcase_add_test(tc, test_file_larger_than_max_size_gives_full_on_open);
	tcase_add_test(tc, test_write_txn_left_open_at_close_is_aborted);
	tcase_add_test(
		tc, test_value_over_max_size_gives_bad_value_and_txn_survives);
	return tu_run_suite(s);
}
