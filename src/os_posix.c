/*
 * os_posix.c: the os_vfs table for POSIX systems (Linux first; macOS and
 * the BSDs where it costs an #ifdef).
 *
 * How the file is written, and why a full disk is never a SIGBUS
 * ---------------------------------------------------------------
 * The file is mapped read-only (PROT_READ, MAP_SHARED) and every page the
 * library changes is written with pwrite/pwritev, as LMDB does by default.
 * The file grows with ftruncate alone; we deliberately do not call
 * posix_fallocate. This is the project's documented choice, for three
 * reasons:
 *  - ftruncate leaves a sparse hole, but nothing ever stores into the map,
 *    so the hole is only ever filled by pwrite. When the disk (or quota) is
 *    full, that pwrite fails with ENOSPC/EDQUOT/EFBIG and write() returns
 *    MAPKV_FULL, or the delayed allocation fails at fdatasync and sync()
 *    returns MAPKV_FULL too. Either is an error value the commit can
 *    report. A store through a writable shared map into a hole the file
 *    system cannot back would instead kill the process with SIGBUS; with a
 *    read-only map that cannot happen. (Reading a hole through the map
 *    yields zeros.) The one file stored to through a map, the lock file
 *    (map_rw), gets its blocks written with zeros before it is mapped
 *    (lock_fill in env.c).
 *  - A stray pointer in the application cannot corrupt the database: a
 *    store into the map faults (SIGSEGV) instead of silently changing a
 *    committed page.
 *  - posix_fallocate is not supported everywhere (glibc emulates it by
 *    writing a byte per block, some file systems refuse it), and would cost
 *    a write of every new block on growth for no gain under this scheme.
 * The price: a changed page is copied once into a private buffer before it
 * is written, instead of being modified in place in the map.
 *
 * Durability
 * ----------
 * sync() is fdatasync (F_FULLFSYNC on macOS, where plain fsync does not
 * flush the drive's cache). A failed sync is reported as MAPKV_IO
 * (MAPKV_FULL for ENOSPC/EDQUOT) and never retried: after a failed fsync the
 * kernel may already have dropped the dirty pages and marked them clean, so a
 * second fsync could "succeed" without the data being on disk (PostgreSQL's
 * "fsyncgate"). Only EINTR, which means nothing was attempted, is retried.
 *
 * Errors
 * ------
 * Every function returns 0 or a negative MAPKV_* code. On MAPKV_IO, and on
 * MAPKV_FULL caused by the disk, errno holds the operating system's error
 * when the function returns: any cleanup that may clobber errno saves and
 * restores it.
 */
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64 /* 64-bit off_t on 32-bit Linux too */
#endif

#include "os.h"

#include "mapkv.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_DIRECTORY
#define O_DIRECTORY 0
#endif
#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0 /* removed from some BSDs; the default there */
#endif

/* pwritev: Linux, the BSDs; macOS only since 11, so it gets a pwrite loop. */
#if !defined(__APPLE__)
#define OS_HAVE_PWRITEV 1
#endif

/* The largest single read/write request. Linux caps one call at
 * 0x7ffff000 bytes anyway; a round 1 GiB keeps us clear of SSIZE_MAX on
 * every system. */
#define OS_IO_CHUNK ((size_t)1 << 30)

/* Buffers passed to one pwritev call: at most IOV_MAX (1024 on Linux), and
 * no more than fits comfortably on the stack of a small thread. */
#define OS_IOV_BATCH 256

/* Largest offset an off_t can express. */
#define OS_OFF_MAX ((uint64_t)INT64_MAX)

/* How the writer lock of an os_file is currently held. */
enum { LOCK_NONE = 0, LOCK_OFD, LOCK_FLOCK };

struct os_file {
	os_vfs *vfs; /* the table that allocated this struct */
	int fd;
	int rdonly;       /* opened with OS_OPEN_RDONLY */
	int lock_how;     /* LOCK_NONE, LOCK_OFD or LOCK_FLOCK */
	char *path;       /* copy of the path given to open */
	void *map_base;   /* start of the reservation, NULL if none */
	uint64_t map_max; /* reserved bytes, a multiple of the granularity */
};

struct os_mutex {
	pthread_mutex_t m;
};

/* ---------------------------------------------------------------- memory */

static void *px_alloc(os_vfs *vfs, size_t n)
{
	(void)vfs;
	return malloc(n);
}

static void *px_realloc(os_vfs *vfs, void *p, size_t n)
{
	(void)vfs;
	return realloc(p, n);
}

static void px_free(os_vfs *vfs, void *p)
{
	(void)vfs;
	free(p);
}

static size_t page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? (size_t)ps : 4096;
}

static size_t px_map_granularity(os_vfs *vfs)
{
	(void)vfs;
	return page_size();
}

/* Map an errno of a failed write or size change to a MAPKV code. */
static int write_error(int e)
{
	if (e == ENOSPC || e == EFBIG)
		return MAPKV_FULL;
#ifdef EDQUOT
	if (e == EDQUOT)
		return MAPKV_FULL;
#endif
	return MAPKV_IO;
}

/* ------------------------------------------------------------ open/close */

static char *dup_path(os_vfs *vfs, const char *path)
{
	size_t n = strlen(path) + 1;
	char *p = vfs->alloc(vfs, n);

	if (p != NULL)
		memcpy(p, path, n);
	return p;
}

/* open(2), retried on EINTR (possible on NFS and for FIFOs). */
static int open_retry(const char *path, int oflags, mode_t mode)
{
	int fd;

	do
		fd = open(path, oflags, mode);
	while (fd < 0 && errno == EINTR);
	return fd;
}

static int px_open(os_vfs *vfs, const char *path, int flags, unsigned mode,
		   os_file **fp, int *created)
{
	int base = O_CLOEXEC;
	int fd = -1, made = 0;
	struct stat st;
	os_file *f;

	if (fp != NULL)
		*fp = NULL;
	if (created != NULL)
		*created = 0;
	if (vfs == NULL || path == NULL || fp == NULL ||
	    (flags & ~(OS_OPEN_RDONLY | OS_OPEN_CREATE)) != 0)
		return MAPKV_INVALID;
	if (mode == 0)
		mode = 0644;
	base |= (flags & OS_OPEN_RDONLY) ? O_RDONLY : O_RDWR;

	/* Allocate first, so that once the file is open (and perhaps
	 * created) nothing but an impossible fstat failure can fail. */
	f = vfs->alloc(vfs, sizeof(*f));
	if (f == NULL)
		return MAPKV_NOMEM;
	memset(f, 0, sizeof(*f));
	f->path = dup_path(vfs, path);
	if (f->path == NULL) {
		vfs->free(vfs, f);
		return MAPKV_NOMEM;
	}

	if (flags & OS_OPEN_CREATE) {
		/* Race-free "did I create it?": O_EXCL succeeds for exactly
		 * one opener. If the file exists, open it plainly; if it
		 * vanished in between (unlinked by someone), try again. */
		for (int tries = 0; tries < 100; tries++) {
			fd = open_retry(path, base | O_CREAT | O_EXCL,
					(mode_t)mode);
			if (fd >= 0) {
				made = 1;
				break;
			}
			if (errno != EEXIST)
				break;
			fd = open_retry(path, base, 0);
			if (fd >= 0 || errno != ENOENT)
				break;
			/* EEXIST, then ENOENT: either the file was removed in
			 * between (try again), or the path is a symbolic link
			 * to a missing file, which O_EXCL never follows.
			 * Create the target through it; whether this call or
			 * a racing one made it cannot be told, so say made
			 * (the cost: one directory sync too many). */
			if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
				fd = open_retry(path, base | O_CREAT,
						(mode_t)mode);
				made = fd >= 0;
				break;
			}
		}
	} else {
		fd = open_retry(path, base, 0);
	}
	if (fd < 0)
		goto fail;

	/* O_RDONLY opens a directory without complaint; refuse it here rather
	 * than fail obscurely at the first read or map. */
	if (fstat(fd, &st) != 0)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}

	f->vfs = vfs;
	f->fd = fd;
	f->rdonly = (flags & OS_OPEN_RDONLY) != 0;
	*fp = f;
	if (created != NULL)
		*created = made;
	return 0;

fail : {
	/* A file we created is left in place: by now another process may
	 * have opened it, and an empty file opens as an empty database. */
	int e = errno;

	if (fd >= 0)
		close(fd);
	vfs->free(vfs, f->path);
	vfs->free(vfs, f);
	errno = e;
	return MAPKV_IO;
}
}

static void px_close(os_file *f)
{
	os_vfs *vfs;
	int e = errno;

	if (f == NULL)
		return;
	vfs = f->vfs;
	/* Closing the descriptor also drops an OFD or flock lock. A failed
	 * close is not reported: the interface cannot, and the data was made
	 * durable (or not) by sync, not by close. */
	close(f->fd);
	vfs->free(vfs, f->path);
	vfs->free(vfs, f);
	errno = e;
}

/* ------------------------------------------------------------ size, read */

static int px_size(os_file *f, uint64_t *size)
{
	struct stat st;

	if (f == NULL || size == NULL)
		return MAPKV_INVALID;
	if (fstat(f->fd, &st) != 0)
		return MAPKV_IO;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int px_info(os_file *f, os_fileinfo *fi)
{
	struct stat st;

	if (f == NULL || fi == NULL)
		return MAPKV_INVALID;
	if (fstat(f->fd, &st) != 0)
		return MAPKV_IO;
	fi->size = (uint64_t)st.st_size;
	fi->dev = (uint64_t)st.st_dev;
	fi->ino = (uint64_t)st.st_ino;
	fi->nlink = (uint64_t)st.st_nlink;
	return 0;
}

/* realpath(3): symbolic links followed, "." and ".." resolved. */
static int px_real_path(os_vfs *vfs, const char *path, char **out)
{
	char *r, *p;
	size_t n;

	if (vfs == NULL || path == NULL || out == NULL)
		return MAPKV_INVALID;
	*out = NULL;
	r = realpath(path, NULL);
	if (r == NULL)
		return errno == ENOMEM ? MAPKV_NOMEM : MAPKV_IO;
	n = strlen(r) + 1;
	p = vfs->alloc(vfs, n);
	if (p != NULL)
		memcpy(p, r, n);
	free(r);
	if (p == NULL)
		return MAPKV_NOMEM;
	*out = p;
	return 0;
}

static int px_read(os_file *f, void *buf, size_t n, uint64_t off, size_t *got)
{
	unsigned char *p = buf;
	size_t done = 0;

	if (got != NULL)
		*got = 0;
	if (f == NULL || (buf == NULL && n > 0))
		return MAPKV_INVALID;
	if (off > OS_OFF_MAX || n > OS_OFF_MAX - off)
		return MAPKV_INVALID;

	while (done < n) {
		size_t want = n - done;
		ssize_t r;

		if (want > OS_IO_CHUNK)
			want = OS_IO_CHUNK;
		r = pread(f->fd, p + done, want, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return MAPKV_IO;
		}
		if (r == 0)
			break; /* end of file */
		done += (size_t)r;
	}
	if (done < n)
		memset(p + done, 0, n - done);
	if (got != NULL)
		*got = done;
	return 0;
}

/* ----------------------------------------------------------------- write */

/* Arguments of a gathered write: valid buffers, and an end that fits in
 * off_t (EFBIG, as the kernel would say). */
static int check_write_args(os_file *f, const os_iov *iov, int cnt,
			    uint64_t off)
{
	uint64_t total = 0;

	if (f == NULL || cnt < 0 || (iov == NULL && cnt > 0))
		return MAPKV_INVALID;
	for (int k = 0; k < cnt; k++) {
		if (iov[k].base == NULL && iov[k].len > 0)
			return MAPKV_INVALID;
		if (iov[k].len > OS_OFF_MAX - total) {
			errno = EFBIG;
			return MAPKV_FULL;
		}
		total += iov[k].len;
	}
	if (off > OS_OFF_MAX || total > OS_OFF_MAX - off) {
		errno = EFBIG;
		return MAPKV_FULL;
	}
	return 0;
}

#ifdef OS_HAVE_PWRITEV

static int px_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	struct iovec vec[OS_IOV_BATCH];
	int batch = OS_IOV_BATCH;
	size_t skip = 0; /* bytes of iov[i] already written */
	int i = 0;

	int arc = check_write_args(f, iov, cnt, off);
	if (arc)
		return arc;
#ifdef IOV_MAX
	if (batch > IOV_MAX)
		batch = IOV_MAX;
#endif

	for (;;) {
		size_t bytes = 0;
		int nv = 0;
		ssize_t w;

		/* Gather the next batch, skipping empty buffers, and stop
		 * below OS_IO_CHUNK bytes so the sum never overflows ssize_t
		 * (pwritev fails with EINVAL if it would). */
		while (i < cnt && iov[i].len == skip) {
			i++;
			skip = 0;
		}
		if (i == cnt)
			return 0;
		for (int k = i; k < cnt && nv < batch && bytes < OS_IO_CHUNK;
		     k++) {
			size_t from = (k == i) ? skip : 0;
			size_t len = iov[k].len - from;

			if (len == 0)
				continue;
			if (len > OS_IO_CHUNK - bytes)
				len = OS_IO_CHUNK - bytes;
			vec[nv].iov_base =
				(void *)((const unsigned char *)iov[k].base +
					 from);
			vec[nv].iov_len = len;
			nv++;
			bytes += len;
		}

		w = pwritev(f->fd, vec, nv, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return write_error(errno);
		}
		if (w == 0) {
			/* Not expected from a regular file; do not spin. */
			errno = EIO;
			return MAPKV_IO;
		}

		/* Advance past what was written: a short write resumes in
		 * the middle of a buffer. */
		off += (uint64_t)w;
		while (w > 0) {
			size_t left = iov[i].len - skip;

			if ((size_t)w < left) {
				skip += (size_t)w;
				w = 0;
			} else {
				w -= (ssize_t)left;
				i++;
				skip = 0;
			}
		}
	}
}

#else /* no pwritev: one pwrite per buffer, same semantics */

static int px_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	int arc = check_write_args(f, iov, cnt, off);
	if (arc)
		return arc;
	for (int k = 0; k < cnt; k++) {
		const unsigned char *p = iov[k].base;
		size_t left = iov[k].len;

		while (left > 0) {
			size_t want = left > OS_IO_CHUNK ? OS_IO_CHUNK : left;
			ssize_t w = pwrite(f->fd, p, want, (off_t)off);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				return write_error(errno);
			}
			if (w == 0) {
				errno = EIO;
				return MAPKV_IO;
			}
			p += w;
			left -= (size_t)w;
			off += (uint64_t)w;
		}
	}
	return 0;
}

#endif

/* ---------------------------------------------------------- resize, sync */

static int px_resize(os_file *f, uint64_t size)
{
	if (f == NULL)
		return MAPKV_INVALID;
	if (size > OS_OFF_MAX) {
		errno = EFBIG;
		return MAPKV_FULL;
	}
	/* ftruncate only, no posix_fallocate: see the top of the file. */
	while (ftruncate(f->fd, (off_t)size) != 0) {
		if (errno != EINTR)
			return write_error(errno);
	}
	return 0;
}

static int px_sync(os_file *f)
{
	int rc;

	if (f == NULL)
		return MAPKV_INVALID;
#if defined(__APPLE__) && defined(F_FULLFSYNC)
	/* fsync on macOS leaves data in the drive's volatile cache. Some file
	 * systems (network, FAT) do not support F_FULLFSYNC at all; only for
	 * those "not supported" answers fall back to fsync, as SQLite does. */
	do
		rc = fcntl(f->fd, F_FULLFSYNC);
	while (rc != 0 && errno == EINTR);
	if (rc != 0 &&
	    (errno == ENOTSUP || errno == ENOTTY || errno == EINVAL)) {
		do
			rc = fsync(f->fd);
		while (rc != 0 && errno == EINTR);
	}
#elif defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) ||     \
	defined(__OpenBSD__)
	do
		rc = fdatasync(f->fd);
	while (rc != 0 && errno == EINTR);
#else
	do
		rc = fsync(f->fd);
	while (rc != 0 && errno == EINTR);
#endif
	/* Any other failure is final: never retry (see the top of the file).
	 * ENOSPC (delayed allocation) is MAPKV_FULL, as os.h promises. */
	return rc == 0 ? 0 : write_error(errno);
}

/*
 * A write that is durable when it returns: the commit record (the meta
 * page). On Linux, pwritev2 with RWF_DSYNC makes the one page durable in a
 * single call (under strace on ext4 here: ~120 us against ~165 us for a
 * pwrite and an fdatasync of the same page). Anywhere that is unavailable
 * it is a write followed by a sync.
 * Either way a failure means nothing is known durable (see px_sync).
 */
static int px_write_sync(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
#if defined(__linux__) && defined(RWF_DSYNC)
	static int unsupported; /* racy but monotonic: 0 -> 1 once */
	if (!unsupported && cnt == 1 && iov[0].len <= (1u << 20)) {
		struct iovec v = {(void *)iov[0].base, iov[0].len};
		ssize_t w;
		do
			w = pwritev2(f->fd, &v, 1, (off_t)off, RWF_DSYNC);
		while (w < 0 && errno == EINTR);
		if (w == (ssize_t)iov[0].len)
			return 0;
		if (w < 0 &&
		    (errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
			unsupported = 1;
		else if (w < 0)
			return write_error(errno);
		/* A short write: finish it the portable way below. */
	}
#endif
	int rc = px_write(f, iov, cnt, off);
	if (rc)
		return rc;
	return px_sync(f);
}

static int px_remove(os_vfs *vfs, const char *path)
{
	(void)vfs;
	return unlink(path) == 0 ? 0 : MAPKV_IO;
}

static int px_sync_dir(os_vfs *vfs, const char *path)
{
	const char *slash;
	char *dir;
	size_t n;
	int fd, rc, e;

	if (vfs == NULL || path == NULL)
		return MAPKV_INVALID;

	/* The parent directory of path: "." for a bare name, "/" for a name
	 * right under the root. */
	slash = strrchr(path, '/');
	if (slash == NULL) {
		dir = dup_path(vfs, ".");
	} else {
		n = (size_t)(slash - path);
		if (n == 0)
			n = 1;
		dir = vfs->alloc(vfs, n + 1);
		if (dir != NULL) {
			memcpy(dir, path, n);
			dir[n] = '\0';
		}
	}
	if (dir == NULL)
		return MAPKV_NOMEM;

	fd = open_retry(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	e = errno;
	vfs->free(vfs, dir);
	if (fd < 0) {
		errno = e;
		return MAPKV_IO;
	}
	do
		rc = fsync(fd);
	while (rc != 0 && errno == EINTR);
	e = errno;
	close(fd);
	errno = e;
	if (rc == 0)
		return 0;
	/* Some file systems cannot sync a directory and say so; there is
	 * nothing more we can do for them, so that is not an error. */
	if (e == EINVAL || e == EROFS || e == ENOTSUP)
		return 0;
#if EOPNOTSUPP != ENOTSUP
	if (e == EOPNOTSUPP)
		return 0;
#endif
	return MAPKV_IO;
}

/* ------------------------------------------------------------------- map */

/* Round n up to a multiple of the power of two g; 0 on overflow. */
static uint64_t round_up(uint64_t n, uint64_t g)
{
	if (n > UINT64_MAX - (g - 1))
		return 0;
	return (n + g - 1) & ~(g - 1);
}

static int px_map(os_file *f, uint64_t max, uint64_t len, void **basep)
{
	uint64_t g = page_size(), rmax;
	void *base;

	if (basep != NULL)
		*basep = NULL;
	if (f == NULL || basep == NULL || max == 0 || f->map_base != NULL)
		return MAPKV_INVALID;
	if (len > max)
		return MAPKV_FULL;
	rmax = round_up(max, g);
	if (rmax == 0 || rmax > (uint64_t)SIZE_MAX) {
		/* Cannot be expressed in this address space. */
		errno = ENOMEM;
		return MAPKV_IO;
	}

	/* Reserve address space only: PROT_NONE, private and anonymous, with
	 * MAP_NORESERVE, commits no memory or swap; the file is then mapped
	 * over the front of it, and later over more of it, so the base never
	 * moves. No madvise here: MADV_RANDOM (turning off readahead) is
	 * usually right for a B+tree, but the caller decides, after
	 * measuring. */
	base = mmap(NULL, (size_t)rmax, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return MAPKV_IO; /* typically ENOMEM: no address space */

	if (len > 0) {
		void *p = mmap(base, (size_t)len, PROT_READ,
			       MAP_SHARED | MAP_FIXED, f->fd, 0);

		if (p == MAP_FAILED) {
			int e = errno;

			munmap(base, (size_t)rmax);
			errno = e;
			return MAPKV_IO;
		}
		assert(p == base);
	}
	f->map_base = base;
	f->map_max = rmax;
	*basep = base;
	return 0;
}

static int px_map_extend(os_file *f, void *base, uint64_t old_len,
			 uint64_t new_len)
{
	uint64_t g = page_size();
	void *at, *p;

	if (f == NULL || base == NULL || base != f->map_base)
		return MAPKV_INVALID;
	assert(old_len % g == 0 && new_len % g == 0);
	if (old_len % g != 0 || new_len % g != 0 || new_len < old_len)
		return MAPKV_INVALID;
	if (new_len > f->map_max)
		return MAPKV_FULL;
	if (new_len == old_len)
		return 0;

	/* MAP_FIXED replaces the PROT_NONE reservation in that range
	 * atomically; nothing else can be mapped there in the meantime. */
	at = (unsigned char *)base + old_len;
	p = mmap(at, (size_t)(new_len - old_len), PROT_READ,
		 MAP_SHARED | MAP_FIXED, f->fd, (off_t)old_len);
	if (p == MAP_FAILED)
		return MAPKV_IO;
	assert(p == at);
	return 0;
}

static void px_unmap(os_file *f, void *base, uint64_t max)
{
	int e = errno;

	if (base == NULL)
		return;
	munmap(base, (size_t)round_up(max, page_size()));
	if (f != NULL && f->map_base == base) {
		f->map_base = NULL;
		f->map_max = 0;
	}
	errno = e;
}

/* The base never moves and nothing is replaced: mmap(MAP_FIXED) of the new
 * range over the PROT_NONE reservation. */
static const char *px_map_growth(os_file *f, int *replaces)
{
	(void)f;
	if (replaces != NULL)
		*replaces = 0;
	return "mmap MAP_FIXED into reserved range";
}

/* ------------------------------------------------------------------ lock */

/*
 * The writer lock. Classic fcntl (F_SETLK) locks belong to the process and
 * vanish when the process closes ANY descriptor of the file, and two
 * handles in one process never conflict with each other: both are wrong
 * for a library. So: Linux open-file-description locks (F_OFD_SETLK,
 * Linux 3.15+) on byte 0, which belong to the open file and conflict
 * between handles of one process; where they are missing (older kernel:
 * EINVAL; other systems: not defined), flock(LOCK_EX), which has the same
 * semantics on Linux, macOS and the BSDs (but not on every network file
 * system). Both are released by the kernel when the holder dies.
 */
static int px_lock(os_file *f, int kind, int wait)
{
	int rc;

	if (f == NULL || kind != OS_LOCK_WRITER)
		return MAPKV_INVALID;
	if (f->lock_how != LOCK_NONE)
		return MAPKV_INVALID; /* already held through this handle */

#ifdef F_OFD_SETLK
	{
		struct flock fl;

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = 0;
		fl.l_len = 1;
		fl.l_pid = 0; /* required to be 0 for OFD locks */
		do
			rc = fcntl(f->fd, wait ? F_OFD_SETLKW : F_OFD_SETLK,
				   &fl);
		while (rc != 0 && errno == EINTR);
		if (rc == 0) {
			f->lock_how = LOCK_OFD;
			return 0;
		}
		if (errno == EAGAIN || errno == EACCES)
			return MAPKV_BUSY;
		if (errno != EINVAL)
			return MAPKV_IO;
		/* EINVAL: kernel older than 3.15; fall through to flock. */
	}
#endif
	do
		rc = flock(f->fd, LOCK_EX | (wait ? 0 : LOCK_NB));
	while (rc != 0 && errno == EINTR);
	if (rc == 0) {
		f->lock_how = LOCK_FLOCK;
		return 0;
	}
	if (errno == EWOULDBLOCK || errno == EAGAIN)
		return MAPKV_BUSY;
	return MAPKV_IO;
}

static int px_unlock(os_file *f, int kind)
{
	int rc = -1;

	if (f == NULL || kind != OS_LOCK_WRITER)
		return MAPKV_INVALID;
	switch (f->lock_how) {
#ifdef F_OFD_SETLK
	case LOCK_OFD: {
		struct flock fl;

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_UNLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = 0;
		fl.l_len = 1;
		fl.l_pid = 0;
		rc = fcntl(f->fd, F_OFD_SETLK, &fl);
		break;
	}
#endif
	case LOCK_FLOCK:
		rc = flock(f->fd, LOCK_UN);
		break;
	default:
		return MAPKV_INVALID; /* not held */
	}
	if (rc != 0)
		return MAPKV_IO;
	f->lock_how = LOCK_NONE;
	return 0;
}

/* --------------------------------------------------- processes and clock */

static int px_lock_byte(os_file *f, uint64_t off, int exclusive, int wait)
{
	struct flock fl;
	int rc, cmd;

	if (f == NULL)
		return MAPKV_INVALID;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = 1;
#ifdef F_OFD_SETLK
	cmd = wait ? F_OFD_SETLKW : F_OFD_SETLK;
#else
	/* Classic locks belong to the process: two environments of one
	 * file in one process do not exclude each other (documented). */
	cmd = wait ? F_SETLKW : F_SETLK;
#endif
	do
		rc = fcntl(f->fd, cmd, &fl);
	while (rc != 0 && errno == EINTR);
	if (rc == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return MAPKV_BUSY;
	return MAPKV_IO;
}

static int px_unlock_byte(os_file *f, uint64_t off)
{
	struct flock fl;

	if (f == NULL)
		return MAPKV_INVALID;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = 1;
#ifdef F_OFD_SETLK
	return fcntl(f->fd, F_OFD_SETLK, &fl) == 0 ? 0 : MAPKV_IO;
#else
	return fcntl(f->fd, F_SETLK, &fl) == 0 ? 0 : MAPKV_IO;
#endif
}

/* F_OFD_GETLK answers for locks of other open file descriptions only, so
 * the caller's own locks in the range are not reported. Without OFD locks
 * (not Linux) F_GETLK does not report locks of this process either. */
static int px_lock_test(os_file *f, uint64_t off, uint64_t len, int *held)
{
	struct flock fl;
	int rc;

	if (f == NULL || held == NULL || len == 0 || off > OS_OFF_MAX ||
	    len > OS_OFF_MAX - off)
		return MAPKV_INVALID;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK; /* conflicts with a lock of either kind */
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = (off_t)len;
#ifdef F_OFD_GETLK
	rc = fcntl(f->fd, F_OFD_GETLK, &fl);
#else
	rc = fcntl(f->fd, F_GETLK, &fl);
#endif
	if (rc != 0)
		return MAPKV_IO;
	*held = fl.l_type != F_UNLCK;
	return 0;
}

static int px_map_rw(os_file *f, size_t len, void **pp)
{
	void *p;

	if (f == NULL || len == 0)
		return MAPKV_INVALID;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (p == MAP_FAILED)
		return MAPKV_IO;
	*pp = p;
	return 0;
}

static void px_unmap_rw(os_file *f, void *p, size_t len)
{
	(void)f;
	if (p)
		munmap(p, len);
}

static uint64_t px_time_ns(os_vfs *vfs)
{
	struct timespec ts;

	(void)vfs;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int px_pid_alive(os_vfs *vfs, uint64_t pid)
{
	int e = errno, alive;

	(void)vfs;
	/* kill(0) and kill(-n) address process groups: never ask about
	 * anything that is not a plain positive pid. */
	if (pid == 0 || pid > (uint64_t)INT_MAX)
		return 0;
	alive = kill((pid_t)pid, 0) == 0 || errno == EPERM;
	errno = e;
	return alive;
}

/*
 * getpid() is a system call (glibc stopped caching it in 2.25): about
 * 190 ns here, more than a whole read transaction's begin and end. The
 * pid is asked at every transaction's begin (to notice use after fork),
 * so it is kept here and refreshed in the child by a fork handler. A child
 * made without fork handlers (vfork, a raw clone) must exec or _exit
 * without calling the library, as POSIX requires of vfork anyway.
 */
static _Atomic pid_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_refresh(void)
{
	atomic_store_explicit(&cached_pid, getpid(), memory_order_relaxed);
}

static void pid_init(void)
{
	pid_refresh();
	/* If registration fails (ENOMEM), fall back to asking each time. */
	if (pthread_atfork(NULL, NULL, pid_refresh) != 0)
		atomic_store_explicit(&cached_pid, 0, memory_order_relaxed);
}

static uint64_t px_pid(os_vfs *vfs)
{
	pid_t p;

	(void)vfs;
	pthread_once(&pid_once, pid_init);
	p = atomic_load_explicit(&cached_pid, memory_order_relaxed);
	return (uint64_t)(p ? p : getpid());
}

static uint64_t px_clock_ns(os_vfs *vfs)
{
	struct timespec ts;

	(void)vfs;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ----------------------------------------------------------------- table */

static os_vfs posix_vfs = {
	.name = "posix",
	.ctx = NULL,
	.alloc = px_alloc,
	.realloc = px_realloc,
	.free = px_free,
	.map_granularity = px_map_granularity,
	.open = px_open,
	.close = px_close,
	.size = px_size,
	.info = px_info,
	.real_path = px_real_path,
	.read = px_read,
	.write = px_write,
	.resize = px_resize,
	.sync = px_sync,
	.write_sync = px_write_sync,
	.remove = px_remove,
	.sync_dir = px_sync_dir,
	.map = px_map,
	.map_extend = px_map_extend,
	.unmap = px_unmap,
	.map_growth = px_map_growth,
	.lock = px_lock,
	.unlock = px_unlock,
	.pid_alive = px_pid_alive,
	.pid = px_pid,
	.clock_ns = px_clock_ns,
	.time_ns = px_time_ns,
	.lock_byte = px_lock_byte,
	.unlock_byte = px_unlock_byte,
	.lock_test = px_lock_test,
	.map_rw = px_map_rw,
	.unmap_rw = px_unmap_rw,
};

os_vfs *os_default_vfs(void)
{
	return &posix_vfs;
}

/* ----------------------------------------------------------------- mutex */

int os_mutex_create(os_mutex **mp)
{
	os_mutex *m;
	int rc;

	if (mp == NULL)
		return MAPKV_INVALID;
	*mp = NULL;
	m = malloc(sizeof(*m));
	if (m == NULL)
		return MAPKV_NOMEM;
	rc = pthread_mutex_init(&m->m, NULL);
	if (rc != 0) {
		free(m);
		if (rc == ENOMEM)
			return MAPKV_NOMEM;
		errno = rc;
		return MAPKV_IO;
	}
	*mp = m;
	return 0;
}

void os_mutex_destroy(os_mutex *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->m);
	free(m);
}

void os_mutex_lock(os_mutex *m)
{
	int rc = pthread_mutex_lock(&m->m);

	/* Only fails on a corrupted mutex or a relock with error checking:
	 * a bug in the library, not something a file or caller can cause. */
	assert(rc == 0);
	(void)rc;
}

int os_mutex_trylock(os_mutex *m)
{
	int rc = pthread_mutex_trylock(&m->m);

	if (rc == 0)
		return 0;
	assert(rc == EBUSY);
	return MAPKV_BUSY;
}

void os_mutex_unlock(os_mutex *m)
{
	int rc = pthread_mutex_unlock(&m->m);

	assert(rc == 0);
	(void)rc;
}

/* ---------------------------------------------------------------- rwlock */

/* The map lock is only needed where growth replaces the map (os.h); the
 * POSIX map grows in place, so there is none here. */
int os_rwlock_create(os_rwlock **l)
{
	if (l != NULL)
		*l = NULL;
	return MAPKV_INVALID;
}

void os_rwlock_destroy(os_rwlock *l)
{
	(void)l;
}

int os_rwlock_rdlock(os_rwlock *l)
{
	(void)l;
	return 0;
}

void os_rwlock_rdunlock(os_rwlock *l)
{
	(void)l;
}

void os_rwlock_wrlock(os_rwlock *l)
{
	(void)l;
}

void os_rwlock_wrunlock(os_rwlock *l)
{
	(void)l;
}

unsigned os_rwlock_suspend(os_rwlock *l)
{
	(void)l;
	return 0;
}

int os_rwlock_resume(os_rwlock *l, unsigned n)
{
	(void)l;
	(void)n;
	return 0;
}
