/*
 * check_freelist.c: freed pages are reused. A workload that keeps
 * rewriting the same keys keeps the file within a small constant factor of
 * its live data and stops growing once warmed up; a long reader may pin
 * pages, but once it ends the growth stops again.
 *
 * "pages_used" of mapkv_env_info is the high-water mark (pages ever handed
 * out), an exact page count; the file size itself grows in amortised
 * steps, so the file-size bounds allow for one growth step where the
 * page-count bounds allow only a few pages.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 10000
#define PAGE 4096u
#define SLACK_PAGES 16

static void put_key(mapkv_txn *txn, tu_model *m, uint64_t i, uint64_t ver)
{
	unsigned char k[16], v[100];
	tu_make_seq_key(k, 16, i);
	tu_fill_bytes(v, 100, i * 1000003u + ver);
	tu_put(txn, 0, k, 16, v, 100);
	if (m)
		tu_model_put(m, k, 16, v, 100);
}

/* Load NKEYS keys of 16 bytes with 100-byte values in one transaction. */
static void load(mapkv_env *env, tu_model *m)
{
	mapkv_txn *txn = tu_begin(env, 0);
	for (uint64_t i = 0; i < NKEYS; i++)
		put_key(txn, m, i, 0);
	tu_commit(txn);
}

/* @rounds transactions of 1,000 updates of random keys. */
static void churn(mapkv_env *env, tu_model *m, tu_rng *r, uint64_t rounds)
{
	for (uint64_t t = 0; t < rounds; t++) {
		mapkv_txn *txn = tu_begin(env, 0);
		for (int j = 0; j < 1000; j++)
			put_key(txn, m, tu_rng_below(r, NKEYS), tu_rng_next(r));
		tu_commit(txn);
	}
}

static uint64_t pages_used(mapkv_env *env)
{
	return tu_env_info(env).pages_used;
}

START_TEST(test_churn_of_10000_keys_keeps_file_bounded_and_stops_growing)
{
	const uint64_t updates = tu_scale(1000000, 5000000);
	const uint64_t rounds = updates / 1000;
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xf7ee01));
	mapkv_env *env = tu_open("db", 0, 0);
	const char *path = tu_path("db");
	tu_model *m = tu_model_new();
	load(env, m);
	uint64_t size0 = tu_file_size(path), pu0 = pages_used(env);
	uint64_t size_max = size0;

	uint64_t size_half = 0, pu_half = 0;
	for (uint64_t t = 0; t < rounds; t++) {
		churn(env, m, &r, 1);
		uint64_t s = tu_file_size(path);
		if (s > size_max)
			size_max = s;
		if (t + 1 == rounds / 2) {
			size_half = s;
			pu_half = pages_used(env);
		}
	}
	uint64_t size_end = tu_file_size(path), pu_end = pages_used(env);
	tu_verify_db(env, 0, m);

	tu_check(size_max <= 4 * size0,
		 "%llu updates of %d keys: the file reached %llu bytes, more "
		 "than 4x the %llu bytes after the first load",
		 (unsigned long long)updates, NKEYS,
		 (unsigned long long)size_max, (unsigned long long)size0);
	tu_check(pu_end <= 4 * pu0,
		 "pages used %llu, more than 4x the %llu after the first load",
		 (unsigned long long)pu_end, (unsigned long long)pu0);
	tu_check(pu_end <= pu_half + SLACK_PAGES,
		 "still growing after warm-up: %llu pages used after %llu "
		 "rounds, %llu after %llu",
		 (unsigned long long)pu_half, (unsigned long long)rounds / 2,
		 (unsigned long long)pu_end, (unsigned long long)rounds);
	tu_check(size_end <= size_half + SLACK_PAGES * PAGE ||
			 size_end <= size_half + size_half / 8,
		 "file still growing after warm-up: %llu bytes after %llu "
		 "rounds, %llu after %llu",
		 (unsigned long long)size_half, (unsigned long long)rounds / 2,
		 (unsigned long long)size_end, (unsigned long long)rounds);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_reader_held_open_pins_pages_and_growth_stops_after_it_ends)
{
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xf7ee02));
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new();
	load(env, m);
	churn(env, m, &r, 50); /* warm up */

	tu_model *snap = tu_model_clone(m);
	tu_reader *rd = tu_reader_start(env);
	uint64_t pu_before = pages_used(env);
	churn(env, m, &r, 50);
	/* The reader's pages were not reused: it still sees its snapshot. */
	tu_reader_verify(rd, 0, snap);
	uint64_t pu_held = pages_used(env);
	ck_assert_uint_eq(tu_env_info(env).oldest_reader_txnid,
			  tu_reader_txnid(rd));
	tu_reader_stop(rd);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 0);

	churn(env, m, &r, 50);
	uint64_t pu_mid = pages_used(env);
	churn(env, m, &r, 50);
	uint64_t pu_end = pages_used(env);
	tu_verify_db(env, 0, m);
	tu_check(pu_end <= pu_mid + SLACK_PAGES,
		 "after the reader ended the file keeps growing: %llu pages "
		 "used then %llu (%llu before the reader, %llu while it "
		 "held)",
		 (unsigned long long)pu_mid, (unsigned long long)pu_end,
		 (unsigned long long)pu_before, (unsigned long long)pu_held);
	mapkv_close(env);
	tu_model_free(m);
	tu_model_free(snap);
}
END_TEST

START_TEST(test_delete_all_and_reinsert_stays_under_previous_high_mark)
{
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xf7ee03));
	mapkv_env *env = tu_open("db", 0, 0);
	const char *path = tu_path("db");
	tu_model *m = tu_model_new();
	load(env, m);
	churn(env, m, &r, 20);
	uint64_t high = pages_used(env), size_high = tu_file_size(path);

	for (int cycle = 0; cycle < 3; cycle++) {
		mapkv_txn *txn = tu_begin(env, 0);
		unsigned char k[16];
		for (uint64_t i = 0; i < NKEYS; i++) {
			tu_make_seq_key(k, 16, i);
			ck_assert_rc(tu_del_rc(txn, 0, k, 16), 0);
		}
		tu_commit(txn);
		tu_model_clear(m);
		ck_assert_uint_eq(tu_env_info(env).pages_free > 0, 1);
		/* Two small commits: pages freed by a commit may wait for
		 * the next ones before they are reused. */
		for (int j = 0; j < 2; j++) {
			txn = tu_begin(env, 0);
			tu_put_str(txn, 0, "tick", j ? "1" : "0");
			tu_commit(txn);
		}
		tu_model_put(m, "tick", 4, "1", 1);
		load(env, m);
		churn(env, m, &r, 5);
		uint64_t pu = pages_used(env);
		tu_check(pu <= high + SLACK_PAGES + high / 20,
			 "cycle %d: delete all + reinsert raised pages used "
			 "from %llu to %llu",
			 cycle, (unsigned long long)high,
			 (unsigned long long)pu);
		uint64_t sz = tu_file_size(path);
		tu_check(sz <= size_high + size_high / 4,
			 "cycle %d: file grew from %llu to %llu bytes", cycle,
			 (unsigned long long)size_high, (unsigned long long)sz);
	}
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_pages_free_counts_pages_freed_by_deletes)
{
	mapkv_env *env = tu_open("db", 0, 0);
	tu_model *m = tu_model_new();
	load(env, m);
	mapkv_envinfo before = tu_env_info(env);
	mapkv_txn *txn = tu_begin(env, 0);
	unsigned char k[16];
	for (uint64_t i = 0; i < NKEYS; i++) {
		if (i % 10 == 0)
			continue;
		tu_make_seq_key(k, 16, i);
		ck_assert_rc(tu_del_rc(txn, 0, k, 16), 0);
		tu_model_del(m, k, 16);
	}
	tu_commit(txn);
	mapkv_envinfo info = tu_env_info(env);
	/* ~300 leaf pages held the keys; most of them are gone now. */
	tu_check(info.pages_free > 0,
		 "deleted 90%% of %d keys but pages_free is 0 (pages used "
		 "%llu, %llu before)",
		 NKEYS, (unsigned long long)info.pages_used,
		 (unsigned long long)before.pages_used);
	tu_check(info.pages_free >= 100,
		 "deleted 90%% of %d keys (~300 leaf pages) but only %llu "
		 "pages are free",
		 NKEYS, (unsigned long long)info.pages_free);
	tu_check(info.pages_free < info.pages_used &&
			 info.pages_used * info.page_size <= info.file_size,
		 "pages_free %llu, pages_used %llu, file_size %llu",
		 (unsigned long long)info.pages_free,
		 (unsigned long long)info.pages_used,
		 (unsigned long long)info.file_size);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

START_TEST(test_overflow_value_churn_reuses_freed_page_runs)
{
	const uint64_t rounds = tu_scale(400, 4000);
	const size_t vsize = 100000; /* 25 pages each */
	unsigned char *v = malloc(vsize);
	ck_assert_ptr_nonnull(v);
	mapkv_env *env = tu_open("db", 0, 0);
	char k[16];
	uint64_t pu_first = 0, pu_half = 0;
	for (uint64_t t = 0; t < rounds; t++) {
		mapkv_txn *txn = tu_begin(env, 0);
		for (int i = 0; i < 10; i++) {
			snprintf(k, sizeof(k), "big%d", i);
			tu_fill_bytes(v, vsize, t * 10 + (uint64_t)i);
			tu_put(txn, 0, k, strlen(k), v, vsize);
		}
		tu_commit(txn);
		if (t == 0)
			pu_first = pages_used(env);
		if (t + 1 == rounds / 2)
			pu_half = pages_used(env);
	}
	uint64_t pu_end = pages_used(env);
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof(k), "big%d", i);
		mapkv_val out;
		ck_assert_rc(tu_get_rc(txn, 0, k, strlen(k), &out), 0);
		ck_assert_uint_eq(out.size, vsize);
		tu_check(tu_check_bytes(out.data, vsize,
					(rounds - 1) * 10 + (uint64_t)i) ==
				 (size_t)-1,
			 "value %s differs", k);
	}
	mapkv_txn_abort(txn);
	tu_check(pu_end <= 4 * pu_first,
		 "replacing 10 values of %zu bytes %llu times: %llu pages "
		 "used, more than 4x the %llu after the first commit",
		 vsize, (unsigned long long)rounds, (unsigned long long)pu_end,
		 (unsigned long long)pu_first);
	tu_check(pu_end <= pu_half + 2 * 25 + SLACK_PAGES,
		 "still growing after warm-up: %llu pages used at half time, "
		 "%llu at the end",
		 (unsigned long long)pu_half, (unsigned long long)pu_end);
	mapkv_close(env);
	free(v);
}
END_TEST

/* Overflow values of 1 to 4 pages replaced among small values: freed runs
 * end up spread over many free-page records, and an allocation of a run
 * must look past the first record it loads, or the file grows while free
 * pages pile up (found by the power-loss workload, where the file grew
 * to 5 times the data). */
START_TEST(test_mixed_runs_and_small_pages_reuse_fragmented_free_pages)
{
	const uint64_t rounds = tu_scale(1500, 6000);
	unsigned char v[16000];
	tu_rng rng;
	tu_rng_init(&rng, tu_seed(0x5eed0f));
	mapkv_env *env = tu_open("db", 0, 0);
	char k[16];
	uint64_t pu_half = 0;
	for (uint64_t t = 0; t < rounds; t++) {
		mapkv_txn *txn = tu_begin(env, 0);
		for (int i = 0; i < 25; i++) {
			int big = i < 4;
			size_t vl = big ? 3000 + tu_rng_below(&rng, 13000)
					: tu_rng_below(&rng, 200);
			snprintf(
				k, sizeof(k), "%c%04u", big ? 'o' : 's',
				(unsigned)tu_rng_below(&rng, big ? 300 : 3000));
			tu_fill_bytes(v, vl, tu_rng_next(&rng));
			tu_put(txn, 0, k, strlen(k), v, vl);
		}
		tu_commit(txn);
		if (t + 1 == rounds / 2)
			pu_half = pages_used(env);
	}
	uint64_t pu_end = pages_used(env);
	mapkv_envinfo info = tu_env_info(env);
	/* 300 values of at most 4 pages and 3,000 small ones fit in about
	 * 1,500 pages; the free pages must stay a fraction of that. */
	tu_check(info.pages_free < pu_end / 2,
		 "%llu of %llu pages are free after %llu commits",
		 (unsigned long long)info.pages_free,
		 (unsigned long long)pu_end, (unsigned long long)rounds);
	tu_check(pu_end <= pu_half + pu_half / 10 + SLACK_PAGES,
		 "still growing after warm-up: %llu pages used at half time, "
		 "%llu at the end",
		 (unsigned long long)pu_half, (unsigned long long)pu_end);
	mapkv_close(env);
}
END_TEST

/* ---- large values rewritten ---- */

#define MIB (1024u * 1024u)

/* The bounds of the large-value tests, relative to the live data plus one
 * more value (a rewrite keeps the old value until it commits, so that much
 * is the least a file can need): pages in use at most K_ONE times that for
 * one value rewritten in place, at most K_MIX times that (with live at its
 * high mark) for several values of changing sizes; the file may be a
 * growth step (an eighth) larger. */
#define K_ONE 1.1
#define K_MIX 3.0

static void put_big(mapkv_txn *txn, const char *k, unsigned char *v, size_t n,
		    uint64_t seed)
{
	tu_fill_bytes(v, n, seed);
	tu_put(txn, 0, k, strlen(k), v, n);
}

static void expect_big(mapkv_env *env, const char *k, size_t n, uint64_t seed)
{
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	mapkv_val out;
	ck_assert_rc(tu_get_rc(txn, 0, k, strlen(k), &out), 0);
	tu_check(out.size == n &&
			 tu_check_bytes(out.data, n, seed) == (size_t)-1,
		 "value %s: %zu bytes, not the %zu written last", k, out.size,
		 n);
	mapkv_txn_abort(txn);
}

/* Bug: rewriting one 20 MiB value grew the file 20 -> 140 -> 324 MiB in
 * 15 rewrites (71,624 free pages), 16 MiB values to 3x: single pages
 * (the copied leaf, edits of the free-page tree) were taken from the
 * lowest free page, which was the start of the run the last version left
 * behind, and a run allocation gave up after 16 free-page records, fewer
 * than a 20 MiB run spans. */
START_TEST(test_rewriting_one_large_value_keeps_file_within_bound)
{
	static const size_t mib[] = {1, 4, 16, 20};
	const int rewrites = (int)tu_scale(15, 60);
	unsigned char *v = malloc(20 * MIB);
	ck_assert_ptr_nonnull(v);
	for (size_t s = 0; s < sizeof(mib) / sizeof(mib[0]); s++) {
		mapkv_options o = {0, 0, MAPKV_NOSYNC, 0, 0};
		char name[16];
		snprintf(name, sizeof(name), "db%zu", mib[s]);
		mapkv_env *env = tu_open_opts(name, &o);
		size_t n = mib[s] * MIB;
		for (int r = 0; r < rewrites; r++) {
			mapkv_txn *txn = tu_begin(env, 0);
			put_big(txn, "big", v, n, (uint64_t)r);
			tu_commit(txn);
		}
		mapkv_envinfo info = tu_env_info(env);
		double bound = 2.0 * (double)n; /* live + one value */
		double used = (double)info.pages_used * info.page_size;
		tu_check(used <= K_ONE * bound && (double)info.file_size <=
							  K_ONE * bound * 9 / 8,
			 "%zu MiB value rewritten %d times: %.1f MiB in use "
			 "(%llu pages free), file %.1f MiB; bound %.1f MiB "
			 "(%.1f x the live data plus one value)",
			 mib[s], rewrites, used / MIB,
			 (unsigned long long)info.pages_free,
			 (double)info.file_size / MIB, K_ONE * bound / MIB,
			 K_ONE);
		expect_big(env, "big", n, (uint64_t)rewrites - 1);
		mapkv_close(env);
	}
	free(v);
}
END_TEST

/* Values of 100 KB to 20 MiB under six keys, each rewrite with a size
 * drawn anew, one to three rewrites per commit: free runs of every size
 * are left behind, and each new value must find one that fits. */
START_TEST(test_rewriting_values_of_mixed_large_sizes_keeps_file_within_bound)
{
	static const size_t sizes[] = {100000,  1 * MIB,  3 * MIB,
				       4 * MIB, 16 * MIB, 20 * MIB};
	enum { NK = 6 };
	const int rounds = (int)tu_scale(60, 400);
	unsigned char *v = malloc(20 * MIB);
	ck_assert_ptr_nonnull(v);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0xb16b16));
	mapkv_options o = {0, 0, MAPKV_NOSYNC, 0, 0};
	mapkv_env *env = tu_open_opts("db", &o);
	size_t cur[NK] = {0};
	uint64_t seed[NK] = {0};
	double live_high = 0, worst = 0;
	int worst_round = 0;
	for (int t = 0; t < rounds; t++) {
		mapkv_txn *txn = tu_begin(env, 0);
		int puts = t < NK ? 1 : 1 + (int)tu_rng_below(&r, 3);
		for (int j = 0; j < puts; j++) {
			int k = t < NK ? t : (int)tu_rng_below(&r, NK);
			char key[8];
			snprintf(key, sizeof(key), "k%d", k);
			cur[k] = sizes[tu_rng_below(&r, NK)];
			seed[k] = tu_rng_next(&r);
			put_big(txn, key, v, cur[k], seed[k]);
		}
		tu_commit(txn);
		double live = 0;
		for (int k = 0; k < NK; k++)
			live += (double)cur[k];
		if (live > live_high)
			live_high = live;
		mapkv_envinfo info = tu_env_info(env);
		double ratio = (double)info.pages_used * info.page_size /
			       (live_high + 20.0 * MIB);
		if (ratio > worst) {
			worst = ratio;
			worst_round = t;
		}
	}
	mapkv_envinfo info = tu_env_info(env);
	tu_check(worst <= K_MIX &&
			 (double)info.file_size <=
				 K_MIX * (live_high + 20.0 * MIB) * 9 / 8,
		 "%d commits of values of 100 KB to 20 MiB: pages in use "
		 "reached %.2f x the live data (high mark %.1f MiB) plus one "
		 "value at commit %d, more than %.1f x; at the end %.1f MiB in "
		 "use, %llu pages free, file %.1f MiB",
		 rounds, worst, live_high / MIB, worst_round, K_MIX,
		 (double)info.pages_used * info.page_size / MIB,
		 (unsigned long long)info.pages_free,
		 (double)info.file_size / MIB);
	for (int k = 0; k < NK; k++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", k);
		expect_big(env, key, cur[k], seed[k]);
	}
	mapkv_close(env);
	free(v);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("freelist");
	TCase *tc = tu_tcase(s, "reuse", 600);
	tcase_add_test(
		tc,
		test_churn_of_10000_keys_keeps_file_bounded_and_stops_growing);
	tcase_add_test(
		tc,
		test_reader_held_open_pins_pages_and_growth_stops_after_it_ends);
	tcase_add_test(
		tc,
		test_delete_all_and_reinsert_stays_under_previous_high_mark);
	tcase_add_test(tc, test_pages_free_counts_pages_freed_by_deletes);
	tcase_add_test(tc, test_overflow_value_churn_reuses_freed_page_runs);
	tcase_add_test(
		tc,
		test_mixed_runs_and_small_pages_reuse_fragmented_free_pages);
	tc = tu_tcase(s, "large", 300);
	tcase_add_test(tc,
		       test_rewriting_one_large_value_keeps_file_within_bound);
	tcase_add_test(
		tc,
		test_rewriting_values_of_mixed_large_sizes_keeps_file_within_bound);
	return tu_run_suite(s);
}
