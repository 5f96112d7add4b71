/*
 * check_txn.c: transactions: abort, snapshot isolation, the single writer,
 * concurrent readers, durability across reopen, read-only environments,
 * the size limit and failed transactions.
 *
 * The header asks for one transaction per thread at a time, so whenever a
 * reader and a writer must overlap, one of them runs in another thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tu_model *put_n(mapkv_env *env, tu_model *m, const char *prefix,
		       int from, int to)
{
	char k[64], v[64];
	mapkv_txn *txn = tu_begin(env, 0);
	for (int i = from; i < to; i++) {
		snprintf(k, sizeof(k), "%s%06d", prefix, i);
		snprintf(v, sizeof(v), "val-%s-%d", prefix, i);
		tu_put_str(txn, 0, k, v);
		if (m)
			tu_model_put(m, k, strlen(k), v, strlen(v));
	}
	tu_commit(txn);
	return m;
}

START_TEST(test_abort_discards_puts_and_dels)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = put_n(env, tu_model_new(), "k", 0, 2000);
	uint64_t last = tu_env_info(env).last_txnid;

	mapkv_txn *txn = tu_begin(env, 0);
	char k[32];
	for (int i = 0; i < 2000; i += 3) { /* deletes */
		snprintf(k, sizeof(k), "k%06d", i);
		ck_assert_rc(tu_del_rc(txn, 0, k, strlen(k)), 0);
	}
	for (int i = 1; i < 2000; i += 3) /* replacements */
		tu_put_str(txn, 0, (snprintf(k, sizeof(k), "k%06d", i), k),
			   "changed");
	for (int i = 0; i < 3000; i++) /* inserts */
		tu_put_str(txn, 0, (snprintf(k, sizeof(k), "new%06d", i), k),
			   "x");
	static unsigned char big[100000];
	tu_put(txn, 0, "big", 3, big, sizeof(big));
	/* The writer sees its changes... */
	tu_expect_str(txn, 0, "k000000", NULL);
	tu_expect_str(txn, 0, "k000001", "changed");
	tu_expect_str(txn, 0, "new000000", "x");
	mapkv_txn_abort(txn);

	/* ...nobody else ever does. */
	tu_verify_db(env, 0, m);
	ck_assert_uint_eq(tu_env_info(env).last_txnid, last);
	/* A write transaction after the abort starts from the last commit. */
	txn = tu_begin(env, 0);
	tu_verify_txn(txn, 0, m);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

/* Reader thread helpers. */
struct value_probe {
	const char *key;
	const void *ptr; /* value pointer taken at the first call */
	unsigned char copy[256];
	size_t size;
};

static int probe_take(mapkv_txn *txn, void *ctx, char *err, size_t errlen)
{
	struct value_probe *p = ctx;
	mapkv_val k = {p->key, strlen(p->key)}, v;
	int rc = mapkv_get(txn, 0, &k, &v);
	if (rc || v.size > sizeof(p->copy)) {
		snprintf(err, errlen, "get %s: %d (%s) size %zu", p->key, rc,
			 mapkv_strerror(rc), rc ? 0 : v.size);
		return -1;
	}
	p->ptr = v.data;
	p->size = v.size;
	memcpy(p->copy, v.data, v.size);
	return 0;
}

static int probe_same(mapkv_txn *txn, void *ctx, char *err, size_t errlen)
{
	(void)txn;
	struct value_probe *p = ctx;
	/* The memory returned by get stays valid and unchanged for the life
	 * of the read transaction, whatever the writer does. */
	if (memcmp(p->ptr, p->copy, p->size) != 0) {
		snprintf(err, errlen,
			 "value of %s changed under the reader: was %s, now %s",
			 p->key, tu_fmt(p->copy, p->size),
			 tu_fmt(p->ptr, p->size));
		return -1;
	}
	return 0;
}

START_TEST(test_reader_keeps_snapshot_across_100_commits)
{
	const int commits = (int)tu_scale(100, 1000);
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = put_n(env, tu_model_new(), "k", 0, 3000);
	tu_model *snap = tu_model_clone(m);

	tu_reader *r = tu_reader_start(env);
	uint64_t rid = tu_reader_txnid(r);
	struct value_probe probe = {"k000100", NULL, {0}, 0};
	tu_reader_call(r, probe_take, &probe);

	tu_rng rng;
	tu_rng_init(&rng, tu_seed(0x7a01));
	char k[32], v[64];
	for (int c = 0; c < commits; c++) {
		mapkv_txn *txn = tu_begin(env, 0);
		ck_assert_uint_gt(mapkv_txn_id(txn), rid);
		/* Replace a third of the keys (touching most pages), delete
		 * some, add some: freed pages must not be reused while the
		 * reader can see them. */
		for (int i = 0; i < 1000; i++) {
			snprintf(k, sizeof(k), "k%06d",
				 (int)tu_rng_below(&rng, 3000));
			snprintf(v, sizeof(v), "commit-%d-%d", c, i);
			tu_put_str(txn, 0, k, v);
			tu_model_put(m, k, strlen(k), v, strlen(v));
		}
		snprintf(k, sizeof(k), "k%06d", (int)tu_rng_below(&rng, 3000));
		if (tu_del_rc(txn, 0, k, strlen(k)) == 0)
			tu_model_del(m, k, strlen(k));
		snprintf(k, sizeof(k), "added%04d", c);
		tu_put_str(txn, 0, k, "a");
		tu_model_put(m, k, strlen(k), "a", 1);
		tu_put_str(txn, 0, "k000100", v); /* the probed key */
		tu_model_put(m, "k000100", 7, v, strlen(v));
		tu_commit(txn);
		if (c % 10 == 9 || c == commits - 1) {
			tu_reader_verify(r, 0, snap);
			tu_reader_call(r, probe_same, &probe);
			ck_assert_uint_eq(tu_reader_txnid(r), rid);
		}
	}
	/* A new read transaction sees the last commit. */
	tu_verify_db(env, 0, m);
	mapkv_txn *nt = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(mapkv_txn_id(nt), tu_env_info(env).last_txnid);
	ck_assert_uint_gt(mapkv_txn_id(nt), rid);
	mapkv_txn_abort(nt);
	/* And the old reader still sees its own. */
	tu_reader_verify(r, 0, snap);
	tu_reader_stop(r);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
	tu_model_free(snap);
}
END_TEST

START_TEST(test_writes_in_read_txn_give_readonly)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = put_n(env, tu_model_new(), "k", 0, 10);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(tu_put_rc(txn, 0, "k000001", 7, "x", 1, 0),
		     MAPKV_READONLY);
	ck_assert_rc(tu_put_rc(txn, 0, "new", 3, "x", 1, 0), MAPKV_READONLY);
	ck_assert_rc(tu_del_rc(txn, 0, "k000001", 7), MAPKV_READONLY);
	ck_assert_rc(mapkv_dbi_drop(txn, 0, 0), MAPKV_READONLY);
	mapkv_dbi dbi;
	ck_assert_rc(mapkv_dbi_open(txn, "t", MAPKV_CREATE, &dbi),
		     MAPKV_READONLY);
	/* The transaction still reads. */
	tu_verify_txn(txn, 0, m);
	mapkv_txn_abort(txn);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

/* Second writer in another thread. */
struct writer2 {
	mapkv_env *env;
	unsigned flags;
	atomic_int begun;
	int begin_rc;
	int saw_x; /* get "x" in B's txn: 1 found "fromA", 0 missing */
	int commit_rc;
};

static void *writer2_main(void *arg)
{
	struct writer2 *w = arg;
	mapkv_txn *txn = NULL;
	w->begin_rc = mapkv_txn_begin(w->env, w->flags, &txn);
	atomic_store(&w->begun, 1);
	if (w->begin_rc)
		return NULL;
	mapkv_val k = {"x", 1}, v;
	int rc = mapkv_get(txn, 0, &k, &v);
	w->saw_x = rc == 0 && v.size == 5 && memcmp(v.data, "fromA", 5) == 0 ? 1
		   : rc == MAPKV_NOTFOUND                                    ? 0
					  : -1;
	mapkv_val y = {"y", 1}, yv = {"fromB", 5};
	rc = mapkv_put(txn, 0, &y, &yv, 0);
	if (rc) {
		mapkv_txn_abort(txn);
		w->commit_rc = rc;
		return NULL;
	}
	w->commit_rc = mapkv_txn_commit(txn);
	return NULL;
}

static void second_writer_blocks(int a_commits)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *a = tu_begin(env, 0);
	struct writer2 w;
	memset(&w, 0, sizeof(w));
	w.env = env;
	atomic_init(&w.begun, 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, writer2_main, &w), 0);
	/* While A holds the writer, B's begin must not return. The sleep
	 * only gives a wrong implementation the time to show itself. */
	usleep(300 * 1000);
	ck_assert_msg(atomic_load(&w.begun) == 0,
		      "a second write transaction began (rc %d) while the "
		      "first was still open",
		      w.begin_rc);
	tu_put_str(a, 0, "x", "fromA");
	usleep(50 * 1000);
	ck_assert_int_eq(atomic_load(&w.begun), 0);
	if (a_commits)
		tu_commit(a);
	else
		mapkv_txn_abort(a);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_rc(w.begin_rc, 0);
	ck_assert_rc(w.commit_rc, 0);
	ck_assert_int_eq(w.saw_x, a_commits ? 1 : 0);
	mapkv_txn *t = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(t, 0, "x", a_commits ? "fromA" : NULL);
	tu_expect_str(t, 0, "y", "fromB");
	mapkv_txn_abort(t);
	mapkv_close(env);
}

START_TEST(test_second_writer_blocks_until_first_commits)
{
	second_writer_blocks(1);
}
END_TEST

START_TEST(test_second_writer_blocks_until_first_aborts)
{
	second_writer_blocks(0);
}
END_TEST

static void *begin_only_main(void *arg)
{
	struct writer2 *w = arg;
	mapkv_txn *txn = NULL;
	w->begin_rc = mapkv_txn_begin(w->env, w->flags, &txn);
	if (w->begin_rc == 0) {
		if (!(w->flags & MAPKV_RDONLY)) {
			mapkv_val k = {"z", 1}, v = {"1", 1};
			w->commit_rc = mapkv_put(txn, 0, &k, &v, 0);
		}
		mapkv_txn_abort(txn);
	}
	atomic_store(&w->begun, 1);
	return NULL;
}

static int begin_in_thread(mapkv_env *env, unsigned flags)
{
	struct writer2 w;
	memset(&w, 0, sizeof(w));
	w.env = env;
	w.flags = flags;
	atomic_init(&w.begun, 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, begin_only_main, &w), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_rc(w.commit_rc, 0);
	return w.begin_rc;
}

START_TEST(test_try_gives_busy_while_writer_holds_and_readers_never_wait)
{
	mapkv_env *env = tu_open("db", 0, 0);
	put_n(env, NULL, "k", 0, 10);
	mapkv_txn *a = tu_begin(env, 0);
	tu_put_str(a, 0, "held", "1");
	ck_assert_rc(begin_in_thread(env, MAPKV_TRY), MAPKV_BUSY);
	ck_assert_rc(begin_in_thread(env, MAPKV_TRY), MAPKV_BUSY);
	/* Readers begin (and would hang this test if they waited). */
	ck_assert_rc(begin_in_thread(env, MAPKV_RDONLY), 0);
	tu_commit(a);
	ck_assert_rc(begin_in_thread(env, MAPKV_TRY), 0);
	ck_assert_rc(begin_in_thread(env, 0), 0);
	mapkv_close(env);
}
END_TEST

/* 4 readers against one writer. The writer's commit c sets "counter" to c
 * and every "key%03d" to "c:<c>:<j>", adds "n<c>" and deletes "n<c-5>". A
 * reader checks that its snapshot is one commit (all keys agree with the
 * counter), that it reads the same twice (repeatable reads), and that
 * txn ids and counters never go backwards between its transactions. */
#define NKEYS 50
struct reader_ctx {
	mapkv_env *env;
	atomic_int *stop;
	int id;
	long txns;
	long max_counter;
	char err[512];
};

static int read_counter(mapkv_txn *txn, long *c)
{
	mapkv_val k = {"counter", 7}, v;
	int rc = mapkv_get(txn, 0, &k, &v);
	if (rc == MAPKV_NOTFOUND) {
		*c = -1;
		return 0;
	}
	if (rc)
		return rc;
	char buf[32];
	if (v.size >= sizeof(buf))
		return -1;
	memcpy(buf, v.data, v.size);
	buf[v.size] = 0;
	*c = strtol(buf, NULL, 10);
	return 0;
}

static int check_snapshot(mapkv_txn *txn, long c, char *err, size_t errlen)
{
	char k[32], want[64];
	for (int j = 0; j < NKEYS; j++) {
		snprintf(k, sizeof(k), "key%03d", j);
		mapkv_val key = {k, strlen(k)}, v;
		int rc = mapkv_get(txn, 0, &key, &v);
		if (c < 0) {
			if (rc != MAPKV_NOTFOUND) {
				snprintf(err, errlen,
					 "no counter yet but %s gives %d", k,
					 rc);
				return -1;
			}
			continue;
		}
		snprintf(want, sizeof(want), "c:%ld:%d", c, j);
		if (rc || v.size != strlen(want) ||
		    memcmp(v.data, want, v.size) != 0) {
			snprintf(err, errlen,
				 "counter %ld but %s gives rc %d value %s "
				 "(want %s): not one snapshot",
				 c, k, rc, rc ? "-" : tu_fmt(v.data, v.size),
				 want);
			return -1;
		}
	}
	for (long i = c - 7; i <= c + 1; i++) {
		if (i < 0)
			continue;
		snprintf(k, sizeof(k), "n%ld", i);
		mapkv_val key = {k, strlen(k)}, v;
		int rc = mapkv_get(txn, 0, &key, &v);
		int want_present = i <= c && i > c - 5;
		if (rc != (want_present ? 0 : MAPKV_NOTFOUND)) {
			snprintf(err, errlen,
				 "counter %ld: %s gives %d, expected %s", c, k,
				 rc, want_present ? "present" : "absent");
			return -1;
		}
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader_ctx *r = arg;
	uint64_t last_id = 0;
	long last_c = -1;
	while (!atomic_load(r->stop) || r->txns == 0) {
		mapkv_txn *txn = NULL;
		int rc = mapkv_txn_begin(r->env, MAPKV_RDONLY, &txn);
		if (rc) {
			snprintf(r->err, sizeof(r->err), "reader %d: begin %d",
				 r->id, rc);
			return NULL;
		}
		uint64_t id = mapkv_txn_id(txn);
		long c, c2;
		char e[400];
		if (id < last_id) {
			snprintf(r->err, sizeof(r->err),
				 "reader %d: txn id went back from %llu to "
				 "%llu",
				 r->id, (unsigned long long)last_id,
				 (unsigned long long)id);
			mapkv_txn_abort(txn);
			return NULL;
		}
		rc = read_counter(txn, &c);
		if (rc == 0 && c < last_c) {
			snprintf(r->err, sizeof(r->err),
				 "reader %d: counter went back from %ld to %ld",
				 r->id, last_c, c);
			rc = -1;
		} else if (rc == 0 && check_snapshot(txn, c, e, sizeof(e))) {
			snprintf(r->err, sizeof(r->err), "reader %d: %s", r->id,
				 e);
			rc = -1;
		} else if (rc == 0) {
			sched_yield();
			/* Repeatable: the same answers a moment later. */
			rc = read_counter(txn, &c2);
			if (rc == 0 && c2 != c) {
				snprintf(r->err, sizeof(r->err),
					 "reader %d: counter %ld then %ld in "
					 "one txn",
					 r->id, c, c2);
				rc = -1;
			} else if (rc == 0 &&
				   check_snapshot(txn, c, e, sizeof(e))) {
				snprintf(r->err, sizeof(r->err),
					 "reader %d (second read): %s", r->id,
					 e);
				rc = -1;
			}
			if (rc == 0 && mapkv_txn_id(txn) != id) {
				snprintf(r->err, sizeof(r->err),
					 "reader %d: txn id changed", r->id);
				rc = -1;
			}
		} else {
			snprintf(r->err, sizeof(r->err),
				 "reader %d: get counter %d", r->id, rc);
		}
		mapkv_txn_abort(txn);
		if (rc)
			return NULL;
		last_id = id;
		last_c = c;
		if (c > r->max_counter)
			r->max_counter = c;
		r->txns++;
	}
	return NULL;
}

START_TEST(test_4_readers_see_repeatable_snapshots_while_writer_commits)
{
	const long commits = (long)tu_scale(300, 3000);
	mapkv_env *env = tu_open("db", 0, 0);
	atomic_int stop;
	atomic_init(&stop, 0);
	struct reader_ctx rc[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		memset(&rc[i], 0, sizeof(rc[i]));
		rc[i].env = env;
		rc[i].stop = &stop;
		rc[i].id = i;
		rc[i].max_counter = -1;
		ck_assert_int_eq(
			pthread_create(&th[i], NULL, reader_main, &rc[i]), 0);
	}
	char k[32], v[64];
	uint64_t last_id = 0;
	for (long c = 0; c < commits; c++) {
		mapkv_txn *txn = tu_begin(env, 0);
		ck_assert_uint_gt(mapkv_txn_id(txn), last_id);
		last_id = mapkv_txn_id(txn);
		for (int j = 0; j < NKEYS; j++) {
			snprintf(k, sizeof(k), "key%03d", j);
			snprintf(v, sizeof(v), "c:%ld:%d", c, j);
			tu_put_str(txn, 0, k, v);
		}
		snprintf(k, sizeof(k), "n%ld", c);
		tu_put_str(txn, 0, k, "n");
		if (c >= 5) {
			snprintf(k, sizeof(k), "n%ld", c - 5);
			ck_assert_rc(tu_del_rc(txn, 0, k, strlen(k)), 0);
		}
		snprintf(v, sizeof(v), "%ld", c);
		tu_put_str(txn, 0, "counter", v);
		tu_commit(txn);
	}
	atomic_store(&stop, 1);
	long total = 0;
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_msg(rc[i].err[0] == 0, "%s", rc[i].err);
		total += rc[i].txns;
	}
	ck_assert_int_gt(total, 4);
	/* A reader that began after the last commit sees it. */
	mapkv_txn *t = tu_begin(env, MAPKV_RDONLY);
	long c;
	ck_assert_rc(read_counter(t, &c), 0);
	ck_assert_int_eq(c, commits - 1);
	char err[400];
	tu_check(check_snapshot(t, c, err, sizeof(err)) == 0, "%s", err);
	mapkv_txn_abort(t);
	mapkv_close(env);
}
END_TEST

START_TEST(test_aborted_txn_values_are_gone_after_reopen)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = put_n(env, tu_model_new(), "c", 0, 500);
	mapkv_txn *txn = tu_begin(env, 0);
	char k[32];
	static unsigned char big[300000];
	memset(big, 'B', sizeof(big));
	for (int i = 0; i < 5000; i++)
		tu_put_str(txn, 0, (snprintf(k, sizeof(k), "a%06d", i), k),
			   "aborted");
	tu_put(txn, 0, "abig", 4, big, sizeof(big));
	ck_assert_rc(tu_del_rc(txn, 0, "c000010", 7), 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);

	env = tu_open("db", 0, 0);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_committed_data_persists_across_close_and_reopen)
{
	tu_rng r;
	tu_rng_init(&r, tu_seed(0x7a02));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new();
	unsigned char k[40], v[3000];
	for (int t = 0; t < 20; t++) {
		mapkv_txn *txn = tu_begin(env, 0);
		for (int i = 0; i < 500; i++) {
			size_t kl = tu_rng_range(&r, 1, 40);
			size_t vl = tu_rng_below(&r, 20) ? tu_rng_below(&r, 200)
							 : 3000;
			tu_fill_bytes(k, kl, tu_rng_below(&r, 5000));
			tu_fill_bytes(v, vl, tu_rng_next(&r));
			tu_put(txn, 0, k, kl, v, vl);
			tu_model_put(m, k, kl, v, vl);
		}
		tu_commit(txn);
	}
	uint64_t last = tu_env_info(env).last_txnid;
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	tu_verify_db(env, 0, m);
	ck_assert_uint_eq(tu_env_info(env).last_txnid, last);
	mapkv_close(env);
	/* And read-only. */
	env = tu_open("db", MAPKV_RDONLY, 0);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_rdonly_env_refuses_write_txns_with_readonly)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = put_n(env, tu_model_new(), "k", 0, 100);
	mapkv_close(env);
	env = tu_open("db", MAPKV_RDONLY, 0);
	mapkv_txn *txn = (mapkv_txn *)1;
	ck_assert_rc(mapkv_txn_begin(env, 0, &txn), MAPKV_READONLY);
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_TRY, &txn), MAPKV_READONLY);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	/* Nothing changed on disk: it opens read-write as before. */
	env = tu_open("db", 0, 0);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_max_size_reached_gives_full_and_abort_keeps_committed_data)
{
	const uint64_t max = 1u << 20;
	mapkv_env *env = tu_open("db", 0, max);
	tu_model *m = put_n(env, tu_model_new(), "base", 0, 200);

	mapkv_txn *txn = tu_begin(env, 0);
	static unsigned char v[4000];
	char k[32];
	int rc = 0, i;
	for (i = 0; i < 5000 && rc == 0; i++) {
		snprintf(k, sizeof(k), "fill%06d", i);
		tu_fill_bytes(v, sizeof(v), (uint64_t)i);
		rc = tu_put_rc(txn, 0, k, strlen(k), v, sizeof(v), 0);
	}
	tu_check(rc == MAPKV_FULL,
		 "putting %d x 4000 bytes into a 1 MiB database ended with %d "
		 "(%s), expected MAPKV_FULL",
		 i, rc, mapkv_strerror(rc));
	mapkv_txn_abort(txn);
	tu_check(tu_file_size(tu_path("db")) <= max,
		 "file grew to %llu bytes, past max_size %llu",
		 (unsigned long long)tu_file_size(tu_path("db")),
		 (unsigned long long)max);

	/* Nothing committed is lost, and the environment still works. */
	tu_verify_db(env, 0, m);
	put_n(env, m, "after", 0, 20);
	tu_verify_db(env, 0, m);

	/* One value larger than the whole map. */
	txn = tu_begin(env, 0);
	unsigned char *huge = calloc(1, 2u << 20);
	ck_assert_ptr_nonnull(huge);
	ck_assert_rc(tu_put_rc(txn, 0, "huge", 4, huge, 2u << 20, 0),
		     MAPKV_FULL);
	free(huge);
	mapkv_txn_abort(txn);
	put_n(env, m, "after2", 0, 5);
	mapkv_close(env);

	env = tu_open("db", 0, max);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_failed_txn_only_aborts_and_commit_gives_bad_txn)
{
	const uint64_t max = 1u << 20;
	mapkv_env *env = tu_open("db", 0, max);
	tu_model *m = put_n(env, tu_model_new(), "base", 0, 100);
	uint64_t last = tu_env_info(env).last_txnid;

	mapkv_txn *txn = tu_begin(env, 0);
	static unsigned char v[4000];
	char k[32];
	int rc = 0;
	tu_put_str(txn, 0, "early", "before the failure");
	for (int i = 0; i < 5000 && rc == 0; i++) {
		snprintf(k, sizeof(k), "fill%06d", i);
		rc = tu_put_rc(txn, 0, k, strlen(k), v, sizeof(v), 0);
	}
	ck_assert_rc(rc, MAPKV_FULL);
	/* The transaction is failed: no more changes, commit refuses. */
	ck_assert_rc(tu_put_rc(txn, 0, "late", 4, "x", 1, 0), MAPKV_BAD_TXN);
	ck_assert_rc(mapkv_txn_commit(txn), MAPKV_BAD_TXN); /* and frees it */
	ck_assert_uint_eq(tu_env_info(env).last_txnid, last);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	env = tu_open("db", 0, max);
	tu_verify_db(env, 0, m); /* "early" is not there either */
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_txn_ids_and_reader_info_track_commits_and_readers)
{
	mapkv_env *env = tu_open("db", 0, 0);
	put_n(env, NULL, "k", 0, 10);
	mapkv_envinfo info = tu_env_info(env);
	uint64_t last = info.last_txnid;
	ck_assert_uint_eq(info.num_readers, 0);
	ck_assert_uint_eq(info.oldest_reader_txnid, 0);

	mapkv_txn *txn = tu_begin(env, 0);
	uint64_t w = mapkv_txn_id(txn);
	ck_assert_uint_gt(w, last);
	tu_put_str(txn, 0, "a", "1");
	tu_commit(txn);
	ck_assert_uint_eq(tu_env_info(env).last_txnid, w);

	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(mapkv_txn_id(txn), w);
	mapkv_txn_abort(txn);
	ck_assert_uint_eq(mapkv_txn_id(NULL), 0);

	tu_reader *r = tu_reader_start(env);
	ck_assert_uint_eq(tu_reader_txnid(r), w);
	info = tu_env_info(env);
	ck_assert_uint_eq(info.num_readers, 1);
	ck_assert_uint_eq(info.oldest_reader_txnid, w);
	for (int i = 0; i < 3; i++) {
		txn = tu_begin(env, 0);
		tu_put_str(txn, 0, "a", "2");
		tu_commit(txn);
	}
	info = tu_env_info(env);
	ck_assert_uint_gt(info.last_txnid, w + 2);
	ck_assert_uint_eq(info.num_readers, 1);
	ck_assert_uint_eq(info.oldest_reader_txnid, w);
	tu_reader_stop(r);
	info = tu_env_info(env);
	ck_assert_uint_eq(info.num_readers, 0);
	ck_assert_uint_eq(info.oldest_reader_txnid, 0);
	mapkv_close(env);
}
END_TEST

START_TEST(test_readers_full_when_every_slot_is_in_use)
{
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.max_readers = 2;
	mapkv_env *env = tu_open_opts("db", &o);
	ck_assert_uint_eq(tu_env_info(env).max_readers, 2);
	tu_reader *r1 = tu_reader_start(env);
	tu_reader *r2 = tu_reader_start(env);
	tu_reader *r3 = NULL;
	ck_assert_rc(tu_reader_start_rc(env, &r3), MAPKV_READERS_FULL);
	ck_assert_ptr_null(r3);
	/* The writer is not a reader: it still begins. */
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "a", "1");
	tu_commit(txn);
	tu_reader_stop(r1);
	r3 = tu_reader_start(env);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 2);
	tu_reader_stop(r2);
	tu_reader_stop(r3);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 0);
	mapkv_close(env);
}
END_TEST

START_TEST(test_nosync_commits_survive_close_and_sync_succeeds)
{
	mapkv_env *env = tu_open("db", MAPKV_NOSYNC, 0);
	tu_model *m = put_n(env, tu_model_new(), "k", 0, 1000);
	put_n(env, m, "j", 0, 1000);
	ck_assert_rc(mapkv_sync(env), 0);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("txn");
	TCase *tc = tu_tcase(s, "isolation", 300);
	tcase_add_test(tc, test_abort_discards_puts_and_dels);
	tcase_add_test(tc, test_reader_keeps_snapshot_across_100_commits);
	tcase_add_test(tc, test_writes_in_read_txn_give_readonly);
	tcase_add_test(tc,
		       test_txn_ids_and_reader_info_track_commits_and_readers);

	tc = tu_tcase(s, "concurrency", 300);
	tcase_add_test(tc, test_second_writer_blocks_until_first_commits);
	tcase_add_test(tc, test_second_writer_blocks_until_first_aborts);
	tcase_add_test(
		tc,
		test_try_gives_busy_while_writer_holds_and_readers_never_wait);
	tcase_add_test(
		tc,
		test_4_readers_see_repeatable_snapshots_while_writer_commits);
	tcase_add_test(tc, test_readers_full_when_every_slot_is_in_use);

	tc = tu_tcase(s, "durability", 300);
	tcase_add_test(tc, test_aborted_txn_values_are_gone_after_reopen);
	tcase_add_test(tc,
		       test_committed_data_persists_across_close_and_reopen);
	tcase_add_test(tc, test_rdonly_env_refuses_write_txns_with_readonly);
	tcase_add_test(tc, test_nosync_commits_survive_close_and_sync_succeeds);

	tc = tu_tcase(s, "limits", 300);
	tcase_add_test(
		tc,
		test_max_size_reached_gives_full_and_abort_keeps_committed_data);
	tcase_add_test(tc,
		       test_failed_txn_only_aborts_and_commit_gives_bad_txn);
	return tu_run_suite(s);
}
