/*
 * check_multiproc.c: several processes on one database: the shared reader
 * table in the lock file, one writer across processes, readers and writers
 * killed at random, growth seen by every process, two environments of one
 * file in one process.
 *
 * Values written by the writer embed the commit number and a checksum,
 * so a reader can tell a torn or reused page from a real value.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapkv.h"
#include "testutil.h"

#define NKEYS 2000
#define VLEN 64

/* value: 8 commit number, 8 key number, filler, 8 checksum of the rest */
static void make_val(unsigned char *v, uint64_t commit, uint64_t key)
{
	memcpy(v, &commit, 8);
	memcpy(v + 8, &key, 8);
	tu_fill_bytes(v + 16, VLEN - 24, commit * 1000003u + key);
	uint64_t h = tu_hash64(v, VLEN - 8);
	memcpy(v + VLEN - 8, &h, 8);
}

static int val_ok(const void *p, size_t n, uint64_t key, uint64_t *commit)
{
	const unsigned char *v = p;
	uint64_t h, k;
	if (n != VLEN)
		return 0;
	memcpy(&h, v + VLEN - 8, 8);
	memcpy(&k, v + 8, 8);
	memcpy(commit, v, 8);
	return h == tu_hash64(v, VLEN - 8) && k == key;
}

static size_t key_of(unsigned char *k, uint64_t i)
{
	return tu_make_seq_key(k, 12, i);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One commit of the writer: update @n random keys and "counter". */
static int writer_commit(mapkv_env *env, uint64_t commit, tu_rng *r, int n)
{
	mapkv_txn *txn;
	int rc = mapkv_txn_begin(env, 0, &txn);
	if (rc)
		return rc;
	unsigned char k[16], v[VLEN];
	for (int i = 0; i < n && !rc; i++) {
		uint64_t key = tu_rng_below(r, NKEYS);
		mapkv_val kv = {k, key_of(k, key)}, vv = {v, VLEN};
		make_val(v, commit, key);
		rc = mapkv_put(txn, 0, &kv, &vv, 0);
	}
	if (!rc) {
		mapkv_val kv = {"counter", 7}, vv = {&commit, 8};
		rc = mapkv_put(txn, 0, &kv, &vv, 0);
	}
	if (rc) {
		mapkv_txn_abort(txn);
		return rc;
	}
	return mapkv_txn_commit(txn);
}

/* A reader process: read transactions until @until, each reading the
 * counter and 50 keys twice. Exits with the number of violations (capped),
 * or 100 + an error. */
static void reader_proc(const char *path, double until, uint64_t seed)
{
	mapkv_env *env;
	if (mapkv_open(&env, path, NULL))
		_exit(101);
	tu_rng r;
	tu_rng_init(&r, seed);
	uint64_t last_counter = 0, txns = 0;
	int bad = 0;
	while (now_s() < until && bad < 50) {
		mapkv_txn *txn;
		if (mapkv_txn_begin(env, MAPKV_RDONLY, &txn))
			_exit(102);
		mapkv_val ck = {"counter", 7}, cv;
		uint64_t counter = 0;
		if (mapkv_get(txn, 0, &ck, &cv) == 0 && cv.size == 8)
			memcpy(&counter, cv.data, 8);
		if (counter < last_counter)
			bad++; /* ids went backwards between transactions */
		last_counter = counter;
		uint64_t first[50];
		unsigned char k[16];
		for (int pass = 0; pass < 2; pass++) {
			tu_rng rr = r;
			for (int i = 0; i < 50; i++) {
				uint64_t key = tu_rng_below(&rr, NKEYS);
				mapkv_val kv = {k, key_of(k, key)}, vv;
				uint64_t commit = 0;
				int rc = mapkv_get(txn, 0, &kv, &vv);
				if (rc == MAPKV_NOTFOUND) {
					commit = 0;
				} else if (rc ||
					   !val_ok(vv.data, vv.size, key,
						   &commit) ||
					   commit > counter) {
					bad++; /* damaged or from the future */
				}
				if (pass == 0)
					first[i] = commit;
				else if (first[i] != commit)
					bad++; /* not a repeatable read */
			}
		}
		tu_rng_next(&r);
		mapkv_txn_abort(txn);
		txns++;
	}
	mapkv_close(env);
	_exit(bad > 99 ? 99 : bad);
}

static pid_t spawn_reader(const char *path, double until, uint64_t seed)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		reader_proc(path, until, seed);
	return pid;
}

static void expect_exit0(pid_t pid, const char *who)
{
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	tu_check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "%s exited with status %d (signal %d)", who,
		 WIFEXITED(st) ? WEXITSTATUS(st) : -1,
		 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

START_TEST(test_one_writer_four_reader_processes_see_consistent_snapshots)
{
	const char *path = tu_path("db");
	mapkv_env *env = tu_open("db", 0, 0);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0x3a11));
	ck_assert_rc(writer_commit(env, 1, &r, NKEYS), 0);
	double secs = (double)tu_scale(10, 60);
	double until = now_s() + secs;
	pid_t rd[4];
	for (int i = 0; i < 4; i++)
		rd[i] = spawn_reader(path, until, 77 + i);
	uint64_t commit = 1;
	while (now_s() < until)
		ck_assert_rc(writer_commit(env, ++commit, &r, 20), 0);
	for (int i = 0; i < 4; i++)
		expect_exit0(rd[i], "reader");
	tu_check(commit > 20, "only %llu commits", (unsigned long long)commit);
	/* Everything is reachable exactly once after all that. */
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_check(txn, NULL, NULL, NULL), 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* The writer: commits in a loop, reporting each acknowledged commit on a
 * pipe, until killed. */
static void writer_proc(const char *path, int fd, uint64_t from)
{
	mapkv_env *env;
	if (mapkv_open(&env, path, NULL))
		_exit(101);
	tu_rng r;
	tu_rng_init(&r, from);
	for (uint64_t c = from;; c++) {
		if (writer_commit(env, c, &r, 5))
			_exit(102);
		if (write(fd, &c, 8) != 8)
			_exit(103);
	}
}

START_TEST(
	test_writer_killed_50_times_never_blocks_and_keeps_acknowledged_commits)
{
	const char *path = tu_path("db");
	mapkv_env *env = tu_open("db", 0, 0);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0x3a12));
	ck_assert_rc(writer_commit(env, 1, &r, NKEYS), 0);
	int kills = (int)tu_scale(50, 300);
	double until = now_s() + 3600;
	pid_t rd[2];
	for (int i = 0; i < 2; i++)
		rd[i] = spawn_reader(path, until, 99 + i);
	uint64_t acked = 1;
	for (int k = 0; k < kills; k++) {
		int fds[2];
		ck_assert_int_eq(pipe(fds), 0);
		pid_t w = fork();
		ck_assert_int_ge(w, 0);
		if (w == 0) {
			close(fds[0]);
			writer_proc(path, fds[1], acked + 1);
		}
		close(fds[1]);
		/* Let it commit a little, then kill it at a random moment. */
		uint64_t c;
		ck_assert_int_eq(read(fds[0], &c, 8), 8);
		acked = c;
		usleep((useconds_t)tu_rng_below(&r, 20000));
		kill(w, SIGKILL);
		int st;
		ck_assert_int_eq(waitpid(w, &st, 0), w);
		ck_assert(WIFSIGNALED(st));
		while (read(fds[0], &c, 8) == 8)
			acked = c;
		close(fds[0]);
		/* The kernel released its lock: a writer starts at once. */
		mapkv_txn *txn;
		ck_assert_rc(mapkv_txn_begin(env, MAPKV_TRY, &txn), 0);
		mapkv_val kv = {"counter", 7}, vv;
		ck_assert_rc(mapkv_get(txn, 0, &kv, &vv), 0);
		uint64_t counter;
		memcpy(&counter, vv.data, 8);
		tu_check(counter >= acked && counter <= acked + 1,
			 "kill %d: counter %llu, acknowledged %llu", k,
			 (unsigned long long)counter,
			 (unsigned long long)acked);
		mapkv_txn_abort(txn);
		acked = counter;
	}
	for (int i = 0; i < 2; i++) {
		kill(rd[i], SIGKILL); /* SIGTERM would run Check's handler */
		waitpid(rd[i], NULL, 0);
	}
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_rc(mapkv_check(txn, NULL, NULL, NULL), 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* Fork @n processes that each begin a read transaction, report, and wait
 * to be killed. */
static void hold_readers(const char *path, pid_t *rd, int n)
{
	for (int i = 0; i < n; i++) {
		int fds[2];
		ck_assert_int_eq(pipe(fds), 0);
		rd[i] = fork();
		ck_assert_int_ge(rd[i], 0);
		if (rd[i] == 0) {
			mapkv_env *e;
			mapkv_txn *t;
			if (mapkv_open(&e, path, NULL) ||
			    mapkv_txn_begin(e, MAPKV_RDONLY, &t))
				_exit(1);
			if (write(fds[1], "r", 1) != 1)
				_exit(2);
			for (;;)
				pause();
		}
		char c;
		ck_assert_int_eq(read(fds[0], &c, 1), 1);
		close(fds[0]);
		close(fds[1]);
	}
}

/* Reader processes killed while holding snapshots: their slots are found
 * and freed, and the pages they pinned are reused. */
START_TEST(test_killed_readers_release_their_slots_and_pages)
{
	const char *path = tu_path("db");
	mapkv_env *env = tu_open("db", 0, 0);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0x3a13));
	ck_assert_rc(writer_commit(env, 1, &r, NKEYS), 0);
	pid_t rd[3];
	hold_readers(path, rd, 3);
	mapkv_envinfo info = tu_env_info(env);
	ck_assert_uint_eq(info.num_readers, 3);
	ck_assert_uint_eq(info.oldest_reader_txnid, 1);
	ck_assert_int_eq(info.shared_lock_file, 1);
	tu_check(info.oldest_reader_pid == (uint64_t)rd[0] ||
			 info.oldest_reader_pid == (uint64_t)rd[1] ||
			 info.oldest_reader_pid == (uint64_t)rd[2],
		 "oldest reader pid %llu is none of the readers",
		 (unsigned long long)info.oldest_reader_pid);
	ck_assert_uint_lt(info.oldest_reader_age_ms, 600000);
	mapkv_reader_info list[8];
	unsigned n;
	ck_assert_rc(mapkv_reader_list(env, list, 8, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(list[0].txnid, 1);
	/* While they hold snapshot 1, rewriting everything grows the file. */
	uint64_t c = 1;
	for (int i = 0; i < 10; i++)
		ck_assert_rc(writer_commit(env, ++c, &r, NKEYS), 0);
	uint64_t pinned = tu_env_info(env).pages_used;
	for (int i = 0; i < 3; i++) {
		kill(rd[i], SIGKILL);
		waitpid(rd[i], NULL, 0);
	}
	unsigned dead = 0;
	ck_assert_rc(mapkv_reader_check(env, &dead), 0);
	ck_assert_uint_eq(dead, 3);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 0);
	/* Now the same rewriting reuses pages: the file stops growing. */
	for (int i = 0; i < 10; i++)
		ck_assert_rc(writer_commit(env, ++c, &r, NKEYS), 0);
	uint64_t mid = tu_env_info(env).pages_used;
	for (int i = 0; i < 30; i++)
		ck_assert_rc(writer_commit(env, ++c, &r, NKEYS), 0);
	uint64_t end = tu_env_info(env).pages_used;
	tu_check(end <= mid + 8 && mid <= pinned + pinned / 2,
		 "pages used: %llu while pinned, %llu, then %llu",
		 (unsigned long long)pinned, (unsigned long long)mid,
		 (unsigned long long)end);
	mapkv_close(env);
}
END_TEST

/* Without anyone calling mapkv_reader_check: dead readers' slots are
 * reclaimed when every slot is taken, and when a writer starts. */
START_TEST(test_dead_reader_slots_are_reclaimed_on_demand)
{
	const char *path = tu_path("db");
	mapkv_env *env = tu_open("db", 0, 0);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0x3a15));
	ck_assert_rc(writer_commit(env, 1, &r, 10), 0);
	mapkv_close(env);
	/* A table of 3 slots (the first opener sizes it). */
	unlink(tu_path("db-lock"));
	mapkv_options o = {0, 0, 0, 3, 0};
	ck_assert_rc(mapkv_open(&env, path, &o), 0);
	pid_t rd[3];
	hold_readers(path, rd, 3);
	mapkv_txn *txn;
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, &txn),
		     MAPKV_READERS_FULL);
	for (int i = 0; i < 3; i++) {
		kill(rd[i], SIGKILL);
		waitpid(rd[i], NULL, 0);
	}
	/* Full again, but of dead readers: the begin reclaims them. */
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	mapkv_txn_abort(txn);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 0);
	/* And a writer's start reclaims them too. */
	hold_readers(path, rd, 2);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 2);
	for (int i = 0; i < 2; i++) {
		kill(rd[i], SIGKILL);
		waitpid(rd[i], NULL, 0);
	}
	txn = tu_begin(env, 0);
	mapkv_txn_abort(txn);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 0);
	mapkv_close(env);
}
END_TEST

/* ---- a lock file that cannot be opened (read-only file system) ---- */

#include "os.h"
int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs);
static os_vfs ro_base, ro_vfs;

static int ro_open(os_vfs *v, const char *path, int flags, unsigned mode,
		   os_file **f, int *created)
{
	size_t n = strlen(path);
	if (n > 5 && strcmp(path + n - 5, "-lock") == 0) {
		errno = EROFS;
		return MAPKV_IO;
	}
	return ro_base.open(v, path, flags, mode, f, created);
}

START_TEST(test_readonly_env_without_a_writable_lock_file_still_reads)
{
	mapkv_env *env = tu_open("db", 0, 0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "k", "v");
	tu_commit(txn);
	mapkv_close(env);
	ro_base = *os_default_vfs();
	ro_vfs = ro_base;
	ro_vfs.open = ro_open;
	/* Writable: the lock file is required. */
	ck_assert_rc(env_open_vfs(&env, tu_path("db"), NULL, &ro_vfs),
		     MAPKV_IO);
	/* Read-only: works, with a private reader table, and says so. */
	mapkv_options o = {0, 0, MAPKV_RDONLY, 0, 0};
	ck_assert_rc(env_open_vfs(&env, tu_path("db"), &o, &ro_vfs), 0);
	ck_assert_int_eq(tu_env_info(env).shared_lock_file, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "k", "v");
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* A reader process that opened the file small sees the pages another
 * process added later (its map is extended in place). */
START_TEST(test_growth_by_one_process_is_seen_by_another)
{
	const char *path = tu_path("db");
	mapkv_env *env = tu_open("db", 0, 0);
	tu_rng r;
	tu_rng_init(&r, tu_seed(0x3a14));
	ck_assert_rc(writer_commit(env, 1, &r, 10), 0);
	uint64_t small = tu_file_size(path);
	int go[2], done[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		mapkv_env *e;
		if (mapkv_open(&e, path, NULL))
			_exit(1);
		char c = 'o';
		if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		mapkv_txn *t;
		if (mapkv_txn_begin(e, MAPKV_RDONLY, &t))
			_exit(3);
		/* Every big value, written after this process opened. */
		for (uint64_t i = 0; i < 3000; i++) {
			unsigned char k[16];
			mapkv_val kv = {k, tu_make_seq_key(k, 14, i)}, vv;
			if (mapkv_get(t, 0, &kv, &vv) || vv.size != 3000 ||
			    tu_check_bytes(vv.data, 3000, i) != (size_t)-1)
				_exit(4);
		}
		mapkv_txn_abort(t);
		mapkv_close(e);
		_exit(0);
	}
	char c;
	ck_assert_int_eq(read(done[0], &c, 1), 1);
	mapkv_txn *txn = tu_begin(env, 0);
	unsigned char v[3000];
	for (uint64_t i = 0; i < 3000; i++) {
		unsigned char k[16];
		tu_fill_bytes(v, 3000, i);
		tu_put(txn, 0, k, tu_make_seq_key(k, 14, i), v, 3000);
	}
	tu_commit(txn);
	ck_assert_uint_gt(tu_file_size(path), 8 * small);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	expect_exit0(child, "reader that opened the file small");
	mapkv_close(env);
}
END_TEST

/* Two environments of one file in one process share the reader table and
 * exclude each other's writers. */
START_TEST(test_two_environments_of_one_file_in_one_process)
{
	mapkv_env *a = tu_open("db", 0, 0), *b = tu_open("db", 0, 0);
	mapkv_txn *ta = tu_begin(a, 0);
	tu_put_str(ta, 0, "k", "from a");
	mapkv_txn *tb;
	ck_assert_rc(mapkv_txn_begin(b, MAPKV_TRY, &tb), MAPKV_BUSY);
	tu_commit(ta);
	tb = tu_begin(b, MAPKV_RDONLY);
	tu_expect_str(tb, 0, "k", "from a");
	/* b's reader pins its snapshot against a's writer. */
	ck_assert_uint_eq(tu_env_info(a).num_readers, 1);
	mapkv_txn_abort(tb);
	tb = tu_begin(b, 0);
	tu_put_str(tb, 0, "k", "from b");
	tu_commit(tb);
	ta = tu_begin(a, MAPKV_RDONLY);
	tu_expect_str(ta, 0, "k", "from b");
	mapkv_txn_abort(ta);
	mapkv_close(b);
	mapkv_close(a);
}
END_TEST

/* The tests below run twice (loop tests): _i 0 in the build tree (ext4
 * here), _i 1 on tmpfs. */
#define ON_FS(i)                                                               \
	do {                                                                   \
		if (!tu_on_tmpfs(i)) {                                         \
			fprintf(stderr, "check_multiproc: no tmpfs at "        \
					"/dev/shm: the tmpfs run is "          \
					"skipped\n");                          \
			return;                                                \
		}                                                              \
	} while (0)

/* ---- a hook in the OS layer, to run something at a chosen step of
 * another environment's open ---- */

enum { EV_NONE, EV_LOCK_OPEN, EV_DB_WRITE, EV_DB_READ_PAGES, EV_DB_READ_HEAD };

static os_vfs hk_base, hk_vfs;
static int hk_event;        /* the step to stop at (once) */
static void (*hk_fn)(void); /* what to run there */
static os_file *hk_db;      /* the database file of the env opened */
static int hk_fired;

static void hk_fire(int ev)
{
	if (ev != hk_event || hk_fired)
		return;
	hk_fired = 1;
	hk_fn();
}

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);
	return n >= t && strcmp(s + n - t, tail) == 0;
}

static int hk_open(os_vfs *v, const char *path, int flags, unsigned mode,
		   os_file **f, int *created)
{
	if (ends_with(path, "-lock"))
		hk_fire(EV_LOCK_OPEN);
	int rc = hk_base.open(v, path, flags, mode, f, created);
	if (!rc && !ends_with(path, "-lock") && !hk_db)
		hk_db = *f;
	return rc;
}

static int hk_read(os_file *f, void *buf, size_t n, uint64_t off, size_t *got)
{
	int rc = hk_base.read(f, buf, n, off, got);
	/* After the read: what it returned is now behind the file. */
	if (f == hk_db)
		hk_fire(off == 0 ? EV_DB_READ_HEAD : EV_DB_READ_PAGES);
	return rc;
}

static int hk_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	if (f == hk_db)
		hk_fire(EV_DB_WRITE);
	return hk_base.write(f, iov, cnt, off);
}

/* Open tu_path(@name) through the hook, which runs @fn once at @ev. */
static int hook_open(mapkv_env **env, const char *name, unsigned flags, int ev,
		     void (*fn)(void))
{
	hk_base = *os_default_vfs();
	hk_vfs = hk_base;
	hk_vfs.open = hk_open;
	hk_vfs.read = hk_read;
	hk_vfs.write = hk_write;
	hk_event = ev;
	hk_fn = fn;
	hk_db = NULL;
	hk_fired = 0;
	mapkv_options o = {0, 0, flags, 0, 0};
	return env_open_vfs(env, tu_path(name), &o, &hk_vfs);
}

/* Commit counter = n in @env. */
static void put_counter(mapkv_env *env, uint64_t n)
{
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_val kv = {"counter", 7}, vv = {&n, 8};
	ck_assert_rc(mapkv_put(txn, 0, &kv, &vv, 0), 0);
	tu_commit(txn);
}

static uint64_t get_counter(mapkv_txn *txn)
{
	mapkv_val kv = {"counter", 7}, vv;
	uint64_t n = 0;
	int rc = mapkv_get(txn, 0, &kv, &vv);
	if (rc == MAPKV_NOTFOUND)
		return 0;
	ck_assert_rc(rc, 0);
	ck_assert_uint_eq(vv.size, 8);
	memcpy(&n, vv.data, 8);
	return n;
}

/* Fork a child that runs @fn and exits with its result; wait for it at
 * most @ms milliseconds (it may be waiting for a lock the caller holds).
 * Returns the pid, or 0 once it has exited with status 0 in time. */
static pid_t child_bounded(int (*fn)(void), int ms)
{
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn());
	for (int i = 0; i < ms; i++) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			tu_check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
				 "child failed: status %d, signal %d",
				 WIFEXITED(st) ? WEXITSTATUS(st) : -1,
				 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			return 0;
		}
		usleep(1000);
	}
	return pid;
}

static uint64_t child_from; /* the counter the child starts from */
static int child_commits;   /* how many commits it makes */

/* The other process: open, commit counter = from+1 .. from+n (freeing
 * and reusing pages), close. */
static int commit_burst(void)
{
	mapkv_env *env;
	if (mapkv_open(&env, tu_path("db"), NULL))
		return 1;
	unsigned char v[VLEN];
	for (int c = 1; c <= child_commits; c++) {
		mapkv_txn *txn;
		uint64_t n = child_from + (uint64_t)c;
		if (mapkv_txn_begin(env, 0, &txn))
			return 2;
		mapkv_val kv = {"counter", 7}, vv = {&n, 8};
		if (mapkv_put(txn, 0, &kv, &vv, 0))
			return 3;
		for (uint64_t key = 0; key < 50; key++) {
			unsigned char k[16];
			mapkv_val kk = {k, key_of(k, key)}, vk = {v, VLEN};
			make_val(v, n, key);
			if (mapkv_put(txn, 0, &kk, &vk, 0))
				return 4;
		}
		if (mapkv_txn_commit(txn))
			return 5;
	}
	mapkv_close(env);
	return 0;
}

static void burst_while_opening(void)
{
	pid_t p = child_bounded(commit_burst, 300);
	if (p) {
		/* Blocked by a lock this opener holds: it commits once the
		 * open has finished. Remember it to reap. */
		child_from = (uint64_t)p << 32 | child_from;
	}
}

static void reap_burst(void)
{
	pid_t p = (pid_t)(child_from >> 32);
	if (p)
		expect_exit0(p, "the process committing during the open");
}

/* Bug: an opener alone on the lock file published the meta it had read
 * before taking any lock; commits made by a process that opened,
 * committed and closed in between were invisible to it and to every
 * later opener until the next write, and their freed pages were reused
 * under its readers. */
START_TEST(test_opener_alone_publishes_the_newest_commit_not_the_one_it_read)
{
	ON_FS(_i);
	mapkv_env *env = tu_open("db", 0, 0);
	put_counter(env, 1);
	mapkv_close(env);
	child_from = 1;
	child_commits = 5;
	ck_assert_rc(
		hook_open(&env, "db", 0, EV_LOCK_OPEN, burst_while_opening), 0);
	ck_assert_int_eq(hk_fired, 1);
	reap_burst();
	/* The burst was acknowledged before the open returned. */
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(get_counter(txn), 6);
	mapkv_txn_abort(txn);
	/* So is it for an opener that finds the table in use. */
	mapkv_env *other = tu_open("db", MAPKV_RDONLY, 0);
	txn = tu_begin(other, MAPKV_RDONLY);
	ck_assert_uint_eq(get_counter(txn), 6);
	mapkv_txn_abort(txn);
	mapkv_close(other);
	mapkv_close(env);
}
END_TEST

/* Bug: a writable opener that found the file blank wrote the empty
 * database over it without a lock, after another process had created and
 * committed to it. */
START_TEST(test_second_creator_of_a_new_file_keeps_the_first_ones_commits)
{
	ON_FS(_i);
	mapkv_env *env;
	child_from = 0;
	child_commits = 3;
	/* The hook fires at this opener's first write of the file: the
	 * empty database of a creator. */
	ck_assert_rc(hook_open(&env, "db", 0, EV_DB_WRITE, burst_while_opening),
		     0);
	ck_assert_int_eq(hk_fired, 1);
	reap_burst();
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(get_counter(txn), 3);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(get_counter(txn), 3);
	ck_assert_rc(mapkv_check(txn, NULL, NULL, NULL), 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* Bug: an opener verified the pages of the newest one-sync commit (read
 * before any lock) after a later commit of another process had reused
 * them, and returned MAPKV_CORRUPT for a healthy file (or opened at an
 * older commit). */
START_TEST(test_open_beside_commits_that_reuse_listed_pages_never_corrupt)
{
	ON_FS(_i);
	mapkv_env *env = tu_open("db", 0, 0);
	child_from = 0;
	child_commits = 1;
	ck_assert_rc(commit_burst(), 0); /* every key, counter 1 */
	put_counter(env, 2);             /* small: a one-sync commit */
	mapkv_close(env);
	child_from = 2;
	child_commits = 6;
	/* The hook fires once the first listed page has been read back. */
	ck_assert_rc(
		hook_open(&env, "db", 0, EV_DB_READ_PAGES, burst_while_opening),
		0);
	ck_assert_int_eq(hk_fired, 1);
	reap_burst();
	mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(get_counter(txn), 8);
	ck_assert_rc(mapkv_check(txn, NULL, NULL, NULL), 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* The same race for a read-only environment without a lock file (it
 * cannot keep writers out): the head is read again when verification
 * fails, and only a failure on an unchanged head is damage. */
START_TEST(test_private_reader_open_beside_commits_never_corrupt)
{
	ON_FS(_i);
	mapkv_env *env = tu_open("db", 0, 0);
	child_from = 0;
	child_commits = 1;
	ck_assert_rc(commit_burst(), 0);
	put_counter(env, 2);
	/* env stays open: the burst's writer shares its table. */
	child_from = 2;
	child_commits = 6;
	/* The hook over a layer where the lock file cannot be opened. */
	ro_base = *os_default_vfs();
	hk_base = ro_base;
	hk_base.open = ro_open;
	hk_vfs = hk_base;
	hk_vfs.open = hk_open;
	hk_vfs.read = hk_read;
	hk_event = EV_DB_READ_PAGES;
	hk_fn = burst_while_opening;
	hk_db = NULL;
	hk_fired = 0;
	mapkv_options o = {0, 0, MAPKV_RDONLY, 0, 0};
	mapkv_env *ro;
	ck_assert_rc(env_open_vfs(&ro, tu_path("db"), &o, &hk_vfs), 0);
	ck_assert_int_eq(hk_fired, 1);
	reap_burst();
	ck_assert_int_eq(tu_env_info(ro).shared_lock_file, 0);
	mapkv_txn *txn = tu_begin(ro, MAPKV_RDONLY);
	ck_assert_uint_eq(get_counter(txn), 8);
	mapkv_txn_abort(txn);
	mapkv_close(ro);
	mapkv_close(env);
}
END_TEST

/* ---- fork ---- */

/* Bug: a child made by fork() after mapkv_open shared the parent's writer
 * lock (an OFD lock belongs to the descriptor both hold), so the child
 * and the parent both began writes, and one acknowledged commit was lost.
 * The child is now refused everything that touches locks or the reader
 * table, and the parent goes on as if nothing happened. */
START_TEST(test_child_after_fork_is_refused_and_the_parent_writes_alone)
{
	ON_FS(_i);
	mapkv_env *env = tu_open("db", 0, 0);
	put_counter(env, 1);
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		int bad = 0;
		mapkv_txn *t;
		mapkv_envinfo info;
		unsigned n;
		mapkv_reader_info ri[4];
		bad |= mapkv_txn_begin(env, 0, &t) != MAPKV_FORKED;
		bad |= (mapkv_txn_begin(env, MAPKV_TRY, &t) != MAPKV_FORKED)
		       << 1;
		bad |= (mapkv_txn_begin(env, MAPKV_RDONLY, &t) != MAPKV_FORKED)
		       << 2;
		bad |= (mapkv_sync(env) != MAPKV_FORKED) << 3;
		bad |= (mapkv_env_info(env, &info) != MAPKV_FORKED) << 4;
		bad |= (mapkv_reader_check(env, &n) != MAPKV_FORKED) << 5;
		bad |= (mapkv_reader_list(env, ri, 4, &n) != MAPKV_FORKED) << 6;
		bad |= (mapkv_copy(env, tu_path("copy"), 0) != MAPKV_FORKED)
		       << 7;
		mapkv_close(env);
		(void)!write(fds[1], &bad, sizeof(bad));
		_exit(0);
	}
	close(fds[1]);
	int bad = -1;
	ck_assert_int_eq(read(fds[0], &bad, sizeof(bad)), sizeof(bad));
	close(fds[0]);
	expect_exit0(pid, "child");
	tu_check(bad == 0,
		 "child after fork: calls that did not give "
		 "MAPKV_FORKED (bit mask): %#x",
		 bad);
	/* The child closed its copy: the parent's writer and readers work. */
	mapkv_txn *txn;
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_TRY, &txn), 0);
	ck_assert_uint_eq(get_counter(txn), 1);
	mapkv_val kv = {"counter", 7};
	uint64_t two = 2;
	mapkv_val vv = {&two, 8};
	ck_assert_rc(mapkv_put(txn, 0, &kv, &vv, 0), 0);
	tu_commit(txn);
	ck_assert_int_eq(access(tu_path("copy"), F_OK), -1);
	mapkv_close(env);
	env = tu_open("db", 0, 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(get_counter(txn), 2);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

/* What a child inherits mid-transaction: aborting or committing it, or
 * closing the environment, must not release the parent's writer lock or
 * reader slot (shared through the descriptor and the lock file). The
 * child then opens the database again and works beside the parent. */
START_TEST(
	test_child_lets_go_of_inherited_transactions_without_touching_the_parents)
{
	ON_FS(_i);
	mapkv_env *env = tu_open("db", 0, 0);
	put_counter(env, 1);
	tu_reader *rd = tu_reader_start(env); /* a reader in another thread */
	mapkv_txn *w = tu_begin(env, 0);
	mapkv_txn *r2;
	int fds[2], go[2];
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(pipe(go), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		int bad = 0;
		/* The inherited write transaction: commit refused, nothing
		 * written, the parent's lock kept. */
		bad |= mapkv_txn_commit(w) != MAPKV_FORKED;
		mapkv_close(env); /* and the rest of the copy */
		mapkv_env *mine;
		mapkv_txn *t;
		if (mapkv_open(&mine, tu_path("db"), NULL))
			_exit(10);
		/* The parent still writes: this process must wait. */
		bad |= (mapkv_txn_begin(mine, MAPKV_TRY, &t) != MAPKV_BUSY)
		       << 1;
		/* Its reader slot is still taken. */
		mapkv_envinfo info;
		bad |= (mapkv_env_info(mine, &info) != 0 ||
			info.num_readers != 1)
		       << 2;
		(void)!write(fds[1], &bad, sizeof(bad));
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(11);
		/* The parent committed 2 and ended its transactions. */
		if (mapkv_txn_begin(mine, 0, &t))
			_exit(12);
		mapkv_val kv = {"counter", 7}, vv;
		uint64_t n = 0;
		if (mapkv_get(t, 0, &kv, &vv) || vv.size != 8)
			_exit(13);
		memcpy(&n, vv.data, 8);
		bad |= (n != 2) << 3;
		n = 3;
		vv.data = &n;
		if (mapkv_put(t, 0, &kv, &vv, 0) || mapkv_txn_commit(t))
			_exit(14);
		mapkv_close(mine);
		(void)!write(fds[1], &bad, sizeof(bad));
		_exit(0);
	}
	close(fds[1]);
	close(go[0]);
	int bad = -1;
	ck_assert_int_eq(read(fds[0], &bad, sizeof(bad)), sizeof(bad));
	tu_check(bad == 0,
		 "child, inherited transactions: failed checks "
		 "(bit mask) %#x",
		 bad);
	/* The parent's write transaction is whole and alone. */
	mapkv_val kv = {"counter", 7};
	uint64_t two = 2;
	mapkv_val vv = {&two, 8};
	ck_assert_rc(mapkv_put(w, 0, &kv, &vv, 0), 0);
	tu_commit(w);
	ck_assert_uint_eq(tu_reader_txnid(rd), 1);
	tu_reader_stop(rd);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(read(fds[0], &bad, sizeof(bad)), sizeof(bad));
	tu_check(bad == 0,
		 "child, its own environment: failed checks "
		 "(bit mask) %#x",
		 bad);
	close(fds[0]);
	close(go[1]);
	expect_exit0(pid, "child");
	r2 = tu_begin(env, MAPKV_RDONLY);
	ck_assert_uint_eq(get_counter(r2), 3);
	mapkv_txn_abort(r2);
	mapkv_close(env);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("multiproc");
	TCase *tc = tu_tcase(s, "multiproc", 600);
	tcase_add_test(
		tc,
		test_one_writer_four_reader_processes_see_consistent_snapshots);
	tcase_add_test(
		tc,
		test_writer_killed_50_times_never_blocks_and_keeps_acknowledged_commits);
	tcase_add_test(tc, test_killed_readers_release_their_slots_and_pages);
	tcase_add_test(tc, test_growth_by_one_process_is_seen_by_another);
	tcase_add_test(tc, test_two_environments_of_one_file_in_one_process);
	tcase_add_test(tc, test_dead_reader_slots_are_reclaimed_on_demand);
	tcase_add_test(
		tc, test_readonly_env_without_a_writable_lock_file_still_reads);
	tcase_add_loop_test(
		tc,
		test_opener_alone_publishes_the_newest_commit_not_the_one_it_read,
		0, 2);
	tcase_add_loop_test(
		tc,
		test_second_creator_of_a_new_file_keeps_the_first_ones_commits,
		0, 2);
	tcase_add_loop_test(
		tc,
		test_open_beside_commits_that_reuse_listed_pages_never_corrupt,
		0, 2);
	tcase_add_loop_test(
		tc, test_private_reader_open_beside_commits_never_corrupt, 0,
		2);
	tcase_add_loop_test(
		tc,
		test_child_after_fork_is_refused_and_the_parent_writes_alone, 0,
		2);
	tcase_add_loop_test(
		tc,
		test_child_lets_go_of_inherited_transactions_without_touching_the_parents,
		0, 2);
	return tu_run_suite(s);
}
