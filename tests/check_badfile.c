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

#include "env.h" /* writers on damaged files: white-box tests of each check */
#include "page.h"

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
	int clean;         /* undamaged: the writes must commit */
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

/* ---- a write workload on a damaged file ---- */

/* What the write pass knows about the file before it writes: the pairs of
 * the main tree that a scan returns and mapkv_get finds with the same
 * value, and whether mapkv_check names damage that doc/reliability.md
 * lists as beyond a writer's checks (a page both used and free, a page
 * reachable twice), with which a writer may lose data. */
typedef struct wstate {
	tu_model *readable;
	int limits;
} wstate;

static int note_limits(void *ctx, uint64_t pgno, const char *problem)
{
	(void)pgno;
	if (strstr(problem, "both used and free") ||
	    strstr(problem, "more than once"))
		((wstate *)ctx)->limits = 1;
	return 0;
}

static int write_snapshot(mapkv_env *env, wstate *w)
{
	mapkv_txn *txn;
	if (mapkv_txn_begin(env, MAPKV_RDONLY, &txn))
		return -1;
	uint64_t problems;
	mapkv_check(txn, note_limits, w, &problems);
	mapkv_cursor *cur;
	if (mapkv_cursor_open(txn, 0, &cur) == 0) {
		mapkv_val k, v, g;
		for (int n = 0; n < 100000 &&
				mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT) == 0;
		     n++)
			if (mapkv_get(txn, 0, &k, &g) == 0 &&
			    g.size == v.size &&
			    memcmp(g.data, v.data, v.size) == 0 &&
			    !(k.size >= 2 && memcmp(k.data, "w-", 2) == 0))
				tu_model_put(w->readable, k.data, k.size,
					     v.data, v.size);
		mapkv_cursor_close(cur);
	}
	mapkv_txn_abort(txn);
	return 0;
}

static int allowed_write_rc(int rc)
{
	return rc == 0 || rc == MAPKV_CORRUPT || rc == MAPKV_NOTFOUND;
}

/* Puts of 0 to 20,000 bytes, deletes of the first half of the readable
 * pairs (up to 300: leaves empty and merge), "named" dropped; commit. Then
 * 50 small puts and one readable pair rewritten; commit. Every call must
 * return an allowed code; the model follows what was committed. */
static int write_workload(mapkv_env *env, wstate *w, tu_model *want, int clean,
			  char *msg, size_t len)
{
	static const size_t sizes[] = {0, 100, 2000, 2030, 4100, 20000};
	static unsigned char v[20000];
	for (int round = 0; round < 2; round++) {
		tu_model *next = tu_model_clone(want);
		mapkv_txn *txn;
		int rc = mapkv_txn_begin(env, 0, &txn);
		if (rc) {
			tu_model_free(next);
			if (rc == MAPKV_CORRUPT)
				return 0;
			BAD("write txn_begin: %d (%s)", rc, mapkv_strerror(rc));
		}
		char k[32];
		int nput = round ? 50 : (int)(sizeof(sizes) / sizeof(sizes[0]));
		for (int i = 0; i < nput && !rc; i++) {
			size_t vl = round ? 100 : sizes[i];
			snprintf(k, sizeof(k), "w-%d-%03d", round, i);
			tu_fill_bytes(v, vl, (uint64_t)i + 1000u * round);
			rc = tu_put_rc(txn, 0, k, strlen(k), v, vl, 0);
			if (!rc)
				tu_model_put(next, k, strlen(k), v, vl);
		}
		size_t nr = tu_model_count(w->readable);
		if (round == 0) {
			size_t ndel = nr / 2 < 300 ? nr / 2 : 300;
			for (size_t i = 0; i < ndel && allowed_write_rc(rc);
			     i++) {
				const tu_entry *e = tu_model_at(w->readable, i);
				rc = tu_del_rc(txn, 0, e->key, e->klen);
				tu_model_del(next, e->key, e->klen);
			}
			if (rc == MAPKV_NOTFOUND)
				rc = 0;
			mapkv_dbi d;
			if (!rc &&
			    (rc = mapkv_dbi_open(txn, "named", 0, &d)) == 0)
				rc = mapkv_dbi_drop(txn, d, 1);
			if (rc == MAPKV_NOTFOUND)
				rc = 0;
		} else if (!rc && nr) {
			const tu_entry *e = tu_model_at(w->readable, nr - 1);
			tu_fill_bytes(v, 300, 4242);
			rc = tu_put_rc(txn, 0, e->key, e->klen, v, 300, 0);
			if (!rc)
				tu_model_put(next, e->key, e->klen, v, 300);
		}
		if (!allowed_write_rc(rc)) {
			mapkv_txn_abort(txn);
			tu_model_free(next);
			BAD("write round %d: %d (%s)", round, rc,
			    mapkv_strerror(rc));
		}
		if (rc)
			mapkv_txn_abort(txn);
		else
			rc = mapkv_txn_commit(txn);
		if (rc && clean) {
			tu_model_free(next);
			BAD("write round %d on the undamaged file: %d (%s)",
			    round, rc, mapkv_strerror(rc));
		}
		if (rc == 0) {
			/* Committed: @want becomes @next. */
			tu_model_clear(want);
			for (size_t i = 0; i < tu_model_count(next); i++) {
				const tu_entry *e = tu_model_at(next, i);
				tu_model_put(want, e->key, e->klen, e->val,
					     e->vlen);
			}
		} else if (rc != MAPKV_CORRUPT) {
			tu_model_free(next);
			BAD("write round %d commit: %d (%s)", round, rc,
			    mapkv_strerror(rc));
		}
		tu_model_free(next);
	}
	return 0;
}

/* Every pair of @want reads back (the readable pairs the workload did not
 * touch, and what it committed). */
static int write_verify(mapkv_env *env, tu_model *want, const char *when,
			char *msg, size_t len)
{
	mapkv_txn *txn;
	int rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn);
	if (rc)
		BAD("%s: read txn_begin: %d (%s)", when, rc,
		    mapkv_strerror(rc));
	for (size_t i = 0; i < tu_model_count(want); i++) {
		const tu_entry *e = tu_model_at(want, i);
		mapkv_val v;
		rc = tu_get_rc(txn, 0, e->key, e->klen, &v);
		if (rc || v.size != e->vlen || memcmp(v.data, e->val, v.size)) {
			mapkv_txn_abort(txn);
			BAD("%s: key %s: %s (%d)", when,
			    tu_fmt(e->key, e->klen), rc ? "lost" : "changed",
			    rc);
		}
	}
	mapkv_txn_abort(txn);
	return 0;
}

/* Read a possibly damaged file every way, then write to it: every call
 * gives an allowed code, and unless the damage is of a kind a writer is
 * not required to see, nothing readable before is lost. */
static int read_then_write(const char *path, void *ctx, char *msg, size_t len)
{
	if (read_everything(path, ctx, msg, len))
		return 1;
	mapkv_env *env = NULL;
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.max_size = tu_default_max_size();
	o.flags = MAPKV_NOSYNC;
	if (mapkv_open(&env, path, &o))
		return 0; /* read_everything judged the open */
	wstate w = {tu_model_new(), 0};
	int bad = write_snapshot(env, &w);
	if (bad) {
		mapkv_close(env);
		tu_model_free(w.readable);
		return 0;
	}
	tu_model *want = tu_model_clone(w.readable);
	const struct db_desc *d = ctx;
	bad = write_workload(env, &w, want, d->clean, msg, len);
	if (!bad && d->clean && (w.limits || tu_model_count(w.readable) < 100))
		BAD("undamaged file: %zu readable pairs, limits %d",
		    tu_model_count(w.readable), w.limits);
	if (!bad && !w.limits)
		bad = write_verify(env, want, "after the writes", msg, len);
	mapkv_close(env);
	if (!bad && !w.limits && mapkv_open(&env, path, &o) == 0) {
		bad = write_verify(env, want, "reopened", msg, len);
		mapkv_close(env);
	}
	tu_model_free(want);
	tu_model_free(w.readable);
	return bad;
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
	/* The write pass itself works: on the undamaged file both commits
	 * succeed and everything reads back. */
	struct db_desc clean = {nkeys, "named", 1};
	char out0[600];
	tu_write_file(tu_path("case"), file, fsize);
	tu_check(run_isolated(read_then_write, tu_path("case"), &clean, out0,
			      sizeof(out0)) == 0,
		 "undamaged file: %s", out0);
	struct db_desc d = {nkeys, "named", 0};
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
				if (run_isolated(read_then_write,
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
	struct db_desc d = {nkeys, "named", 0};
	char report[4096] = "";
	size_t rl = 0;
	int failures = 0;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		tu_write_file(tu_path("case"), file, fsize);
		tu_truncate_file(tu_path("case"), cuts[i]);
		char out[600];
		if (run_isolated(read_then_write, tu_path("case"), &d, out,
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

/* The empty database of a creation, cut short inside its second meta page,
 * with the first meta page damaged: a writable open repairs that page (as
 * commit 1) and the file must then hold the pages it names, or the repair
 * is ignored, the next commit takes id 1 again and the next open could
 * choose the empty meta of the same id (found by fuzz_open). */
START_TEST(test_short_file_with_a_damaged_meta_keeps_commits_after_reopen)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_close(env);
	ck_assert_uint_ge(tu_file_size(tu_path("db")), 2 * PAGE);
	tu_truncate_file(tu_path("db"), PAGE + 3254);
	tu_flip_byte(tu_path("db"), 20, 0x01); /* meta 0: checksum fails */
	env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "a", "1");
	tu_commit(txn);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "a", "1");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* ---- writers on damaged files ------------------------------------------
 *
 * A writer must not hand out a page that a tree still reaches, nor free a
 * page twice: it fails the transaction with MAPKV_CORRUPT and writes
 * nothing. The damage is made in the image (page headers kept valid, the
 * meta page resealed), or, for the checks one by one, by handing the pager
 * a live page as if a free-page record had listed it (white-box: src/).
 */

static unsigned char *img;
static size_t img_len;

static void img_load(const char *path)
{
	free(img);
	img = tu_read_file(path, &img_len);
}

static void img_save(const char *path)
{
	unlink(path);
	tu_write_file(path, img, img_len);
}

static unsigned char *img_page(pgno_t p)
{
	ck_assert_uint_le((uint64_t)(p + 1) * PAGE, img_len);
	return img + (size_t)p * PAGE;
}

/* The newest meta page of the image (its offset in the image). */
static size_t img_meta(mk_meta *m)
{
	mk_meta a, b;
	int ra = pg_meta_decode(img, PAGE, &a),
	    rb = pg_meta_decode(img + PAGE, PAGE, &b);
	ck_assert(ra == 0 || rb == 0);
	if (rb || (ra == 0 && a.txnid > b.txnid)) {
		*m = a;
		return 0;
	}
	*m = b;
	return PAGE;
}

/* Reseal the newest meta page without a run list, so that open does not
 * verify the pages of the last commit against a checksum. */
static void img_reseal(void)
{
	mk_meta m;
	size_t off = img_meta(&m);
	m.nruns = 0;
	m.data_crc = 0;
	pg_meta_encode(img + off, PAGE, &m, NULL);
}

/* Page number of child @which of branch @p. */
static pgno_t img_child(pgno_t p, unsigned which)
{
	unsigned char *pg = img_page(p);
	ck_assert_uint_eq(pg_flags(pg), MK_P_BRANCH);
	ck_assert_uint_lt(which, pg_nkeys(pg));
	return nd_child(pg_node(pg, which));
}

/* The first record (smallest key) of the free-page tree. */
static unsigned char *img_first_free_record(unsigned *nent)
{
	mk_meta m;
	img_meta(&m);
	pgno_t p = m.trees[MK_TREE_FREE].root;
	ck_assert_uint_ne(p, 0);
	for (unsigned l = 1; l < m.trees[MK_TREE_FREE].depth; l++)
		p = img_child(p, 0);
	unsigned char *leaf = img_page(p);
	ck_assert_uint_eq(pg_flags(leaf), MK_P_LEAF);
	const uint8_t *nd = pg_node(leaf, 0);
	*nent = nd_leaf_vsize(nd) / 4;
	return (unsigned char *)nd_leaf_val(nd);
}

/* Make the first free-page record list exactly @n pages (the others it
 * listed are lost: harmless, and it decides which page is handed out
 * first). */
static void img_set_first_free_record(const pgno_t *pages, unsigned n)
{
	unsigned nent;
	unsigned char *v = img_first_free_record(&nent);
	ck_assert_uint_ge(nent, n);
	for (unsigned i = 0; i < nent; i++)
		pg_st32(v + 4 * i, i < n ? pages[i] : 0);
}

static void make_key(char *k, uint64_t i)
{
	tu_make_seq_key(k, 16, i);
}

/* A main tree of @nkeys keys of 16 bytes with 100-byte values (about 32
 * to a leaf), a named tree "named" of @nnamed keys, and three free-page
 * records left by three commits of updates; @m and @mn model the two
 * trees. */
static void build_writable(const char *name, int nkeys, int nnamed, tu_model *m,
			   tu_model *mn)
{
	mapkv_env *env = tu_open(name, 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	char k[32];
	unsigned char v[100];
	for (int i = 0; i < nkeys; i++) {
		make_key(k, (uint64_t)i);
		tu_fill_bytes(v, sizeof(v), (uint64_t)i);
		tu_put(txn, 0, k, 16, v, sizeof(v));
		tu_model_put(m, k, 16, v, sizeof(v));
	}
	if (nnamed) {
		mapkv_dbi d;
		ck_assert_rc(mapkv_dbi_open(txn, "named", MAPKV_CREATE, &d), 0);
		for (int i = 0; i < nnamed; i++) {
			snprintf(k, sizeof(k), "n%05d", i);
			tu_fill_bytes(v, sizeof(v), (uint64_t)i + 77);
			tu_put(txn, d, k, strlen(k), v, sizeof(v));
			tu_model_put(mn, k, strlen(k), v, sizeof(v));
		}
	}
	tu_commit(txn);
	/* A reader holds the first snapshot meanwhile, so that the updates
	 * leave a free-page record each. */
	tu_reader *rd = tu_reader_start(env);
	for (int t = 1; t <= 3; t++) {
		txn = tu_begin(env, 0);
		for (int i = t; i < nkeys; i += 10) {
			make_key(k, (uint64_t)i);
			tu_fill_bytes(v, sizeof(v), (uint64_t)i + 100000u * t);
			tu_put(txn, 0, k, 16, v, sizeof(v));
			tu_model_put(m, k, 16, v, sizeof(v));
		}
		tu_commit(txn);
	}
	tu_reader_stop(rd);
	mapkv_close(env);
}

/* The file must hold exactly @before (nothing was written). */
static void expect_file(const char *path, const unsigned char *before, size_t n,
			const char *what)
{
	size_t n2;
	unsigned char *after = tu_read_file(path, &n2);
	tu_check(n2 == n && memcmp(after, before, n) == 0,
		 "%s: the failed transaction changed the file", what);
	free(after);
}

/* Every pair of @m is found by mapkv_get with its value (a scan of a tree
 * with keys outside their ranges also returns keys no get finds). */
static void expect_gets(mapkv_env *env, tu_model *m)
{
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	for (size_t i = 0; i < tu_model_count(m); i++) {
		const tu_entry *e = tu_model_at(m, i);
		mapkv_val v;
		int rc = tu_get_rc(txn, 0, e->key, e->klen, &v);
		tu_check(rc == 0 && v.size == e->vlen &&
				 memcmp(v.data, e->val, v.size) == 0,
			 "key %s readable before: get gives %d%s",
			 tu_fmt(e->key, e->klen), rc,
			 rc ? "" : " with another value");
	}
	mapkv_txn_abort(txn);
}

/* Issue 11, bug 6a: a free-page record lists a live leaf. A transaction
 * that only added 200 keys committed and 35 old keys were gone. */
START_TEST(test_free_record_listing_a_live_leaf_fails_writer_keeps_keys)
{
	tu_model *m = tu_model_new();
	build_writable("db", 1000, 0, m, NULL);
	img_load(tu_path("db"));
	mk_meta meta;
	img_meta(&meta);
	ck_assert_uint_eq(meta.trees[MK_TREE_MAIN].depth, 2);
	pgno_t leaf = img_child(meta.trees[MK_TREE_MAIN].root, 5);
	img_set_first_free_record(&leaf, 1);
	img_reseal();
	img_save(tu_path("db"));
	size_t n;
	unsigned char *before = tu_read_file(tu_path("db"), &n);

	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	int rc = 0, i;
	char k[32];
	unsigned char v[100];
	for (i = 0; i < 200 && !rc; i++) {
		/* Between the existing keys, across the whole tree. */
		make_key(k, (uint64_t)i * 5);
		k[16] = 'x';
		tu_fill_bytes(v, sizeof(v), (uint64_t)i);
		rc = tu_put_rc(txn, 0, k, 17, v, sizeof(v), 0);
	}
	if (rc)
		mapkv_txn_abort(txn);
	else
		rc = mapkv_txn_commit(txn);
	tu_check(rc == MAPKV_CORRUPT,
		 "200 puts with page %u of the main tree listed free: %d (%s) "
		 "after %d puts",
		 leaf, rc, mapkv_strerror(rc), i);
	expect_file(tu_path("db"), before, n, "live leaf listed free");
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	free(before);
	tu_model_free(m);
}
END_TEST

/* Issue 11, bug 6b: two branch entries point to one leaf; dropping the
 * tree freed that page twice, and the next commit lost 35 keys. */
START_TEST(test_drop_of_tree_with_leaf_reached_twice_fails_and_keeps_keys)
{
	tu_model *m = tu_model_new(), *mn = tu_model_new();
	build_writable("db", 1000, 300, m, mn);
	img_load(tu_path("db"));
	mk_meta meta;
	img_meta(&meta);
	/* The named tree's record in the catalog (a one-leaf tree). */
	ck_assert_uint_eq(meta.trees[MK_TREE_CATALOG].depth, 1);
	unsigned char *cat = img_page(meta.trees[MK_TREE_CATALOG].root);
	const uint8_t *nd = pg_node(cat, 0);
	ck_assert_uint_eq(nd_leaf_vsize(nd), MK_TREE_REC_SIZE);
	tree_rec named;
	pg_tree_decode(nd_leaf_val(nd), &named);
	ck_assert_uint_eq(named.depth, 2);
	unsigned char *root = img_page(named.root);
	nd_set_child((uint8_t *)pg_node(root, 1), img_child(named.root, 0));
	img_reseal();
	img_save(tu_path("db"));
	size_t n;
	unsigned char *before = tu_read_file(tu_path("db"), &n);

	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_dbi d;
	ck_assert_rc(mapkv_dbi_open(txn, "named", 0, &d), 0);
	int rc = mapkv_dbi_drop(txn, d, 1);
	if (rc)
		mapkv_txn_abort(txn);
	else
		rc = mapkv_txn_commit(txn);
	tu_check(rc == MAPKV_CORRUPT,
		 "drop of a tree that reaches a leaf twice: %d (%s)", rc,
		 mapkv_strerror(rc));
	expect_file(tu_path("db"), before, n, "leaf reached twice");
	/* The commits that follow lose nothing. */
	char k[32];
	unsigned char v[100];
	for (int t = 0; t < 3; t++) {
		txn = tu_begin(env, 0);
		for (int i = 0; i < 200; i++) {
			make_key(k, 1000 + (uint64_t)t * 200 + (uint64_t)i);
			tu_fill_bytes(v, sizeof(v), (uint64_t)i);
			tu_put(txn, 0, k, 16, v, sizeof(v));
			tu_model_put(m, k, 16, v, sizeof(v));
		}
		tu_commit(txn);
	}
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	free(before);
	tu_model_free(m);
	tu_model_free(mn);
}
END_TEST

/* A page listed twice by the free-page records would be handed to two
 * owners: within one record, and in a record loaded after the page was
 * handed out. */
START_TEST(test_page_listed_free_twice_fails_the_writer)
{
	for (int variant = 0; variant < 2; variant++) {
		tu_model *m = tu_model_new();
		const char *name = variant ? "db1" : "db0";
		build_writable(name, 1000, 0, m, NULL);
		img_load(tu_path(name));
		unsigned nent;
		unsigned char *rec = img_first_free_record(&nent);
		pgno_t p = 0;
		for (unsigned i = 0; i < nent && !p; i++)
			p = pg_ld32(rec + 4 * i);
		ck_assert_uint_ne(p, 0);
		if (variant == 0) {
			pgno_t two[2] = {p, p};
			img_set_first_free_record(two, 2);
		} else {
			/* The first record gives p alone, and the next
			 * record (where p was) is loaded by the second
			 * allocation. */
			img_set_first_free_record(&p, 1);
			mk_meta meta;
			img_meta(&meta);
			unsigned char *leaf = img_page(
				meta.trees[MK_TREE_FREE].depth == 1
					? meta.trees[MK_TREE_FREE].root
					: img_child(
						  meta.trees[MK_TREE_FREE].root,
						  0));
			ck_assert_uint_ge(pg_nkeys(leaf), 2);
			pg_st32((uint8_t *)nd_leaf_val(pg_node(leaf, 1)), p);
		}
		img_reseal();
		img_save(tu_path(name));
		size_t n;
		unsigned char *before = tu_read_file(tu_path(name), &n);
		mapkv_env *env = tu_open(name, 0, 0);
		mapkv_txn *txn = tu_begin(env, 0);
		char k[32];
		int rc = 0;
		for (int i = 0; i < 200 && !rc; i++) {
			make_key(k, (uint64_t)i * 5);
			k[16] = 'y';
			rc = tu_put_rc(txn, 0, k, 17, "v", 1, 0);
		}
		if (rc)
			mapkv_txn_abort(txn);
		else
			rc = mapkv_txn_commit(txn);
		tu_check(rc == MAPKV_CORRUPT,
			 "page %u listed free twice (%s): %d (%s)", p,
			 variant ? "in two records" : "in one record", rc,
			 mapkv_strerror(rc));
		expect_file(tu_path(name), before, n, "page listed twice");
		tu_verify_db(env, 0, m);
		mapkv_close(env);
		free(before);
		tu_model_free(m);
	}
}
END_TEST

/* Separator 4 of the main tree's root raised into the middle of child 4's
 * keys: the lower ones then lie outside the range the root gives them
 * (unreadable), and a writer that inserts into child 4 until it splits
 * puts a separator out of order in the root, after which keys of other
 * children could not be found (found by fuzz_open). */
START_TEST(test_put_into_leaf_with_keys_outside_its_range_fails_keeps_keys)
{
	tu_model *m = tu_model_new();
	build_writable("db", 1000, 0, m, NULL);
	img_load(tu_path("db"));
	mk_meta meta;
	img_meta(&meta);
	ck_assert_uint_eq(meta.trees[MK_TREE_MAIN].depth, 2);
	unsigned char *root = img_page(meta.trees[MK_TREE_MAIN].root);
	ck_assert_uint_ge(pg_nkeys(root), 6);
	uint8_t *s4 = (uint8_t *)pg_node(root, 4);
	unsigned l4 = nd_branch_ksize(s4);
	unsigned char *c4 = img_page(nd_child(s4));
	const uint8_t *mid = pg_node(c4, pg_nkeys(c4) / 2);
	ck_assert_uint_le(l4, nd_leaf_ksize(mid));
	/* The middle key's first l4 bytes: above child 4's first key. */
	memcpy((uint8_t *)nd_branch_key(s4), nd_leaf_key(mid), l4);
	const uint8_t *first = pg_node(c4, 0);
	ck_assert_int_gt(memcmp(nd_branch_key(s4), nd_leaf_key(first), l4), 0);
	img_reseal();
	img_save(tu_path("db"));
	size_t n;
	unsigned char *before = tu_read_file(tu_path("db"), &n);

	/* What is still readable. */
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *readable = tu_model_new();
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	for (size_t i = 0; i < tu_model_count(m); i++) {
		const tu_entry *e = tu_model_at(m, i);
		mapkv_val v;
		if (tu_get_rc(txn, 0, e->key, e->klen, &v) == 0)
			tu_model_put(readable, e->key, e->klen, v.data, v.size);
	}
	mapkv_txn_abort(txn);
	ck_assert_uint_lt(tu_model_count(readable), tu_model_count(m));

	/* Keys in child 4's narrowed range: s4 followed by a suffix. */
	txn = tu_begin(env, 0);
	int rc = 0, i;
	unsigned char v[100];
	for (i = 0; i < 200 && !rc; i++) {
		char k[80];
		memcpy(k, nd_branch_key(s4), l4);
		snprintf(k + l4, sizeof(k) - l4, "-%03d", i);
		tu_fill_bytes(v, sizeof(v), (uint64_t)i);
		rc = tu_put_rc(txn, 0, k, strlen(k), v, sizeof(v), 0);
	}
	if (rc)
		mapkv_txn_abort(txn);
	else
		rc = mapkv_txn_commit(txn);
	tu_check(rc == MAPKV_CORRUPT,
		 "puts into a leaf with keys outside its range: %d (%s) "
		 "after %d puts",
		 rc, mapkv_strerror(rc), i);
	expect_file(tu_path("db"), before, n, "keys outside their range");
	expect_gets(env, readable);
	mapkv_close(env);
	free(before);
	tu_model_free(readable);
	tu_model_free(m);
}
END_TEST

/* A leaf whose first key is lowered below the keys of its left sibling
 * (still in order within the leaf): deletes that empty the sibling merge
 * the two, and the merged leaf would be out of order, its keys no longer
 * found by a search. */
START_TEST(test_merge_with_sibling_holding_lower_keys_fails_and_keeps_keys)
{
	tu_model *m = tu_model_new();
	build_writable("db", 1000, 0, m, NULL);
	/* First, undamaged: the right leaf loses two thirds of its keys, so
	 * that the two fit one page. */
	img_load(tu_path("db"));
	mk_meta meta;
	img_meta(&meta);
	unsigned char *r4 =
		img_page(img_child(meta.trees[MK_TREE_MAIN].root, 4));
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	for (unsigned i = pg_nkeys(r4) / 3; i < pg_nkeys(r4); i++) {
		const uint8_t *nd = pg_node(r4, i);
		ck_assert_rc(
			tu_del_rc(txn, 0, nd_leaf_key(nd), nd_leaf_ksize(nd)),
			0);
		tu_model_del(m, nd_leaf_key(nd), nd_leaf_ksize(nd));
	}
	tu_commit(txn);
	mapkv_close(env);
	img_load(tu_path("db"));
	img_meta(&meta);
	pgno_t left = img_child(meta.trees[MK_TREE_MAIN].root, 3);
	pgno_t right = img_child(meta.trees[MK_TREE_MAIN].root, 4);
	unsigned char *lp = img_page(left), *rp = img_page(right);
	/* The right leaf's first key becomes the left leaf's first key with
	 * its last byte lowered: below every key of the left leaf. */
	const uint8_t *l0 = pg_node(lp, 0);
	uint8_t *r0 = (uint8_t *)pg_node(rp, 0);
	ck_assert_uint_eq(nd_leaf_ksize(l0), 16);
	ck_assert_uint_eq(nd_leaf_ksize(r0), 16);
	memcpy((uint8_t *)nd_leaf_key(r0), nd_leaf_key(l0), 16);
	((uint8_t *)nd_leaf_key(r0))[15]--;
	img_reseal();
	img_save(tu_path("db"));
	size_t n;
	unsigned char *before = tu_read_file(tu_path("db"), &n);

	env = tu_open("db", 0, 0);
	tu_model *readable = tu_model_new();
	txn = tu_begin(env, MAPKV_RDONLY);
	for (size_t i = 0; i < tu_model_count(m); i++) {
		const tu_entry *e = tu_model_at(m, i);
		mapkv_val v;
		if (tu_get_rc(txn, 0, e->key, e->klen, &v) == 0)
			tu_model_put(readable, e->key, e->klen, v.data, v.size);
	}
	/* The keys of the left leaf, to delete. */
	tu_model *dels = tu_model_new();
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(txn, 0, &cur), 0);
	mapkv_val k, v;
	ck_assert_rc(mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST), 0);
	/* All but a few: the leaf is then under a quarter full but not
	 * empty, and merges with its right sibling. */
	for (unsigned i = 0; i + 3 < pg_nkeys(lp); i++) {
		const uint8_t *nd = pg_node(lp, i);
		tu_model_put(dels, nd_leaf_key(nd), nd_leaf_ksize(nd), "", 0);
	}
	mapkv_cursor_close(cur);
	mapkv_txn_abort(txn);

	txn = tu_begin(env, 0);
	int rc = 0;
	size_t i;
	for (i = 0; i < tu_model_count(dels) && !rc; i++) {
		const tu_entry *e = tu_model_at(dels, i);
		rc = tu_del_rc(txn, 0, e->key, e->klen);
		if (!rc)
			tu_model_del(readable, e->key, e->klen);
	}
	if (rc)
		mapkv_txn_abort(txn);
	else
		rc = mapkv_txn_commit(txn);
	tu_check(rc == MAPKV_CORRUPT,
		 "deletes merging a leaf with a sibling holding lower keys: "
		 "%d (%s) after %zu deletes",
		 rc, mapkv_strerror(rc), i);
	expect_file(tu_path("db"), before, n, "merge out of order");
	expect_gets(env, readable);
	mapkv_close(env);
	free(before);
	tu_model_free(dels);
	tu_model_free(readable);
	tu_model_free(m);
}
END_TEST

/* ---- each check on its own (white-box) ---- */

/* A three-level main tree: leaf L (of key 1000) and leaf X (of key 1100)
 * under branch B, key 19000 under another branch. */
typedef struct layer_db {
	mapkv_env *env;
	tu_model *m;
	char kl[32], kx[32], kc[32];
	pgno_t leaf_l, leaf_x, branch_b;
} layer_db;

static pgno_t path_page(mapkv_txn *txn, const char *key, int level)
{
	bt_path p;
	int exact;
	ck_assert_rc(bt_search(&txn->pg, &txn->main.rec, key, 16, &p, &exact),
		     0);
	ck_assert(exact);
	ck_assert_int_lt(level, p.depth);
	return pg_pgno(p.pg[level]);
}

static void layer_open(layer_db *d)
{
	d->m = tu_model_new();
	build_writable("db", 20000, 0, d->m, NULL);
	d->env = tu_open("db", 0, 0);
	make_key(d->kl, 1000);
	make_key(d->kx, 1100);
	make_key(d->kc, 19000);
	mapkv_txn *txn = tu_begin(d->env, MAPKV_RDONLY);
	ck_assert_uint_eq(txn->main.rec.depth, 3);
	d->leaf_l = path_page(txn, d->kl, 2);
	d->leaf_x = path_page(txn, d->kx, 2);
	d->branch_b = path_page(txn, d->kl, 1);
	ck_assert_uint_ne(d->leaf_l, d->leaf_x);
	ck_assert_uint_eq(path_page(txn, d->kx, 1), d->branch_b);
	ck_assert_uint_ne(path_page(txn, d->kc, 1), d->branch_b);
	mapkv_txn_abort(txn);
}

/* A write transaction whose pager takes its pages only from what the test
 * gives it (no free-page records loaded) or from the end of the file. */
static mapkv_txn *layer_begin(layer_db *d)
{
	mapkv_txn *txn = tu_begin(d->env, 0);
	txn->pg.reclaim = NULL;
	return txn;
}

/* As if a free-page record had listed live page @p. */
static void layer_give(mapkv_txn *txn, pgno_t p)
{
	ck_assert_rc(pager_add_reuse(&txn->pg, &p, 1), 0);
}

static void layer_close(layer_db *d)
{
	tu_verify_db(d->env, 0, d->m);
	mapkv_close(d->env);
	tu_model_free(d->m);
}

static int layer_put(mapkv_txn *txn, const char *k)
{
	return tu_put_rc(txn, 0, k, 16, "new value", 9, 0);
}

/* (iii) Copying a committed branch whose child is a page this transaction
 * has reused (the root's copy took L): the copy would keep the link. */
START_TEST(test_copy_of_branch_whose_child_was_reused_is_corrupt)
{
	layer_db d;
	layer_open(&d);
	mapkv_txn *txn = layer_begin(&d);
	layer_give(txn, d.leaf_l);
	ck_assert_rc(layer_put(txn, d.kx), MAPKV_CORRUPT);
	mapkv_txn_abort(txn);
	layer_close(&d);
}
END_TEST

/* (iv) A search that goes from a committed branch to a page this
 * transaction has reused. */
START_TEST(test_search_from_committed_branch_into_reused_page_is_corrupt)
{
	layer_db d;
	layer_open(&d);
	mapkv_txn *txn = layer_begin(&d);
	char ky[32];
	make_key(ky, 19100); /* another leaf beside that of key 19000 */
	ck_assert_rc(layer_put(txn, d.kc), 0);
	/* The copy of that leaf takes L; branch B is left as it is, and
	 * L now holds a leaf that passes every check of its own. */
	layer_give(txn, d.leaf_l);
	ck_assert_rc(layer_put(txn, ky), 0);
	ck_assert_uint_eq(path_page(txn, ky, 2), d.leaf_l);
	mapkv_val out;
	ck_assert_rc(tu_get_rc(txn, 0, d.kl, 16, &out), MAPKV_CORRUPT);
	mapkv_txn_abort(txn);
	layer_close(&d);
}
END_TEST

/* (v) B is copied first (its copy still links L), then L is reused for
 * another copy: at commit L is linked twice. */
START_TEST(test_commit_with_page_linked_twice_is_corrupt_and_writes_nothing)
{
	layer_db d;
	layer_open(&d);
	size_t n;
	unsigned char *before = tu_read_file(tu_path("db"), &n);
	mapkv_txn *txn = layer_begin(&d);
	ck_assert_rc(layer_put(txn, d.kx), 0);
	layer_give(txn, d.leaf_l);
	ck_assert_rc(layer_put(txn, d.kc), 0);
	ck_assert_rc(mapkv_txn_commit(txn), MAPKV_CORRUPT);
	expect_file(tu_path("db"), before, n, "page linked twice");
	free(before);
	layer_close(&d);
}
END_TEST

/* The same checks for a live page inside a run (an overflow value) made
 * of free pages: the dirty table holds only a run's first page. */
START_TEST(test_live_page_inside_a_reused_run_is_corrupt)
{
	layer_db d;
	layer_open(&d);
	size_t n;
	unsigned char *before = tu_read_file(tu_path("db"), &n);
	for (int c = 0; c < 2; c++) {
		mapkv_txn *txn = layer_begin(&d);
		pgno_t run[3] = {d.leaf_l - 1, d.leaf_l, d.leaf_l + 1};
		ck_assert_rc(pager_add_reuse(&txn->pg, run, 3), 0);
		page *p;
		ck_assert_rc(pager_alloc(&txn->pg, 3, &p), 0);
		ck_assert_uint_eq(pg_pgno(p), d.leaf_l - 1);
		if (c == 0) {
			/* (iv): B leads into the run. */
			mapkv_val out;
			ck_assert_rc(tu_get_rc(txn, 0, d.kl, 16, &out),
				     MAPKV_CORRUPT);
			mapkv_txn_abort(txn);
		} else {
			/* (i): freed, and written as part of the run. */
			ck_assert_rc(pager_free(&txn->pg, d.leaf_l, 1), 0);
			ck_assert_rc(mapkv_txn_commit(txn), MAPKV_CORRUPT);
		}
		expect_file(tu_path("db"), before, n, "live page in a run");
	}
	free(before);
	layer_close(&d);
}
END_TEST

/* (i) A page freed twice in one transaction; a page freed while it is in
 * the reuse list; a reused page freed twice (once as private, once as
 * committed). */
START_TEST(test_page_freed_twice_is_corrupt_at_commit)
{
	layer_db d;
	layer_open(&d);
	size_t n;
	unsigned char *before = tu_read_file(tu_path("db"), &n);
	char msg[600] = "";
	int bad = 0;
	for (int c = 0; c < 3; c++) {
		mapkv_txn *txn = layer_begin(&d);
		pager *pg = &txn->pg;
		if (c == 0) {
			/* The put frees X (copied); then X again. */
			ck_assert_rc(layer_put(txn, d.kx), 0);
			ck_assert_rc(pager_free(pg, d.leaf_x, 1), 0);
		} else if (c == 1) {
			layer_give(txn, d.leaf_l);
			ck_assert_rc(pager_free(pg, d.leaf_l, 1), 0);
		} else {
			page *p;
			layer_give(txn, d.leaf_l);
			ck_assert_rc(pager_alloc(pg, 1, &p), 0);
			ck_assert_uint_eq(pg_pgno(p), d.leaf_l);
			ck_assert_rc(pager_free(pg, d.leaf_l, 1), 0);
			ck_assert_rc(pager_free(pg, d.leaf_l, 1), 0);
		}
		int rc = mapkv_txn_commit(txn);
		if (rc != MAPKV_CORRUPT)
			bad += snprintf(msg + bad, sizeof(msg) - (size_t)bad,
					" case %d: commit gave %d (%s);", c, rc,
					mapkv_strerror(rc));
		expect_file(tu_path("db"), before, n, "page freed twice");
	}
	tu_check(bad == 0, "%s", msg);
	free(before);
	layer_close(&d);
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
	tcase_add_test(
		tc,
		test_short_file_with_a_damaged_meta_keeps_commits_after_reopen);
	tc = tu_tcase(s, "damage", 600);
	tcase_add_test(
		tc,
		test_flipped_byte_in_every_page_never_crashes_and_gives_clear_codes);
	tcase_add_test(tc,
		       test_truncated_database_fails_cleanly_or_reads_safely);
	tc = tu_tcase(s, "writers", 120);
	tcase_add_test(
		tc,
		test_free_record_listing_a_live_leaf_fails_writer_keeps_keys);
	tcase_add_test(
		tc,
		test_drop_of_tree_with_leaf_reached_twice_fails_and_keeps_keys);
	tcase_add_test(tc, test_page_listed_free_twice_fails_the_writer);
	tcase_add_test(
		tc,
		test_put_into_leaf_with_keys_outside_its_range_fails_keeps_keys);
	tcase_add_test(
		tc,
		test_merge_with_sibling_holding_lower_keys_fails_and_keeps_keys);
	tcase_add_test(tc,
		       test_copy_of_branch_whose_child_was_reused_is_corrupt);
	tcase_add_test(
		tc,
		test_search_from_committed_branch_into_reused_page_is_corrupt);
	tcase_add_test(
		tc,
		test_commit_with_page_linked_twice_is_corrupt_and_writes_nothing);
	tcase_add_test(tc, test_page_freed_twice_is_corrupt_at_commit);
	tcase_add_test(tc, test_live_page_inside_a_reused_run_is_corrupt);
	return tu_run_suite(s);
}
