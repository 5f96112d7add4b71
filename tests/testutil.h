/*
 * testutil.h: helpers shared by the Check suites in tests/.
 *
 * Everything here is written against the public header only
 * (include/mapkv.h), so the suites test the contract, not the internals.
 *
 *  - scale:   MAPKV_TEST_LONG=1 (make check-long) makes loops bigger.
 *  - files:   every test runs in a fresh temporary directory (mkdtemp under
 *             $TMPDIR or /tmp) that is removed afterwards, even when the
 *             test crashed (the per-test case root is removed by an
 *             unchecked fixture that runs in the parent process).
 *  - prng:    a splitmix64 generator with an explicit seed; the seed of the
 *             last generator started is printed by every failed
 *             ck_assert_rc()/tu_check(). MAPKV_TEST_SEED=n overrides the
 *             default seeds given by the tests.
 *  - model:   an in-memory ordered map (a treap) to compare a tree against.
 *  - mapkv:   open/begin/put helpers that assert success, tu_verify_*()
 *             which compares a tree with a model through cursors and gets,
 *             and a reader thread that holds a read transaction (the header
 *             asks for one transaction per thread at a time, so a test that
 *             needs a reader and a writer at once uses a second thread).
 */
#ifndef MAPKV_TESTUTIL_H
#define MAPKV_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "mapkv.h"

#ifdef _WIN32
/* The POSIX calls the suites use that MinGW lacks (the Windows build of
 * the suites, tests/win). */
char *tu_strcasestr(const char *hay, const char *needle);
long tu_sysconf(int name);
#define strcasestr tu_strcasestr
#define sysconf tu_sysconf
#ifndef _SC_PAGESIZE
#define _SC_PAGESIZE 30
#endif
#endif

/* ---- scale ------------------------------------------------------------ */

/* 1 when MAPKV_TEST_LONG is set to a non-empty value other than "0". */
int tu_long(void);
/* @normal by default, @lng under MAPKV_TEST_LONG. */
uint64_t tu_scale(uint64_t normal, uint64_t lng);

/* ---- suites ----------------------------------------------------------- */

/* A test case with the temp-dir fixtures and a timeout of @timeout seconds
 * (multiplied by 4 under MAPKV_TEST_LONG). */
TCase *tu_tcase(Suite *s, const char *name, double timeout);
/* Run the suite with CK_NORMAL output; returns the exit status for main()
 * (0 when every test passed). */
int tu_run_suite(Suite *s);

/* ---- files ------------------------------------------------------------ */

/* The current test's private directory. */
const char *tu_dir(void);
/* A private directory of the current test on tmpfs (/dev/shm), removed
 * with the test's own; NULL where there is no tmpfs there. */
const char *tu_tmpfs_dir(void);
/* With @on, tu_dir() and tu_path() (and so tu_open()) name the test's
 * tmpfs directory for the rest of the test, so that one test body runs on
 * both file systems (a loop test: tu_on_tmpfs(_i)). Returns 0, changing
 * nothing, where there is no tmpfs. */
int tu_on_tmpfs(int on);
/* tu_dir() + "/" + name, in one of 8 rotating static buffers. */
const char *tu_path(const char *name);
/* Remove a file or directory tree; 0 on success. */
int tu_rm_rf(const char *path);
/* Size of a file from stat(); the test fails if it cannot be stat'ed. */
uint64_t tu_file_size(const char *path);
void tu_copy_file(const char *src, const char *dst);
void tu_write_file(const char *path, const void *data, size_t n);
/* Whole file into malloc'd memory (*n receives the size). */
unsigned char *tu_read_file(const char *path, size_t *n);
/* XOR the byte at @off of @path with @mask. */
void tu_flip_byte(const char *path, uint64_t off, unsigned char mask);
void tu_truncate_file(const char *path, uint64_t size);

/* ---- prng ------------------------------------------------------------- */

typedef struct tu_rng {
	uint64_t state;
	uint64_t seed;
} tu_rng;

/* Seed of the last tu_rng_init(), printed by failing assertions. */
extern uint64_t tu_seed_current;

/* @dflt, or the value of MAPKV_TEST_SEED when set. */
uint64_t tu_seed(uint64_t dflt);
void tu_rng_init(tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
/* Uniform in [0, n) (n > 0). */
uint64_t tu_rng_below(tu_rng *r, uint64_t n);
/* Uniform in [lo, hi], inclusive. */
uint64_t tu_rng_range(tu_rng *r, uint64_t lo, uint64_t hi);
/* splitmix64 finaliser: a good 64-bit mixing function. */
uint64_t tu_mix64(uint64_t x);

/* ---- deterministic data ----------------------------------------------- */

/* Fill @buf with bytes that depend only on (@seed, position). */
void tu_fill_bytes(void *buf, size_t n, uint64_t seed);
/* Index of the first byte that differs from tu_fill_bytes(n, seed), or
 * (size_t)-1 when all match. */
size_t tu_check_bytes(const void *buf, size_t n, uint64_t seed);
/* Key of exactly @size bytes (>= 1) for number @n: zero-padded decimal,
 * so that keys of one size sort in numeric order (for size < 20 the number
 * is taken modulo 10^size). Returns @size. */
size_t tu_make_seq_key(void *buf, size_t size, uint64_t n);
/* 64-bit hash of a byte string (not cryptographic, good enough to detect
 * a changed byte). */
uint64_t tu_hash64(const void *buf, size_t n);
/* memcmp order, shorter first on a common prefix (the order of mapkv). */
int tu_keycmp(const void *a, size_t al, const void *b, size_t bl);
/* Printable form of a key for messages (hex/escaped, truncated), in one
 * of 8 rotating static buffers. */
const char *tu_fmt(const void *p, size_t n);

/* ---- assertions ------------------------------------------------------- */

#define ck_assert_rc(rc, expected)                                             \
	do {                                                                   \
		int tu_rc_ = (int)(rc);                                        \
		int tu_exp_ = (int)(expected);                                 \
		ck_assert_msg(tu_rc_ == tu_exp_,                               \
			      "%s returned %d (%s), expected %d (%s) "         \
			      "[seed %llu]",                                   \
			      #rc, tu_rc_, mapkv_strerror(tu_rc_), tu_exp_,    \
			      mapkv_strerror(tu_exp_),                         \
			      (unsigned long long)tu_seed_current);            \
	} while (0)

/* ck_assert_msg that also prints the current seed. */
#define tu_check(cond, fmt, ...)                                               \
	ck_assert_msg((cond), fmt " [seed %llu]", ##__VA_ARGS__,               \
		      (unsigned long long)tu_seed_current)

/* ---- model ------------------------------------------------------------ */

typedef struct tu_entry {
	unsigned char *key;
	size_t klen;
	unsigned char *val;
	size_t vlen;
} tu_entry;

typedef struct tu_model tu_model;

tu_model *tu_model_new(void);
void tu_model_free(tu_model *m);
tu_model *tu_model_clone(const tu_model *m);
void tu_model_clear(tu_model *m);
/* Insert or replace. */
void tu_model_put(tu_model *m, const void *k, size_t kl, const void *v,
		  size_t vl);
/* 1 if the key was there (and is now gone), 0 if it was missing. */
int tu_model_del(tu_model *m, const void *k, size_t kl);
const tu_entry *tu_model_get(const tu_model *m, const void *k, size_t kl);
size_t tu_model_count(const tu_model *m);
/* Smallest entry with key >= k (> k when @strict); NULL if none. */
const tu_entry *tu_model_ceil(const tu_model *m, const void *k, size_t kl,
			      int strict);
/* Largest entry with key <= k (< k when @strict); NULL if none. */
const tu_entry *tu_model_floor(const tu_model *m, const void *k, size_t kl,
			       int strict);
const tu_entry *tu_model_first(const tu_model *m);
const tu_entry *tu_model_last(const tu_model *m);
/* Entry number @i in key order (builds a cached array, invalidated by
 * put/del; not thread-safe). */
const tu_entry *tu_model_at(tu_model *m, size_t i);

/* ---- mapkv helpers ---------------------------------------------------- */

/* Open tu_path(@name) with the given options, asserting success.
 * max_size 0 means the library default, or MAPKV_TEST_MAX_SIZE when that
 * is set (for valgrind, which cannot reserve 64 GiB of address space). */
mapkv_env *tu_open(const char *name, unsigned flags, uint64_t max_size);
/* Same, returning the code (env receives NULL on failure). */
int tu_open_rc(mapkv_env **env, const char *name, unsigned flags,
	       uint64_t max_size);
/* 0 (the library default), or MAPKV_TEST_MAX_SIZE when set. */
uint64_t tu_default_max_size(void);
/* Open tu_path(@name) with full options (NULL: defaults), asserting
 * success. */
mapkv_env *tu_open_opts(const char *name, const mapkv_options *opts);
/* Begin, asserting success. */
mapkv_txn *tu_begin(mapkv_env *env, unsigned flags);
/* Commit, asserting success. */
void tu_commit(mapkv_txn *txn);
/* Put/get/del on byte strings; tu_put asserts success. */
void tu_put(mapkv_txn *txn, mapkv_dbi dbi, const void *k, size_t kl,
	    const void *v, size_t vl);
int tu_put_rc(mapkv_txn *txn, mapkv_dbi dbi, const void *k, size_t kl,
	      const void *v, size_t vl, unsigned flags);
int tu_get_rc(mapkv_txn *txn, mapkv_dbi dbi, const void *k, size_t kl,
	      mapkv_val *out);
int tu_del_rc(mapkv_txn *txn, mapkv_dbi dbi, const void *k, size_t kl);
/* C-string keys and values. */
void tu_put_str(mapkv_txn *txn, mapkv_dbi dbi, const char *k, const char *v);
/* Assert that @k maps to the C string @v (or is missing when v == NULL). */
void tu_expect_str(mapkv_txn *txn, mapkv_dbi dbi, const char *k, const char *v);
mapkv_envinfo tu_env_info(mapkv_env *env);
mapkv_stat_info tu_stat(mapkv_txn *txn, mapkv_dbi dbi);

/* Compare tree @dbi as @txn sees it with @m: a forward cursor scan, a
 * backward cursor scan (each must end with MAPKV_NOTFOUND), a get of every
 * model key, and mapkv_stat's entries. Returns 0, or -1 with a message in
 * @err. Does not assert and does not modify @m, so reader threads can use
 * it (with the model not being changed concurrently). */
int tu_verify_txn_msg(mapkv_txn *txn, mapkv_dbi dbi, const tu_model *m,
		      char *err, size_t errlen);
/* Same, failing the test on a mismatch. */
void tu_verify_txn(mapkv_txn *txn, mapkv_dbi dbi, const tu_model *m);
/* Same, inside a new read transaction of @env (the calling thread must not
 * hold another transaction). */
void tu_verify_db(mapkv_env *env, mapkv_dbi dbi, const tu_model *m);

/* ---- reader thread ---------------------------------------------------- */

typedef struct tu_reader tu_reader;
/* A function run inside the reader thread with its read transaction;
 * returns 0 or nonzero with a message in @err. */
typedef int (*tu_reader_fn)(mapkv_txn *txn, void *ctx, char *err,
			    size_t errlen);

/* Start a thread that begins a read transaction and keeps it until
 * tu_reader_stop(). Returns the code of mapkv_txn_begin(); on failure the
 * thread has ended and *r is NULL. */
int tu_reader_start_rc(mapkv_env *env, tu_reader **r);
/* Same, asserting success. */
tu_reader *tu_reader_start(mapkv_env *env);
/* Run @fn in the reader thread and wait for it; fails the test (from the
 * calling thread) if @fn returns nonzero. */
void tu_reader_call(tu_reader *r, tu_reader_fn fn, void *ctx);
/* mapkv_txn_id() of the reader's transaction. */
uint64_t tu_reader_txnid(tu_reader *r);
/* Verify the reader's snapshot against @m (in the reader thread). */
void tu_reader_verify(tu_reader *r, mapkv_dbi dbi, const tu_model *m);
/* Abort the read transaction and join the thread. */
void tu_reader_stop(tu_reader *r);

#endif /* MAPKV_TESTUTIL_H */
