/*
 * check_badfile.c: files that are empty, random, zero-filled, truncated or
 * damaged by one flipped byte are opened and read without crashing, and
 * every call answers with a clear error code.
 *
 * The truncation and flipped-byte cases run each in a forked child of the
 * test, so that one crash (or hang) is reported with the page and offset
 * that caused it, and the other cases still run.
 *
 * Page kinds in failure messages are read from the page header as
 * src/page.h describes it (flags at byte 4 of a page); that is for the
 * messages only, no assertion depends on it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096u

static int allowed_read_rc(int rc)
{
	return rc == 0 || rc == MAPKV_NOTFOUND || rc == MAPKV_CORRUPT;
}

START_TEST(test_zero_length_file_opens_as_empty_database_and_is_writable)
{
	tu_write_file(tu_path("db"), "", 0);
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(tu_stat(txn, 0).entries, 0);
	tu_expect_str(txn, 0, "a", NULL);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "a", "1");
	tu_commit(txn);
	mapkv_close(env);
	ck_assert_uint_gt(tu_file_size(tu_path("db")), 0);
	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "a", "1");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_zero_filled_file_opens_as_empty_database_and_is_writable)
{
	static unsigned char zeros[8192];
	tu_write_file(tu_path("db"), zeros, sizeof(zeros));
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(tu_stat(txn, 0).entries, 0);
	mapkv_txn_abort(txn);
	txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "z", "1");
	tu_commit(txn);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "z", "1");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_random_bytes_file_gives_corrupt_and_is_left_unchanged)
{
	static const size_t sizes[] = {100, 4096, 8192, 1u << 20};
	unsigned char *buf = malloc(1u << 20);
	ck_assert_ptr_nonnull(buf);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (uint64_t seed = 1; seed <= 4; seed++) {
			tu_seed_current = seed * 100 + s;
			tu_fill_bytes(buf, sizes[s], seed * 100 + s);
			tu_write_file(tu_path("rnd"), buf, sizes[s]);
			for (int ro = 0; ro < 2; ro++) {
				mapkv_env *env = (mapkv_env *)1;
				int rc = tu_open_rc(&env, "rnd",
						    ro ? MAPKV_RDONLY : 0, 0);
				tu_check(rc == MAPKV_CORRUPT,
					 "%zu random bytes: open gave %d (%s)",
					 sizes[s], rc, mapkv_strerror(rc));
				ck_assert_ptr_null(env);
			}
			size_t n;
			unsigned char *after = tu_read_file(tu_path("rnd"), &n);
			tu_check(n == sizes[s] &&
					 memcmp(after, buf, sizes[s]) == 0,
				 "a failed open changed the %zu-byte file "
				 "(now %zu bytes)",
				 sizes[s], n);
			free(after);
		}
	}
	free(buf);
}
END_TEST

/* ---- isolation: run one case in a child --------------------------------- */

/* The case writes a message into msg and returns nonzero on a wrong result
 * code; crashes and hangs are seen by the parent. */
typedef int (*case_fn)(const char *path, void *ctx, char *msg, size_t len);

/* Returns 0 if the case passed; otherwise fills @out. */
static int run_isolated(case_fn fn, const char *path, void *ctx, char *out,
			size_t outlen)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		alarm(20); /* a hang is a failure too */
		char msg[512] = "";
		int bad = fn(path, ctx, msg, sizeof(msg));
		if (bad) {
			ssize_t w = write(fds[1], msg, strlen(msg));
			(void)w;
		}
		_exit(bad ? 1 : 0);
	}
	close(fds[1]);
	char msg[512];
	ssize_t n = read(fds[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = 0;
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status)) {
		snprintf(out, outlen, "killed by signal %d (%s)",
			 WTERMSIG(status),
			 WTERMSIG(status) == SIGALRM
				 ? "hang"
				 : strsignal(WTERMSIG(status)));
		return -1;
	}
	if (WEXITSTATUS(status) != 0) {
		snprintf(out, outlen, "%s", msg[0] ? msg : "failed");
		return -1;
	}
	return 0;
}

struct db_desc {
	int nkeys;
	const char *named; /* a named tree that may exist, or NULL */
};

#define BAD(...)                                                               \
	do {                                                                   \
		snprintf(msg, len, __VA_ARGS__);                               \
		return 1;                                                      \
	} while (0)

/* Scan with a cursor in direction @dir; every result must be allowed and
 * every returned byte readable. */
static int scan(mapkv_txn *txn, mapkv_dbi dbi, int dir, int limit, char *msg,
		size_t len)
{
	mapkv_cursor *cur = NULL;
	int rc = mapkv_cursor_open(txn, dbi, &cur);
	if (rc == MAPKV_CORRUPT)
		return 0;
	if (rc)
		BAD("cursor_open: %d (%s)", rc, mapkv_strerror(rc));
	mapkv_val k, v;
	volatile unsigned sum = 0;
	rc = mapkv_cursor_get(cur, &k, &v, dir ? MAPKV_LAST : MAPKV_FIRST);
	int steps = 0;
	while (rc == 0) {
		const unsigned char *p = k.data, *q = v.data;
		for (size_t i = 0; i < k.size; i++)
			sum += p[i];
		for (size_t i = 0; i < v.size; i++)
			sum += q[i];
		if (++steps > limit) {
			mapkv_cursor_close(cur);
			BAD("%s scan did not end after %d steps",
			    dir ? "backward" : "forward", steps);
		}
		rc = mapkv_cursor_get(cur, &k, &v,
				      dir ? MAPKV_PREV : MAPKV_NEXT);
	}
	mapkv_cursor_close(cur);
	if (!allowed_read_rc(rc))
		BAD("%s scan: %d (%s)", dir ? "backward" : "forward", rc,
		    mapkv_strerror(rc));
	return 0;
}

static int list_cb(void *ctx, const char *name)
{
	(*(size_t *)ctx) += strlen(name);
	return 0;
}

/* Open and read a possibly damaged file in every way. */
static int read_everything(const char *path, void *ctx, char *msg, size_t len)
{
	const struct db_desc *d = ctx;
	mapkv_env *env = NULL;
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.max_size = tu_default_max_size();
	int rc = mapkv_open(&env, path, &o);
	if (rc == MAPKV_CORRUPT || rc == MAPKV_VERSION_MISMATCH)
		return 0;
	if (rc)
		BAD("open: %d (%s)", rc, mapkv_strerror(rc));
	/* The header lists only 0 and MAPKV_INVALID for mapkv_env_info, but
	 * pages_free may need the damaged free-page tree: the brief allows
	 * MAPKV_CORRUPT from every call. */
	mapkv_envinfo info;
	rc = mapkv_env_info(env, &info);
	if (!allowed_read_rc(rc) || rc == MAPKV_NOTFOUND)
		BAD("env_info: %d (%s)", rc, mapkv_strerror(rc));
	mapkv_txn *txn = NULL;
	rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn);
	if (rc == MAPKV_CORRUPT) {
		mapkv_close(env);
		return 0;
	}
	if (rc)
		BAD("txn_begin: %d (%s)", rc, mapkv_strerror(rc));
	int limit = 4 * d->nkeys + 100;
	if (scan(txn, 0, 0, limit, msg, len) ||
	    scan(txn, 0, 1, limit, msg, len))
		return 1;
	char k[32];
	volatile unsigned sum = 0;
	for (int i = 0; i < d->nkeys; i++) {
		snprintf(k, sizeof(k), "key%013d", i);
		mapkv_val key = {k, 16}, v;
		rc = mapkv_get(txn, 0, &key, &v);
		if (!allowed_read_rc(rc))
			BAD("get %s: %d (%s)", k, rc, mapkv_strerror(rc));
		if (rc == 0)
			for (size_t j = 0; j < v.size; j++)
				sum += ((const unsigned char *)v.data)[j];
	}
	for (int i = 0; i < 3; i++) {
		snprintf(k, sizeof(k), "big%d", i);
		mapkv_val key = {k, strlen(k)}, v;
		rc = mapkv_get(txn, 0, &key, &v);
		if (!allowed_read_rc(rc))
			BAD("get %s: %d (%s)", k, rc, mapkv_strerror(rc));
		if (rc == 0)
			for (size_t j = 0; j < v.size; j++)
				sum += ((const unsigned char *)v.data)[j];
	}
	mapkv_stat_info st;
	rc = mapkv_stat(txn, 0, &st);
	if (!allowed_read_rc(rc))
		BAD("stat: %d (%s)", rc, mapkv_strerror(rc));
	size_t names = 0;
	rc = mapkv_dbi_list(txn, list_cb, &names);
	if (!allowed_read_rc(rc))
		BAD("dbi_list: %d (%s)", rc, mapkv_strerror(rc));
	if (d->named) {
		mapkv_dbi dbi;
		rc = mapkv_dbi_open(txn, d->named, 0, &dbi);
		if (!allowed_read_rc(rc))
			BAD("dbi_open: %d (%s)", rc, mapkv_strerror(rc));
		if (rc == 0) {
			if (scan(txn, dbi, 0, limit, msg, len) ||
			    scan(txn, dbi, 1, limit, msg, len))
				return 1;
			rc = mapkv_stat(txn, dbi, &st);
			if (!allowed_read_rc(rc))
				BAD("stat named: %d (%s)", rc,
				    mapkv_strerror(rc));
		}
	}
	mapkv_txn_abort(txn);
	mapkv_close(env);
	return 0;
}

/* A small database with branch, leaf and overflow pages, a named tree and
 * free-page records. Returns pages in use. */
static uint64_t build_db(const char *name, int nkeys)
{
	mapkv_env *env = tu_open(name, 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	char k[32];
	unsigned char v[10000];
	for (int i = 0; i < nkeys; i++) {
		snprintf(k, sizeof(k), "key%013d", i);
		tu_fill_bytes(v, 100, (uint64_t)i);
		tu_put(txn, 0, k, 16, v, 100);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(k, sizeof(k), "big%d", i);
		tu_fill_bytes(v, sizeof(v), (uint64_t)i);
		tu_put(txn, 0, k, strlen(k), v, sizeof(v));
	}
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "named", MAPKV_CREATE, &d), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof(k), "n%03d", i);
		tu_put(txn, d, k, strlen(k), "x", 1);
	}
	tu_commit(txn);
	/* Updates leave freed pages behind (free-page records). */
	for (int t = 0; t < 3; t++) {
		txn = tu_begin(env, 0);
		for (int i = t; i < nkeys; i += 10) {
			snprintf(k, sizeof(k), "key%013d", i);
			tu_fill_bytes(v, 100, (uint64_t)i + 1);
			tu_put(txn, 0, k, 16, v, 100);
		}
		tu_commit(txn);
	}
	txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_stat_info st = tu_stat(txn, 0);
	mapkv_txn_abort(txn);
	tu_check(st.branch_pages > 0 && st.leaf_pages > 1 &&
			 st.overflow_pages > 0,
		 "test database lacks a page kind: %llu branch, %llu leaf, "
		 "%llu overflow pages",
		 (unsigned long long)st.branch_pages,
		 (unsigned long long)st.leaf_pages,
		 (unsigned long long)st.overflow_pages);
	uint64_t used = tu_env_info(env).pages_used;
	mapkv_close(env);
	return used;
}

static const char *page_kind(const unsigned char *file, size_t fsize,
			     uint64_t pg)
{
	if (pg < 2)
		return "meta";
	if ((pg + 1) * PAGE > fsize)
		return "?";
	unsigned f = file[pg * PAGE + 4];
	return f & 1 ? "branch" : f & 2 ? "leaf" : f & 4 ? "overflow" : "other";
}

START_TEST(test_flipped_byte_in_every_page_never_crashes_and_gives_clear_codes)
{
	const int nkeys = 800;
	uint64_t pages = build_db("orig", nkeys);
	tu_check(pages >= 20 && pages <= 400, "test database has %llu pages",
		 (unsigned long long)pages);
	size_t fsize;
	unsigned char *file = tu_read_file(tu_path("orig"), &fsize);
	static const uint64_t offs[] = {0,  1,  2,  3,   4,    8,   12,
					16, 20, 24, 100, 2048, 4095};
	const int noffs = sizeof(offs) / sizeof(offs[0]);
	struct db_desc d = {nkeys, "named"};
	char report[4096] = "";
	size_t rl = 0;
	int failures = 0, cases = 0;
	for (uint64_t pg = 0; pg < pages; pg++) {
		for (int o = 0; o < noffs; o++) {
			/* 0xff everywhere; 0x01 too in the page header, where
			 * an off-by-one page number or count is the nasty
			 * case. */
			for (int mi = 0; mi < (offs[o] < 16 ? 2 : 1); mi++) {
				unsigned char mask = mi ? 0x01 : 0xff;
				uint64_t off = pg * PAGE + offs[o];
				if (off >= fsize)
					continue;
				tu_write_file(tu_path("case"), file, fsize);
				tu_flip_byte(tu_path("case"), off, mask);
				char out[600];
				cases++;
				if (run_isolated(read_everything,
						 tu_path("case"), &d, out,
						 sizeof(out))) {
					failures++;
					if (rl < sizeof(report) - 200)
						rl += (size_t)snprintf(
							report + rl,
							sizeof(report) - rl,
							"\n  page %llu (%s) "
							"byte %llu ^%#x: %s",
							(unsigned long long)pg,
							page_kind(file, fsize,
								  pg),
							(unsigned long long)
								offs[o],
							mask, out);
				}
			}
		}
	}
	free(file);
	ck_assert_msg(failures == 0, "%d of %d damaged files misbehaved:%s",
		      failures, cases, report);
}
END_TEST

START_TEST(test_truncated_database_fails_cleanly_or_reads_safely)
{
	const int nkeys = 15000; /* ~2 MB */
	build_db("orig", nkeys);
	size_t fsize;
	unsigned char *file = tu_read_file(tu_path("orig"), &fsize);
	ck_assert_uint_gt(fsize, 1u << 20);
	const uint64_t cuts[] = {
		1,        100,       PAGE,      PAGE + 100,       2 * PAGE,
		3 * PAGE, fsize / 4, fsize / 2, fsize / 2 + 1234, fsize - PAGE,
		fsize - 1};
	struct db_desc d = {nkeys, "named"};
	char report[4096] = "";
	size_t rl = 0;
	int failures = 0;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		tu_write_file(tu_path("case"), file, fsize);
		tu_truncate_file(tu_path("case"), cuts[i]);
		char out[600];
		if (run_isolated(read_everything, tu_path("case"), &d, out,
				 sizeof(out))) {
			failures++;
			if (rl < sizeof(report) - 200)
				rl += (size_t)snprintf(
					report + rl, sizeof(report) - rl,
					"\n  cut to %llu of %zu bytes: %s",
					(unsigned long long)cuts[i], fsize,
					out);
		}
	}
	free(file);
	ck_assert_msg(failures == 0, "%d truncated files misbehaved:%s",
		      failures, report);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("badfile");
	TCase *tc = tu_tcase(s, "open", 120);
	tcase_add_test(
		tc,
		test_zero_length_file_opens_as_empty_database_and_is_writable);
	tcase_add_test(
		tc,
		test_zero_filled_file_opens_as_empty_database_and_is_writable);
	tcase_add_test(
		tc, test_random_bytes_file_gives_corrupt_and_is_left_unchanged);
	tc = tu_tcase(s, "damage", 600);
	tcase_add_test(
		tc,
		test_flipped_byte_in_every_page_never_crashes_and_gives_clear_codes);
	tcase_add_test(tc,
		       test_truncated_database_fails_cleanly_or_reads_safely);
	return tu_run_suite(s);
}
