/*
 * check_win.c: what the Windows port must get right, through the public
 * API: growth from a 0-byte file over many map extensions without moving
 * the data, a 0-byte file that gets no stray byte, reopening, a second
 * environment on the same file (growth seen there, writer lock between
 * the two), a second process (Windows only: writer lock, shared reader
 * table, growth), readers in other threads while the map grows,
 * truncation by a compacting copy, the growth path reported by
 * mapkv_env_info, and a hard link of an open database refused. Built into the
 * Windows test program (tests/win/wintest.c); portable, so it runs anywhere the
 * shim or Check is.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#ifdef _WIN32
#include <process.h> /* _spawnv */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h> /* CreateHardLinkA */
#else
#include <unistd.h> /* link */
#endif

static void put_n(mapkv_env *env, unsigned from, unsigned to, size_t vlen)
{
	mapkv_txn *txn;
	unsigned char *v = malloc(vlen ? vlen : 1);
	char k[32];

	ck_assert_ptr_nonnull(v);
	ck_assert_rc(mapkv_txn_begin(env, 0, &txn), 0);
	for (unsigned i = from; i < to; i++) {
		mapkv_val key = {k, (size_t)sprintf(k, "k%08u", i)};
		mapkv_val val = {v, vlen};

		tu_fill_bytes(v, vlen, i);
		ck_assert_rc(mapkv_put(txn, 0, &key, &val, 0), 0);
	}
	ck_assert_rc(mapkv_txn_commit(txn), 0);
	free(v);
}

/* Every key in [0, n) present with its value, in a new read txn. */
static void check_n(mapkv_env *env, unsigned n, size_t vlen)
{
	mapkv_txn *txn;
	char k[32];

	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	for (unsigned i = 0; i < n; i++) {
		mapkv_val key = {k, (size_t)sprintf(k, "k%08u", i)}, val;

		ck_assert_rc(mapkv_get(txn, 0, &key, &val), 0);
		ck_assert_uint_eq(val.size, vlen);
		ck_assert_uint_eq(tu_check_bytes(val.data, vlen, i),
				  (size_t)-1);
	}
	ck_assert_uint_eq(tu_stat(txn, 0).entries, n);
	mapkv_txn_abort(txn);
}

START_TEST(test_growth_from_empty_file_over_many_extensions)
{
	mapkv_options o;
	mapkv_env *env;
	mapkv_envinfo ei;
	uint64_t last = 0;
	unsigned grew = 0;
	const unsigned step = 400;
	const size_t vlen = 700;

	tu_write_file(tu_path("db"), "", 0);
	memset(&o, 0, sizeof(o));
	o.max_size = 256u << 20;
	ck_assert_rc(mapkv_open(&env, tu_path("db"), &o), 0);
	ck_assert_rc(mapkv_env_info(env, &ei), 0);
	ck_assert_ptr_nonnull(ei.map_growth);
	ck_assert_uint_gt(strlen(ei.map_growth), 0);
	printf("map growth: %s\n", ei.map_growth);
	for (unsigned i = 0; i < 40; i++) {
		put_n(env, i * step, (i + 1) * step, vlen);
		ck_assert_rc(mapkv_env_info(env, &ei), 0);
		if (ei.file_size > last)
			grew++;
		last = ei.file_size;
	}
	printf("file grew %u times to %llu bytes\n", grew,
	       (unsigned long long)last);
	ck_assert_uint_ge(grew, 6);
	check_n(env, 40 * step, vlen);
	mapkv_close(env);

	/* Reopen: same data, and it grows further. */
	env = tu_open("db", 0, 0);
	check_n(env, 40 * step, vlen);
	put_n(env, 40 * step, 50 * step, vlen);
	check_n(env, 50 * step, vlen);
	mapkv_close(env);
}
END_TEST

START_TEST(test_zero_byte_file_gets_no_stray_byte_when_read)
{
	mapkv_options o;
	mapkv_env *env;
	mapkv_txn *txn;
	mapkv_val k = {"a", 1}, v;

	tu_write_file(tu_path("db"), "", 0);
	memset(&o, 0, sizeof(o));
	o.flags = MAPKV_RDONLY;
	ck_assert_rc(mapkv_open(&env, tu_path("db"), &o), 0);
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	ck_assert_rc(mapkv_get(txn, 0, &k, &v), MAPKV_NOTFOUND);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	ck_assert_uint_eq(tu_file_size(tu_path("db")), 0);
}
END_TEST

/* Two environments on one file in one process: the writer lock excludes
 * the other environment, and growth by one is mapped by the other. */
START_TEST(test_second_environment_sees_growth_and_is_locked_out)
{
	mapkv_env *a = tu_open("db", 0, 0), *b = tu_open("db", 0, 0);
	mapkv_txn *ta, *tb;

	put_n(a, 0, 10, 50);
	check_n(b, 10, 50);
	ck_assert_rc(mapkv_txn_begin(a, 0, &ta), 0);
	ck_assert_rc(mapkv_txn_begin(b, MAPKV_TRY, &tb), MAPKV_BUSY);
	mapkv_txn_abort(ta);
	for (unsigned i = 1; i < 8; i++) {
		put_n(a, i * 2000, (i + 1) * 2000, 300);
		put_n(b, 0, 10, 50); /* b writes too, after a grew it */
	}
	mapkv_close(a);
	{
		mapkv_txn *txn;
		char k[32];
		mapkv_val key = {k, (size_t)sprintf(k, "k%08u", 15999u)}, v;

		ck_assert_rc(mapkv_txn_begin(b, MAPKV_RDONLY, &txn), 0);
		ck_assert_rc(mapkv_get(txn, 0, &key, &v), 0);
		ck_assert_uint_eq(v.size, 300);
		ck_assert_uint_eq(tu_check_bytes(v.data, 300, 15999u),
				  (size_t)-1);
		mapkv_txn_abort(txn);
	}
	mapkv_close(b);
}
END_TEST

/* Readers in other threads begin and end short transactions while the
 * writer grows the file: each sees a complete snapshot. */
struct churn {
	mapkv_env *env;
	atomic_int stop;
	atomic_int errors;
	atomic_uint reads;
};

static void *churn_main(void *p)
{
	struct churn *c = p;

	while (!atomic_load(&c->stop)) {
		mapkv_txn *txn;
		mapkv_val key = {"k00000000", 9}, v;
		int rc = mapkv_txn_begin(c->env, MAPKV_RDONLY, &txn);

		if (rc) {
			atomic_fetch_add(&c->errors, 1);
			break;
		}
		rc = mapkv_get(txn, 0, &key, &v);
		if (rc || v.size != 200 ||
		    tu_check_bytes(v.data, 200, 0) != (size_t)-1)
			atomic_fetch_add(&c->errors, 1);
		mapkv_txn_abort(txn);
		atomic_fetch_add(&c->reads, 1);
	}
	return NULL;
}

START_TEST(test_reader_threads_while_the_map_grows)
{
	mapkv_env *env = tu_open("db", 0, 0);
	struct churn c;
	pthread_t th[3];

	put_n(env, 0, 1, 200);
	memset(&c, 0, sizeof(c));
	c.env = env;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, churn_main, &c),
				 0);
	for (unsigned i = 1; i < 30; i++)
		put_n(env, i * 1000, (i + 1) * 1000, 200);
	atomic_store(&c.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	int errors = atomic_load(&c.errors);
	unsigned reads = atomic_load(&c.reads);
	printf("reader threads: %u reads during growth\n", reads);
	ck_assert_int_eq(errors, 0);
	ck_assert_uint_gt(reads, 0);
	mapkv_close(env);
}
END_TEST

/* A thread that holds a read transaction grows the map in a write
 * transaction of its own (the remap path must not wait for itself), and
 * its earlier pointers stay good. */
START_TEST(test_own_read_txn_does_not_block_growth)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *r;
	mapkv_val key = {"k00000000", 9}, v;

	put_n(env, 0, 1000, 200);
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, &r), 0);
	ck_assert_rc(mapkv_get(r, 0, &key, &v), 0);
	for (unsigned i = 1; i < 20; i++)
		put_n(env, i * 1000, (i + 1) * 1000, 200);
	ck_assert_uint_eq(tu_check_bytes(v.data, 200, 0), (size_t)-1);
	mapkv_txn_abort(r);
	check_n(env, 20000, 200);
	mapkv_close(env);
}
END_TEST

/* A compacting copy truncates its file (a section cannot shrink on
 * Windows); the copy opens with the same data. */
START_TEST(test_compacting_copy_truncates_and_reopens)
{
	mapkv_env *env = tu_open("db", 0, 0), *cp;
	mapkv_txn *txn;

	put_n(env, 0, 5000, 300);
	ck_assert_rc(mapkv_txn_begin(env, 0, &txn), 0);
	for (unsigned i = 0; i < 4000; i++) {
		char k[32];
		mapkv_val key = {k, (size_t)sprintf(k, "k%08u", i + 1000)};

		ck_assert_rc(mapkv_del(txn, 0, &key), 0);
	}
	ck_assert_rc(mapkv_txn_commit(txn), 0);
	ck_assert_rc(mapkv_copy(env, tu_path("copy"), MAPKV_COPY_COMPACT), 0);
	ck_assert_rc(mapkv_copy(env, tu_path("plain"), 0), 0);
	ck_assert_uint_lt(tu_file_size(tu_path("copy")),
			  tu_file_size(tu_path("db")));
	mapkv_close(env);
	cp = tu_open("copy", 0, 0);
	check_n(cp, 1000, 300);
	mapkv_close(cp);
	cp = tu_open("plain", 0, 0);
	check_n(cp, 1000, 300);
	mapkv_close(cp);
}
END_TEST

#ifdef _WIN32
/* The test program itself (wintest.c), to start second processes. */
const char *wintest_exe;

/* A second process: wintest.exe --child OP FILE [FROM TO]; exits 0 when
 * it did what was asked (see wintest_child). */
static int child(const char *op, const char *file, unsigned from, unsigned to)
{
	char a[16], b[16];
	const char *argv[] = {wintest_exe, "--child", op, file, a, b, NULL};

	snprintf(a, sizeof(a), "%u", from);
	snprintf(b, sizeof(b), "%u", to);
	fflush(NULL);
	return (int)_spawnv(_P_WAIT, wintest_exe, argv);
}

/* Another process on the same file: the writer lock excludes it while
 * this process writes; it grows the file while this process holds a read
 * snapshot (registered in the shared lock file, so the other process's
 * writer keeps its pages); then this process maps the growth. */
START_TEST(test_second_process_shares_locks_growth_and_readers)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *w, *r;
	char k[32];

	put_n(env, 0, 1000, 300);
	ck_assert_rc(mapkv_txn_begin(env, 0, &w), 0);
	ck_assert_int_eq(child("try", tu_path("db"), 0, 0), 0);
	mapkv_txn_abort(w);

	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, &r), 0);
	ck_assert_int_eq(child("put", tu_path("db"), 1000, 30000), 0);
	/* The snapshot is intact: 1000 keys, values unchanged. */
	ck_assert_uint_eq(tu_stat(r, 0).entries, 1000);
	for (unsigned i = 0; i < 1000; i += 7) {
		mapkv_val key = {k, (size_t)sprintf(k, "k%08u", i)}, v;

		ck_assert_rc(mapkv_get(r, 0, &key, &v), 0);
		ck_assert_uint_eq(tu_check_bytes(v.data, 300, i), (size_t)-1);
	}
	mapkv_txn_abort(r);
	check_n(env, 30000, 300);
	put_n(env, 30000, 31000, 300);
	ck_assert_int_eq(child("count", tu_path("db"), 31000, 0), 0);
	mapkv_close(env);
}
END_TEST

int wintest_child(int argc, char **argv)
{
	mapkv_env *env;
	mapkv_txn *txn;
	int rc;

	if (argc < 6)
		return 2;
	if (strcmp(argv[2], "conflict") == 0) {
		/* Another name of a database this process's parent uses. */
		rc = mapkv_open(&env, argv[3], NULL);
		if (rc == 0)
			mapkv_close(env);
		return rc == MAPKV_LOCK_CONFLICT ? 0 : 7;
	}
	if ((rc = mapkv_open(&env, argv[3], NULL))) {
		fprintf(stderr, "child: open %s: %s\n", argv[3],
			mapkv_strerror(rc));
		return 3;
	}
	unsigned from = (unsigned)strtoul(argv[4], NULL, 10);
	unsigned to = (unsigned)strtoul(argv[5], NULL, 10);
	if (strcmp(argv[2], "try") == 0) {
		rc = mapkv_txn_begin(env, MAPKV_TRY, &txn);
		if (rc == 0)
			mapkv_txn_abort(txn);
		rc = rc == MAPKV_BUSY ? 0 : 4;
	} else if (strcmp(argv[2], "put") == 0) {
		unsigned char v[300];
		char k[32];

		rc = 0;
		for (unsigned i = from; i < to && !rc; i += 1000) {
			if ((rc = mapkv_txn_begin(env, 0, &txn)))
				break;
			for (unsigned j = i; j < i + 1000 && j < to && !rc;
			     j++) {
				mapkv_val key = {
					k, (size_t)sprintf(k, "k%08u", j)};
				mapkv_val val = {v, sizeof(v)};

				tu_fill_bytes(v, sizeof(v), j);
				rc = mapkv_put(txn, 0, &key, &val, 0);
			}
			if (rc)
				mapkv_txn_abort(txn);
			else
				rc = mapkv_txn_commit(txn);
		}
		if (rc)
			fprintf(stderr, "child: put: %s\n", mapkv_strerror(rc));
		rc = rc ? 5 : 0;
	} else if (strcmp(argv[2], "count") == 0) {
		mapkv_stat_info st;

		if ((rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn)) == 0) {
			rc = mapkv_stat(txn, 0, &st);
			if (!rc && st.entries != from)
				rc = 6;
			mapkv_txn_abort(txn);
		}
		rc = rc ? 6 : 0;
	} else {
		rc = 2;
	}
	mapkv_close(env);
	return rc;
}
#endif

/* A second name of an open database that would lead to a lock file of
 * its own (a hard link) is refused while the database is in use under
 * the first name, by this process and another, and usable once it is
 * not; a second environment under the first name shares the table. */
START_TEST(test_hard_link_of_an_open_database_is_refused)
{
	mapkv_env *a = tu_open("db", 0, 0), *b;
	int linked;

	put_n(a, 0, 10, 50);
#ifdef _WIN32
	linked = CreateHardLinkA(tu_path("hard.db"), tu_path("db"), NULL) != 0;
#else
	linked = link(tu_path("db"), tu_path("hard.db")) == 0;
#endif
	if (!linked) {
		fprintf(stderr, "check_win: no hard link can be made here; "
				"the hard-link test is skipped\n");
		mapkv_close(a);
		return;
	}
	ck_assert_rc(tu_open_rc(&b, "hard.db", 0, 0), MAPKV_LOCK_CONFLICT);
	ck_assert_rc(tu_open_rc(&b, "hard.db", MAPKV_RDONLY, 0),
		     MAPKV_LOCK_CONFLICT);
	b = tu_open("db", 0, 0);
	check_n(b, 10, 50);
	mapkv_close(b);
#ifdef _WIN32
	ck_assert_int_eq(child("conflict", tu_path("hard.db"), 0, 0), 0);
#endif
	put_n(a, 10, 20, 50);
	mapkv_close(a);
	ck_assert_rc(tu_open_rc(&b, "hard.db", 0, 0), 0);
	check_n(b, 20, 50);
	ck_assert_rc(tu_open_rc(&a, "db", 0, 0), MAPKV_LOCK_CONFLICT);
	mapkv_close(b);
}
END_TEST

int wintest_win_main(void)
{
	Suite *s = suite_create("win");
	TCase *tc = tu_tcase(s, "win", 300);

	tcase_add_test(tc, test_growth_from_empty_file_over_many_extensions);
	tcase_add_test(tc, test_zero_byte_file_gets_no_stray_byte_when_read);
	tcase_add_test(tc,
		       test_second_environment_sees_growth_and_is_locked_out);
	tcase_add_test(tc, test_reader_threads_while_the_map_grows);
	tcase_add_test(tc, test_own_read_txn_does_not_block_growth);
	tcase_add_test(tc, test_compacting_copy_truncates_and_reopens);
	tcase_add_test(tc, test_hard_link_of_an_open_database_is_refused);
#ifdef _WIN32
	tcase_add_test(tc, test_second_process_shares_locks_growth_and_readers);
#endif
	return tu_run_suite(s);
}
