/*
 * check_lockfile.c: one lock table per database, whatever the path.
 *
 * Every name of a database (a symbolic link, a relative path, a directory
 * bind-mounted elsewhere) must lead its environments to the one reader
 * table of that file; a name that would lead to a second table (a hard
 * link or a bind-mounted file under another name, a lock file removed or
 * replaced while in use, a database file replaced under its users) is
 * refused with MAPKV_LOCK_CONFLICT, in one process and across processes.
 * A lock file truncated, removed or replaced under an environment gives
 * MAPKV_LOCK_LOST, not a SIGBUS; a database file truncated under one gives
 * MAPKV_CORRUPT. And the limits on max_readers and max_size.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapkv.h"
#include "testutil.h"

/* The tests of names and damage run twice (loop tests): _i 0 in the build
 * tree (ext4 here), _i 1 on tmpfs. */
#define ON_FS(i)                                                               \
	do {                                                                   \
		if (!tu_on_tmpfs(i)) {                                         \
			fprintf(stderr, "check_lockfile: no tmpfs at "         \
					"/dev/shm: the tmpfs run is "          \
					"skipped\n");                          \
			return;                                                \
		}                                                              \
	} while (0)

static void put_counter(mapkv_env *env, uint64_t n)
{
	mapkv_txn *txn = tu_begin(env, 0);
	mapkv_val kv = {"counter", 7}, vv = {&n, 8};
	ck_assert_rc(mapkv_put(txn, 0, &kv, &vv, 0), 0);
	/* Some more pages, freed and reused by the next commits. */
	for (uint64_t i = 0; i < 40; i++) {
		unsigned char k[16], v[200];
		tu_fill_bytes(v, sizeof(v), n * 1000 + i);
		tu_put(txn, 0, k, tu_make_seq_key(k, 8, i), v, sizeof(v));
	}
	tu_commit(txn);
}

/* The counter as @env sees it now (a read transaction of its own), or
 * the error of beginning it (negative). */
static int64_t counter_of(mapkv_env *env)
{
	mapkv_txn *txn;
	int rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn);
	if (rc)
		return rc;
	mapkv_val kv = {"counter", 7}, vv;
	uint64_t n = 0;
	rc = mapkv_get(txn, 0, &kv, &vv);
	if (rc == 0 && vv.size == 8)
		memcpy(&n, vv.data, 8);
	mapkv_txn_abort(txn);
	return rc == 0 || rc == MAPKV_NOTFOUND ? (int64_t)n : rc;
}

static int open_at(mapkv_env **env, const char *path, unsigned flags)
{
	mapkv_options o = {tu_default_max_size(), 0, flags, 0, 0};
	return mapkv_open(env, path, &o);
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Run @fn(@arg) in a child process; returns its exit status (a signal is
 * a failure of the test). */
static int in_child(int (*fn)(const char *), const char *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn(arg));
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	tu_check(WIFEXITED(st), "child killed by signal %d",
		 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WEXITSTATUS(st);
}

/* Child: open @path, expect a conflict. */
static int child_expect_conflict(const char *path)
{
	mapkv_env *env;
	int rc = open_at(&env, path, 0);
	if (rc == 0)
		mapkv_close(env);
	return rc == MAPKV_LOCK_CONFLICT ? 0 : 1;
}

/* Child: open @path and read the counter the parent committed (7),
 * holding a read transaction while the parent is told to write; then
 * check that the snapshot is untouched. */
static int child_reads_seven(const char *path)
{
	mapkv_env *env;
	if (open_at(&env, path, MAPKV_RDONLY))
		return 1;
	return counter_of(env) == 7 ? (mapkv_close(env), 0) : 2;
}

/* ---- names that lead to one table ---- */

/* A symbolic link to a file that does not exist yet: the database is
 * created through it (O_EXCL never follows a link: this used to fail with
 * MAPKV_IO after a hundred tries), its lock file beside the target. */
START_TEST(test_database_is_created_through_a_symlink_to_a_missing_file)
{
	ON_FS(_i);
	ck_assert_int_eq(mkdir(tu_path("data"), 0700), 0);
	ck_assert_int_eq(symlink("data/t.db", tu_path("link.db")), 0);
	mapkv_env *a, *b;
	ck_assert_rc(open_at(&a, tu_path("link.db"), 0), 0);
	ck_assert(exists(tu_path("data/t.db")));
	ck_assert(exists(tu_path("data/t.db-lock")));
	ck_assert(!exists(tu_path("link.db-lock")));
	put_counter(a, 7);
	ck_assert_rc(open_at(&b, tu_path("data/t.db"), 0), 0);
	ck_assert_int_eq(counter_of(b), 7);
	mapkv_close(b);
	mapkv_close(a);
}
END_TEST

START_TEST(test_symlinks_and_relative_paths_share_one_lock_table)
{
	ON_FS(_i);
	char cwd[1024];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(mkdir(tu_path("sub"), 0700), 0);
	ck_assert_int_eq(symlink("real.db", tu_path("link.db")), 0);
	ck_assert_int_eq(symlink(tu_dir(), tu_path("dirlink")), 0);
	mapkv_env *a, *b, *c, *d;
	ck_assert_rc(open_at(&a, tu_path("real.db"), 0), 0);
	ck_assert_rc(open_at(&b, tu_path("link.db"), 0), 0);
	ck_assert_rc(open_at(&d, tu_path("dirlink/sub/../link.db"), 0), 0);
	ck_assert_int_eq(chdir(tu_dir()), 0);
	ck_assert_rc(open_at(&c, "./sub/../real.db", 0), 0);
	ck_assert_int_eq(chdir(cwd), 0);
	/* One lock file, beside the real file. */
	ck_assert(exists(tu_path("real.db-lock")));
	ck_assert(!exists(tu_path("link.db-lock")));
	ck_assert(!exists(tu_path("sub/link.db-lock")));
	put_counter(a, 1);
	ck_assert_int_eq(counter_of(b), 1);
	ck_assert_int_eq(counter_of(c), 1);
	ck_assert_int_eq(counter_of(d), 1);
	/* One writer among them. */
	mapkv_txn *w = tu_begin(c, 0), *t;
	ck_assert_rc(mapkv_txn_begin(b, MAPKV_TRY, &t), MAPKV_BUSY);
	ck_assert_rc(mapkv_txn_begin(d, MAPKV_TRY, &t), MAPKV_BUSY);
	mapkv_txn_abort(w);
	/* A reader through the link pins its snapshot for the writer
	 * through the real name, and sees what it saw while the writer
	 * rewrites every page many times. */
	tu_reader *rd = tu_reader_start(b);
	ck_assert_uint_eq(tu_env_info(a).num_readers, 1);
	ck_assert_uint_eq(tu_env_info(a).oldest_reader_txnid,
			  tu_reader_txnid(rd));
	tu_model *m = tu_model_new();
	mapkv_txn *snap = tu_begin(a, MAPKV_RDONLY);
	mapkv_cursor *cur;
	ck_assert_rc(mapkv_cursor_open(snap, 0, &cur), 0);
	mapkv_val kv, vv;
	while (mapkv_cursor_get(cur, &kv, &vv, MAPKV_NEXT) == 0)
		tu_model_put(m, kv.data, kv.size, vv.data, vv.size);
	mapkv_cursor_close(cur);
	mapkv_txn_abort(snap);
	for (uint64_t n = 2; n < 30; n++)
		put_counter(a, n);
	tu_reader_verify(rd, 0, m);
	tu_reader_stop(rd);
	tu_model_free(m);
	ck_assert_int_eq(counter_of(d), 29);
	mapkv_close(d);
	mapkv_close(c);
	mapkv_close(b);
	mapkv_close(a);
}
END_TEST

static int child_shares_through_link(const char *path)
{
	mapkv_env *env;
	if (open_at(&env, path, 0))
		return 1;
	int64_t n = counter_of(env);
	if (n != 7)
		return 2;
	/* Its commit is seen by the parent through the other name. */
	put_counter(env, 8);
	mapkv_close(env);
	return 0;
}

START_TEST(test_symlink_and_relative_path_share_the_table_across_processes)
{
	ON_FS(_i);
	ck_assert_int_eq(symlink("real.db", tu_path("link.db")), 0);
	mapkv_env *a;
	ck_assert_rc(open_at(&a, tu_path("real.db"), 0), 0);
	put_counter(a, 7);
	mapkv_txn *w = tu_begin(a, 0);
	/* The child waits for the parent's writer: it is the same table. */
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		mapkv_env *e;
		mapkv_txn *t;
		if (open_at(&e, tu_path("link.db"), 0))
			_exit(1);
		_exit(mapkv_txn_begin(e, MAPKV_TRY, &t) == MAPKV_BUSY ? 0 : 2);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	mapkv_txn_abort(w);
	ck_assert_int_eq(
		in_child(child_shares_through_link, tu_path("link.db")), 0);
	ck_assert_int_eq(counter_of(a), 8);
	/* Relative names, in a child working in the database's folder. */
	const char *rel[] = {"real.db", "./link.db", "../" /* below */};
	char up[1200];
	const char *base = strrchr(tu_dir(), '/');
	snprintf(up, sizeof(up), "..%s/real.db", base);
	rel[2] = up;
	ck_assert_int_eq(chdir(tu_dir()), 0);
	for (int i = 0; i < 3; i++) {
		put_counter(a, 7);
		tu_check(in_child(child_shares_through_link, rel[i]) == 0,
			 "through %s", rel[i]);
		ck_assert_int_eq(counter_of(a), 8);
	}
	ck_assert(!exists(tu_path("link.db-lock")));
	mapkv_close(a);
}
END_TEST

/* ---- names that would lead to a second table ---- */

START_TEST(test_hard_link_is_refused_while_the_database_is_in_use)
{
	ON_FS(_i);
	ck_assert_int_eq(mkdir(tu_path("other"), 0700), 0);
	mapkv_env *a, *b;
	ck_assert_rc(open_at(&a, tu_path("real.db"), 0), 0);
	put_counter(a, 7);
	ck_assert_int_eq(link(tu_path("real.db"), tu_path("hard.db")), 0);
	ck_assert_int_eq(link(tu_path("real.db"), tu_path("other/real.db")), 0);
	/* In this process and in another. */
	ck_assert_rc(open_at(&b, tu_path("hard.db"), 0), MAPKV_LOCK_CONFLICT);
	ck_assert_rc(open_at(&b, tu_path("hard.db"), MAPKV_RDONLY),
		     MAPKV_LOCK_CONFLICT);
	ck_assert_rc(open_at(&b, tu_path("other/real.db"), 0),
		     MAPKV_LOCK_CONFLICT);
	ck_assert_int_eq(in_child(child_expect_conflict, tu_path("hard.db")),
			 0);
	ck_assert_int_eq(in_child(child_reads_seven, tu_path("real.db")), 0);
	/* Nothing of it was used: the first table goes on. */
	put_counter(a, 8);
	ck_assert_int_eq(counter_of(a), 8);
	mapkv_close(a);
	/* Free again: now the other name holds it, and the first is
	 * refused. */
	ck_assert_rc(open_at(&b, tu_path("hard.db"), 0), 0);
	ck_assert_int_eq(counter_of(b), 8);
	ck_assert_rc(open_at(&a, tu_path("real.db"), 0), MAPKV_LOCK_CONFLICT);
	ck_assert_int_eq(in_child(child_expect_conflict, tu_path("real.db")),
			 0);
	put_counter(b, 7);
	mapkv_close(b);
	ck_assert_int_eq(in_child(child_reads_seven, tu_path("real.db")), 0);
	ck_assert_rc(open_at(&a, tu_path("real.db"), 0), 0);
	mapkv_txn *txn = tu_begin(a, MAPKV_RDONLY);
	ck_assert_rc(mapkv_check(txn, NULL, NULL, NULL), 0);
	mapkv_txn_abort(txn);
	mapkv_close(a);
}
END_TEST

/* mapkv_copy through another name: through a symbolic link it is a copy
 * of the last commit while the writer goes on; through a hard link the
 * environment cannot be had (it used to copy pages the other name's
 * writer was reusing). */
START_TEST(test_copy_through_an_alias_is_whole_or_refused)
{
	ON_FS(_i);
	ck_assert_int_eq(symlink("real.db", tu_path("link.db")), 0);
	mapkv_env *a, *b;
	ck_assert_rc(open_at(&a, tu_path("real.db"), 0), 0);
	put_counter(a, 1);
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* A writer through the real name until killed. */
		close(fds[0]);
		mapkv_env *w;
		if (open_at(&w, tu_path("real.db"), 0))
			_exit(1);
		for (uint64_t n = 2;; n++) {
			put_counter(w, n);
			if (n == 2 && write(fds[1], "w", 1) != 1)
				_exit(2);
		}
	}
	close(fds[1]);
	char c;
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	ck_assert_rc(open_at(&b, tu_path("link.db"), MAPKV_RDONLY), 0);
	ck_assert_rc(mapkv_copy(b, tu_path("plain.db"), 0), 0);
	ck_assert_rc(mapkv_copy(b, tu_path("compact.db"), MAPKV_COPY_COMPACT),
		     0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	mapkv_close(b);
	const char *copies[] = {"plain.db", "compact.db"};
	for (int i = 0; i < 2; i++) {
		mapkv_env *e;
		ck_assert_rc(open_at(&e, tu_path(copies[i]), MAPKV_RDONLY), 0);
		int64_t n = counter_of(e);
		tu_check(n >= 2, "%s: counter %lld", copies[i], (long long)n);
		mapkv_txn *txn = tu_begin(e, MAPKV_RDONLY);
		uint64_t problems = 0;
		ck_assert_rc(mapkv_check(txn, NULL, NULL, &problems), 0);
		mapkv_txn_abort(txn);
		mapkv_close(e);
	}
	ck_assert_int_eq(link(tu_path("real.db"), tu_path("hard.db")), 0);
	ck_assert_rc(open_at(&b, tu_path("hard.db"), MAPKV_RDONLY),
		     MAPKV_LOCK_CONFLICT);
	mapkv_close(a);
}
END_TEST

/* ---- bind mounts, in a mount namespace of a child ---- */

#define CHILD_FAIL(...)                                                        \
	do {                                                                   \
		fprintf(stderr, "check_lockfile (bind mounts): " __VA_ARGS__); \
		fprintf(stderr, "\n");                                         \
		_exit(1);                                                      \
	} while (0)

/* A private mount namespace (root, or an unprivileged user namespace);
 * -1 where the system refuses. */
static int private_mounts(void)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (unshare(CLONE_NEWNS) != 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
			return -1;
		char map[64];
		int fd = open("/proc/self/setgroups", O_WRONLY);
		if (fd >= 0) {
			(void)!write(fd, "deny", 4);
			close(fd);
		}
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		fd = open("/proc/self/uid_map", O_WRONLY);
		if (fd < 0 || write(fd, map, strlen(map)) < 0)
			return -1;
		close(fd);
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		fd = open("/proc/self/gid_map", O_WRONLY);
		if (fd < 0 || write(fd, map, strlen(map)) < 0)
			return -1;
		close(fd);
	}
	return mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL);
}

static void bind_child(void)
{
	char d1[1200], d2[1200], d3[1200], db1[1300], db2[1300], db3[1300];
	snprintf(d1, sizeof(d1), "%s", tu_path("d1"));
	snprintf(d2, sizeof(d2), "%s", tu_path("d2"));
	snprintf(d3, sizeof(d3), "%s", tu_path("d3"));
	snprintf(db1, sizeof(db1), "%s/x.db", d1);
	snprintf(db2, sizeof(db2), "%s/x.db", d2);
	snprintf(db3, sizeof(db3), "%s/y.db", d3);
	if (private_mounts() != 0)
		_exit(77);
	mapkv_env *a, *b, *c;
	int rc;
	if ((rc = open_at(&a, db1, 0)))
		CHILD_FAIL("open %s: %s", db1, mapkv_strerror(rc));
	put_counter(a, 7);
	if (mount(d1, d2, "none", MS_BIND, NULL) != 0)
		_exit(77);
	tu_write_file(db3, "", 0);
	if (mount(db1, db3, "none", MS_BIND, NULL) != 0)
		_exit(77);
	/* The folder under another path: the same lock file. */
	if ((rc = open_at(&b, db2, 0)))
		CHILD_FAIL("open through the bound folder: %s",
			   mapkv_strerror(rc));
	if (counter_of(b) != 7)
		CHILD_FAIL("the bound folder does not see the commit");
	mapkv_txn *w, *t;
	if (mapkv_txn_begin(a, 0, &w))
		CHILD_FAIL("begin");
	if ((rc = mapkv_txn_begin(b, MAPKV_TRY, &t)) != MAPKV_BUSY)
		CHILD_FAIL("a second writer through the bound folder: %s",
			   mapkv_strerror(rc));
	mapkv_txn_abort(w);
	if (child_reads_seven(db2))
		CHILD_FAIL("another process through the bound folder");
	/* The file alone under another name: its own lock file, refused
	 * while the first is in use, here and in another process. */
	if ((rc = open_at(&c, db3, 0)) != MAPKV_LOCK_CONFLICT)
		CHILD_FAIL("the bound file: %s, not MAPKV_LOCK_CONFLICT",
			   mapkv_strerror(rc));
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child_expect_conflict(db3));
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		CHILD_FAIL("the bound file in another process was not refused");
	mapkv_close(b);
	mapkv_close(a);
	if ((rc = open_at(&c, db3, 0)))
		CHILD_FAIL("the bound file once the others closed: %s",
			   mapkv_strerror(rc));
	if (counter_of(c) != 7)
		CHILD_FAIL("the bound file does not hold the commit");
	mapkv_close(c);
	_exit(0);
}

START_TEST(test_bind_mounted_folder_shares_and_bound_file_is_refused)
{
	ON_FS(_i);
	ck_assert_int_eq(mkdir(tu_path("d1"), 0700), 0);
	ck_assert_int_eq(mkdir(tu_path("d2"), 0700), 0);
	ck_assert_int_eq(mkdir(tu_path("d3"), 0700), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		bind_child();
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	tu_check(WIFEXITED(st), "killed by signal %d", WTERMSIG(st));
	if (WEXITSTATUS(st) == 77) {
		fprintf(stderr, "check_lockfile: this system refuses a mount "
				"namespace or a bind mount; the bind-mount "
				"test is skipped\n");
		return;
	}
	tu_check(WEXITSTATUS(st) == 0,
		 "the bind-mount test failed (see its message above)");
}
END_TEST

/* ---- the lock file and the database changed under their users ---- */

START_TEST(test_removed_or_replaced_lock_file_is_lost_for_its_users)
{
	ON_FS(_i);
	for (int replace = 0; replace < 2; replace++) {
		const char *db = tu_path(replace ? "r.db" : "u.db");
		char lock[1200];
		snprintf(lock, sizeof(lock), "%s-lock", db);
		mapkv_env *a, *b;
		ck_assert_rc(open_at(&a, db, 0), 0);
		put_counter(a, 7);
		tu_reader *rd = tu_reader_start(a);
		if (replace) {
			tu_write_file(tu_path("new-lock"), "x", 1);
			ck_assert_int_eq(rename(tu_path("new-lock"), lock), 0);
		} else {
			ck_assert_int_eq(unlink(lock), 0);
		}
		/* A new opener would build a table of its own beside the
		 * live one: refused, in this process and another. */
		ck_assert_rc(open_at(&b, db, 0), MAPKV_LOCK_CONFLICT);
		ck_assert_int_eq(in_child(child_expect_conflict, db), 0);
		/* The users of the old one learn it at the next write, and
		 * from then on for every transaction. */
		mapkv_txn *t;
		ck_assert_rc(mapkv_txn_begin(a, 0, &t), MAPKV_LOCK_LOST);
		ck_assert_rc(mapkv_txn_begin(a, MAPKV_RDONLY, &t),
			     MAPKV_LOCK_LOST);
		unsigned n;
		ck_assert_rc(mapkv_reader_check(a, &n), MAPKV_LOCK_LOST);
		mapkv_envinfo info;
		ck_assert_rc(mapkv_env_info(a, &info), MAPKV_LOCK_LOST);
		tu_reader_stop(rd);
		mapkv_close(a);
		/* Once they are gone, the database opens as before. */
		ck_assert_rc(open_at(&b, db, 0), 0);
		ck_assert_int_eq(counter_of(b), 7);
		put_counter(b, 8);
		mapkv_close(b);
	}
}
END_TEST

/* Bug: a truncated lock file killed its users with SIGBUS. They now find
 * out at the next write transaction (or reader-table call) and refuse
 * every transaction; a new opener refuses too. (A read transaction that
 * begins first still touches the map: see doc/reliability.md.) */
static int truncated_lock_child(const char *db)
{
	char lock[1200];
	snprintf(lock, sizeof(lock), "%s-lock", db);
	mapkv_env *a, *b;
	if (open_at(&a, db, 0))
		return 1;
	put_counter(a, 7);
	tu_truncate_file(lock, 0);
	mapkv_txn *t;
	if (mapkv_txn_begin(a, 0, &t) != MAPKV_LOCK_LOST)
		return 2;
	if (mapkv_txn_begin(a, MAPKV_RDONLY, &t) != MAPKV_LOCK_LOST)
		return 3;
	if (open_at(&b, db, 0) != MAPKV_LOCK_LOST)
		return 4;
	mapkv_close(a);
	if (open_at(&b, db, 0) || counter_of(b) != 7)
		return 5;
	/* Shortened but not empty: the header is there, the slots not. */
	tu_truncate_file(lock, 600);
	unsigned n;
	if (mapkv_reader_check(b, &n) != MAPKV_LOCK_LOST)
		return 6;
	mapkv_close(b);
	return 0;
}

START_TEST(test_truncated_lock_file_is_an_error_not_sigbus)
{
	ON_FS(_i);
	int st = in_child(truncated_lock_child, tu_path("db"));
	tu_check(st == 0, "truncated lock file: step %d failed", st);
}
END_TEST

START_TEST(test_replaced_database_file_is_refused_while_the_old_one_is_used)
{
	ON_FS(_i);
	mapkv_env *a, *b;
	ck_assert_rc(open_at(&a, tu_path("db"), 0), 0);
	put_counter(a, 7);
	ck_assert_rc(open_at(&b, tu_path("new.db"), 0), 0);
	put_counter(b, 100);
	mapkv_close(b);
	ck_assert_int_eq(rename(tu_path("new.db"), tu_path("db")), 0);
	/* The lock file in use belongs to the old file. */
	ck_assert_rc(open_at(&b, tu_path("db"), 0), MAPKV_LOCK_CONFLICT);
	ck_assert_int_eq(in_child(child_expect_conflict, tu_path("db")), 0);
	put_counter(a, 8);
	ck_assert_int_eq(counter_of(a), 8);
	mapkv_close(a);
	ck_assert_rc(open_at(&b, tu_path("db"), 0), 0);
	ck_assert_int_eq(counter_of(b), 100);
	mapkv_close(b);
}
END_TEST

static int truncated_db_child(const char *db)
{
	mapkv_env *a, *b;
	if (open_at(&a, db, 0))
		return 1;
	for (uint64_t n = 1; n <= 50; n++)
		put_counter(a, n);
	tu_truncate_file(db, 2 * 4096);
	mapkv_txn *t;
	if (mapkv_txn_begin(a, 0, &t) != MAPKV_CORRUPT)
		return 2;
	if (open_at(&b, db, MAPKV_RDONLY) != MAPKV_CORRUPT)
		return 3;
	mapkv_close(a);
	return 0;
}

START_TEST(test_truncated_database_file_is_corrupt_for_writers_and_openers)
{
	ON_FS(_i);
	int st = in_child(truncated_db_child, tu_path("db"));
	tu_check(st == 0, "truncated database: step %d failed", st);
}
END_TEST

/* ---- limits (issue 11, bug 8) ---- */

START_TEST(test_max_readers_is_bounded_and_checked_before_any_file)
{
	const unsigned bad[] = {UINT_MAX, MAPKV_MAX_READERS + 1, 200000000u};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mapkv_options o = {tu_default_max_size(), 0, 0, bad[i], 0};
		mapkv_env *env;
		ck_assert_rc(mapkv_open(&env, tu_path("db"), &o),
			     MAPKV_INVALID);
		ck_assert_ptr_null(env);
		ck_assert(!exists(tu_path("db")));
		ck_assert(!exists(tu_path("db-lock")));
	}
	mapkv_options o = {tu_default_max_size(), 0, 0, MAPKV_MAX_READERS, 0};
	mapkv_env *env;
	ck_assert_rc(mapkv_open(&env, tu_path("db"), &o), 0);
	ck_assert_uint_eq(tu_file_size(tu_path("db-lock")),
			  512 + (MAPKV_MAX_READERS + 1ull) * 64);
	ck_assert_uint_eq(tu_env_info(env).max_readers, MAPKV_MAX_READERS);
	put_counter(env, 1);
	tu_reader *rd = tu_reader_start(env);
	put_counter(env, 2);
	ck_assert_uint_eq(tu_env_info(env).num_readers, 1);
	tu_reader_stop(rd);
	mapkv_close(env);
}
END_TEST

START_TEST(test_max_dbs_is_bounded_and_checked_before_any_file)
{
	const unsigned bad[] = {UINT_MAX, MAPKV_MAX_DBS + 1, 1u << 24};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mapkv_options o = {tu_default_max_size(), 0, 0, 0, bad[i]};
		mapkv_env *env;
		ck_assert_rc(mapkv_open(&env, tu_path("db"), &o),
			     MAPKV_INVALID);
		ck_assert_ptr_null(env);
		ck_assert(!exists(tu_path("db")));
		ck_assert(!exists(tu_path("db-lock")));
	}
	/* The largest count works: a tree is created and found again. */
	mapkv_options o = {tu_default_max_size(), 0, 0, 0, MAPKV_MAX_DBS};
	mapkv_env *env;
	mapkv_txn *txn;
	mapkv_dbi dbi;
	ck_assert_rc(mapkv_open(&env, tu_path("db"), &o), 0);
	ck_assert_rc(mapkv_txn_begin(env, 0, &txn), 0);
	ck_assert_rc(mapkv_dbi_open(txn, "t", MAPKV_CREATE, &dbi), 0);
	mapkv_val k = {"k", 1}, v = {"v", 1};
	ck_assert_rc(mapkv_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_rc(mapkv_txn_commit(txn), 0);
	ck_assert_rc(mapkv_txn_begin(env, MAPKV_RDONLY, &txn), 0);
	ck_assert_rc(mapkv_dbi_open(txn, "t", 0, &dbi), 0);
	ck_assert_rc(mapkv_get(txn, dbi, &k, &v), 0);
	ck_assert_uint_eq(v.size, 1);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

START_TEST(test_max_size_below_two_pages_is_refused_before_any_file)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t unit = ps > 4096 ? (uint64_t)ps : 4096;
	const uint64_t bad[] = {1, 4096, 2 * unit - 1};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mapkv_options o = {bad[i], 0, 0, 0, 0};
		mapkv_env *env;
		ck_assert_rc(mapkv_open(&env, tu_path("db"), &o),
			     MAPKV_INVALID);
		ck_assert(!exists(tu_path("db")));
		ck_assert(!exists(tu_path("db-lock")));
	}
	/* Two pages is the smallest database: it opens, and a commit that
	 * needs a third page says the map is full. */
	mapkv_options o = {2 * unit, 0, 0, 0, 0};
	mapkv_env *env;
	ck_assert_rc(mapkv_open(&env, tu_path("db"), &o), 0);
	ck_assert_uint_eq(tu_file_size(tu_path("db")), 2 * unit);
	mapkv_txn *txn = tu_begin(env, 0);
	ck_assert_rc(tu_put_rc(txn, 0, "k", 1, "v", 1, 0), MAPKV_FULL);
	mapkv_txn_abort(txn);
	mapkv_close(env);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lockfile");
	TCase *tc = tu_tcase(s, "lockfile", 120);
	tcase_add_loop_test(
		tc, test_symlinks_and_relative_paths_share_one_lock_table, 0,
		2);
	tcase_add_loop_test(
		tc,
		test_database_is_created_through_a_symlink_to_a_missing_file, 0,
		2);
	tcase_add_loop_test(
		tc,
		test_symlink_and_relative_path_share_the_table_across_processes,
		0, 2);
	tcase_add_loop_test(
		tc, test_hard_link_is_refused_while_the_database_is_in_use, 0,
		2);
	tcase_add_loop_test(tc, test_copy_through_an_alias_is_whole_or_refused,
			    0, 2);
	tcase_add_loop_test(
		tc, test_bind_mounted_folder_shares_and_bound_file_is_refused,
		0, 2);
	tcase_add_loop_test(
		tc, test_removed_or_replaced_lock_file_is_lost_for_its_users, 0,
		2);
	tcase_add_loop_test(tc, test_truncated_lock_file_is_an_error_not_sigbus,
			    0, 2);
	tcase_add_loop_test(
		tc,
		test_replaced_database_file_is_refused_while_the_old_one_is_used,
		0, 2);
	tcase_add_loop_test(
		tc,
		test_truncated_database_file_is_corrupt_for_writers_and_openers,
		0, 2);
	tcase_add_test(tc,
		       test_max_readers_is_bounded_and_checked_before_any_file);
	tcase_add_test(tc, test_max_dbs_is_bounded_and_checked_before_any_file);
	tcase_add_test(
		tc, test_max_size_below_two_pages_is_refused_before_any_file);
	return tu_run_suite(s);
}
