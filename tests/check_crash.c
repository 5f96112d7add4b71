/*
 * check_crash.c: crash safety.
 *
 * 1. A forked child commits transactions in a loop and is killed with
 *    SIGKILL at random moments. After every kill the parent reopens the
 *    file and checks that it holds exactly a prefix of the child's
 *    transactions: every transaction up to some L, none of L+1, nothing
 *    partial, and at least every transaction whose commit had returned
 *    (the child reports each one through a pipe after mapkv_txn_commit()
 *    returns 0).
 *
 *    Transaction i of the child writes:
 *      k<i>       "i=<i> txn=<txn id>|<16 hex digits of a hash of the
 *                 part before>"
 *      f<i>.<j>   for j < i % 5: a value of (i*37 + j*101) % 3000 bytes
 *      b<x>       when i % 7 == 0, x = (i / 7) % 3: a 20,000-byte value
 *                 (overflow pages, replaced again and again)
 *      last       "<i>"
 *    and deletes f<i-20>.<j>. So the state after transaction L is known
 *    exactly, apart from the txn ids, which must increase with i.
 *
 * 2. A meta page damaged on purpose: open falls back to the other one (the
 *    previous commit); both damaged gives MAPKV_CORRUPT.
 *    ASSUMPTION (from src/page.h, not from the public header): pages 0 and
 *    1 of the file are the meta pages, page size from mapkv_env_info, the
 *    commit with id T writes meta page T % 2, and byte 40 of a meta page
 *    is covered by its checksum (the meta checksum covers at least bytes
 *    [0, 176): the header fields and the three tree records).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIGV 20000
#define META_FLIP_OFFSET 40

static size_t kval(char *buf, size_t cap, long i, unsigned long long txnid)
{
	int n = snprintf(buf, cap, "i=%ld txn=%llu|", i, txnid);
	uint64_t h = tu_hash64(buf, (size_t)n);
	n += snprintf(buf + n, cap - (size_t)n, "%016llx",
		      (unsigned long long)h);
	return (size_t)n;
}

static size_t fsize(long i, int j)
{
	return (size_t)((i * 37 + j * 101) % 3000);
}

/* The child: commit transactions start, start+1, ... until killed. */
static void child_main(const char *path, long start, int wfd, unsigned flags)
{
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.flags = flags;
	o.max_size = tu_default_max_size();
	mapkv_env *env = NULL;
	int rc = mapkv_open(&env, path, &o);
	if (rc) {
		fprintf(stderr, "crash child: open: %s\n", mapkv_strerror(rc));
		_exit(2);
	}
	static unsigned char buf[BIGV];
	char k[64], v[128];
	for (long i = start;; i++) {
		mapkv_txn *txn = NULL;
		rc = mapkv_txn_begin(env, 0, &txn);
		if (rc)
			goto fail;
		snprintf(k, sizeof(k), "k%08ld", i);
		size_t vl = kval(v, sizeof(v), i,
				 (unsigned long long)mapkv_txn_id(txn));
		mapkv_val key = {k, strlen(k)}, val = {v, vl};
		if ((rc = mapkv_put(txn, 0, &key, &val, 0)))
			goto fail;
		for (int j = 0; j < i % 5; j++) {
			snprintf(k, sizeof(k), "f%08ld.%d", i, j);
			tu_fill_bytes(buf, fsize(i, j), (uint64_t)(i * 10 + j));
			mapkv_val fk = {k, strlen(k)}, fv = {buf, fsize(i, j)};
			if ((rc = mapkv_put(txn, 0, &fk, &fv, 0)))
				goto fail;
		}
		if (i >= 20) {
			for (int j = 0; j < (i - 20) % 5; j++) {
				snprintf(k, sizeof(k), "f%08ld.%d", i - 20, j);
				mapkv_val fk = {k, strlen(k)};
				if ((rc = mapkv_del(txn, 0, &fk)))
					goto fail;
			}
		}
		if (i % 7 == 0) {
			snprintf(k, sizeof(k), "b%ld", (i / 7) % 3);
			tu_fill_bytes(buf, BIGV, (uint64_t)i);
			mapkv_val bk = {k, strlen(k)}, bv = {buf, BIGV};
			if ((rc = mapkv_put(txn, 0, &bk, &bv, 0)))
				goto fail;
		}
		snprintf(v, sizeof(v), "%ld", i);
		mapkv_val lk = {"last", 4}, lv = {v, strlen(v)};
		if ((rc = mapkv_put(txn, 0, &lk, &lv, 0)))
			goto fail;
		if ((rc = mapkv_txn_commit(txn))) {
			fprintf(stderr, "crash child: commit %ld: %s\n", i,
				mapkv_strerror(rc));
			_exit(3);
		}
		if (write(wfd, &i, sizeof(i)) != sizeof(i))
			_exit(4);
		continue;
	fail:
		fprintf(stderr, "crash child: txn %ld: %s\n", i,
			mapkv_strerror(rc));
		_exit(3);
	}
}

/* Model of everything but the k<i> keys after transaction L. */
static tu_model *expected_state(long L)
{
	tu_model *m = tu_model_new();
	if (L < 0)
		return m;
	static unsigned char buf[BIGV];
	char k[64], v[32];
	snprintf(v, sizeof(v), "%ld", L);
	tu_model_put(m, "last", 4, v, strlen(v));
	for (long i = L - 19 < 0 ? 0 : L - 19; i <= L; i++) {
		for (int j = 0; j < i % 5; j++) {
			snprintf(k, sizeof(k), "f%08ld.%d", i, j);
			tu_fill_bytes(buf, fsize(i, j), (uint64_t)(i * 10 + j));
			tu_model_put(m, k, strlen(k), buf, fsize(i, j));
		}
	}
	for (long x = 0; x < 3; x++) {
		for (long i = L; i >= 0; i--) {
			if (i % 7 == 0 && (i / 7) % 3 == x) {
				snprintf(k, sizeof(k), "b%ld", x);
				tu_fill_bytes(buf, BIGV, (uint64_t)i);
				tu_model_put(m, k, strlen(k), buf, BIGV);
				break;
			}
		}
	}
	return m;
}

/* Open the file after a kill and check it holds exactly the prefix of the
 * child's transactions up to "last"; returns L (-1: no commit yet). */
static long verify_prefix(const char *name, unsigned flags, int kill_no)
{
	mapkv_env *env = NULL;
	int rc = tu_open_rc(&env, name, flags, 0);
	tu_check(rc == 0, "kill %d: reopen failed: %d (%s)", kill_no, rc,
		 mapkv_strerror(rc));
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_val v;
	long L = -1;
	rc = tu_get_rc(txn, 0, "last", 4, &v);
	if (rc == 0) {
		char b[32];
		tu_check(v.size > 0 && v.size < sizeof(b),
			 "kill %d: \"last\" has %zu bytes", kill_no, v.size);
		memcpy(b, v.data, v.size);
		b[v.size] = 0;
		L = strtol(b, NULL, 10);
	} else {
		tu_check(rc == MAPKV_NOTFOUND, "kill %d: get last: %d (%s)",
			 kill_no, rc, mapkv_strerror(rc));
	}
	tu_model *m = expected_state(L);
	unsigned long long prev_txn = 0;
	char k[64], want[128];
	for (long i = 0; i <= L; i++) {
		snprintf(k, sizeof(k), "k%08ld", i);
		rc = tu_get_rc(txn, 0, k, strlen(k), &v);
		tu_check(rc == 0,
			 "kill %d: last=%ld but %s is missing (%d, %s): not a "
			 "prefix",
			 kill_no, L, k, rc, mapkv_strerror(rc));
		long gi = -1;
		unsigned long long gt = 0;
		char got[128];
		tu_check(v.size < sizeof(got), "kill %d: %s has %zu bytes",
			 kill_no, k, v.size);
		memcpy(got, v.data, v.size);
		got[v.size] = 0;
		tu_check(sscanf(got, "i=%ld txn=%llu|", &gi, &gt) == 2 &&
				 gi == i,
			 "kill %d: %s holds %s", kill_no, k,
			 tu_fmt(v.data, v.size));
		size_t wl = kval(want, sizeof(want), i, gt);
		tu_check(wl == v.size && memcmp(want, got, wl) == 0,
			 "kill %d: %s holds %s, expected %s (damaged)", kill_no,
			 k, got, want);
		tu_check(gt > prev_txn,
			 "kill %d: txn ids do not increase: %s has %llu after "
			 "%llu",
			 kill_no, k, gt, prev_txn);
		prev_txn = gt;
		tu_model_put(m, k, strlen(k), got, v.size);
	}
	/* The exact key set: nothing of L+1 or later, nothing missing. */
	char err[1024];
	rc = tu_verify_txn_msg(txn, 0, m, err, sizeof(err));
	tu_check(rc == 0, "kill %d, last=%ld: %s", kill_no, L, err);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	tu_model_free(m);
	return L;
}

static void kill_loop(unsigned flags, int kills)
{
	tu_rng r;
	tu_rng_init(&r, tu_seed(flags ? 0xc4a502 : 0xc4a501));
	const char *path = tu_path("db");
	long next = 0; /* first transaction of the next child */
	long total_reported = 0;
	for (int kn = 0; kn < kills; kn++) {
		int fds[2];
		ck_assert_int_eq(pipe(fds), 0);
		fflush(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			child_main(path, next, fds[1], flags);
			_exit(5);
		}
		close(fds[1]);
		long got, reported = next - 1;
		/* Every other kill waits for a first commit, so that kills
		 * land in the middle of later ones (and the loop surely makes
		 * progress); the others may hit the open or the first
		 * commit. */
		if (kn % 2 == 0) {
			ssize_t n = read(fds[0], &got, sizeof(got));
			tu_check(n == sizeof(got),
				 "kill %d: the child ended before its first "
				 "commit",
				 kn);
			if (got > reported)
				reported = got;
		}
		usleep((useconds_t)tu_rng_below(&r, 30000));
		kill(pid, SIGKILL);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		tu_check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			 "kill %d: the child ended by itself (status %#x) "
			 "before it was killed: see its stderr",
			 kn, status);
		ssize_t n;
		while ((n = read(fds[0], &got, sizeof(got))) == sizeof(got))
			if (got > reported)
				reported = got;
		close(fds[0]);

		long L = verify_prefix("db", flags, kn);
		/* Every commit that returned is there, and at most the one
		 * that was running when the kill came is there besides. */
		tu_check(L >= reported,
			 "kill %d: the child reported commit %ld as done but "
			 "the file ends at %ld",
			 kn, reported, L);
		tu_check(L <= reported + 1,
			 "kill %d: the file holds commit %ld but the child "
			 "only got to start %ld",
			 kn, L, reported + 1);
		total_reported += reported - next + 1;
		next = L + 1;
	}
	/* The loop really committed things: each waiting kill added at
	 * least one. */
	tu_check(next >= kills / 2,
		 "only %ld transactions committed in %d kills (%ld reported)",
		 next, kills, total_reported);
}

START_TEST(test_sigkill_during_commits_leaves_exact_prefix_of_transactions)
{
	kill_loop(0, (int)tu_scale(50, 500));
}
END_TEST

START_TEST(test_sigkill_with_nosync_leaves_exact_prefix_of_transactions)
{
	/* MAPKV_NOSYNC: "a commit survives a crash of the process". */
	kill_loop(MAPKV_NOSYNC, (int)tu_scale(30, 300));
}
END_TEST

/* Commit states 1..n; state s has "state" = s and a model snapshot. */
static void make_states(mapkv_env *env, tu_model **models, int n)
{
	tu_model *m = tu_model_new();
	char k[32], v[32];
	for (int s = 1; s <= n; s++) {
		mapkv_txn *txn = tu_begin(env, 0);
		for (int i = 0; i < 300; i++) {
			snprintf(k, sizeof(k), "key%05d",
				 (i * 7 + s * 13) % 1000);
			snprintf(v, sizeof(v), "s%d-%d", s, i);
			tu_put_str(txn, 0, k, v);
			tu_model_put(m, k, strlen(k), v, strlen(v));
		}
		snprintf(v, sizeof(v), "%d", s);
		tu_put_str(txn, 0, "state", v);
		tu_model_put(m, "state", 5, v, strlen(v));
		tu_commit(txn);
		models[s] = tu_model_clone(m);
	}
	tu_model_free(m);
}

static int read_state(mapkv_env *env)
{
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_val v;
	ck_assert_rc(tu_get_rc(txn, 0, "state", 5, &v), 0);
	char b[16] = {0};
	ck_assert_uint_lt(v.size, sizeof(b));
	memcpy(b, v.data, v.size);
	mapkv_txn_abort(txn);
	return atoi(b);
}

START_TEST(test_damaged_newest_meta_falls_back_to_previous_commit)
{
	enum { N = 5 };
	tu_model *models[N + 1] = {0};
	mapkv_env *env = tu_open("db", 0, 0);
	make_states(env, models, N);
	mapkv_envinfo info = tu_env_info(env);
	uint64_t T = info.last_txnid, P = info.page_size;
	mapkv_close(env);

	int state_of[2];
	for (int p = 0; p < 2; p++) {
		char name[16];
		snprintf(name, sizeof(name), "meta%d", p);
		tu_copy_file(tu_path("db"), tu_path(name));
		tu_flip_byte(tu_path(name), p * P + META_FLIP_OFFSET, 0xff);
		mapkv_env *e = NULL;
		int rc = tu_open_rc(&e, name, 0, 0);
		tu_check(rc == 0,
			 "meta page %d damaged: open gave %d (%s), expected "
			 "the other meta page to be used",
			 p, rc, mapkv_strerror(rc));
		int s = read_state(e);
		tu_check(s == N || s == N - 1,
			 "meta page %d damaged: state %d, expected %d or %d", p,
			 s, N, N - 1);
		tu_verify_db(e, 0, models[s]);
		/* A writable open rewrites the damaged meta page as a copy
		 * of the other one under the next id, so the id is the
		 * commit opened at, or one more. */
		uint64_t id = tu_env_info(e).last_txnid,
			 at = s == N ? T : T - 1;
		tu_check(id == at || id == at + 1,
			 "meta page %d damaged: opened at id %llu, expected "
			 "%llu or %llu",
			 p, (unsigned long long)id, (unsigned long long)at,
			 (unsigned long long)at + 1);
		state_of[p] = s;
		mapkv_close(e);
	}
	tu_check(state_of[0] != state_of[1],
		 "damaging either meta page gave the same state %d",
		 state_of[0]);
	/* Per the format: the commit with id T wrote meta page T % 2. */
	ck_assert_int_eq(state_of[T % 2], N - 1);

	/* After the fallback the file is writable and consistent. */
	char name[16];
	snprintf(name, sizeof(name), "meta%d", (int)(T % 2));
	env = tu_open(name, 0, 0);
	tu_model *m = tu_model_clone(models[N - 1]);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "state", "99");
	tu_model_put(m, "state", 5, "99", 2);
	tu_put_str(txn, 0, "new", "after fallback");
	tu_model_put(m, "new", 3, "after fallback", 14);
	tu_commit(txn);
	mapkv_close(env);
	env = tu_open(name, 0, 0);
	tu_verify_db(env, 0, m);
	ck_assert_int_eq(read_state(env), 99);
	mapkv_close(env);

	tu_model_free(m);
	for (int s = 1; s <= N; s++)
		tu_model_free(models[s]);
}
END_TEST

START_TEST(test_both_metas_damaged_gives_corrupt)
{
	tu_model *models[4] = {0};
	mapkv_env *env = tu_open("db", 0, 0);
	make_states(env, models, 3);
	uint64_t P = tu_env_info(env).page_size;
	mapkv_close(env);
	/* Different fields: a tree record, the txn id, another record. */
	static const uint64_t offs[] = {META_FLIP_OFFSET, 16, 100};
	for (int i = 0; i < 3; i++) {
		tu_copy_file(tu_path("db"), tu_path("both"));
		tu_flip_byte(tu_path("both"), offs[i], 0x01);
		tu_flip_byte(tu_path("both"), P + offs[i], 0x01);
		mapkv_env *e = (mapkv_env *)1;
		ck_assert_rc(tu_open_rc(&e, "both", 0, 0), MAPKV_CORRUPT);
		ck_assert_ptr_null(e);
		e = (mapkv_env *)1;
		ck_assert_rc(tu_open_rc(&e, "both", MAPKV_RDONLY, 0),
			     MAPKV_CORRUPT);
	}
	for (int s = 1; s <= 3; s++)
		tu_model_free(models[s]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tu_tcase(s, "kill", 600);
	tcase_add_test(
		tc,
		test_sigkill_during_commits_leaves_exact_prefix_of_transactions);
	tcase_add_test(
		tc,
		test_sigkill_with_nosync_leaves_exact_prefix_of_transactions);
	tc = tu_tcase(s, "meta", 120);
	tcase_add_test(tc,
		       test_damaged_newest_meta_falls_back_to_previous_commit);
	tcase_add_test(tc, test_both_metas_damaged_gives_corrupt);
	return tu_run_suite(s);
}
