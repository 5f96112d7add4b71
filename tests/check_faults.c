/*
 * check_faults.c: injected faults. A test OS layer (the os_vfs seam of
 * os.h) sits under the library and fails one call in turn, for every N:
 *
 *  - I/O errors: the Nth open, size, read, write, write_sync, sync,
 *    resize, map, map_extend, map_rw, lock or lock_byte call fails with
 *    EIO; then the Nth of the calls where a full disk shows (write,
 *    write_sync, sync, resize) fails with ENOSPC. A failed write first
 *    writes a random whole-sector prefix of its buffers, as a disk can.
 *    The workload is random from a seed: puts (some values on overflow
 *    pages), deletes through keys and cursors, a named tree created,
 *    changed and dropped, small commits (one sync: the meta page lists the
 *    pages) and large ones (more than 256 pages: the pages are synced
 *    before the meta page), now and then a read transaction with the
 *    integrity check and a copy (plain or compacting), and the environment
 *    closed and opened again half-way. Again with MAPKV_NOSYNC.
 *  - Out of memory: the Nth alloc or realloc of the table returns NULL,
 *    over a smaller workload of the same kind.
 *  - A full disk: writes that need more blocks than the "file system"
 *    holds fail with ENOSPC, and a shared writable map over blocks it
 *    cannot back counts as the SIGBUS it would be; and, where the machine
 *    lets a test mount a small tmpfs in a namespace of its own, the same
 *    on a real one.
 *
 * For each N: the API call that met the fault returns the documented code
 * (MAPKV_IO with errno EIO; MAPKV_FULL with errno ENOSPC; MAPKV_PANIC when
 * it was the meta page of a commit; MAPKV_NOMEM), every other call returns
 * 0, and a write transaction that failed can only be aborted
 * (MAPKV_BAD_TXN). The environment is then checked as the library
 * documents it: after MAPKV_PANIC every write transaction is refused and
 * readers still see the last commit; after any other fault the same
 * environment goes on, and two more commits succeed. It is closed (nothing
 * allocated through the table may be left) and the file is opened again
 * with the default OS layer: it must hold exactly the last commit that
 * returned 0 (or, after MAPKV_PANIC only, the commit in flight) and pass
 * mapkv_check. The page cache is not dropped between the two (no power is
 * lost here: check_powerloss does that), so the layer skips the real sync.
 *
 * `make check` runs a sample of the N when there are too many (each kind
 * still sees hundreds); MAPKV_TEST_LONG=1 runs every N of a longer
 * workload. A failure prints the seed and the number of the failed call;
 * MAPKV_TEST_SEED=n replays a seed. Each bug these tests found also has a
 * test of its own, which fails without its fix whatever the sample.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapkv.h"
#include "os.h"
#include "testutil.h"

int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs);

/* mapkv_check reports a failed read or allocation of a meta page as a
 * problem of the file (MAPKV_CORRUPT) instead of MAPKV_IO / MAPKV_NOMEM
 * (check_metas in src/check.c). Until that is fixed such results are
 * counted and printed, not failed; set to 1 to fail on them. */
#define CHECK_FAULTS_STRICT 1

/* mapkv_copy removes a half-made copy after a failure, and when there is
 * none (the fault hit the creation of the file) the failed unlink
 * replaces errno with ENOENT (mapkv_copy in src/api.c). Until that is
 * fixed such results are counted and printed, not failed; set to 1 to
 * fail on them. */
#define COPY_ERRNO_STRICT 1

/* mapkv_sync returns the error of a failed sync, but the environment goes
 * on as if nothing happened, and the next mapkv_sync returns 0 although
 * what the failed one should have made durable may be lost (mapkv_sync in
 * src/api.c). Until it puts the environment in the MAPKV_PANIC state this
 * is printed, not failed; set to 1 to fail on it. */
#define SYNC_PANIC_STRICT 1

/* ---- the faulty OS layer ---- */

enum {
	K_OPEN,
	K_SIZE,
	K_READ,
	K_WRITE,
	K_WRITE_SYNC,
	K_SYNC,
	K_RESIZE,
	K_MAP,
	K_MAP_EXTEND,
	K_MAP_RW,
	K_LOCK,
	K_LOCK_BYTE,
	K_NKINDS
};
static const char *const kind_name[K_NKINDS] = {
	"open",   "size", "read",       "write",  "write_sync", "sync",
	"resize", "map",  "map_extend", "map_rw", "lock",       "lock_byte"};

#define BLOCK 4096u /* block of the simulated file system */

typedef struct blockmap {
	uint8_t *bits;
	uint64_t nblocks; /* room in bits */
} blockmap;

static os_vfs base; /* the default layer */
static os_vfs fv;   /* the faulty one, over it */

static struct {
	/* I/O faults: EIO or ENOSPC selects the calls counted; 0: none. */
	int err;
	long calls;      /* calls counted so far */
	long fail_at;    /* number of the call to fail, -1: none */
	int fail_kind;   /* or fail the next call of this kind (-1: no) */
	int fail_commit; /* or the next meta page write of a commit */
	/* Memory faults. */
	int oom;
	long allocs;
	long alloc_fail_at;
	long live; /* blocks allocated through the table, not yet freed */
	/* The fault, once it fired. */
	int fired;
	int fired_kind; /* K_*, or -1 for an allocation */
	int fired_meta; /* a meta page write, or the sync right after one */
	/* Files. */
	char dbpath[1100]; /* the database of the workload */
	os_file *db, *lk;  /* it and its lock file, while open */
	unsigned psize;    /* page size of a database this test creates */
	int last_meta;     /* the last write to the database was a meta page */
	uint64_t tear;     /* drives the torn prefixes */
	/* Full disk: blocks written (or mapped writable) per file, and the
	 * number of blocks the file system holds (0: unlimited). */
	uint64_t budget;
	blockmap bm[2]; /* 0: database, 1: lock file */
	long sigbus;    /* writable maps over blocks the disk cannot back */
	/* Commits by path: meta page written then synced, or write_sync. */
	long meta_writes, meta_write_syncs;
} F;

/* Faults injected, by kind, over the whole suite (for the summary). */
static long injected_eio[K_NKINDS], injected_enospc[K_NKINDS];
static long injected_oom, check_as_corrupt, copy_errno_lost, panics,
	panic_inflight;

static int counted(int k)
{
	if (F.err == EIO)
		return 1;
	if (F.err == ENOSPC)
		return k == K_WRITE || k == K_WRITE_SYNC || k == K_SYNC ||
		       k == K_RESIZE;
	return 0;
}

/* Count a call of kind @k; 1 when it is the one to fail. @meta: 1 for a
 * write of the meta pages (or the sync after it), 2 for the meta page
 * write of a commit. */
static int inject(int k, int meta)
{
	if (F.fail_kind == k || (F.fail_commit && meta == 2)) {
		F.fail_kind = -1;
		F.fail_commit = 0;
	} else if (!counted(k) || F.calls++ != F.fail_at) {
		return 0;
	}
	F.fired = 1;
	F.fired_kind = k;
	F.fired_meta = meta != 0;
	if (F.err == EIO)
		injected_eio[k]++;
	else
		injected_enospc[k]++;
	return 1;
}

/* What the OS layer returns for the injected errno (os.h). */
static int injected_rc(void)
{
	errno = F.err;
	return F.err == ENOSPC ? MAPKV_FULL : MAPKV_IO;
}

static int alloc_fails(void)
{
	if (!F.oom || F.allocs++ != F.alloc_fail_at)
		return 0;
	F.fired = 1;
	F.fired_kind = -1;
	injected_oom++;
	return 1;
}

static void *f_alloc(os_vfs *v, size_t n)
{
	(void)v;
	if (alloc_fails())
		return NULL;
	void *p = base.alloc(&base, n);
	if (p)
		F.live++;
	return p;
}

static void *f_realloc(os_vfs *v, void *p, size_t n)
{
	(void)v;
	if (alloc_fails())
		return NULL;
	void *q = base.realloc(&base, p, n);
	if (q && !p)
		F.live++;
	return q;
}

static void f_free(os_vfs *v, void *p)
{
	(void)v;
	if (p)
		F.live--;
	base.free(&base, p);
}

static blockmap *bm_of(os_file *f)
{
	return f == F.db ? &F.bm[0] : f == F.lk ? &F.bm[1] : NULL;
}

static uint64_t bm_used(void)
{
	uint64_t n = 0;
	for (int i = 0; i < 2; i++)
		for (uint64_t b = 0; b < F.bm[i].nblocks; b++)
			n += F.bm[i].bits[b];
	return n;
}

static void bm_reset(blockmap *m)
{
	free(m->bits);
	m->bits = NULL;
	m->nblocks = 0;
}

/* Blocks of [off, off + len) not yet backed in @m. */
static uint64_t bm_missing(blockmap *m, uint64_t off, uint64_t len)
{
	uint64_t n = 0;
	if (len == 0)
		return 0;
	for (uint64_t b = off / BLOCK; b <= (off + len - 1) / BLOCK; b++)
		n += b >= m->nblocks || !m->bits[b];
	return n;
}

static void bm_set(blockmap *m, uint64_t off, uint64_t len)
{
	if (len == 0)
		return;
	uint64_t last = (off + len - 1) / BLOCK;
	if (last >= m->nblocks) {
		uint64_t n = m->nblocks ? m->nblocks : 64;
		while (n <= last)
			n *= 2;
		m->bits = realloc(m->bits, n);
		ck_assert_ptr_nonnull(m->bits);
		memset(m->bits + m->nblocks, 0, n - m->nblocks);
		m->nblocks = n;
	}
	for (uint64_t b = off / BLOCK; b <= last; b++)
		m->bits[b] = 1;
}

/* A write to a file system of F.budget blocks: ENOSPC when the blocks it
 * needs are not there. */
static int budget_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	blockmap *m = bm_of(f);
	if (!F.budget || !m)
		return 0;
	uint64_t len = 0;
	for (int i = 0; i < cnt; i++)
		len += iov[i].len;
	if (bm_used() + bm_missing(m, off, len) > F.budget) {
		errno = ENOSPC;
		return MAPKV_FULL;
	}
	bm_set(m, off, len);
	return 0;
}

/* Write a prefix of whole 512-byte sectors of the buffers, as a failing
 * disk may have done. */
static void tear(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	size_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].len;
	size_t keep = 512 * (size_t)(tu_mix64(++F.tear) % (total / 512 + 1));
	for (int i = 0; i < cnt && keep; i++) {
		size_t n = iov[i].len < keep ? iov[i].len : keep;
		os_iov one = {iov[i].base, n};
		ck_assert_int_eq(base.write(f, &one, 1, off), 0);
		off += n;
		keep -= n;
	}
}

static int f_open(os_vfs *v, const char *path, int flags, unsigned mode,
		  os_file **f, int *created)
{
	if (inject(K_OPEN, 0)) {
		*f = NULL;
		if (created)
			*created = 0;
		return injected_rc();
	}
	int rc = base.open(v, path, flags, mode, f, created);
	size_t n = strlen(F.dbpath);
	if (rc == 0 && strncmp(path, F.dbpath, n) == 0) {
		if (path[n] == 0)
			F.db = *f;
		else if (strcmp(path + n, "-lock") == 0)
			F.lk = *f;
	}
	return rc;
}

static void f_close(os_file *f)
{
	if (f == F.db)
		F.db = NULL;
	if (f == F.lk)
		F.lk = NULL;
	base.close(f);
}

static int f_size(os_file *f, uint64_t *size)
{
	if (inject(K_SIZE, 0))
		return injected_rc();
	return base.size(f, size);
}

static int f_read(os_file *f, void *buf, size_t n, uint64_t off, size_t *got)
{
	if (inject(K_READ, 0)) {
		if (got)
			*got = 0;
		return injected_rc();
	}
	return base.read(f, buf, n, off, got);
}

/* 0, or 1 for a write of the meta pages of the database, 2 when it is a
 * commit's (one page). */
static int is_meta(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	if (f != F.db || off >= 2ull * F.psize)
		return 0;
	return cnt == 1 && iov[0].len == F.psize ? 2 : 1;
}

static void note_write(os_file *f, const os_iov *iov, int cnt, uint64_t off,
		       int sync)
{
	if (f != F.db)
		return;
	F.last_meta = is_meta(f, iov, cnt, off) != 0;
	if (is_meta(f, iov, cnt, off) == 2) {
		if (sync)
			F.meta_write_syncs++;
		else
			F.meta_writes++;
	}
}

static int f_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	note_write(f, iov, cnt, off, 0);
	if (inject(K_WRITE, is_meta(f, iov, cnt, off))) {
		tear(f, iov, cnt, off);
		return injected_rc();
	}
	int rc = budget_write(f, iov, cnt, off);
	return rc ? rc : base.write(f, iov, cnt, off);
}

static int f_sync(os_file *f)
{
	if (inject(K_SYNC, f == F.db && F.last_meta))
		return injected_rc();
	return 0; /* no power is lost in these tests */
}

static int f_write_sync(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	note_write(f, iov, cnt, off, 1);
	if (inject(K_WRITE_SYNC, is_meta(f, iov, cnt, off))) {
		tear(f, iov, cnt, off);
		return injected_rc();
	}
	int rc = budget_write(f, iov, cnt, off);
	return rc ? rc : base.write(f, iov, cnt, off);
}

static int f_resize(os_file *f, uint64_t size)
{
	if (inject(K_RESIZE, 0))
		return injected_rc();
	int rc = base.resize(f, size);
	blockmap *m = bm_of(f);
	if (!rc && m) /* blocks past the end are given back */
		for (uint64_t b = (size + BLOCK - 1) / BLOCK; b < m->nblocks;
		     b++)
			m->bits[b] = 0;
	return rc;
}

static int f_map(os_file *f, uint64_t max, uint64_t len, void **b)
{
	if (inject(K_MAP, 0)) {
		*b = NULL;
		return injected_rc();
	}
	return base.map(f, max, len, b);
}

static int f_map_extend(os_file *f, void *b, uint64_t old_len, uint64_t new_len)
{
	if (inject(K_MAP_EXTEND, 0))
		return injected_rc();
	return base.map_extend(f, b, old_len, new_len);
}

/* A shared writable map: the library stores into it, and a store into a
 * block the file system cannot back is a SIGBUS. On the simulated disk,
 * storing allocates the blocks; when they are not there, count it. */
static int f_map_rw(os_file *f, size_t len, void **p)
{
	if (inject(K_MAP_RW, 0))
		return injected_rc();
	blockmap *m = bm_of(f);
	if (F.budget && m) {
		if (bm_used() + bm_missing(m, 0, len) > F.budget)
			F.sigbus++;
		else
			bm_set(m, 0, len);
	}
	return base.map_rw(f, len, p);
}

static int f_lock(os_file *f, int kind, int wait)
{
	if (inject(K_LOCK, 0))
		return injected_rc();
	return base.lock(f, kind, wait);
}

static int f_lock_byte(os_file *f, uint64_t off, int exclusive, int wait)
{
	if (inject(K_LOCK_BYTE, 0))
		return injected_rc();
	return base.lock_byte(f, off, exclusive, wait);
}

static void vfs_reset(void)
{
	base = *os_default_vfs();
	fv = base;
	fv.name = "faults";
	fv.alloc = f_alloc;
	fv.realloc = f_realloc;
	fv.free = f_free;
	fv.open = f_open;
	fv.close = f_close;
	fv.size = f_size;
	fv.read = f_read;
	fv.write = f_write;
	fv.sync = f_sync;
	fv.write_sync = f_write_sync;
	fv.resize = f_resize;
	fv.map = f_map;
	fv.map_extend = f_map_extend;
	fv.map_rw = f_map_rw;
	fv.lock = f_lock;
	fv.lock_byte = f_lock_byte;
	for (int i = 0; i < 2; i++)
		bm_reset(&F.bm[i]);
	memset(&F, 0, sizeof(F));
	F.fail_at = F.alloc_fail_at = -1;
	F.fail_kind = -1;
	F.fired_kind = -2;
	/* The page size of a new file: the map granularity, clamped as
	 * env.c does. */
	size_t g = base.map_granularity(&base);
	F.psize = g < 4096 ? 4096 : g > 32768 ? 32768 : (unsigned)g;
}

/* Arm one fault for the next run (the counters start again). */
static void arm(int err, int oom, long fail_at)
{
	F.err = err;
	F.oom = oom;
	F.calls = F.allocs = 0;
	F.fail_at = oom ? -1 : fail_at;
	F.alloc_fail_at = oom ? fail_at : -1;
	F.fail_kind = -1;
	F.fail_commit = 0;
	F.fired = 0;
	F.fired_kind = -2;
	F.fired_meta = 0;
	F.meta_writes = F.meta_write_syncs = 0;
	F.last_meta = 0;
	F.tear = (uint64_t)fail_at * 7919u;
}

static const char *fault_desc(void)
{
	static char buf[160];
	if (F.oom)
		snprintf(buf, sizeof(buf), "allocation %ld fails",
			 F.alloc_fail_at);
	else
		snprintf(buf, sizeof(buf), "I/O call %ld fails with %s%s%s",
			 F.fail_at, F.err == EIO ? "EIO" : "ENOSPC",
			 F.fired ? ": it was a " : "",
			 F.fired ? (F.fired_kind >= 0 ? kind_name[F.fired_kind]
						      : "?")
				 : "");
	return buf;
}

/* ---- the model: the main tree and one named tree ---- */

#define SIDE "side"

typedef struct state {
	tu_model *main, *side;
	int side_exists;
} state;

static void state_free(state *s)
{
	if (s->main)
		tu_model_free(s->main);
	if (s->side)
		tu_model_free(s->side);
	s->main = s->side = NULL;
	s->side_exists = 0;
}

static void state_empty(state *s)
{
	state_free(s);
	s->main = tu_model_new();
	s->side = tu_model_new();
}

static void state_copy(state *dst, const state *src)
{
	state_free(dst);
	dst->main = tu_model_clone(src->main);
	dst->side = tu_model_clone(src->side);
	dst->side_exists = src->side_exists;
}

/* Does @txn hold exactly @s? 0, or -1 with a message. */
static int state_matches(mapkv_txn *txn, const state *s, char *err, size_t n)
{
	char e[700];
	if (tu_verify_txn_msg(txn, 0, s->main, e, sizeof(e))) {
		snprintf(err, n, "main tree: %s", e);
		return -1;
	}
	mapkv_dbi d;
	int rc = mapkv_dbi_open(txn, SIDE, 0, &d);
	if (!s->side_exists) {
		if (rc != MAPKV_NOTFOUND) {
			snprintf(err, n, "tree '" SIDE "' should not exist: %s",
				 mapkv_strerror(rc));
			return -1;
		}
		return 0;
	}
	if (rc) {
		snprintf(err, n, "tree '" SIDE "' does not open: %s",
			 mapkv_strerror(rc));
		return -1;
	}
	if (tu_verify_txn_msg(txn, d, s->side, e, sizeof(e))) {
		snprintf(err, n, "tree '" SIDE "': %s", e);
		return -1;
	}
	return 0;
}

/* ---- the workload ---- */

typedef struct workload {
	uint64_t seed;
	int commits;
	int reopen_at;  /* close and open the environment before this */
	int read_every; /* a read transaction with a check every so often */
	int big_puts;   /* puts of a large commit */
	int big_ov;     /* overflow values of a large commit */
	size_t big_ov_max;
	mapkv_options opts;
} workload;

enum { S_NONE, S_OPEN, S_BEGIN, S_OP, S_COMMIT, S_READ };
static const char *const stage_name[] = {"none",  "open",   "begin",
					 "an op", "commit", "a read"};

typedef struct outcome {
	int stage; /* where the fault surfaced */
	int rc;    /* with what */
	char what[96];
} outcome;

static int map_retry_ok; /* see judge() */
static tu_rng rng;
/* The model: the last commit that returned 0 plus the changes of the
 * open write transaction, which are undone when it fails (cloning the
 * whole model for every transaction would cost more than the library). */
static state committed;
static state inflight; /* after MAPKV_PANIC: what the commit held */

enum { U_PUT, U_DROP, U_CREATE };
typedef struct undo {
	int kind;
	tu_model *m; /* U_PUT: the tree changed; U_DROP: the dropped one */
	unsigned char *k, *v;
	size_t kl, vl;
	int had; /* U_PUT: the key had the value v before */
} undo;
static undo *ulog;
static size_t nlog, caplog;

static undo *log_new(int kind)
{
	if (nlog == caplog) {
		caplog = caplog ? 2 * caplog : 256;
		ulog = realloc(ulog, caplog * sizeof(*ulog));
		ck_assert_ptr_nonnull(ulog);
	}
	undo *u = &ulog[nlog++];
	memset(u, 0, sizeof(*u));
	u->kind = kind;
	return u;
}

static void log_key(tu_model *m, const void *k, size_t kl)
{
	undo *u = log_new(U_PUT);
	const tu_entry *e = tu_model_get(m, k, kl);
	u->m = m;
	u->k = malloc(kl);
	ck_assert_ptr_nonnull(u->k);
	memcpy(u->k, k, kl);
	u->kl = kl;
	if (e) {
		u->had = 1;
		u->v = malloc(e->vlen ? e->vlen : 1);
		ck_assert_ptr_nonnull(u->v);
		memcpy(u->v, e->val, e->vlen);
		u->vl = e->vlen;
	}
}

static void m_put(tu_model *m, const void *k, size_t kl, const void *v,
		  size_t vl)
{
	log_key(m, k, kl);
	tu_model_put(m, k, kl, v, vl);
}

static void m_del(tu_model *m, const void *k, size_t kl)
{
	log_key(m, k, kl);
	tu_model_del(m, k, kl);
}

static void m_side_create(void)
{
	if (!committed.side_exists) {
		log_new(U_CREATE);
		committed.side_exists = 1;
	}
}

static void m_side_drop(void)
{
	undo *u = log_new(U_DROP);
	u->m = committed.side;
	committed.side = tu_model_new();
	committed.side_exists = 0;
}

/* End of a transaction: keep its changes (commit) or undo them. */
static void log_end(int undo_them)
{
	while (nlog > 0) {
		undo *u = &ulog[--nlog];
		if (undo_them && u->kind == U_PUT) {
			if (u->had)
				tu_model_put(u->m, u->k, u->kl, u->v, u->vl);
			else
				tu_model_del(u->m, u->k, u->kl);
		} else if (undo_them && u->kind == U_DROP) {
			tu_model_free(committed.side);
			committed.side = u->m;
			committed.side_exists = 1;
			u->m = NULL;
		} else if (undo_them && u->kind == U_CREATE) {
			committed.side_exists = 0;
		}
		if (u->kind == U_DROP && u->m)
			tu_model_free(u->m);
		free(u->k);
		free(u->v);
	}
}
static unsigned char vbuf[512 * 1024];

/* Judge the result of an API call made while a fault is armed: returns 0
 * when it succeeded (the fault did not fire in it), 1 when it failed with
 * the fault (the result is then the documented one, or the test fails).
 * @fb is F.fired before the call; @commit: the call was a commit. */
static int judge(int rc, int fb, const char *what, int commit)
{
	int e = errno;
	int now = F.fired && !fb;
	if (rc == 0) {
		/* An open with the default size limit (the destination of a
		 * compacting copy) retries a refused map with less address
		 * space. */
		if (now && F.fired_kind == K_MAP && map_retry_ok)
			return 0;
		tu_check(!now,
			 "%s returned 0 though the fault fired in it (%s)",
			 what, fault_desc());
		return 0;
	}
	tu_check(now, "%s returned %d (%s) without a fault in it (%s)", what,
		 rc, mapkv_strerror(rc), fault_desc());
	if (F.oom) {
		tu_check(rc == MAPKV_NOMEM,
			 "%s returned %d (%s), not NOMEM (%s)", what, rc,
			 mapkv_strerror(rc), fault_desc());
		return 1;
	}
	if (commit && F.fired_meta) {
		tu_check(rc == MAPKV_PANIC,
			 "%s: the meta page failed but it returned %d (%s), "
			 "not MAPKV_PANIC (%s)",
			 what, rc, mapkv_strerror(rc), fault_desc());
		return 1;
	}
	int want = F.err == ENOSPC ? MAPKV_FULL : MAPKV_IO;
	tu_check(rc == want, "%s returned %d (%s), expected %s (%s)", what, rc,
		 mapkv_strerror(rc), mapkv_strerror(want), fault_desc());
	tu_check(e == F.err, "%s: errno is %d (%s), not the injected %s (%s)",
		 what, e, strerror(e), strerror(F.err), fault_desc());
	return 1;
}

#define JUDGE(call, what, commit)                                              \
	({                                                                     \
		int fb_ = F.fired;                                             \
		int rc_ = (call);                                              \
		judge(rc_, fb_, what, commit) ? rc_ : 0;                       \
	})

static size_t rand_key(unsigned char *k, uint64_t space)
{
	size_t kl = 4 + tu_rng_below(&rng, 28);
	return tu_make_seq_key(k, kl, tu_rng_below(&rng, space));
}

static size_t rand_val(int big)
{
	size_t vl;
	uint64_t r = tu_rng_below(&rng, 100);
	if (big)
		vl = 1000 + tu_rng_below(&rng, 900);
	else if (r < 5)
		vl = 2100 + tu_rng_below(&rng, 12000); /* overflow pages */
	else
		vl = tu_rng_below(&rng, 200);
	tu_fill_bytes(vbuf, vl, tu_rng_next(&rng));
	return vl;
}

/* Results of an operation inside a write transaction. */
enum { OP_OK, OP_FAILED_TXN, OP_FAILED_SOFT };

static int op_put(mapkv_txn *txn, mapkv_dbi dbi, tu_model *m, const void *k,
		  size_t kl, size_t vl, outcome *o)
{
	mapkv_val kv = {k, kl}, vv = {vbuf, vl};
	if ((o->rc = JUDGE(mapkv_put(txn, dbi, &kv, &vv, 0), "put", 0))) {
		snprintf(o->what, sizeof(o->what), "put");
		return OP_FAILED_TXN;
	}
	m_put(m, k, kl, vbuf, vl);
	return OP_OK;
}

static int op_del(mapkv_txn *txn, mapkv_dbi dbi, tu_model *m, outcome *o)
{
	size_t n = tu_model_count(m);
	if (n == 0)
		return OP_OK;
	const tu_entry *e = tu_model_at(m, tu_rng_below(&rng, n));
	unsigned char k[64];
	size_t kl = e->klen;
	memcpy(k, e->key, kl);
	mapkv_val kv = {k, kl};
	if ((o->rc = JUDGE(mapkv_del(txn, dbi, &kv), "del", 0))) {
		snprintf(o->what, sizeof(o->what), "del");
		return OP_FAILED_TXN;
	}
	m_del(m, k, kl);
	return OP_OK;
}

/* Delete through a cursor: seek to a random key, delete under it. */
static int op_cursor_del(mapkv_txn *txn, tu_model *m, outcome *o)
{
	size_t n = tu_model_count(m);
	if (n == 0)
		return OP_OK;
	const tu_entry *e = tu_model_at(m, tu_rng_below(&rng, n));
	unsigned char k[64];
	size_t kl = e->klen;
	memcpy(k, e->key, kl);
	mapkv_cursor *cur;
	if ((o->rc = JUDGE(mapkv_cursor_open(txn, 0, &cur), "cursor_open",
			   0))) {
		snprintf(o->what, sizeof(o->what), "cursor_open");
		return OP_FAILED_SOFT;
	}
	mapkv_val kv = {k, kl};
	ck_assert_rc(mapkv_cursor_get(cur, &kv, NULL, MAPKV_SEEK_EXACT), 0);
	o->rc = JUDGE(mapkv_cursor_del(cur), "cursor_del", 0);
	mapkv_cursor_close(cur);
	if (o->rc) {
		snprintf(o->what, sizeof(o->what), "cursor_del");
		return OP_FAILED_TXN;
	}
	m_del(m, k, kl);
	return OP_OK;
}

/* A get of a random key, compared with the model. */
static int op_get(mapkv_txn *txn, mapkv_dbi dbi, const tu_model *m, outcome *o)
{
	unsigned char k[64];
	size_t kl = rand_key(k, 3000);
	mapkv_val kv = {k, kl}, v;
	int fb = F.fired;
	int rc = mapkv_get(txn, dbi, &kv, &v);
	const tu_entry *e = tu_model_get(m, k, kl);
	if (rc == MAPKV_NOTFOUND && !e)
		return OP_OK;
	if ((o->rc = judge(rc, fb, "get", 0))) {
		snprintf(o->what, sizeof(o->what), "get");
		return OP_FAILED_SOFT;
	}
	tu_check(e && v.size == e->vlen && memcmp(v.data, e->val, v.size) == 0,
		 "get %s: the value differs from the model", tu_fmt(k, kl));
	return OP_OK;
}

static int op_open_side(mapkv_txn *txn, mapkv_dbi *d, outcome *o)
{
	unsigned fl = committed.side_exists ? 0 : MAPKV_CREATE;
	if ((o->rc = JUDGE(mapkv_dbi_open(txn, SIDE, fl, d), "dbi_open", 0))) {
		snprintf(o->what, sizeof(o->what), "dbi_open");
		return OP_FAILED_SOFT;
	}
	m_side_create();
	return OP_OK;
}

/* The operations of commit number @c. */
static int wl_ops(mapkv_txn *txn, const workload *w, int c, outcome *o)
{
	unsigned char k[64];
	size_t kl;
	int r = (int)tu_rng_below(&rng, 100), rc = OP_OK;
	if (c == 2 || (c > 6 && r < 7)) {
		/* Large: more than 256 pages, so two syncs. */
		for (int i = 0; i < w->big_puts && !rc; i++) {
			kl = rand_key(k, 3000);
			rc = op_put(txn, 0, committed.main, k, kl, rand_val(1),
				    o);
		}
		for (int i = 0; i < w->big_ov && !rc; i++) {
			kl = rand_key(k, 3000);
			size_t vl = w->big_ov_max / 2 +
				    tu_rng_below(&rng, w->big_ov_max / 2);
			tu_fill_bytes(vbuf, vl, tu_rng_next(&rng));
			rc = op_put(txn, 0, committed.main, k, kl, vl, o);
		}
	} else if (c == 5 || (c > 6 && r < 11)) {
		/* Delete about half of the keys. */
		size_t n = tu_model_count(committed.main) / 2;
		for (size_t i = 0; i < n && !rc; i++)
			rc = op_del(txn, 0, committed.main, o);
	} else if (c == 3 || c == 8 || r < 25) {
		/* The named tree: create, change or drop it. */
		mapkv_dbi d;
		int existed = committed.side_exists;
		if ((rc = op_open_side(txn, &d, o)))
			return rc;
		if (existed && tu_rng_below(&rng, 4) == 0) {
			if ((o->rc = JUDGE(mapkv_dbi_drop(txn, d, 1),
					   "dbi_drop", 0))) {
				snprintf(o->what, sizeof(o->what), "dbi_drop");
				return OP_FAILED_TXN;
			}
			m_side_drop();
			return OP_OK;
		}
		int n = 1 + (int)tu_rng_below(&rng, existed ? 8 : 40);
		for (int i = 0; i < n && !rc; i++) {
			if (existed && tu_rng_below(&rng, 3) == 0) {
				rc = op_del(txn, d, committed.side, o);
			} else {
				kl = rand_key(k, 500);
				rc = op_put(txn, d, committed.side, k, kl,
					    rand_val(0), o);
			}
		}
		if (!rc)
			rc = op_get(txn, d, committed.side, o);
	} else {
		int n = 1 + (int)tu_rng_below(&rng, 8);
		for (int i = 0; i < n && !rc; i++) {
			uint64_t t = tu_rng_below(&rng, 10);
			if (t < 2)
				rc = op_del(txn, 0, committed.main, o);
			else if (t < 3)
				rc = op_cursor_del(txn, committed.main, o);
			else if (t < 4)
				rc = op_get(txn, 0, committed.main, o);
			else {
				kl = rand_key(k, 3000);
				rc = op_put(txn, 0, committed.main, k, kl,
					    rand_val(0), o);
			}
		}
	}
	return rc;
}

/* One commit of the workload: 0 when it committed, 1 when the fault
 * surfaced (@o says where). */
static int wl_commit(mapkv_env *env, const workload *w, int c, outcome *o)
{
	mapkv_txn *txn;
	if ((o->rc = JUDGE(mapkv_txn_begin(env, 0, &txn), "txn_begin", 0))) {
		o->stage = S_BEGIN;
		snprintf(o->what, sizeof(o->what), "begin of commit %d", c);
		return 1;
	}
	int rc = wl_ops(txn, w, c, o);
	if (rc == OP_FAILED_TXN) {
		/* The transaction failed: it can only be aborted. */
		mapkv_val kv = {"x", 1}, vv = {"y", 1};
		ck_assert_rc(mapkv_put(txn, 0, &kv, &vv, 0), MAPKV_BAD_TXN);
		ck_assert_rc(mapkv_txn_commit(txn), MAPKV_BAD_TXN);
		log_end(1);
		o->stage = S_OP;
		return 1;
	}
	if (rc == OP_FAILED_SOFT) {
		/* A call that does not fail the transaction: what was done
		 * before it commits. */
		ck_assert_rc(mapkv_txn_commit(txn), 0);
		log_end(0);
		o->stage = S_OP;
		return 1;
	}
	if ((o->rc = JUDGE(mapkv_txn_commit(txn), "commit", 1))) {
		o->stage = S_COMMIT;
		snprintf(o->what, sizeof(o->what), "commit %d", c);
		if (o->rc == MAPKV_PANIC)
			state_copy(&inflight, &committed);
		log_end(1);
		return 1;
	}
	log_end(0);
	return 0;
}

/* A copy of the last commit (plain or compacting), which opens and holds
 * that commit; a failed copy leaves no file behind. */
static int wl_copy(mapkv_env *env, int compact, outcome *o)
{
	char cp[1100], cl[1200], err[1024];
	snprintf(cp, sizeof(cp), "%s", tu_path("copy.db"));
	snprintf(cl, sizeof(cl), "%s-lock", cp);
	unlink(cp);
	unlink(cl);
	const char *what = compact ? "mapkv_copy (compact)" : "mapkv_copy";
	int fb = F.fired;
	map_retry_ok = compact;
	int rc = mapkv_copy(env, cp, compact ? MAPKV_COPY_COMPACT : 0);
	if (rc && F.fired && !fb && !F.oom && errno != F.err &&
	    !COPY_ERRNO_STRICT) {
		copy_errno_lost++; /* see COPY_ERRNO_STRICT */
		errno = F.err;
	}
	o->rc = judge(rc, fb, what, 0) ? rc : 0;
	map_retry_ok = 0;
	if (o->rc) {
		struct stat st;
		o->stage = S_READ;
		snprintf(o->what, sizeof(o->what), "%s", what);
		tu_check(stat(cp, &st) != 0, "a failed %s left the copy behind",
			 what);
		return 1;
	}
	mapkv_env *ce;
	ck_assert_rc(mapkv_open(&ce, cp, NULL), 0);
	mapkv_txn *txn = tu_begin(ce, MAPKV_RDONLY);
	tu_check(state_matches(txn, &committed, err, sizeof(err)) == 0,
		 "%s does not hold the last commit: %s", what, err);
	ck_assert_rc(mapkv_check(txn, NULL, NULL, NULL), 0);
	mapkv_txn_abort(txn);
	mapkv_close(ce);
	unlink(cp);
	unlink(cl);
	return 0;
}

/* A read transaction: the integrity check and a few gets; every other
 * time a copy. */
static int wl_read(mapkv_env *env, int n, outcome *o)
{
	mapkv_txn *txn;
	o->stage = S_READ;
	if ((o->rc = JUDGE(mapkv_txn_begin(env, MAPKV_RDONLY, &txn),
			   "read txn_begin", 0))) {
		snprintf(o->what, sizeof(o->what), "read txn_begin");
		return 1;
	}
	int fb = F.fired;
	uint64_t problems = 0;
	int rc = mapkv_check(txn, NULL, NULL, &problems);
	if (rc == MAPKV_CORRUPT && F.fired && !fb && !CHECK_FAULTS_STRICT) {
		check_as_corrupt++; /* see CHECK_FAULTS_STRICT */
		o->rc = rc;
	} else {
		o->rc = judge(rc, fb, "mapkv_check", 0) ? rc : 0;
	}
	if (o->rc) {
		mapkv_txn_abort(txn);
		snprintf(o->what, sizeof(o->what), "mapkv_check");
		return 1;
	}
	for (int i = 0; i < 4; i++) {
		outcome o2;
		if (op_get(txn, 0, committed.main, &o2)) {
			*o = o2;
			o->stage = S_READ;
			mapkv_txn_abort(txn);
			return 1;
		}
	}
	mapkv_txn_abort(txn);
	o->stage = S_NONE;
	if (n % 2 == 1)
		return wl_copy(env, n % 4 == 3, o);
	return 0;
}

/* A commit that must succeed: a marker in each tree. */
static void commit_marker(mapkv_env *env, int n, int verify)
{
	char k[32], err[1024];
	mapkv_txn *txn = tu_begin(env, 0);
	if (verify) {
		/* The writer sees the last commit too. */
		tu_check(state_matches(txn, &committed, err, sizeof(err)) == 0,
			 "after the fault (%s), a write transaction does not "
			 "see the last commit: %s",
			 fault_desc(), err);
	}
	snprintf(k, sizeof(k), "~marker%d", n);
	tu_put_str(txn, 0, k, "after the fault");
	tu_model_put(committed.main, k, strlen(k), "after the fault", 15);
	if (committed.side_exists) {
		mapkv_dbi d;
		ck_assert_rc(mapkv_dbi_open(txn, SIDE, 0, &d), 0);
		tu_put_str(txn, d, k, "side");
		tu_model_put(committed.side, k, strlen(k), "side", 4);
	}
	int rc = mapkv_txn_commit(txn);
	tu_check(rc == 0,
		 "after the fault (%s) in %s, a commit of the same "
		 "environment fails: %s",
		 fault_desc(), "the workload", mapkv_strerror(rc));
}

/* After the fault: the environment as documented, then the file. */
static void after_fault(mapkv_env *env, const char *path, const outcome *o)
{
	char err[1024];
	int panic = o->stage == S_COMMIT && o->rc == MAPKV_PANIC;
	if (env && panic) {
		mapkv_txn *txn;
		panics++;
		ck_assert_rc(mapkv_txn_begin(env, 0, &txn), MAPKV_PANIC);
		ck_assert_rc(mapkv_txn_begin(env, MAPKV_TRY, &txn),
			     MAPKV_PANIC);
		txn = tu_begin(env, MAPKV_RDONLY);
		tu_check(state_matches(txn, &committed, err, sizeof(err)) == 0,
			 "after MAPKV_PANIC (%s), a reader does not see the "
			 "last commit: %s",
			 fault_desc(), err);
		mapkv_txn_abort(txn);
	} else if (env && o->stage != S_NONE) {
		/* The same environment goes on: two commits, the second
		 * checking the first from a write transaction. */
		commit_marker(env, 1, 0);
		commit_marker(env, 2, 1);
		mapkv_txn *txn = tu_begin(env, MAPKV_RDONLY);
		tu_check(state_matches(txn, &committed, err, sizeof(err)) == 0,
			 "after the fault (%s), a reader does not see the "
			 "last commit: %s",
			 fault_desc(), err);
		uint64_t problems = 0;
		int rc = mapkv_check(txn, NULL, NULL, &problems);
		tu_check(rc == 0, "after the fault (%s): mapkv_check: %s",
			 fault_desc(), mapkv_strerror(rc));
		mapkv_txn_abort(txn);
	}
	if (env)
		mapkv_close(env);
	tu_check(F.live == 0,
		 "%ld blocks allocated through the OS layer are left after "
		 "mapkv_close (%s, surfaced in %s: %s)",
		 F.live, fault_desc(), stage_name[o->stage], o->what);

	/* The file, with the default OS layer. */
	mapkv_env *e2;
	int rc = mapkv_open(&e2, path, NULL);
	tu_check(rc == 0, "reopening after the fault (%s) fails: %s",
		 fault_desc(), mapkv_strerror(rc));
	mapkv_txn *txn = tu_begin(e2, MAPKV_RDONLY);
	char err2[1024] = "";
	int ok = state_matches(txn, &committed, err, sizeof(err)) == 0;
	if (!ok && panic) {
		ok = state_matches(txn, &inflight, err2, sizeof(err2)) == 0;
		panic_inflight += ok;
	}
	tu_check(ok,
		 "after the fault (%s, surfaced in %s: %s, %s), the file "
		 "holds neither the last commit (%s)%s%s",
		 fault_desc(), stage_name[o->stage], o->what,
		 mapkv_strerror(o->rc), err,
		 panic ? " nor the one in flight: " : "", err2);
	uint64_t problems = 0;
	rc = mapkv_check(txn, NULL, NULL, &problems);
	tu_check(rc == 0,
		 "after the fault (%s), mapkv_check finds %llu problems (%s)",
		 fault_desc(), (unsigned long long)problems,
		 mapkv_strerror(rc));
	mapkv_txn_abort(txn);
	mapkv_close(e2);
}

/* One run of the workload with the fault armed; returns whether the
 * fault fired. */
static int run_one(const workload *w)
{
	outcome o;
	memset(&o, 0, sizeof(o));
	tu_rng_init(&rng, w->seed);
	state_empty(&committed);
	state_empty(&inflight);
	char path[1100], lpath[1200];
	snprintf(path, sizeof(path), "%s", tu_path("f.db"));
	snprintf(lpath, sizeof(lpath), "%s-lock", path);
	snprintf(F.dbpath, sizeof(F.dbpath), "%s", path);
	unlink(path);
	unlink(lpath);
	mapkv_env *env = NULL;
	if ((o.rc = JUDGE(env_open_vfs(&env, path, &w->opts, &fv), "open",
			  0))) {
		o.stage = S_OPEN;
		snprintf(o.what, sizeof(o.what), "the first open");
		env = NULL;
		goto after;
	}
	for (int c = 0; c < w->commits; c++) {
		if (c == w->reopen_at) {
			mapkv_close(env);
			tu_check(F.live == 0, "%ld blocks left after close",
				 F.live);
			env = NULL;
			if ((o.rc = JUDGE(
				     env_open_vfs(&env, path, &w->opts, &fv),
				     "open", 0))) {
				o.stage = S_OPEN;
				snprintf(o.what, sizeof(o.what),
					 "the open before commit %d", c);
				env = NULL;
				goto after;
			}
		}
		if (w->read_every && c % w->read_every == w->read_every - 1 &&
		    wl_read(env, c / w->read_every, &o))
			goto after;
		if (wl_commit(env, w, c, &o))
			goto after;
	}
after:
	after_fault(env, path, &o);
	state_free(&committed);
	state_free(&inflight);
	return F.fired;
}

/* Every N (or a sample of them) for one kind of fault. */
static long fault_loop(const char *name, const workload *w, int err, int oom,
		       long sample)
{
	arm(err, oom, -1);
	tu_check(!run_one(w), "%s: a fault fired in the counting run", name);
	long total = oom ? F.allocs : F.calls;
	long meta_w = F.meta_writes, meta_ws = F.meta_write_syncs;
	tu_check(total > 0, "%s: no calls counted", name);
	long step = tu_long() || total <= sample
			    ? 1
			    : (total + sample - 1) / sample;
	tu_rng jit;
	tu_rng_init(&jit, tu_mix64(w->seed + (uint64_t)err + (uint64_t)oom));
	tu_rng_init(&rng, w->seed); /* tu_seed_current: the workload's */
	long runs = 0;
	for (long at = 0; at < total; at += step) {
		long n = at;
		if (step > 1 && at > 0)
			n += (long)tu_rng_below(&jit, (uint64_t)step);
		if (n >= total)
			break;
		arm(err, oom, n);
		int fired = run_one(w);
		tu_check(fired, "%s: call %ld of %ld never failed", name, n,
			 total);
		runs++;
	}
	fprintf(stderr,
		"check_faults: %s: %ld calls in the workload (meta page of "
		"%ld commits written then synced once or not at all, of %ld "
		"after a sync of the pages), %ld injected%s\n",
		name, total, meta_w, meta_ws, runs,
		step > 1 ? " (a sample; MAPKV_TEST_LONG=1 runs all)" : "");
	int nosync = (w->opts.flags & MAPKV_NOSYNC) != 0;
	tu_check(meta_w > 0 && (meta_ws > 0 || nosync),
		 "%s: the workload must commit through both paths (one sync: "
		 "%ld, two: %ld)",
		 name, meta_w, meta_ws);
	return runs;
}

static workload io_workload(void)
{
	workload w;
	memset(&w, 0, sizeof(w));
	w.seed = tu_seed(0xfa17ed10);
	w.commits = (int)tu_scale(64, 160);
	w.reopen_at = w.commits / 2;
	w.read_every = 7;
	w.big_puts = 260;
	w.big_ov = 4;
	w.big_ov_max = 200 * 1024;
	w.opts.max_size = 1ull << 30; /* no retry with less address space */
	return w;
}

START_TEST(test_io_errors_at_every_call_leave_the_last_commit)
{
	vfs_reset();
	workload w = io_workload();
	long n = fault_loop("EIO", &w, EIO, 0, tu_scale(700, 1000000));
	ck_assert_int_gt(n, 0);
	fprintf(stderr, "check_faults: EIO by call:");
	for (int k = 0; k < K_NKINDS; k++)
		fprintf(stderr, " %s %ld", kind_name[k], injected_eio[k]);
	fprintf(stderr,
		"; %ld MAPKV_PANIC (%ld reopened at the commit in flight); "
		"%ld faults that mapkv_check reported as damage; %ld failed "
		"copies that lost errno\n",
		panics, panic_inflight, check_as_corrupt, copy_errno_lost);
}
END_TEST

START_TEST(test_disk_full_at_every_write_gives_full_and_the_last_commit)
{
	vfs_reset();
	workload w = io_workload();
	long n = fault_loop("ENOSPC", &w, ENOSPC, 0, tu_scale(500, 1000000));
	ck_assert_int_gt(n, 0);
	fprintf(stderr, "check_faults: ENOSPC by call:");
	for (int k = 0; k < K_NKINDS; k++)
		if (injected_enospc[k])
			fprintf(stderr, " %s %ld", kind_name[k],
				injected_enospc[k]);
	fprintf(stderr,
		"; %ld MAPKV_PANIC (%ld reopened in flight); %ld failed copies "
		"that lost errno\n",
		panics, panic_inflight, copy_errno_lost);
}
END_TEST

/* With MAPKV_NOSYNC the meta page is written without a sync; its failure
 * is MAPKV_PANIC all the same. */
START_TEST(test_io_errors_without_sync_leave_the_last_commit)
{
	vfs_reset();
	workload w = io_workload();
	w.seed = tu_seed(0x0005f0c5);
	w.commits = (int)tu_scale(32, 100);
	w.reopen_at = w.commits / 2;
	w.opts.flags = MAPKV_NOSYNC;
	long n = fault_loop("EIO, MAPKV_NOSYNC", &w, EIO, 0,
			    tu_scale(400, 1000000));
	ck_assert_int_gt(n, 0);
	n = fault_loop("ENOSPC, MAPKV_NOSYNC", &w, ENOSPC, 0,
		       tu_scale(300, 1000000));
	ck_assert_int_gt(n, 0);
}
END_TEST

START_TEST(test_out_of_memory_at_every_allocation_leaks_nothing)
{
	vfs_reset();
	workload w;
	memset(&w, 0, sizeof(w));
	w.seed = tu_seed(0x00e0f00d);
	w.commits = (int)tu_scale(20, 60);
	w.reopen_at = 13;
	w.read_every = 4;
	w.big_puts = 100;
	w.big_ov = 4;
	w.big_ov_max = 480 * 1024;
	w.opts.max_size = 1ull << 30;
	long n = fault_loop("NOMEM", &w, 0, 1, tu_scale(1500, 1000000));
	ck_assert_int_gt(n, 0);
	fprintf(stderr,
		"check_faults: NOMEM: %ld failed allocations; %ld that "
		"mapkv_check reported as damage\n",
		injected_oom, check_as_corrupt);
}
END_TEST

/* Regression: a commit whose resize succeeded and whose map extension
 * failed left the map shorter than the file; the next commit, finding
 * the file large enough, wrote pages past the map without extending it,
 * and the next writer crashed (SIGSEGV) reading them (pager_grow). */
START_TEST(test_failed_map_extend_is_mapped_by_the_next_commit)
{
	vfs_reset();
	arm(EIO, 0, -1);
	const char *path = tu_path("ext.db");
	snprintf(F.dbpath, sizeof(F.dbpath), "%s", path);
	mapkv_options opts;
	memset(&opts, 0, sizeof(opts));
	opts.max_size = 1ull << 30;
	mapkv_env *env;
	ck_assert_rc(env_open_vfs(&env, path, &opts, &fv), 0);
	tu_model *m = tu_model_new();
	for (int round = 0; round < 2; round++) {
		/* About 1 MiB: the file grows. */
		mapkv_txn *txn = tu_begin(env, 0);
		tu_model *next = tu_model_clone(m);
		for (int i = 0; i < 250; i++) {
			unsigned char k[16];
			size_t kl = tu_make_seq_key(k, 8, (uint64_t)i);
			tu_fill_bytes(vbuf, 4000, (uint64_t)i);
			tu_put(txn, 0, k, kl, vbuf, 4000);
			tu_model_put(next, k, kl, vbuf, 4000);
		}
		F.fail_kind = round == 0 ? K_MAP_EXTEND : -1;
		int rc = mapkv_txn_commit(txn);
		if (round == 0) {
			ck_assert_int_eq(F.fired_kind, K_MAP_EXTEND);
			ck_assert_rc(rc, MAPKV_IO);
			tu_model_free(next);
		} else {
			ck_assert_rc(rc, 0);
			tu_model_free(m);
			m = next;
		}
	}
	/* A writer reads every page of the last commit. */
	mapkv_txn *txn = tu_begin(env, 0);
	tu_verify_txn(txn, 0, m);
	mapkv_txn_abort(txn);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	ck_assert_int_eq(F.live, 0);
	ck_assert_rc(mapkv_open(&env, path, NULL), 0);
	tu_verify_db(env, 0, m);
	mapkv_close(env);
	tu_model_free(m);
}
END_TEST

/* Regression: a compacting copy whose destination could not write the
 * meta page of its commit returned MAPKV_PANIC (the destination's state),
 * which mapkv_copy does not document; it is the write error itself. */
START_TEST(test_failed_compact_copy_reports_the_write_error)
{
	static const int errs[] = {EIO, ENOSPC};
	vfs_reset();
	const char *path = tu_path("src.db");
	const char *copy = tu_path("copy.db");
	mapkv_options opts;
	memset(&opts, 0, sizeof(opts));
	opts.max_size = 1ull << 30;
	mapkv_env *env;
	ck_assert_rc(env_open_vfs(&env, path, &opts, &fv), 0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "k", "v");
	tu_commit(txn);
	for (int i = 0; i < 2; i++) {
		arm(errs[i], 0, -1);
		/* The copy is the database the layer watches for meta pages. */
		snprintf(F.dbpath, sizeof(F.dbpath), "%s", copy);
		F.fail_commit = 1;
		errno = 0;
		int rc = mapkv_copy(env, copy, MAPKV_COPY_COMPACT);
		int e = errno;
		ck_assert(F.fired && F.fired_meta);
		tu_check(rc == (errs[i] == EIO ? MAPKV_IO : MAPKV_FULL),
			 "compact copy, meta page write failing with %s: %d "
			 "(%s)",
			 strerror(errs[i]), rc, mapkv_strerror(rc));
		if (COPY_ERRNO_STRICT)
			ck_assert_int_eq(e, errs[i]);
		ck_assert_int_ne(access(copy, F_OK), 0);
	}
	mapkv_close(env);
	ck_assert_int_eq(F.live, 0);
}
END_TEST

/* A failed mapkv_sync is final: the next one must not report success,
 * and writing is refused until the environment is opened again. */
START_TEST(test_failed_sync_is_never_reported_durable_later)
{
	vfs_reset();
	arm(EIO, 0, -1);
	const char *path = tu_path("sync.db");
	snprintf(F.dbpath, sizeof(F.dbpath), "%s", path);
	mapkv_options opts;
	memset(&opts, 0, sizeof(opts));
	opts.max_size = 1ull << 30;
	opts.flags = MAPKV_NOSYNC;
	mapkv_env *env;
	ck_assert_rc(env_open_vfs(&env, path, &opts, &fv), 0);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_put_str(txn, 0, "a", "1");
	tu_commit(txn);
	F.fail_at = F.calls; /* the next call: the sync */
	errno = 0;
	int rc = mapkv_sync(env);
	int e = errno;
	ck_assert_int_eq(F.fired_kind, K_SYNC);
	tu_check(rc == MAPKV_IO && e == EIO, "mapkv_sync: %d (%s), errno %d",
		 rc, mapkv_strerror(rc), e);
	rc = mapkv_sync(env);
	int rb = mapkv_txn_begin(env, 0, &txn);
	if (rb == 0)
		mapkv_txn_abort(txn);
	if (SYNC_PANIC_STRICT || (rc != 0 && rb != 0)) {
		tu_check(rc == MAPKV_PANIC,
			 "mapkv_sync after a failed one: %d (%s), expected "
			 "MAPKV_PANIC",
			 rc, mapkv_strerror(rc));
		ck_assert_rc(rb, MAPKV_PANIC);
	} else {
		fprintf(stderr,
			"check_faults: after a failed mapkv_sync, the next one "
			"returns %d (%s) and a write transaction %d (%s); "
			"both should be MAPKV_PANIC (see SYNC_PANIC_STRICT)\n",
			rc, mapkv_strerror(rc), rb, mapkv_strerror(rb));
	}
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_expect_str(txn, 0, "a", "1");
	mapkv_txn_abort(txn);
	mapkv_close(env);
	ck_assert_int_eq(F.live, 0);
}
END_TEST

/* ---- a full disk ---- */

/* Commit values until the disk is full; the model gets every commit that
 * returned 0. Returns the number of commits. */
static int fill_until_full(mapkv_env *env, state *s, uint64_t seed)
{
	tu_rng r;
	tu_rng_init(&r, seed);
	for (int c = 0; c < 10000; c++) {
		mapkv_txn *txn = tu_begin(env, 0);
		tu_model *next = tu_model_clone(s->main);
		for (int i = 0; i < 4; i++) {
			unsigned char k[16];
			size_t kl = tu_make_seq_key(k, 10, tu_rng_next(&r));
			size_t vl = tu_rng_below(&r, 4) == 0
					    ? 5000 + tu_rng_below(&r, 20000)
					    : tu_rng_below(&r, 1500);
			tu_fill_bytes(vbuf, vl, tu_rng_next(&r));
			tu_put(txn, 0, k, kl, vbuf, vl);
			tu_model_put(next, k, kl, vbuf, vl);
		}
		errno = 0;
		int rc = mapkv_txn_commit(txn);
		int e = errno;
		if (rc == 0) {
			tu_model_free(s->main);
			s->main = next;
			continue;
		}
		tu_model_free(next);
		tu_check(rc == MAPKV_FULL && e == ENOSPC,
			 "a commit on a full disk returned %d (%s), errno %d "
			 "(%s): expected MAPKV_FULL and ENOSPC",
			 rc, mapkv_strerror(rc), e, strerror(e));
		return c;
	}
	ck_abort_msg("the disk never filled up");
	return 0;
}

/* The simulated disk: a file system of a few MiB under the library. */
START_TEST(test_full_disk_gives_full_never_sigbus)
{
	vfs_reset();
	arm(0, 0, -1);
	F.budget = 640; /* blocks of 4 KiB: 2.5 MiB */
	const char *path = tu_path("full.db");
	snprintf(F.dbpath, sizeof(F.dbpath), "%s", path);
	char lpath[1200];
	snprintf(lpath, sizeof(lpath), "%s-lock", path);
	mapkv_options opts;
	memset(&opts, 0, sizeof(opts));
	opts.max_size = 1ull << 30;
	mapkv_env *env;
	ck_assert_rc(env_open_vfs(&env, path, &opts, &fv), 0);
	state s;
	memset(&s, 0, sizeof(s));
	state_empty(&s);
	int commits = fill_until_full(env, &s, tu_seed(0xd15cf011));
	tu_check(commits > 20, "full after only %d commits", commits);
	/* Readers and the writer go on; a commit that needs no new block
	 * (here: nothing) succeeds, one that does fails again. */
	tu_verify_db(env, 0, s.main);
	mapkv_txn *txn = tu_begin(env, 0);
	tu_commit(txn);
	commits += fill_until_full(env, &s, tu_seed(0xd15cf012));
	tu_verify_db(env, 0, s.main);
	mapkv_close(env);
	ck_assert_int_eq(F.live, 0);

	/* Another program takes what is left. The lock file is gone (a
	 * clean-up removed it; it is rebuilt at open): opening must fail
	 * with MAPKV_FULL, not map the new lock file over blocks the disk
	 * cannot back and die of SIGBUS at the first store. */
	unlink(lpath);
	bm_reset(&F.bm[1]);
	F.budget = bm_used();
	errno = 0;
	int rc = env_open_vfs(&env, path, &opts, &fv);
	int e = errno;
	tu_check(F.sigbus == 0,
		 "mapkv_open mapped the new lock file writable over %ld "
		 "block(s) the full disk cannot back: the first store into it "
		 "is a SIGBUS",
		 F.sigbus);
	tu_check(rc == MAPKV_FULL && e == ENOSPC,
		 "open on a full disk without a lock file: %d (%s), errno %d",
		 rc, mapkv_strerror(rc), e);
	ck_assert_int_eq(F.live, 0);
	/* More readers than the lock file has room for: the same. */
	F.budget += 1000;
	ck_assert_rc(env_open_vfs(&env, path, &opts, &fv), 0);
	mapkv_close(env);
	F.budget = bm_used();
	opts.max_readers = 2000;
	rc = env_open_vfs(&env, path, &opts, &fv);
	tu_check(F.sigbus == 0 && rc == MAPKV_FULL,
		 "open with a larger reader table on a full disk: %d (%s), "
		 "%ld block(s) mapped without backing",
		 rc, mapkv_strerror(rc), F.sigbus);
	opts.max_readers = 0;

	/* Space comes back: the last commit is there. */
	F.budget += 1000;
	ck_assert_rc(env_open_vfs(&env, path, &opts, &fv), 0);
	tu_verify_db(env, 0, s.main);
	mapkv_close(env);
	ck_assert_rc(mapkv_open(&env, path, NULL), 0);
	txn = tu_begin(env, MAPKV_RDONLY);
	tu_verify_txn(txn, 0, s.main);
	ck_assert_rc(mapkv_check(txn, NULL, NULL, NULL), 0);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	fprintf(stderr,
		"check_faults: simulated disk of %llu KiB full after %d "
		"commits\n",
		(unsigned long long)640 * BLOCK / 1024, commits);
	state_free(&s);
}
END_TEST

/* A real small file system: a tmpfs mounted in a mount namespace of a
 * child process, where the machine allows it (root, or unprivileged user
 * namespaces). The child reports through its exit status: 0 pass, 77
 * cannot mount here, 1 failure (message on stderr); a signal is a
 * failure. */
static int mount_tmpfs(const char *dir, const char *size)
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
	/* A change of propagation ignores the source and type; they are
	 * given anyway, since valgrind reads them as strings. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
		return -1;
	char opt[64];
	snprintf(opt, sizeof(opt), "size=%s,mode=0700", size);
	return mount("none", dir, "tmpfs", 0, opt);
}

#define CHILD_FAIL(...)                                                        \
	do {                                                                   \
		fprintf(stderr, "check_faults (tmpfs): " __VA_ARGS__);         \
		fprintf(stderr, "\n");                                         \
		_exit(1);                                                      \
	} while (0)

static void tmpfs_child(const char *dir)
{
	if (mount_tmpfs(dir, "1m") != 0)
		_exit(77);
	char path[1200], lpath[1300], filler[1300];
	snprintf(path, sizeof(path), "%s/t.db", dir);
	snprintf(lpath, sizeof(lpath), "%s-lock", path);
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	mapkv_env *env;
	int rc = mapkv_open(&env, path, NULL);
	if (rc)
		CHILD_FAIL("open: %s", mapkv_strerror(rc));
	tu_model *m = tu_model_new();
	tu_rng r;
	tu_rng_init(&r, 0x7e3bf5);
	int c, full = 0;
	for (c = 0; c < 10000 && !full; c++) {
		mapkv_txn *txn;
		if ((rc = mapkv_txn_begin(env, 0, &txn)))
			CHILD_FAIL("begin: %s", mapkv_strerror(rc));
		tu_model *next = tu_model_clone(m);
		for (int i = 0; i < 4; i++) {
			unsigned char k[16];
			size_t kl = tu_make_seq_key(k, 10, tu_rng_next(&r));
			size_t vl = tu_rng_below(&r, 4) == 0
					    ? 5000 + tu_rng_below(&r, 20000)
					    : tu_rng_below(&r, 1500);
			tu_fill_bytes(vbuf, vl, tu_rng_next(&r));
			mapkv_val kv = {k, kl}, vv = {vbuf, vl};
			if ((rc = mapkv_put(txn, 0, &kv, &vv, 0)))
				CHILD_FAIL("put: %s", mapkv_strerror(rc));
			tu_model_put(next, k, kl, vbuf, vl);
		}
		errno = 0;
		rc = mapkv_txn_commit(txn);
		int e = errno;
		if (rc == 0) {
			tu_model_free(m);
			m = next;
			continue;
		}
		tu_model_free(next);
		if (rc != MAPKV_FULL || e != ENOSPC)
			CHILD_FAIL("commit %d on the full tmpfs: %s, errno %s",
				   c, mapkv_strerror(rc), strerror(e));
		full = 1;
	}
	if (!full)
		CHILD_FAIL("the tmpfs never filled up");
	char err[1024];
	mapkv_txn *txn;
	if ((rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn)) ||
	    tu_verify_txn_msg(txn, 0, m, err, sizeof(err)))
		CHILD_FAIL("after MAPKV_FULL the reader differs: %s %s",
			   mapkv_strerror(rc), err);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	/* Remove the lock file, fill what is left, open again. */
	unlink(lpath);
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		CHILD_FAIL("filler: %s", strerror(errno));
	memset(vbuf, 0xa5, 4096);
	while (write(fd, vbuf, 4096) > 0)
		;
	while (write(fd, vbuf, 1) > 0)
		;
	close(fd);
	rc = mapkv_open(&env, path, NULL);
	if (rc == 0)
		mapkv_close(env); /* possible if a few bytes were left */
	else if (rc != MAPKV_FULL && rc != MAPKV_IO)
		CHILD_FAIL("open on the full tmpfs: %s", mapkv_strerror(rc));
	unlink(filler);
	if ((rc = mapkv_open(&env, path, NULL)))
		CHILD_FAIL("open once space is back: %s", mapkv_strerror(rc));
	if ((rc = mapkv_txn_begin(env, MAPKV_RDONLY, &txn)) ||
	    tu_verify_txn_msg(txn, 0, m, err, sizeof(err)))
		CHILD_FAIL("the last commit is not intact: %s %s",
			   mapkv_strerror(rc), err);
	uint64_t problems = 0;
	if ((rc = mapkv_check(txn, NULL, NULL, &problems)))
		CHILD_FAIL("mapkv_check: %s (%llu problems)",
			   mapkv_strerror(rc), (unsigned long long)problems);
	mapkv_txn_abort(txn);
	mapkv_close(env);
	fprintf(stderr,
		"check_faults: a real 1 MiB tmpfs was full after %d commits: "
		"MAPKV_FULL, last commit intact\n",
		c - 1);
	tu_model_free(m);
	_exit(0);
}

START_TEST(test_full_tmpfs_gives_full_never_sigbus)
{
	const char *dir = tu_path("tmpfs");
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		tmpfs_child(dir);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	tu_check(!WIFSIGNALED(st),
		 "the process on the full tmpfs was killed by signal %d%s",
		 WTERMSIG(st),
		 WTERMSIG(st) == SIGBUS ? " (SIGBUS: a full disk must be an "
					  "error)"
					: "");
	if (WEXITSTATUS(st) == 77) {
		fprintf(stderr, "check_faults: no tmpfs can be mounted here; "
				"the simulated full disk stands in\n");
		return;
	}
	tu_check(WEXITSTATUS(st) == 0,
		 "the test on a full tmpfs failed (see its message above)");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tu_tcase(s, "faults", 300);
	tcase_add_test(tc, test_io_errors_at_every_call_leave_the_last_commit);
	tcase_add_test(
		tc,
		test_disk_full_at_every_write_gives_full_and_the_last_commit);
	tcase_add_test(tc, test_io_errors_without_sync_leave_the_last_commit);
	tcase_add_test(tc,
		       test_out_of_memory_at_every_allocation_leaks_nothing);
	tcase_add_test(tc, test_failed_map_extend_is_mapped_by_the_next_commit);
	tcase_add_test(tc, test_failed_compact_copy_reports_the_write_error);
	tcase_add_test(tc, test_failed_sync_is_never_reported_durable_later);
	tcase_add_test(tc, test_full_disk_gives_full_never_sigbus);
	tcase_add_test(tc, test_full_tmpfs_gives_full_never_sigbus);
	return tu_run_suite(s);
}
