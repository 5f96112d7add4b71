/*
 * check_stress.c: many short-lived processes on one database.
 *
 * Writer processes loop: open, commit, close (each commit bumps a counter
 * and rewrites a few values, so pages are freed and reused all the time);
 * reader processes loop: open, read, close. They share a page of memory
 * where every acknowledged commit is announced, so a reader knows the
 * newest commit that returned 0 before its read transaction began. Each
 * reader checks that
 *   - its snapshot holds that commit or a later one (never stale),
 *   - no value it reads was written by a transaction later than its
 *     snapshot, and a second pass after a pause reads exactly the same
 *     (its pages were not reused under it),
 *   - every value passes its checksum,
 * and every open, begin and commit on this healthy file returns 0.
 *
 * A test OS layer under the library pauses at random at the steps of
 * open, begin, commit and close (reading the meta pages, taking and
 * releasing locks, mapping the lock file, syncing, reading the clock
 * between copying the published meta and registering a reader) to widen
 * the race windows between processes. Every scenario runs on tmpfs
 * (/dev/shm, when there is one) and on the file system of the build tree.
 *
 * 12 s per file system, 120 s under MAPKV_TEST_LONG=1; MAPKV_STRESS_SECS
 * and MAPKV_STRESS_PAUSE_US (the longest pause, 3000 by default, 0 for
 * none) override them; MAPKV_STRESS_ONE_NAME=1 has every process use the
 * same path.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapkv.h"
#include "os.h"
#include "testutil.h"

int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs);

/* ---- what the processes share ---- */

#define NMSG 8

typedef struct shared {
	_Atomic uint64_t acked; /* highest commit number acknowledged */
	_Atomic uint64_t opens, commits, reads;
	_Atomic uint64_t stale, overwritten, damaged, errors;
	_Atomic unsigned nmsg;
	char msg[NMSG][240];
} shared;

static shared *S;

static void note(_Atomic uint64_t *counter, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(_Atomic uint64_t *counter, const char *fmt, ...)
{
	atomic_fetch_add(counter, 1);
	unsigned i = atomic_fetch_add(&S->nmsg, 1);
	if (i >= NMSG)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(S->msg[i], sizeof(S->msg[i]), fmt, ap);
	va_end(ap);
}

static void ack(uint64_t n)
{
	uint64_t cur = atomic_load(&S->acked);
	while (cur < n && !atomic_compare_exchange_weak(&S->acked, &cur, n))
		;
}

/* ---- the pausing OS layer ---- */

static os_vfs base, pv;
static tu_rng prng;             /* per process, seeded after fork */
static unsigned pause_max_us;   /* 0: no pauses */
static unsigned pause_permille; /* chance of a pause at each step */

static void step_p(unsigned permille)
{
	if (!pause_max_us || tu_rng_below(&prng, 1000) >= permille)
		return;
	usleep((useconds_t)tu_rng_below(&prng, pause_max_us + 1));
}

static void step(void)
{
	step_p(pause_permille);
}

static int p_open(os_vfs *v, const char *path, int flags, unsigned mode,
		  os_file **f, int *created)
{
	step();
	int rc = base.open(v, path, flags, mode, f, created);
	step();
	return rc;
}

static void p_close(os_file *f)
{
	step();
	base.close(f);
}

static int p_size(os_file *f, uint64_t *size)
{
	step();
	return base.size(f, size);
}

static int p_read(os_file *f, void *buf, size_t n, uint64_t off, size_t *got)
{
	step();
	int rc = base.read(f, buf, n, off, got);
	/* After the meta pages were read at open and begin: often, since
	 * that is where an opener can fall behind the commits of others. */
	step_p(4 * pause_permille);
	return rc;
}

static int p_write_sync(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	step();
	int rc = base.write_sync(f, iov, cnt, off);
	step();
	return rc;
}

static int p_sync(os_file *f)
{
	step();
	int rc = base.sync(f);
	step();
	return rc;
}

static int p_map_rw(os_file *f, size_t len, void **p)
{
	step();
	return base.map_rw(f, len, p);
}

static int p_lock(os_file *f, int kind, int wait)
{
	step();
	int rc = base.lock(f, kind, wait);
	step();
	return rc;
}

static int p_unlock(os_file *f, int kind)
{
	step();
	return base.unlock(f, kind);
}

static int p_lock_byte(os_file *f, uint64_t off, int exclusive, int wait)
{
	step();
	int rc = base.lock_byte(f, off, exclusive, wait);
	step();
	return rc;
}

static int p_unlock_byte(os_file *f, uint64_t off)
{
	step();
	return base.unlock_byte(f, off);
}

/* Called by a reader between copying the published meta and registering
 * its snapshot: the window of a stale registration. */
static uint64_t p_time_ns(os_vfs *v)
{
	step();
	return base.time_ns(v);
}

static void vfs_init(void)
{
	base = *os_default_vfs();
	pv = base;
	pv.name = "pausing";
	pv.open = p_open;
	pv.close = p_close;
	pv.size = p_size;
	pv.read = p_read;
	pv.write_sync = p_write_sync;
	pv.sync = p_sync;
	pv.map_rw = p_map_rw;
	pv.lock = p_lock;
	pv.unlock = p_unlock;
	pv.lock_byte = p_lock_byte;
	pv.unlock_byte = p_unlock_byte;
	pv.time_ns = p_time_ns;
}

/* ---- the workload ---- */

#define NKEYS 400
#define VLEN 96

/* value: commit number, txnid that wrote it, key number, filler, hash */
static void make_val(unsigned char *v, uint64_t n, uint64_t txnid, uint64_t key)
{
	memcpy(v, &n, 8);
	memcpy(v + 8, &txnid, 8);
	memcpy(v + 16, &key, 8);
	tu_fill_bytes(v + 24, VLEN - 32, n * 7919u + key);
	uint64_t h = tu_hash64(v, VLEN - 8);
	memcpy(v + VLEN - 8, &h, 8);
}

static int val_ok(const mapkv_val *vv, uint64_t key, uint64_t *n,
		  uint64_t *txnid)
{
	const unsigned char *v = vv->data;
	uint64_t h, k;
	if (vv->size != VLEN)
		return 0;
	memcpy(n, v, 8);
	memcpy(txnid, v + 8, 8);
	memcpy(&k, v + 16, 8);
	memcpy(&h, v + VLEN - 8, 8);
	return k == key && h == tu_hash64(v, VLEN - 8);
}

static size_t key_of(unsigned char *k, uint64_t i)
{
	return tu_make_seq_key(k, 10, i);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_env(const char *path, mapkv_env **env)
{
	errno = 0;
	int rc = env_open_vfs(env, path, NULL, &pv);
	int e = errno;
	atomic_fetch_add(&S->opens, 1);
	if (rc)
		note(&S->errors, "open %s: %s (errno %s)", path,
		     mapkv_strerror(rc), strerror(e));
	return rc;
}

/* One commit: counter n+1 and a few values, all tagged with n+1 and the
 * transaction's id. */
static int one_commit(mapkv_env *env, tu_rng *r)
{
	mapkv_txn *txn;
	int rc = mapkv_txn_begin(env, 0, &txn);
	if (rc) {
		note(&S->errors, "write begin: %s", mapkv_strerror(rc));
		return rc;
	}
	uint64_t txnid = mapkv_txn_id(txn), n = 0;
	mapkv_val ck = {"counter", 7}, cv;
	rc = mapkv_get(txn, 0, &ck, &cv);
	if (rc == 0 && cv.size == 16) {
		memcpy(&n, cv.data, 8);
	} else if (rc != MAPKV_NOTFOUND) {
		note(&S->errors, "writer get counter: %s",
		     rc ? mapkv_strerror(rc) : "bad size");
		mapkv_txn_abort(txn);
		return rc ? rc : MAPKV_CORRUPT;
	}
	n++;
	unsigned char cbuf[16], k[16], v[VLEN];
	memcpy(cbuf, &n, 8);
	memcpy(cbuf + 8, &txnid, 8);
	cv.data = cbuf;
	cv.size = 16;
	rc = mapkv_put(txn, 0, &ck, &cv, 0);
	/* The first commit writes every key, the others a few. */
	int nput = n == 1 ? NKEYS : 1 + (int)tu_rng_below(r, 12);
	for (int i = 0; i < nput && !rc; i++) {
		uint64_t key = n == 1 ? (uint64_t)i : tu_rng_below(r, NKEYS);
		mapkv_val kv = {k, key_of(k, key)}, vv = {v, VLEN};
		make_val(v, n, txnid, key);
		rc = mapkv_put(txn, 0, &kv, &vv, 0);
	}
	if (rc) {
		note(&S->errors, "put: %s", mapkv_strerror(rc));
		mapkv_txn_abort(txn);
		return rc;
	}
	if ((rc = mapkv_txn_commit(txn))) {
		note(&S->errors, "commit: %s", mapkv_strerror(rc));
		return rc;
	}
	atomic_fetch_add(&S->commits, 1);
	ack(n);
	return 0;
}

/* Read the counter and @nk values of the snapshot; fills @got with what
 * was read, so that a second pass can compare. */
static int read_pass(mapkv_txn *txn, const uint64_t *keys, int nk,
		     uint64_t *got, uint64_t *counter)
{
	uint64_t snap = mapkv_txn_id(txn);
	mapkv_val ck = {"counter", 7}, cv;
	int rc = mapkv_get(txn, 0, &ck, &cv);
	*counter = 0;
	if (rc == 0 && cv.size == 16) {
		uint64_t t;
		memcpy(counter, cv.data, 8);
		memcpy(&t, (const unsigned char *)cv.data + 8, 8);
		if (t > snap)
			note(&S->overwritten,
			     "snapshot txnid %llu, but its counter was "
			     "written by txn %llu",
			     (unsigned long long)snap, (unsigned long long)t);
	} else if (rc != MAPKV_NOTFOUND) {
		note(&S->damaged, "counter: %s",
		     rc ? mapkv_strerror(rc) : "bad size");
		return -1;
	}
	for (int i = 0; i < nk; i++) {
		unsigned char k[16];
		mapkv_val kv = {k, key_of(k, keys[i])}, vv;
		uint64_t n = 0, t = 0;
		rc = mapkv_get(txn, 0, &kv, &vv);
		if (rc == MAPKV_NOTFOUND) {
			got[i] = 0;
			continue;
		}
		if (rc || !val_ok(&vv, keys[i], &n, &t)) {
			note(&S->damaged, "snapshot %llu, key %llu: %s",
			     (unsigned long long)snap,
			     (unsigned long long)keys[i],
			     rc ? mapkv_strerror(rc) : "bad checksum");
			return -1;
		}
		if (t > snap || n > *counter) {
			note(&S->overwritten,
			     "snapshot txnid %llu (commit %llu), but its "
			     "value was written by txn %llu (commit %llu)",
			     (unsigned long long)snap,
			     (unsigned long long)*counter,
			     (unsigned long long)t, (unsigned long long)n);
			return -1;
		}
		got[i] = n;
	}
	return 0;
}

/* Every value of the snapshot, through a cursor: whole, and none written
 * after it. */
static void scan_all(mapkv_txn *txn, uint64_t counter)
{
	uint64_t snap = mapkv_txn_id(txn);
	mapkv_cursor *cur;
	int rc = mapkv_cursor_open(txn, 0, &cur);
	if (rc) {
		note(&S->errors, "cursor open: %s", mapkv_strerror(rc));
		return;
	}
	mapkv_val kv, vv;
	while ((rc = mapkv_cursor_get(cur, &kv, &vv, MAPKV_NEXT)) == 0) {
		if (kv.size == 7 && memcmp(kv.data, "counter", 7) == 0)
			continue;
		char kb[16] = {0};
		memcpy(kb, kv.data, kv.size < 15 ? kv.size : 15);
		uint64_t n, t, key = strtoull(kb, NULL, 10);
		if (!val_ok(&vv, key, &n, &t)) {
			note(&S->damaged,
			     "scan of snapshot %llu: key %s damaged",
			     (unsigned long long)snap,
			     tu_fmt(kv.data, kv.size));
			break;
		}
		if (t > snap || n > counter) {
			note(&S->overwritten,
			     "scan of snapshot txnid %llu (commit %llu): value "
			     "written by txn %llu (commit %llu)",
			     (unsigned long long)snap,
			     (unsigned long long)counter, (unsigned long long)t,
			     (unsigned long long)n);
			break;
		}
	}
	if (rc && rc != MAPKV_NOTFOUND)
		note(&S->damaged, "scan of snapshot %llu: %s",
		     (unsigned long long)snap, mapkv_strerror(rc));
	mapkv_cursor_close(cur);
}

/* One read transaction: must be at least the commit acknowledged before
 * it began, and repeatable after a pause during which writers go on. */
static void one_read(mapkv_env *env, tu_rng *r)
{
	uint64_t before = atomic_load(&S->acked);
	mapkv_txn *txn;
	int rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn);
	if (rc) {
		note(&S->errors, "read begin: %s", mapkv_strerror(rc));
		return;
	}
	atomic_fetch_add(&S->reads, 1);
	uint64_t keys[16], a[16], b[16], c1, c2;
	for (int i = 0; i < 16; i++)
		keys[i] = tu_rng_below(r, NKEYS);
	if (read_pass(txn, keys, 16, a, &c1) == 0) {
		if (c1 < before)
			note(&S->stale,
			     "read txn began after commit %llu was "
			     "acknowledged, but sees commit %llu",
			     (unsigned long long)before,
			     (unsigned long long)c1);
		usleep((useconds_t)tu_rng_below(r, 3000));
		scan_all(txn, c1);
		if (read_pass(txn, keys, 16, b, &c2) == 0 &&
		    (c1 != c2 || memcmp(a, b, sizeof(a)) != 0))
			note(&S->overwritten,
			     "snapshot txnid %llu changed while read",
			     (unsigned long long)mapkv_txn_id(txn));
	}
	mapkv_txn_abort(txn);
}

/* A process of the stress: @writer or reader, until @until. Half of the
 * openers of each kind keep their environment for a few transactions. */
static void stress_proc(const char *path, int writer, double until,
			uint64_t seed, unsigned pmax)
{
	tu_rng r;
	tu_rng_init(&r, seed);
	tu_rng_init(&prng, seed ^ 0x9e3779b97f4a7c15ull);
	pause_max_us = pmax;
	pause_permille = 60;
	while (now_s() < until) {
		mapkv_env *env;
		if (open_env(path, &env)) {
			usleep(1000);
			continue;
		}
		int n = tu_rng_below(&r, 2) ? 1 : 1 + (int)tu_rng_below(&r, 4);
		for (int i = 0; i < n; i++) {
			if (writer)
				one_commit(env, &r);
			else
				one_read(env, &r);
		}
		mapkv_close(env);
	}
	_exit(0);
}

typedef struct stress_cfg {
	int writers, readers;
	double secs;
	unsigned pause_us; /* longest pause of a pausing process */
} stress_cfg;

/* Run the stress on @dir; returns with S filled. Processes with an odd
 * index pause at random, the others run at full speed. */
static void run_stress(const char *dir, const stress_cfg *cfg, uint64_t seed)
{
	/* The processes reach the file by four names, which must all lead
	 * to one lock table: the path, a symbolic link to the file, one
	 * through a symbolic link to the folder, and a relative path. */
	char path[1024], names[4][1100];
	snprintf(path, sizeof(path), "%s/stress.db", dir);
	snprintf(names[0], sizeof(names[0]), "%s", path);
	snprintf(names[1], sizeof(names[1]), "%s/link.db", dir);
	snprintf(names[2], sizeof(names[2]), "%s/dirlink/stress.db", dir);
	snprintf(names[3], sizeof(names[3]), "stress.db");
	ck_assert_int_eq(symlink("stress.db", names[1]), 0);
	char dl[1100];
	snprintf(dl, sizeof(dl), "%s/dirlink", dir);
	ck_assert_int_eq(symlink(dir, dl), 0);
	memset(S, 0, sizeof(*S));
	int n = cfg->writers + cfg->readers;
	pid_t pids[32];
	ck_assert_int_le(n, 32);
	double until = now_s() + cfg->secs;
	fflush(NULL);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			const char *one = getenv("MAPKV_STRESS_ONE_NAME");
			int name = one && atoi(one) ? 0 : i % 4;
			if (name == 3 && chdir(dir) != 0)
				_exit(3);
			stress_proc(names[name], i < cfg->writers, until,
				    seed * 1000003u + (uint64_t)i,
				    i % 2 ? cfg->pause_us : 0);
		}
	}
	for (int i = 0; i < n; i++) {
		int st;
		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			note(&S->errors, "process %d: status %d, signal %d", i,
			     WIFEXITED(st) ? WEXITSTATUS(st) : -1,
			     WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	}
	/* The file is whole afterwards. */
	mapkv_env *env;
	ck_assert_rc(mapkv_open(&env, path, NULL), 0);
	mapkv_txn *txn;
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	uint64_t problems = 0;
	ck_assert_rc(mapkv_check(txn, NULL, NULL, &problems), 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}

static void report(const char *where, const stress_cfg *cfg)
{
	fprintf(stderr,
		"check_stress (%s, %d writers, %d readers, %.0f s, pauses up "
		"to %u us): %llu opens, %llu commits, %llu read txns; %llu "
		"stale, %llu overwritten, %llu damaged, %llu errors\n",
		where, cfg->writers, cfg->readers, cfg->secs, cfg->pause_us,
		(unsigned long long)S->opens, (unsigned long long)S->commits,
		(unsigned long long)S->reads, (unsigned long long)S->stale,
		(unsigned long long)S->overwritten,
		(unsigned long long)S->damaged, (unsigned long long)S->errors);
	unsigned nm = atomic_load(&S->nmsg);
	for (unsigned i = 0; i < nm && i < NMSG; i++)
		fprintf(stderr, "  %s\n", S->msg[i]);
}

static void check_stress_in(const char *dir, const char *where)
{
	stress_cfg cfg = {2, 3, (double)tu_scale(12, 120), 3000};
	const char *e = getenv("MAPKV_STRESS_SECS");
	if (e && *e)
		cfg.secs = atof(e);
	if ((e = getenv("MAPKV_STRESS_PAUSE_US")) && *e)
		cfg.pause_us = (unsigned)strtoul(e, NULL, 10);
	run_stress(dir, &cfg, tu_seed(0x57e55));
	report(where, &cfg);
	tu_check(S->stale == 0 && S->overwritten == 0 && S->damaged == 0 &&
			 S->errors == 0,
		 "%s: %llu stale snapshots, %llu overwritten, %llu damaged, "
		 "%llu errors (first: %s)",
		 where, (unsigned long long)S->stale,
		 (unsigned long long)S->overwritten,
		 (unsigned long long)S->damaged, (unsigned long long)S->errors,
		 S->nmsg ? S->msg[0] : "");
	/* Enough happened for the result to mean something. */
	tu_check(S->commits >= 50 && S->reads >= 50 && S->opens >= 100,
		 "%s: only %llu commits, %llu reads, %llu opens", where,
		 (unsigned long long)S->commits, (unsigned long long)S->reads,
		 (unsigned long long)S->opens);
}

static void setup(void)
{
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(S != MAP_FAILED);
	vfs_init();
}

START_TEST(test_stress_on_disk_snapshots_never_stale_or_overwritten)
{
	setup();
	check_stress_in(tu_dir(), "disk");
}
END_TEST

START_TEST(test_stress_on_tmpfs_snapshots_never_stale_or_overwritten)
{
	setup();
	const char *dir = tu_tmpfs_dir();
	if (!dir) {
		fprintf(stderr, "check_stress: no tmpfs at /dev/shm; the "
				"tmpfs run is skipped\n");
		return;
	}
	check_stress_in(dir, "tmpfs");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tu_tcase(s, "stress", 300);
	tcase_add_test(
		tc, test_stress_on_tmpfs_snapshots_never_stale_or_overwritten);
	tcase_add_test(
		tc, test_stress_on_disk_snapshots_never_stale_or_overwritten);
	return tu_run_suite(s);
}
