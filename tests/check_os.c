/*
 * check_os.c: the POSIX os_vfs table, used only through os_default_vfs(),
 * as the layers above use it.
 *
 * Self-contained on purpose (no testutil): every file lives in one mkdtemp
 * directory that main() creates and removes. Code that runs in a process
 * forked by a test reports through its exit status, never through
 * ck_assert.
 */
#include "os.h"

#include "mapkv.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Kept well below PATH_MAX so that tmp_dir/name always fits. */
static char tmp_dir[1024];

/* tmp_dir/name into buf (of PATH_MAX bytes). */
static char *tpath(char *buf, const char *name)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", tmp_dir, name);

	ck_assert(n > 0 && n < PATH_MAX);
	return buf;
}

static size_t gran(os_vfs *vfs)
{
	return vfs->map_granularity(vfs);
}

/* Open (creating) a fresh file called name; fails the test otherwise. */
/* The parent's handle, closed by a forked child before it exits: the
 * child's copy of it would otherwise show as a leak under valgrind. */
static os_file *inherited;

static void child_exit(os_vfs *vfs, int code)
{
	if (inherited)
		vfs->close(inherited);
	_exit(code);
}

static os_file *open_new(os_vfs *vfs, const char *name)
{
	char path[PATH_MAX];
	os_file *f = NULL;
	int created = -1;

	tpath(path, name);
	unlink(path);
	ck_assert_int_eq(
		vfs->open(vfs, path, OS_OPEN_CREATE, 0644, &f, &created), 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(created, 1);
	return f;
}

static void write_all(os_vfs *vfs, os_file *f, const void *buf, size_t n,
		      uint64_t off)
{
	os_iov iov = {buf, n};

	(void)vfs;
	ck_assert_int_eq(vfs->write(f, &iov, 1, off), 0);
}

/* ------------------------------------------------------------ open/close */

START_TEST(test_open_create_reports_created_then_existing)
{
	os_vfs *vfs = os_default_vfs();
	char path[PATH_MAX];
	os_file *f = NULL, *g = NULL;
	int created = -1;
	struct stat st;

	tpath(path, "create.db");
	unlink(path);
	ck_assert_int_eq(
		vfs->open(vfs, path, OS_OPEN_CREATE, 0600, &f, &created), 0);
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777 & ~0600, 0); /* mode honoured */
	ck_assert_int_eq(st.st_size, 0);

	/* A second open, with CREATE again, sees the file exists. */
	created = -1;
	ck_assert_int_eq(
		vfs->open(vfs, path, OS_OPEN_CREATE, 0600, &g, &created), 0);
	ck_assert_int_eq(created, 0);
	vfs->close(g);

	/* And without CREATE, read-only. */
	created = -1;
	ck_assert_int_eq(vfs->open(vfs, path, OS_OPEN_RDONLY, 0, &g, &created),
			 0);
	ck_assert_int_eq(created, 0);
	vfs->close(g);
	vfs->close(f);
}
END_TEST

START_TEST(test_open_missing_without_create_is_io_enoent)
{
	os_vfs *vfs = os_default_vfs();
	char path[PATH_MAX];
	os_file *f = (os_file *)1;
	int created = -1;

	tpath(path, "does-not-exist.db");
	errno = 0;
	ck_assert_int_eq(vfs->open(vfs, path, 0, 0, &f, &created), MAPKV_IO);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(created, 0);

	/* CREATE in a directory that does not exist: still ENOENT. */
	tpath(path, "no-such-dir/x.db");
	errno = 0;
	ck_assert_int_eq(
		vfs->open(vfs, path, OS_OPEN_CREATE, 0644, &f, &created),
		MAPKV_IO);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_open_directory_is_io_eisdir)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = NULL;

	errno = 0;
	ck_assert_int_eq(vfs->open(vfs, tmp_dir, OS_OPEN_RDONLY, 0, &f, NULL),
			 MAPKV_IO);
	ck_assert_int_eq(errno, EISDIR);
	ck_assert_int_eq(vfs->open(vfs, tmp_dir, 0, 0, &f, NULL), MAPKV_IO);
	ck_assert_int_eq(errno, EISDIR);
}
END_TEST

START_TEST(test_open_rejects_unknown_flags)
{
	os_vfs *vfs = os_default_vfs();
	char path[PATH_MAX];
	os_file *f = NULL;

	ck_assert_int_eq(
		vfs->open(vfs, tpath(path, "flags.db"), 0x100, 0644, &f, NULL),
		MAPKV_INVALID);
}
END_TEST

/* -------------------------------------------------------- read and write */

START_TEST(test_write_read_roundtrip_multi_buffer_iov)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "rw.db");
	unsigned char a[100], b[5000], c[3];
	unsigned char back[sizeof(a) + sizeof(b) + sizeof(c)];
	os_iov iov[4];
	uint64_t size = 0;
	size_t got = 0;

	memset(a, 'a', sizeof(a));
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)(i * 7);
	memset(c, 'c', sizeof(c));
	iov[0] = (os_iov){a, sizeof(a)};
	iov[1] = (os_iov){NULL, 0}; /* an empty buffer is allowed */
	iov[2] = (os_iov){b, sizeof(b)};
	iov[3] = (os_iov){c, sizeof(c)};
	ck_assert_int_eq(vfs->write(f, iov, 4, 10), 0);

	ck_assert_int_eq(vfs->size(f, &size), 0);
	ck_assert_uint_eq(size, 10 + sizeof(back));
	ck_assert_int_eq(vfs->read(f, back, sizeof(back), 10, &got), 0);
	ck_assert_uint_eq(got, sizeof(back));
	ck_assert_mem_eq(back, a, sizeof(a));
	ck_assert_mem_eq(back + sizeof(a), b, sizeof(b));
	ck_assert_mem_eq(back + sizeof(a) + sizeof(b), c, sizeof(c));

	/* The 10 bytes before the first write read as zeros. */
	ck_assert_int_eq(vfs->read(f, back, 10, 0, &got), 0);
	ck_assert_uint_eq(got, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(back[i], 0);

	/* Zero buffers: nothing to do. */
	ck_assert_int_eq(vfs->write(f, iov, 0, 0), 0);
	vfs->close(f);
}
END_TEST

/* More buffers than IOV_MAX (1024 on Linux) must be split into several
 * pwritev calls and still land back to back. */
START_TEST(test_write_more_buffers_than_iov_max)
{
	enum { NBUF = 3000 };
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "iov.db");
	static os_iov iov[NBUF];
	unsigned char *src, *back;
	size_t total = 0, got = 0;

	for (int i = 0; i < NBUF; i++)
		total += (size_t)(i % 13); /* includes empty buffers */
	src = malloc(total);
	back = malloc(total);
	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_nonnull(back);
	for (size_t i = 0; i < total; i++)
		src[i] = (unsigned char)(i * 31 + 7);
	for (size_t i = 0, pos = 0; i < NBUF; i++) {
		iov[i] = (os_iov){src + pos, (size_t)(i % 13)};
		pos += i % 13;
	}
	ck_assert_int_eq(vfs->write(f, iov, NBUF, 4096), 0);
	ck_assert_int_eq(vfs->read(f, back, total, 4096, &got), 0);
	ck_assert_uint_eq(got, total);
	ck_assert_mem_eq(back, src, total);
	free(src);
	free(back);
	vfs->close(f);
}
END_TEST

START_TEST(test_read_past_eof_zero_fills_and_reports_got)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "eof.db");
	unsigned char buf[256];
	size_t got = 12345;

	write_all(vfs, f, "0123456789", 10, 0);

	memset(buf, 0xAA, sizeof(buf));
	ck_assert_int_eq(vfs->read(f, buf, sizeof(buf), 4, &got), 0);
	ck_assert_uint_eq(got, 6);
	ck_assert_mem_eq(buf, "456789", 6);
	for (size_t i = 6; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);

	/* Entirely past the end. */
	memset(buf, 0xAA, sizeof(buf));
	ck_assert_int_eq(vfs->read(f, buf, sizeof(buf), 1000, &got), 0);
	ck_assert_uint_eq(got, 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);

	/* got may be NULL. */
	ck_assert_int_eq(vfs->read(f, buf, 4, 0, NULL), 0);
	ck_assert_mem_eq(buf, "0123", 4);
	vfs->close(f);
}
END_TEST

START_TEST(test_resize_grows_and_shrinks)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "resize.db");
	size_t g = gran(vfs);
	unsigned char buf[16];
	uint64_t size = 1;
	size_t got;

	ck_assert_int_eq(vfs->size(f, &size), 0);
	ck_assert_uint_eq(size, 0);

	ck_assert_int_eq(vfs->resize(f, 8 * g), 0);
	ck_assert_int_eq(vfs->size(f, &size), 0);
	ck_assert_uint_eq(size, 8 * g);
	/* The grown part reads as zeros. */
	memset(buf, 0xAA, sizeof(buf));
	ck_assert_int_eq(vfs->read(f, buf, sizeof(buf), 5 * g, &got), 0);
	ck_assert_uint_eq(got, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);

	write_all(vfs, f, "keep", 4, 0);
	ck_assert_int_eq(vfs->resize(f, 2), 0);
	ck_assert_int_eq(vfs->size(f, &size), 0);
	ck_assert_uint_eq(size, 2);
	ck_assert_int_eq(vfs->read(f, buf, 4, 0, &got), 0);
	ck_assert_uint_eq(got, 2);
	ck_assert_mem_eq(buf, "ke\0\0", 4);

	ck_assert_int_eq(vfs->resize(f, 0), 0);
	ck_assert_int_eq(vfs->size(f, &size), 0);
	ck_assert_uint_eq(size, 0);
	vfs->close(f);
}
END_TEST

START_TEST(test_write_on_rdonly_handle_is_io_with_errno)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "ro.db"), *r = NULL;
	char path[PATH_MAX];
	os_iov iov = {"x", 1};

	vfs->close(f);
	ck_assert_int_eq(vfs->open(vfs, tpath(path, "ro.db"), OS_OPEN_RDONLY, 0,
				   &r, NULL),
			 0);
	errno = 0;
	ck_assert_int_eq(vfs->write(r, &iov, 1, 0), MAPKV_IO);
	ck_assert_int_eq(errno, EBADF);
	errno = 0;
	ck_assert_int_eq(vfs->resize(r, 4096), MAPKV_IO);
	ck_assert_int_ne(errno, 0);
	vfs->close(r);
}
END_TEST

/* A file-size limit makes the kernel answer EFBIG, the same path a full
 * disk takes (ENOSPC): MAPKV_FULL with errno kept. The write starts below
 * the limit, so it is first cut short and then refused, which also checks
 * the partial-write loop. Runs in a child: the limit must not leak into
 * other tests. */
START_TEST(test_file_size_limit_gives_full_with_errno_efbig)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "fsize.db");
	pid_t pid;
	int status;

	inherited = f;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = {1 << 20, 1 << 20};
		static unsigned char buf[8192];
		os_iov iov[2] = {{buf, 4096}, {buf + 4096, 4096}};
		uint64_t size = 0;

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			child_exit(vfs, 10);
		errno = 0;
		if (vfs->write(f, iov, 2, (1 << 20) - 100) != MAPKV_FULL)
			child_exit(vfs, 11);
		if (errno != EFBIG)
			child_exit(vfs, 12);
		/* The part below the limit was written. */
		if (vfs->size(f, &size) != 0 || size != (1 << 20))
			child_exit(vfs, 13);
		errno = 0;
		if (vfs->resize(f, 2 << 20) != MAPKV_FULL || errno != EFBIG)
			child_exit(vfs, 14);
		child_exit(vfs, 0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	inherited = NULL;
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	vfs->close(f);
}
END_TEST

/* -------------------------------------------------------------- syncing */

START_TEST(test_sync_and_sync_dir_succeed)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "sync.db");
	char path[PATH_MAX];
	int cwd;

	write_all(vfs, f, "durable", 7, 0);
	ck_assert_int_eq(vfs->sync(f), 0);
	ck_assert_int_eq(vfs->sync_dir(vfs, tpath(path, "sync.db")), 0);

	/* A bare file name means the current directory. */
	cwd = open(".", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(cwd, 0);
	ck_assert_int_eq(chdir(tmp_dir), 0);
	ck_assert_int_eq(vfs->sync_dir(vfs, "sync.db"), 0);
	ck_assert_int_eq(fchdir(cwd), 0);
	close(cwd);

	/* A parent that does not exist is reported. */
	errno = 0;
	ck_assert_int_eq(vfs->sync_dir(vfs, tpath(path, "nodir/x.db")),
			 MAPKV_IO);
	ck_assert_int_eq(errno, ENOENT);
	vfs->close(f);
}
END_TEST

/* ------------------------------------------------------------------ map */

static void fill_page(unsigned char *p, size_t g, unsigned tag)
{
	for (size_t i = 0; i < g; i++)
		p[i] = (unsigned char)(tag * 37 + i);
}

static int page_is(const unsigned char *p, size_t g, unsigned tag)
{
	for (size_t i = 0; i < g; i++)
		if (p[i] != (unsigned char)(tag * 37 + i))
			return 0;
	return 1;
}

START_TEST(test_map_extend_keeps_base_and_shows_later_writes)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "map.db");
	size_t g = gran(vfs);
	unsigned char *page = malloc(g);
	const unsigned char *m;
	void *base = NULL;

	ck_assert_ptr_nonnull(page);
	for (unsigned i = 0; i < 2; i++) {
		fill_page(page, g, i);
		write_all(vfs, f, page, g, i * g);
	}
	ck_assert_int_eq(vfs->map(f, 64 * g, 2 * g, &base), 0);
	ck_assert_ptr_nonnull(base);
	ck_assert_uint_eq((uintptr_t)base % g, 0);
	m = base;
	ck_assert(page_is(m, g, 0));
	ck_assert(page_is(m + g, g, 1));

	/* Grow the file, write the new pages with write(), then extend the
	 * map in place: same base, new pages visible. */
	ck_assert_int_eq(vfs->resize(f, 64 * g), 0);
	for (unsigned i = 2; i < 64; i++) {
		fill_page(page, g, i);
		write_all(vfs, f, page, g, (uint64_t)i * g);
	}
	ck_assert_int_eq(vfs->map_extend(f, base, 2 * g, 64 * g), 0);
	for (unsigned i = 0; i < 64; i++)
		ck_assert_msg(page_is(m + (size_t)i * g, g, i),
			      "page %u wrong after map_extend", i);

	/* The shared map follows later writes to already-mapped pages. */
	fill_page(page, g, 99);
	write_all(vfs, f, page, g, 0);
	ck_assert(page_is(m, g, 99));

	/* Extending to the current length is a no-op. */
	ck_assert_int_eq(vfs->map_extend(f, base, 64 * g, 64 * g), 0);

	vfs->unmap(f, base, 64 * g);
	free(page);
	vfs->close(f);
}
END_TEST

START_TEST(test_map_beyond_reservation_is_full)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "mapfull.db");
	size_t g = gran(vfs);
	void *base = NULL;

	ck_assert_int_eq(vfs->resize(f, 16 * g), 0);

	/* The file is already larger than the reservation. */
	ck_assert_int_eq(vfs->map(f, 4 * g, 16 * g, &base), MAPKV_FULL);
	ck_assert_ptr_null(base);

	ck_assert_int_eq(vfs->map(f, 8 * g, 4 * g, &base), 0);
	ck_assert_int_eq(vfs->map_extend(f, base, 4 * g, 16 * g), MAPKV_FULL);
	ck_assert_int_eq(vfs->map_extend(f, base, 4 * g, 8 * g), 0);
	vfs->unmap(f, base, 8 * g);

	/* A reservation that is not a multiple of the granularity is
	 * rounded up: 8g+1 reserves 9g. */
	ck_assert_int_eq(vfs->map(f, 8 * g + 1, 0, &base), 0);
	ck_assert_int_eq(vfs->map_extend(f, base, 0, 9 * g), 0);
	ck_assert_int_eq(vfs->map_extend(f, base, 9 * g, 10 * g), MAPKV_FULL);
	vfs->unmap(f, base, 8 * g + 1);
	vfs->close(f);
}
END_TEST

START_TEST(test_map_empty_file_then_extend_and_remap)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "mapempty.db");
	size_t g = gran(vfs);
	unsigned char *page = malloc(g);
	void *base = NULL;

	ck_assert_ptr_nonnull(page);
	ck_assert_int_eq(vfs->map(f, 1024 * g, 0, &base), 0);
	ck_assert_ptr_nonnull(base);
	fill_page(page, g, 5);
	write_all(vfs, f, page, g, 0);
	ck_assert_int_eq(vfs->map_extend(f, base, 0, g), 0);
	ck_assert(page_is(base, g, 5));
	vfs->unmap(f, base, 1024 * g);

	/* Map again after unmap: the file's content is all still there. */
	base = NULL;
	ck_assert_int_eq(vfs->map(f, 2 * g, g, &base), 0);
	ck_assert(page_is(base, g, 5));
	vfs->unmap(f, base, 2 * g);
	free(page);
	vfs->close(f);
}
END_TEST

/* The map is read-only: a store through it kills the process that made it
 * (a child here) with SIGSEGV and leaves the file untouched. */
START_TEST(test_map_is_read_only_store_kills_child_with_sigsegv)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "mapro.db");
	size_t g = gran(vfs);
	unsigned char *page = malloc(g), back[8];
	void *base = NULL;
	pid_t pid;
	int status;

	ck_assert_ptr_nonnull(page);
	fill_page(page, g, 3);
	write_all(vfs, f, page, g, 0);
	ck_assert_int_eq(vfs->map(f, 4 * g, g, &base), 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Default action, even under a sanitizer that catches SEGV. */
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		((volatile unsigned char *)base)[10] = 0x42;
		_exit(0); /* not reached if the map is read-only */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status), "store into the map did not fault");
#ifdef __APPLE__
	ck_assert(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
#else
	ck_assert_int_eq(WTERMSIG(status), SIGSEGV);
#endif
	ck_assert(page_is(base, g, 3));
	ck_assert_int_eq(vfs->read(f, back, sizeof(back), 0, NULL), 0);
	ck_assert_mem_eq(back, page, sizeof(back));
	vfs->unmap(f, base, 4 * g);
	free(page);
	vfs->close(f);
}
END_TEST

/* ------------------------------------------------------------------ lock */

/* Two handles of one file in one process exclude each other (classic fcntl
 * locks would not: that is why the code uses OFD locks or flock). */
START_TEST(test_writer_lock_conflicts_between_handles_in_one_process)
{
	os_vfs *vfs = os_default_vfs();
	os_file *a = open_new(vfs, "lock1.db"), *b = NULL;
	char path[PATH_MAX];

	ck_assert_int_eq(
		vfs->open(vfs, tpath(path, "lock1.db"), 0, 0, &b, NULL), 0);
	ck_assert_int_eq(vfs->lock(a, OS_LOCK_WRITER, 0), 0);
	ck_assert_int_eq(vfs->lock(b, OS_LOCK_WRITER, 0), MAPKV_BUSY);
	ck_assert_int_eq(vfs->unlock(a, OS_LOCK_WRITER), 0);
	ck_assert_int_eq(vfs->lock(b, OS_LOCK_WRITER, 0), 0);
	ck_assert_int_eq(vfs->lock(a, OS_LOCK_WRITER, 0), MAPKV_BUSY);

	/* Closing the holder releases the lock; closing a third handle of
	 * the same file in between must not (it would with fcntl locks). */
	{
		os_file *c = NULL;

		ck_assert_int_eq(vfs->open(vfs, path, 0, 0, &c, NULL), 0);
		vfs->close(c);
		ck_assert_int_eq(vfs->lock(a, OS_LOCK_WRITER, 0), MAPKV_BUSY);
	}
	vfs->close(b);
	ck_assert_int_eq(vfs->lock(a, OS_LOCK_WRITER, 0), 0);
	ck_assert_int_eq(vfs->unlock(a, OS_LOCK_WRITER), 0);
	vfs->close(a);
}
END_TEST

/* Child: open its own handle (an inherited one would share the lock with
 * the parent), take the lock, tell the parent, then wait for death or,
 * with hold_ms > 0, release the lock by exiting after hold_ms. */
static pid_t child_holding_lock(os_vfs *vfs, const char *path, int hold_ms)
{
	int fds[2];
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		os_file *f = NULL;

		close(fds[0]);
		if (vfs->open(vfs, path, 0, 0, &f, NULL) != 0)
			child_exit(vfs, 20);
		if (vfs->lock(f, OS_LOCK_WRITER, 1) != 0)
			child_exit(vfs, 21);
		if (write(fds[1], "L", 1) != 1)
			child_exit(vfs, 22);
		if (hold_ms > 0) {
			struct timespec ts = {hold_ms / 1000,
					      (hold_ms % 1000) * 1000000L};

			nanosleep(&ts, NULL);
			vfs->close(f);
			child_exit(vfs, 0);
		}
		for (;;)
			pause();
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	return pid;
}

START_TEST(test_writer_lock_of_killed_process_is_released)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "lock2.db");
	char path[PATH_MAX];
	pid_t pid;
	int status;

	inherited = f;
	pid = child_holding_lock(vfs, tpath(path, "lock2.db"), 0);
	inherited = NULL;
	ck_assert_int_eq(vfs->lock(f, OS_LOCK_WRITER, 0), MAPKV_BUSY);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ck_assert_int_eq(vfs->lock(f, OS_LOCK_WRITER, 0), 0);
	ck_assert_int_eq(vfs->unlock(f, OS_LOCK_WRITER), 0);
	vfs->close(f);
}
END_TEST

START_TEST(test_writer_lock_wait_blocks_until_holder_releases)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "lock3.db");
	char path[PATH_MAX];
	uint64_t t0, t1;
	pid_t pid;
	int status;

	inherited = f;
	pid = child_holding_lock(vfs, tpath(path, "lock3.db"), 300);
	inherited = NULL;
	t0 = vfs->clock_ns(vfs);
	ck_assert_int_eq(vfs->lock(f, OS_LOCK_WRITER, 1), 0);
	t1 = vfs->clock_ns(vfs);
	ck_assert_msg(t1 - t0 >= 100000000u, "lock(wait=1) did not wait");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(vfs->unlock(f, OS_LOCK_WRITER), 0);
	vfs->close(f);
}
END_TEST

START_TEST(test_unlock_without_lock_and_bad_kind_are_invalid)
{
	os_vfs *vfs = os_default_vfs();
	os_file *f = open_new(vfs, "lock4.db");

	ck_assert_int_eq(vfs->unlock(f, OS_LOCK_WRITER), MAPKV_INVALID);
	ck_assert_int_eq(vfs->lock(f, 7, 0), MAPKV_INVALID);
	vfs->close(f);
}
END_TEST

/* ----------------------------------------------- processes, clock, mutex */

START_TEST(test_pid_alive_self_true_reaped_child_false)
{
	os_vfs *vfs = os_default_vfs();
	pid_t pid;
	int status;

	ck_assert_uint_eq(vfs->pid(vfs), (uint64_t)getpid());
	ck_assert(vfs->pid_alive(vfs, vfs->pid(vfs)));
	ck_assert(vfs->pid_alive(vfs, 1)); /* init: alive, maybe EPERM */

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(!vfs->pid_alive(vfs, (uint64_t)pid));

	/* Never a process group. */
	ck_assert(!vfs->pid_alive(vfs, 0));
	ck_assert(!vfs->pid_alive(vfs, (uint64_t)-1));
	ck_assert(!vfs->pid_alive(vfs, (uint64_t)1 << 40));
}
END_TEST

START_TEST(test_clock_is_monotonic_and_advances)
{
	os_vfs *vfs = os_default_vfs();
	struct timespec ts = {0, 20000000L};
	uint64_t a, b, prev;

	a = vfs->clock_ns(vfs);
	ck_assert_uint_ne(a, 0);
	prev = a;
	for (int i = 0; i < 1000; i++) {
		uint64_t t = vfs->clock_ns(vfs);

		ck_assert_uint_ge(t, prev);
		prev = t;
	}
	nanosleep(&ts, NULL);
	b = vfs->clock_ns(vfs);
	ck_assert_uint_ge(b - a, 15000000u);
}
END_TEST

START_TEST(test_granularity_is_page_size_and_alloc_works)
{
	os_vfs *vfs = os_default_vfs();
	size_t g = gran(vfs);
	void *p;

	ck_assert_uint_eq(g, (size_t)sysconf(_SC_PAGESIZE));
	ck_assert_uint_eq(g & (g - 1), 0);
	ck_assert_ptr_eq(os_default_vfs(), vfs);
	ck_assert_str_eq(vfs->name, "posix");
	p = vfs->alloc(vfs, 10);
	ck_assert_ptr_nonnull(p);
	memset(p, 1, 10);
	p = vfs->realloc(vfs, p, 1000);
	ck_assert_ptr_nonnull(p);
	vfs->free(vfs, p);
}
END_TEST

struct try_arg {
	os_mutex *m;
	int rc;
};

static void *try_thread(void *p)
{
	struct try_arg *a = p;

	a->rc = os_mutex_trylock(a->m);
	if (a->rc == 0)
		os_mutex_unlock(a->m);
	return NULL;
}

START_TEST(test_mutex_trylock_busy_from_other_thread)
{
	struct try_arg a = {NULL, 1};
	pthread_t t;

	ck_assert_int_eq(os_mutex_create(&a.m), 0);
	ck_assert_ptr_nonnull(a.m);

	os_mutex_lock(a.m);
	ck_assert_int_eq(pthread_create(&t, NULL, try_thread, &a), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(a.rc, MAPKV_BUSY);
	os_mutex_unlock(a.m);

	a.rc = 1;
	ck_assert_int_eq(pthread_create(&t, NULL, try_thread, &a), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(a.rc, 0);

	ck_assert_int_eq(os_mutex_trylock(a.m), 0);
	os_mutex_unlock(a.m);
	os_mutex_destroy(a.m);
	os_mutex_destroy(NULL);
}
END_TEST

/* ----------------------------------------------------------------- main */

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static Suite *os_suite(void)
{
	Suite *s = suite_create("os_posix");
	TCase *tc = tcase_create("os");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_open_create_reports_created_then_existing);
	tcase_add_test(tc, test_open_missing_without_create_is_io_enoent);
	tcase_add_test(tc, test_open_directory_is_io_eisdir);
	tcase_add_test(tc, test_open_rejects_unknown_flags);
	tcase_add_test(tc, test_write_read_roundtrip_multi_buffer_iov);
	tcase_add_test(tc, test_write_more_buffers_than_iov_max);
	tcase_add_test(tc, test_read_past_eof_zero_fills_and_reports_got);
	tcase_add_test(tc, test_resize_grows_and_shrinks);
	tcase_add_test(tc, test_write_on_rdonly_handle_is_io_with_errno);
	tcase_add_test(tc, test_file_size_limit_gives_full_with_errno_efbig);
	tcase_add_test(tc, test_sync_and_sync_dir_succeed);
	tcase_add_test(tc, test_map_extend_keeps_base_and_shows_later_writes);
	tcase_add_test(tc, test_map_beyond_reservation_is_full);
	tcase_add_test(tc, test_map_empty_file_then_extend_and_remap);
	tcase_add_test(tc,
		       test_map_is_read_only_store_kills_child_with_sigsegv);
	tcase_add_test(
		tc, test_writer_lock_conflicts_between_handles_in_one_process);
	tcase_add_test(tc, test_writer_lock_of_killed_process_is_released);
	tcase_add_test(tc, test_writer_lock_wait_blocks_until_holder_releases);
	tcase_add_test(tc, test_unlock_without_lock_and_bad_kind_are_invalid);
	tcase_add_test(tc, test_pid_alive_self_true_reaped_child_false);
	tcase_add_test(tc, test_clock_is_monotonic_and_advances);
	tcase_add_test(tc, test_granularity_is_page_size_and_alloc_works);
	tcase_add_test(tc, test_mutex_trylock_busy_from_other_thread);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	SRunner *sr;
	int failed;

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/check_os.XXXXXX", tmp);
	if (mkdtemp(tmp_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}

	sr = srunner_create(os_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed != 0 ? 1 : 0;
}
