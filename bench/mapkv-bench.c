/*
 * mapkv-bench: throughput of mapkv measured next to LMDB in the same run.
 *
 * Workloads (names for -w), after LevelDB's db_bench and LMDB's
 * db_bench_mdb:
 *   fillseq     N puts of keys in ascending order into a fresh database,
 *               B puts per durable commit.
 *   fillrandom  N puts into a fresh database in a shuffled order (one
 *               permutation of 0..N-1 from a fixed seed, the same for both
 *               engines), B puts per durable commit. The file size after it
 *               is reported.
 *   readrandom  N gets of keys drawn uniformly (with replacement, fixed seed)
 *               from the fillrandom database, one read transaction per B
 *               gets. Every get must find its key: a miss is an error.
 *   readseq     one cursor scan of the fillrandom database in one read
 *               transaction; the count must equal N.
 *   syncput     S puts of distinct random keys into a fresh database, one
 *               put per durable commit.
 *
 * Keys are the key number as zero-padded decimal ("%016llu" for 16-byte
 * keys), so their byte order is their numeric order. Values are
 * pseudo-random bytes, a function of the key number only, so both engines
 * store the same bytes and -V can check what a read returns.
 *
 * Both engines are durable: mapkv with default options (sync on commit),
 * LMDB with default flags (no MDB_NOSYNC, no MDB_WRITEMAP). The key and
 * value arrays are built before the clock starts; the timed loop holds only
 * engine calls. Each workload runs on one engine and then on the other
 * (mapkv first in odd-numbered runs, LMDB first in even ones), the whole set
 * is repeated -r times and the best figure of the repeats is reported:
 * absolute figures move from run to run, so compare the ratio of figures
 * taken side by side.
 *
 * Build (the LMDB half needs Debian's liblmdb-dev):
 *   cc -O2 -D_GNU_SOURCE -DHAVE_LMDB -Iinclude bench/mapkv-bench.c \
 *      <mapkv library> -llmdb -o mapkv-bench
 * This is a measuring tool, not a test: it exits 1 on the first error, and
 * on a readrandom miss or a wrong readseq count.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "mapkv.h"

#ifdef HAVE_LMDB
#include <lmdb.h>
#endif

/* ---------------------------------------------------------------------- */
/* Options and results                                                    */

enum workload {
	W_FILLSEQ,
	W_FILLRANDOM,
	W_READRANDOM,
	W_READSEQ,
	W_SYNCPUT,
	W_COUNT
};

static const char *const wl_name[W_COUNT] = {
	"fillseq", "fillrandom", "readrandom", "readseq", "syncput"};

enum engine_id { E_MAPKV, E_LMDB, E_COUNT };

static struct {
	uint64_t n;         /* -n: keys */
	size_t ksize;       /* -k: key bytes */
	size_t vsize;       /* -v: value bytes */
	uint64_t batch;     /* -b: puts per commit, gets per read txn */
	uint64_t syncops;   /* -s: syncput operations */
	unsigned repeats;   /* -r */
	const char *dir;    /* -d, NULL: mkdtemp */
	unsigned workloads; /* -w, bit per enum workload */
	unsigned engines;   /* -e, bit per enum engine_id */
	int markdown;       /* -m */
	int verify;         /* -V */
	int keep;           /* -K */
} opt;

static char workdir[PATH_MAX];
static char workdir_fs[32]; /* file system type of workdir */
static int workdir_made;    /* created by us (mkdtemp or -d DIR missing) */
static char cmdline[4096];

/* Best ops/s of the repeats, 0 when not run. */
static double best[W_COUNT][E_COUNT];
/* st_size of the data file after the fills (and syncput). */
static uint64_t fsize[W_COUNT][E_COUNT];
/* One 4 KiB pwrite + fdatasync per op: the cost of one sync here. */
static double syncbase_best;

static const char *cur_workload = "setup";

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void cleanup(void);

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("mapkv-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* splitmix64: small, fast, and the same sequence everywhere. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* 1234567 -> "1,234,567" */
static const char *fmt_count(char *buf, size_t len, uint64_t x)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "%" PRIu64, x);
	size_t o = 0;

	for (int i = 0; i < n && o + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

/* Parse a count with an optional k, M or G suffix (powers of 1000). */
static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	if (!*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1000, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1000000, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1000000000, end++;
	if (*end || v > UINT64_MAX / mul)
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "mapkv-bench: cannot remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

/* rm -rf path (a directory this program made, or a file) */
static void rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return;
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_join(char *out, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		die("path too long: %s/%s", dir, name);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		die("%s: cannot stat %s: %s", cur_workload, path,
		    strerror(errno));
	return (uint64_t)st.st_size;
}

/* ---------------------------------------------------------------------- */
/* Keys and values                                                        */

#define VPOOL (1u << 20) /* values are windows into this many random bytes */

static unsigned char *valpool;

static const void *value_of(uint64_t keynum)
{
	/* 977 is odd, so consecutive keys get windows all over the pool. */
	return valpool + (keynum * 977u) % VPOOL;
}

static void make_key(char *dst, uint64_t keynum)
{
	char tmp[MAPKV_MAX_KEY_SIZE + 32];

	snprintf(tmp, sizeof tmp, "%0*" PRIu64, (int)opt.ksize, keynum);
	memcpy(dst, tmp, opt.ksize);
}

/* A list of operations: key i is keys + i * ksize, its key number idx[i]
 * (NULL when the number is i). Built before the clock starts. */
struct keylist {
	char *keys;
	uint64_t *idx;
	uint64_t n;
};

static struct keylist kl_seq, kl_fillrandom, kl_readrandom, kl_syncput;

static void keylist_build(struct keylist *kl, uint64_t n, uint64_t *idx)
{
	kl->n = n;
	kl->idx = idx;
	kl->keys = xmalloc(n * opt.ksize);
	for (uint64_t i = 0; i < n; i++)
		make_key(kl->keys + i * opt.ksize, idx ? idx[i] : i);
}

static const uint64_t *permutation(void)
{
	static uint64_t *perm;
	uint64_t seed = 20240601;

	if (perm)
		return perm;
	perm = xmalloc(opt.n * sizeof *perm);
	for (uint64_t i = 0; i < opt.n; i++)
		perm[i] = i;
	for (uint64_t i = opt.n - 1; i > 0; i--) { /* Fisher-Yates */
		uint64_t j = rng_next(&seed) % (i + 1), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	return perm;
}

static void build_data(void)
{
	uint64_t seed = 42;
	unsigned need = opt.workloads;

	valpool = xmalloc(VPOOL + opt.vsize);
	for (size_t i = 0; i < VPOOL + opt.vsize; i += 8) {
		uint64_t r = rng_next(&seed);
		size_t m =
			VPOOL + opt.vsize - i < 8 ? VPOOL + opt.vsize - i : 8;
		memcpy(valpool + i, &r, m);
	}
	if ((need & (1u << W_FILLSEQ)) || opt.verify)
		keylist_build(&kl_seq, opt.n, NULL);
	if (need &
	    ((1u << W_FILLRANDOM) | (1u << W_READRANDOM) | (1u << W_READSEQ))) {
		/* keylist_build keeps idx: it must outlive the list. */
		keylist_build(&kl_fillrandom, opt.n, (uint64_t *)permutation());
	}
	if (need & (1u << W_READRANDOM)) {
		uint64_t *idx = xmalloc(opt.n * sizeof *idx);
		uint64_t s = 7;

		for (uint64_t i = 0; i < opt.n; i++)
			idx[i] = rng_next(&s) % opt.n;
		keylist_build(&kl_readrandom, opt.n, idx);
	}
	if (need & (1u << W_SYNCPUT)) {
		/* Distinct random keys while S <= N: a second shuffle. */
		uint64_t *idx = xmalloc(opt.syncops * sizeof *idx);
		uint64_t s = 99, *perm = xmalloc(opt.n * sizeof *perm);

		for (uint64_t i = 0; i < opt.n; i++)
			perm[i] = i;
		for (uint64_t i = opt.n - 1; i > 0; i--) {
			uint64_t j = rng_next(&s) % (i + 1), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
		for (uint64_t i = 0; i < opt.syncops; i++)
			idx[i] = perm[i % opt.n];
		free(perm);
		keylist_build(&kl_syncput, opt.syncops, idx);
	}
}

/* ---------------------------------------------------------------------- */
/* Engines                                                                */

struct db;

/* Expected contents for readseq -V: entry number i is key number i. */
struct scan {
	uint64_t count;
	int verify;
	uint64_t bad; /* entries whose key or value was wrong (-V) */
	uint64_t first_bad;
};

struct engine {
	const char *name;   /* as printed */
	const char *subdir; /* directory in the work directory */
	const char *file;   /* data file inside it */
	int notfound;       /* code of a missing key */
	int (*open)(struct db *db);
	void (*close)(struct db *db);
	int (*wbegin)(struct db *db);
	int (*put)(struct db *db, const void *k, size_t ks, const void *v,
		   size_t vs);
	int (*commit)(struct db *db);
	int (*rbegin)(struct db *db);
	int (*get)(struct db *db, const void *k, size_t ks, const void **v,
		   size_t *vs);
	void (*rend)(struct db *db);
	int (*scan)(struct db *db, struct scan *sc);
	const char *(*strerror)(int rc);
};

struct db {
	const struct engine *e;
	char dir[PATH_MAX];
	char file[PATH_MAX];
	const char *what; /* the call that failed */
	mapkv_env *kenv;
	mapkv_txn *ktxn;
#ifdef HAVE_LMDB
	MDB_env *menv;
	MDB_txn *mtxn;
	MDB_dbi mdbi;
#endif
};

/* Report a failed engine call and exit 1. op is the operation index in
 * the workload, UINT64_MAX when the failure is not tied to one. */
static void fail(struct db *db, uint64_t op, int rc)
{
	int err = errno;
	char opbuf[48] = "";

	if (op != UINT64_MAX)
		snprintf(opbuf, sizeof opbuf, " op %" PRIu64, op);
	if (db->e == NULL)
		die("%s%s: %s: error %d", cur_workload, opbuf, db->what, rc);
	if (strcmp(db->e->name, "mapkv") == 0 && rc == MAPKV_IO)
		die("%s %s%s: %s: %s (%s)", db->e->name, cur_workload, opbuf,
		    db->what, db->e->strerror(rc), strerror(err));
	die("%s %s%s: %s: %s", db->e->name, cur_workload, opbuf, db->what,
	    db->e->strerror(rc));
}

static void scan_check(struct scan *sc, const void *k, size_t ks, const void *v,
		       size_t vs)
{
	if (sc->count >= opt.n || ks != opt.ksize ||
	    memcmp(k, kl_seq.keys + sc->count * opt.ksize, ks) != 0 ||
	    vs != opt.vsize || memcmp(v, value_of(sc->count), vs) != 0) {
		if (!sc->bad++)
			sc->first_bad = sc->count;
	}
}

/* mapkv: the main tree, handle 0, of one file. */

static int kv_open(struct db *db)
{
	int rc = mapkv_open(&db->kenv, db->file, NULL);

	if (rc)
		db->what = "mapkv_open";
	return rc;
}

static void kv_close(struct db *db)
{
	mapkv_close(db->kenv);
	db->kenv = NULL;
}

static int kv_wbegin(struct db *db)
{
	int rc = mapkv_txn_begin(db->kenv, 0, &db->ktxn);

	if (rc)
		db->what = "mapkv_txn_begin";
	return rc;
}

static int kv_put(struct db *db, const void *k, size_t ks, const void *v,
		  size_t vs)
{
	mapkv_val key = {k, ks}, val = {v, vs};
	int rc = mapkv_put(db->ktxn, 0, &key, &val, 0);

	if (rc)
		db->what = "mapkv_put";
	return rc;
}

static int kv_commit(struct db *db)
{
	int rc = mapkv_txn_commit(db->ktxn);

	db->ktxn = NULL;
	if (rc)
		db->what = "mapkv_txn_commit";
	return rc;
}

static int kv_rbegin(struct db *db)
{
	int rc = mapkv_txn_begin(db->kenv, MAPKV_RDONLY, &db->ktxn);

	if (rc)
		db->what = "mapkv_txn_begin(MAPKV_RDONLY)";
	return rc;
}

static int kv_get(struct db *db, const void *k, size_t ks, const void **v,
		  size_t *vs)
{
	mapkv_val key = {k, ks}, val;
	int rc = mapkv_get(db->ktxn, 0, &key, &val);

	if (rc) {
		db->what = "mapkv_get";
		return rc;
	}
	*v = val.data;
	*vs = val.size;
	return 0;
}

static void kv_rend(struct db *db)
{
	mapkv_txn_abort(db->ktxn);
	db->ktxn = NULL;
}

static int kv_scan(struct db *db, struct scan *sc)
{
	mapkv_cursor *cur;
	mapkv_val k, v;
	int rc = mapkv_cursor_open(db->ktxn, 0, &cur);

	if (rc) {
		db->what = "mapkv_cursor_open";
		return rc;
	}
	while ((rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT)) == 0) {
		if (sc->verify)
			scan_check(sc, k.data, k.size, v.data, v.size);
		sc->count++;
	}
	mapkv_cursor_close(cur);
	if (rc == MAPKV_NOTFOUND)
		return 0;
	db->what = "mapkv_cursor_get(MAPKV_NEXT)";
	return rc;
}

static const struct engine eng_mapkv = {
	"mapkv",  "bench-mapkv", "data.mapkv", MAPKV_NOTFOUND, kv_open,
	kv_close, kv_wbegin,     kv_put,       kv_commit,      kv_rbegin,
	kv_get,   kv_rend,       kv_scan,      mapkv_strerror,
};

#ifdef HAVE_LMDB
/* LMDB: the unnamed database of an environment directory, default flags
 * (durable commits, read-only map, read-ahead on). */

static int lm_open(struct db *db)
{
	MDB_txn *txn;
	uint64_t raw = opt.n * (uint64_t)(opt.ksize + opt.vsize);
	uint64_t mapsize = (uint64_t)4 << 30;
	int rc;

	if (raw > mapsize / 4)
		mapsize = raw * 4;
	if ((rc = mdb_env_create(&db->menv)) != 0) {
		db->what = "mdb_env_create";
		return rc;
	}
	if ((rc = mdb_env_set_mapsize(db->menv, (size_t)mapsize)) != 0) {
		db->what = "mdb_env_set_mapsize";
		goto fail;
	}
	if ((rc = mdb_env_open(db->menv, db->dir, 0, 0644)) != 0) {
		db->what = "mdb_env_open";
		goto fail;
	}
	if (opt.ksize > (size_t)mdb_env_get_maxkeysize(db->menv)) {
		db->what = "key size above mdb_env_get_maxkeysize()";
		rc = MDB_BAD_VALSIZE;
		goto fail;
	}
	if ((rc = mdb_txn_begin(db->menv, NULL, 0, &txn)) != 0) {
		db->what = "mdb_txn_begin";
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, NULL, 0, &db->mdbi)) != 0) {
		db->what = "mdb_dbi_open";
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		db->what = "mdb_txn_commit";
		goto fail;
	}
	return 0;
fail:
	mdb_env_close(db->menv);
	db->menv = NULL;
	return rc;
}

static void lm_close(struct db *db)
{
	mdb_env_close(db->menv);
	db->menv = NULL;
}

static int lm_wbegin(struct db *db)
{
	int rc = mdb_txn_begin(db->menv, NULL, 0, &db->mtxn);

	if (rc)
		db->what = "mdb_txn_begin";
	return rc;
}

static int lm_put(struct db *db, const void *k, size_t ks, const void *v,
		  size_t vs)
{
	MDB_val key = {ks, (void *)k}, val = {vs, (void *)v};
	int rc = mdb_put(db->mtxn, db->mdbi, &key, &val, 0);

	if (rc)
		db->what = "mdb_put";
	return rc;
}

static int lm_commit(struct db *db)
{
	int rc = mdb_txn_commit(db->mtxn);

	db->mtxn = NULL;
	if (rc)
		db->what = "mdb_txn_commit";
	return rc;
}

static int lm_rbegin(struct db *db)
{
	int rc = mdb_txn_begin(db->menv, NULL, MDB_RDONLY, &db->mtxn);

	if (rc)
		db->what = "mdb_txn_begin(MDB_RDONLY)";
	return rc;
}

static int lm_get(struct db *db, const void *k, size_t ks, const void **v,
		  size_t *vs)
{
	MDB_val key = {ks, (void *)k}, val;
	int rc = mdb_get(db->mtxn, db->mdbi, &key, &val);

	if (rc) {
		db->what = "mdb_get";
		return rc;
	}
	*v = val.mv_data;
	*vs = val.mv_size;
	return 0;
}

static void lm_rend(struct db *db)
{
	mdb_txn_abort(db->mtxn);
	db->mtxn = NULL;
}

static int lm_scan(struct db *db, struct scan *sc)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(db->mtxn, db->mdbi, &cur);

	if (rc) {
		db->what = "mdb_cursor_open";
		return rc;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (sc->verify)
			scan_check(sc, k.mv_data, k.mv_size, v.mv_data,
				   v.mv_size);
		sc->count++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	db->what = "mdb_cursor_get(MDB_NEXT)";
	return rc;
}

static const char *lm_strerror(int rc)
{
	return mdb_strerror(rc);
}

static const struct engine eng_lmdb = {
	"LMDB",   "bench-lmdb", "data.mdb", MDB_NOTFOUND, lm_open,
	lm_close, lm_wbegin,    lm_put,     lm_commit,    lm_rbegin,
	lm_get,   lm_rend,      lm_scan,    lm_strerror,
};
#endif /* HAVE_LMDB */

static const struct engine *const engines[E_COUNT] = {
	&eng_mapkv,
#ifdef HAVE_LMDB
	&eng_lmdb,
#else
	NULL,
#endif
};

/* ---------------------------------------------------------------------- */
/* Workloads                                                              */

/* A fresh, empty database of engine e. */
static void db_fresh(struct db *db, const struct engine *e)
{
	int rc;

	memset(db, 0, sizeof *db);
	db->e = e;
	path_join(db->dir, workdir, e->subdir);
	path_join(db->file, db->dir, e->file);
	rm_tree(db->dir);
	if (mkdir(db->dir, 0755) != 0)
		die("cannot create %s: %s", db->dir, strerror(errno));
	if ((rc = e->open(db)) != 0)
		fail(db, UINT64_MAX, rc);
}

static void db_remove(struct db *db)
{
	db->e->close(db);
	if (!opt.keep)
		rm_tree(db->dir);
}

/* Put the keys of kl, batch puts per durable commit. Returns seconds. */
static double run_fill(struct db *db, const struct keylist *kl, uint64_t batch)
{
	const struct engine *e = db->e;
	const size_t ks = opt.ksize, vs = opt.vsize;
	uint64_t i = 0, n = kl->n;
	double t0 = now_sec();
	int rc;

	while (i < n) {
		uint64_t end = n - i > batch ? i + batch : n;

		if ((rc = e->wbegin(db)) != 0)
			fail(db, i, rc);
		for (; i < end; i++) {
			uint64_t num = kl->idx ? kl->idx[i] : i;

			rc = e->put(db, kl->keys + i * ks, ks, value_of(num),
				    vs);
			if (rc)
				fail(db, i, rc);
		}
		if ((rc = e->commit(db)) != 0)
			fail(db, i - 1, rc);
	}
	return now_sec() - t0;
}

static double run_readrandom(struct db *db)
{
	const struct engine *e = db->e;
	const struct keylist *kl = &kl_readrandom;
	const size_t ks = opt.ksize;
	uint64_t i = 0, n = kl->n, misses = 0, bad = 0;
	uint64_t first_miss = 0, first_bad = 0;
	double t0 = now_sec(), t;
	int rc;

	while (i < n) {
		uint64_t end = n - i > opt.batch ? i + opt.batch : n;

		if ((rc = e->rbegin(db)) != 0)
			fail(db, i, rc);
		for (; i < end; i++) {
			const void *v;
			size_t vs;

			rc = e->get(db, kl->keys + i * ks, ks, &v, &vs);
			if (rc == e->notfound) {
				if (!misses++)
					first_miss = i;
				continue;
			}
			if (rc)
				fail(db, i, rc);
			if (vs != opt.vsize ||
			    (opt.verify &&
			     memcmp(v, value_of(kl->idx[i]), vs) != 0)) {
				if (!bad++)
					first_bad = i;
			}
		}
		e->rend(db);
	}
	t = now_sec() - t0;
	if (misses)
		die("%s readrandom: %" PRIu64 " of %" PRIu64
		    " gets missed their key (first: op %" PRIu64 ", key %.*s)",
		    e->name, misses, n, first_miss, (int)ks,
		    kl->keys + first_miss * ks);
	if (bad)
		die("%s readrandom: %" PRIu64 " of %" PRIu64
		    " gets returned a wrong value (first: op %" PRIu64
		    ", key %.*s)",
		    e->name, bad, n, first_bad, (int)ks,
		    kl->keys + first_bad * ks);
	return t;
}

static double run_readseq(struct db *db)
{
	const struct engine *e = db->e;
	struct scan sc = {0, opt.verify, 0, 0};
	double t0 = now_sec(), t;
	int rc;

	if ((rc = e->rbegin(db)) != 0)
		fail(db, UINT64_MAX, rc);
	if ((rc = e->scan(db, &sc)) != 0)
		fail(db, sc.count, rc);
	e->rend(db);
	t = now_sec() - t0;
	if (sc.count != opt.n)
		die("%s readseq: the scan saw %" PRIu64
		    " keys, expected %" PRIu64,
		    e->name, sc.count, opt.n);
	if (sc.bad)
		die("%s readseq: %" PRIu64 " entries with a wrong key or value "
		    "(first: entry %" PRIu64 ")",
		    e->name, sc.bad, sc.first_bad);
	return t;
}

/* One pwrite of 4 KiB + fdatasync per op on a preallocated file: the
 * price of one sync barrier on this file system, to read syncput by. */
static double run_syncbase(uint64_t ops)
{
	char path[PATH_MAX], buf[4096];
	int fd;
	double t0, t;

	path_join(path, workdir, "bench-sync.tmp");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("syncbase: cannot create %s: %s", path, strerror(errno));
	memcpy(buf, valpool, sizeof buf);
	for (int i = 0; i < 256; i++)
		if (pwrite(fd, buf, sizeof buf, (off_t)i * 4096) != 4096)
			die("syncbase: write %s: %s", path, strerror(errno));
	if (fsync(fd) != 0)
		die("syncbase: fsync %s: %s", path, strerror(errno));
	t0 = now_sec();
	for (uint64_t i = 0; i < ops; i++) {
		buf[0] = (char)i;
		if (pwrite(fd, buf, sizeof buf, (off_t)(i % 256) * 4096) !=
		    4096)
			die("syncbase: write %s: %s", path, strerror(errno));
		if (fdatasync(fd) != 0)
			die("syncbase: fdatasync %s: %s", path,
			    strerror(errno));
	}
	t = now_sec() - t0;
	close(fd);
	unlink(path);
	return t;
}

static int selected(enum workload w)
{
	return (opt.workloads >> w) & 1;
}

static void record(enum workload w, enum engine_id ei, uint64_t ops, double sec,
		   const struct db *db, int with_size)
{
	double rate = sec > 0 ? (double)ops / sec : 0;
	char b1[32];

	if (rate > best[w][ei])
		best[w][ei] = rate;
	if (with_size)
		fsize[w][ei] = file_size(db->file);
	fprintf(stderr, "  %-10s %-5s %14s ops/s  %8.3f s", wl_name[w],
		engines[ei]->name,
		fmt_count(b1, sizeof b1, (uint64_t)(rate + .5)), sec);
	if (w == W_SYNCPUT)
		fprintf(stderr, "  %.1f us/commit", sec * 1e6 / (double)ops);
	if (with_size)
		fprintf(stderr, "  file %.1f MB", (double)fsize[w][ei] / 1e6);
	fputc('\n', stderr);
}

static void run_all(void)
{
	struct db db;
	int rnd = selected(W_FILLRANDOM) || selected(W_READRANDOM) ||
		  selected(W_READSEQ);

	for (unsigned r = 0; r < opt.repeats; r++) {
		/* mapkv first in odd-numbered runs, LMDB first in the others,
		 * so that neither always runs on a machine the other warmed
		 * (or loaded). */
		int order[E_COUNT] = {E_MAPKV, E_LMDB};

		if (r % 2) {
			order[0] = E_LMDB;
			order[1] = E_MAPKV;
		}
		fprintf(stderr, "run %u of %u\n", r + 1, opt.repeats);
		if (selected(W_FILLSEQ)) {
			for (int k = 0; k < E_COUNT; k++) {
				int ei = order[k];

				if (!(opt.engines >> ei & 1))
					continue;
				cur_workload = "fillseq";
				db_fresh(&db, engines[ei]);
				double t = run_fill(&db, &kl_seq, opt.batch);
				record(W_FILLSEQ, ei, opt.n, t, &db, 1);
				db_remove(&db);
			}
		}
		if (rnd) {
			for (int k = 0; k < E_COUNT; k++) {
				int ei = order[k];

				if (!(opt.engines >> ei & 1))
					continue;
				/* readrandom and readseq run on the fillrandom
				 * database, filled untimed when fillrandom is
				 * not selected. */
				cur_workload = "fillrandom";
				db_fresh(&db, engines[ei]);
				double t = run_fill(&db, &kl_fillrandom,
						    opt.batch);
				if (selected(W_FILLRANDOM))
					record(W_FILLRANDOM, ei, opt.n, t, &db,
					       1);
				if (selected(W_READRANDOM)) {
					cur_workload = "readrandom";
					t = run_readrandom(&db);
					record(W_READRANDOM, ei, opt.n, t, &db,
					       0);
				}
				if (selected(W_READSEQ)) {
					cur_workload = "readseq";
					t = run_readseq(&db);
					record(W_READSEQ, ei, opt.n, t, &db, 0);
				}
				db_remove(&db);
			}
		}
		if (selected(W_SYNCPUT)) {
			uint64_t ops = opt.syncops < 2000 ? opt.syncops : 2000;
			double t;

			cur_workload = "syncbase";
			t = run_syncbase(ops);
			if ((double)ops / t > syncbase_best)
				syncbase_best = (double)ops / t;
			fprintf(stderr,
				"  %-10s       %14.0f syncs/s %8.3f s  "
				"%.1f us/sync (4 KiB pwrite + fdatasync)\n",
				"sync", (double)ops / t, t,
				t * 1e6 / (double)ops);
			for (int k = 0; k < E_COUNT; k++) {
				int ei = order[k];

				if (!(opt.engines >> ei & 1))
					continue;
				cur_workload = "syncput";
				db_fresh(&db, engines[ei]);
				t = run_fill(&db, &kl_syncput, 1);
				record(W_SYNCPUT, ei, opt.syncops, t, &db, 1);
				db_remove(&db);
			}
		}
	}
	cur_workload = "report";
}

/* ---------------------------------------------------------------------- */
/* Report                                                                 */

/* How the engines took turns, for the report. */
static const char *order_text(void)
{
	if ((opt.engines & 3) != 3)
		return "";
	return opt.repeats == 1 ? ", mapkv first"
				: ", engines interleaved: mapkv first in "
				  "runs 1, 3..., LMDB first in runs 2, 4...";
}

enum row_kind { R_OPS, R_USEC, R_MB };

struct row {
	enum workload w;
	enum row_kind kind;
	const char *label;
	char note[96];
};

/* Display width of UTF-8 text (the table holds a "µ"). */
static int width_of(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static void put_padded(const char *s, int width, int right)
{
	int pad = width - width_of(s);

	if (right)
		printf("%*s%s", pad > 0 ? pad : 0, "", s);
	else
		printf("%s%*s", s, pad > 0 ? pad : 0, "");
}

/* The value of a row for one engine, or 0 when it did not run. */
static double row_value(const struct row *r, int ei)
{
	double ops = best[r->w][ei];

	switch (r->kind) {
	case R_OPS:
		return ops;
	case R_USEC:
		return ops > 0 ? 1e6 / ops : 0;
	case R_MB:
		return (double)fsize[r->w][ei] / 1e6;
	}
	return 0;
}

static const char *fmt_value(char *buf, size_t len, const struct row *r, int ei)
{
	double x = row_value(r, ei);

	if (!(opt.engines >> ei & 1) || x <= 0)
		snprintf(buf, len, "-");
	else if (r->kind == R_OPS)
		fmt_count(buf, len, (uint64_t)(x + 0.5));
	else
		snprintf(buf, len, "%.1f", x);
	return buf;
}

static const char *fmt_ratio(char *buf, size_t len, const struct row *r)
{
	double a = row_value(r, E_MAPKV), b = row_value(r, E_LMDB);

	if ((opt.engines & 3) != 3 || a <= 0 || b <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2f", a / b);
	return buf;
}

static int build_rows(struct row *rows)
{
	char b[32];
	int n = 0;

	fmt_count(b, sizeof b, opt.batch);
	if (selected(W_FILLSEQ)) {
		rows[n] = (struct row){W_FILLSEQ, R_OPS, "fillseq, ops/s", ""};
		snprintf(rows[n++].note, sizeof rows->note,
			 "%s puts per durable txn", b);
	}
	if (selected(W_FILLRANDOM)) {
		rows[n] = (struct row){W_FILLRANDOM, R_OPS, "fillrandom, ops/s",
				       ""};
		snprintf(rows[n++].note, sizeof rows->note,
			 "%s puts per durable txn", b);
	}
	if (selected(W_READRANDOM)) {
		rows[n] = (struct row){W_READRANDOM, R_OPS, "readrandom, ops/s",
				       ""};
		snprintf(rows[n++].note, sizeof rows->note,
			 "1 read txn per %s gets", b);
	}
	if (selected(W_READSEQ)) {
		rows[n] = (struct row){W_READSEQ, R_OPS, "readseq, ops/s", ""};
		snprintf(rows[n++].note, sizeof rows->note,
			 "cursor scan in 1 read txn");
	}
	if (selected(W_SYNCPUT)) {
		fmt_count(b, sizeof b, opt.syncops);
		rows[n] = (struct row){W_SYNCPUT, R_OPS, "syncput, ops/s", ""};
		snprintf(rows[n++].note, sizeof rows->note,
			 "1 put per durable txn, %s puts", b);
		rows[n] = (struct row){W_SYNCPUT, R_USEC,
				       "syncput, µs per commit", ""};
		snprintf(rows[n++].note, sizeof rows->note,
			 "one sync here: %.1f µs (4 KiB pwrite + fdatasync)",
			 syncbase_best > 0 ? 1e6 / syncbase_best : 0.0);
	}
	if (selected(W_FILLSEQ))
		rows[n++] = (struct row){W_FILLSEQ, R_MB,
					 "file after fillseq, MB", ""};
	if (selected(W_FILLRANDOM)) {
		rows[n] = (struct row){W_FILLRANDOM, R_MB,
				       "file after fillrandom, MB", ""};
		snprintf(rows[n++].note, sizeof rows->note, "raw data %.1f MB",
			 (double)opt.n * (double)(opt.ksize + opt.vsize) / 1e6);
	}
	return n;
}

static void read_proc_line(const char *file, const char *field, char *out,
			   size_t len)
{
	FILE *f = fopen(file, "r");
	char line[512];
	size_t fl = strlen(field);

	out[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char *p = line + fl;

		if (strncmp(line, field, fl) != 0 ||
		    (*p != ' ' && *p != '\t' && *p != ':'))
			continue;
		p = strchr(line, ':');
		if (!p)
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		p[strcspn(p, "\n")] = '\0';
		snprintf(out, len, "%s", p);
		break;
	}
	fclose(f);
}

static const char *fs_name(const char *path)
{
	static char buf[32];
	struct statfs sf;

	if (statfs(path, &sf) != 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53:
		return "ext2/3/4";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x01021994:
		return "tmpfs";
	case 0x858458f6:
		return "ramfs";
	case 0x794c7630:
		return "overlayfs";
	case 0x2fc12fc1:
		return "zfs";
	case 0xF2F52010:
		return "f2fs";
	case 0x6969:
		return "nfs";
	}
	snprintf(buf, sizeof buf, "0x%lx", (unsigned long)sf.f_type);
	return buf;
}

static int fs_is_ram(const char *path)
{
	const char *n = fs_name(path);

	return strcmp(n, "tmpfs") == 0 || strcmp(n, "ramfs") == 0;
}

static void report(void)
{
	struct row rows[16];
	int nrows = build_rows(rows);
	char b1[32], b2[32], b3[32], nk[32];
	struct utsname u;
	char cpu[256], mem[64], uname_s[600] = "unknown";
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);

	if (uname(&u) == 0)
		snprintf(uname_s, sizeof uname_s, "%s %s %s %s %s", u.sysname,
			 u.nodename, u.release, u.version, u.machine);
	read_proc_line("/proc/cpuinfo", "model name", cpu, sizeof cpu);
	if (!cpu[0])
		read_proc_line("/proc/cpuinfo", "Hardware", cpu, sizeof cpu);
	read_proc_line("/proc/meminfo", "MemTotal", mem, sizeof mem);
	fmt_count(nk, sizeof nk, opt.n);

	/* Human-readable table. */
	printf("\nmapkv-bench: %s keys of %zu B, values of %zu B, best of %u "
	       "run%s%s\n",
	       nk, opt.ksize, opt.vsize, opt.repeats,
	       opt.repeats == 1 ? "" : "s", order_text());
	printf("readrandom: one read txn per %" PRIu64
	       " gets, keys uniform with replacement\n",
	       opt.batch);
	if (syncbase_best > 0)
		printf("one sync on this file system: %.0f/s, %.1f µs "
		       "(4 KiB pwrite + fdatasync)\n",
		       syncbase_best, 1e6 / syncbase_best);
	printf("\n");
	put_padded("", 27, 0);
	put_padded("mapkv", 13, 1);
	put_padded("LMDB", 13, 1);
	put_padded("mapkv/LMDB", 12, 1);
	printf("  notes\n");
	for (int i = 0; i < nrows; i++) {
		put_padded(rows[i].label, 27, 0);
		put_padded(fmt_value(b1, sizeof b1, &rows[i], E_MAPKV), 13, 1);
		put_padded(fmt_value(b2, sizeof b2, &rows[i], E_LMDB), 13, 1);
		put_padded(fmt_ratio(b3, sizeof b3, &rows[i]), 12, 1);
		printf("%s%s\n", rows[i].note[0] ? "  " : "", rows[i].note);
	}
	printf("(mapkv/LMDB above 1 is better for ops/s, below 1 for µs and "
	       "MB)\n");

	if (!opt.markdown)
		return;

	/* Markdown, for doc/bench.md. */
	{
		char date[64];
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
		printf("\n### mapkv-bench, %s\n\n", date);
	}
	printf("- command: `%s`\n", cmdline);
	printf("- machine: `%s`; %ld CPUs online", uname_s, nproc);
	if (cpu[0])
		printf("; CPU: %s", cpu);
	if (mem[0])
		printf("; memory: %.1f GiB", strtod(mem, NULL) / 1048576.0);
	printf("\n- work directory on %s\n", workdir_fs);
	printf("- mapkv %s", MAPKV_VERSION_STRING);
#ifdef HAVE_LMDB
	printf("; %s", MDB_VERSION_STRING);
#endif
	printf("\n- %s keys of %zu B, values of %zu B (raw data %.1f MB); "
	       "best of %u run%s%s\n",
	       nk, opt.ksize, opt.vsize,
	       (double)opt.n * (double)(opt.ksize + opt.vsize) / 1e6,
	       opt.repeats, opt.repeats == 1 ? "" : "s", order_text());
	printf("- durable commits: mapkv default options (sync on commit); "
	       "LMDB default flags (no MDB_NOSYNC, no MDB_WRITEMAP)\n");
	printf("- readrandom: one read txn per %" PRIu64
	       " gets, keys uniform with replacement; file size is st_size "
	       "of the data file\n",
	       opt.batch);
	if (syncbase_best > 0)
		printf("- one sync on this file system: %.0f/s, %.1f µs "
		       "(4 KiB pwrite + fdatasync)\n",
		       syncbase_best, 1e6 / syncbase_best);
	printf("\n| | mapkv | LMDB | mapkv/LMDB | notes |\n");
	printf("|---|---:|---:|---:|---|\n");
	for (int i = 0; i < nrows; i++)
		printf("| %s | %s | %s | %s | %s |\n", rows[i].label,
		       fmt_value(b1, sizeof b1, &rows[i], E_MAPKV),
		       fmt_value(b2, sizeof b2, &rows[i], E_LMDB),
		       fmt_ratio(b3, sizeof b3, &rows[i]), rows[i].note);
	printf("\nmapkv/LMDB above 1 is better for ops/s, below 1 for µs and "
	       "MB.\n");
}

/* ---------------------------------------------------------------------- */
/* Setup                                                                  */

static void cleanup(void)
{
	char p[PATH_MAX];

	if (!workdir[0])
		return;
	if (opt.keep) {
		fprintf(stderr, "mapkv-bench: databases kept in %s\n", workdir);
		return;
	}
	for (int ei = 0; ei < E_COUNT; ei++) {
		if (!engines[ei])
			continue;
		path_join(p, workdir, engines[ei]->subdir);
		rm_tree(p);
	}
	path_join(p, workdir, "bench-sync.tmp");
	unlink(p);
	if (workdir_made)
		rmdir(workdir);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mapkv-bench [options]\n"
		"  -n N     keys (default 1000000; k, M, G suffixes)\n"
		"  -k K     key size in bytes (default 16)\n"
		"  -v V     value size in bytes (default 100)\n"
		"  -b B     puts per durable commit in the fills, gets per "
		"read txn in\n"
		"           readrandom (default 1000)\n"
		"  -s S     syncput operations (default 10000)\n"
		"  -w LIST  workloads, comma separated (default all): "
		"fillseq,\n"
		"           fillrandom,readrandom,readseq,syncput\n"
		"  -e E     engines: mapkv, lmdb or both (default both when "
		"built\n"
		"           with -DHAVE_LMDB, else mapkv)\n"
		"  -r R     runs of the whole set (default 1); the engines "
		"take turns\n"
		"           going first and the best of the runs is reported\n"
		"  -d DIR   work directory (default: a new directory under "
		"$TMPDIR or\n"
		"           /tmp); databases are removed between workloads\n"
		"  -m       also print a markdown report (machine, command "
		"line, table)\n"
		"  -V       verify value bytes in readrandom, keys and values "
		"in readseq\n"
		"  -K       keep the database files (last workload, or on "
		"error)\n"
		"  -h       this help\n");
}

static void parse_workloads(const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;

	if (!copy)
		die("out of memory");
	opt.workloads = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int w;

		if (strcmp(tok, "all") == 0) {
			opt.workloads = (1u << W_COUNT) - 1;
			continue;
		}
		for (w = 0; w < W_COUNT; w++)
			if (strcmp(tok, wl_name[w]) == 0)
				break;
		if (w == W_COUNT)
			die("unknown workload '%s' (-h lists them)", tok);
		opt.workloads |= 1u << w;
	}
	free(copy);
	if (!opt.workloads)
		die("-w: no workload given");
}

static void save_cmdline(int argc, char **argv)
{
	size_t o = 0;

	for (int i = 0; i < argc && o + 4 < sizeof cmdline; i++) {
		const char *a = argv[i];
		int quote = !*a || a[strspn(a, "abcdefghijklmnopqrstuvwxyz"
					       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					       "0123456789_./=,:+-")] != '\0';
		int n = snprintf(cmdline + o, sizeof cmdline - o,
				 quote ? "%s'%s'" : "%s%s", i ? " " : "", a);

		if (n < 0 || (size_t)n >= sizeof cmdline - o)
			break;
		o += (size_t)n;
	}
}

static uint64_t arg_count(int c, const char *s, uint64_t min)
{
	uint64_t v;

	if (parse_count(s, &v) != 0 || v < min)
		die("-%c: bad number '%s'", c, s);
	return v;
}

int main(int argc, char **argv)
{
	int c;
	uint64_t x, digits = 1;

	opt.n = 1000000;
	opt.ksize = 16;
	opt.vsize = 100;
	opt.batch = 1000;
	opt.syncops = 10000;
	opt.repeats = 1;
	opt.workloads = (1u << W_COUNT) - 1;
#ifdef HAVE_LMDB
	opt.engines = 1u << E_MAPKV | 1u << E_LMDB;
#else
	opt.engines = 1u << E_MAPKV;
#endif
	save_cmdline(argc, argv);

	while ((c = getopt(argc, argv, "n:k:v:b:s:w:e:r:d:mVKh")) != -1) {
		switch (c) {
		case 'n':
			opt.n = arg_count(c, optarg, 1);
			break;
		case 'k':
			opt.ksize = (size_t)arg_count(c, optarg, 1);
			break;
		case 'v':
			x = arg_count(c, optarg, 0);
			if (x > 64u << 20)
				die("-v: values above 64 MiB are not "
				    "supported here");
			opt.vsize = (size_t)x;
			break;
		case 'b':
			opt.batch = arg_count(c, optarg, 1);
			break;
		case 's':
			opt.syncops = arg_count(c, optarg, 1);
			break;
		case 'w':
			parse_workloads(optarg);
			break;
		case 'e':
			if (strcmp(optarg, "mapkv") == 0)
				opt.engines = 1u << E_MAPKV;
			else if (strcmp(optarg, "lmdb") == 0)
				opt.engines = 1u << E_LMDB;
			else if (strcmp(optarg, "both") == 0)
				opt.engines = 1u << E_MAPKV | 1u << E_LMDB;
			else
				die("-e: expected mapkv, lmdb or both");
			break;
		case 'r':
			x = arg_count(c, optarg, 1);
			if (x > 1000)
				die("-r: at most 1000 repeats");
			opt.repeats = (unsigned)x;
			break;
		case 'd':
			opt.dir = optarg;
			break;
		case 'm':
			opt.markdown = 1;
			break;
		case 'V':
			opt.verify = 1;
			break;
		case 'K':
			opt.keep = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
#ifndef HAVE_LMDB
	if (opt.engines & (1u << E_LMDB))
		die("built without LMDB: rebuild with -DHAVE_LMDB -llmdb");
#endif
	if (opt.ksize > MAPKV_MAX_KEY_SIZE)
		die("-k: keys are at most %d bytes", MAPKV_MAX_KEY_SIZE);
	for (x = opt.n - 1; x >= 10; x /= 10)
		digits++;
	if (opt.ksize < digits)
		die("-k: %" PRIu64 " keys need keys of at least %" PRIu64
		    " bytes",
		    opt.n, digits);
	if (opt.n > SIZE_MAX / (opt.ksize > 8 ? opt.ksize : 8))
		die("-n: too many keys for this machine");

	if (opt.dir) {
		if (mkdir(opt.dir, 0755) == 0)
			workdir_made = 1;
		else if (errno != EEXIST)
			die("cannot create %s: %s", opt.dir, strerror(errno));
		if (!realpath(opt.dir, workdir))
			die("%s: %s", opt.dir, strerror(errno));
	} else {
		const char *tmp = getenv("TMPDIR");

		if (!tmp || !*tmp)
			tmp = "/tmp";
		if ((size_t)snprintf(workdir, sizeof workdir,
				     "%s/mapkv-bench.XXXXXX",
				     tmp) >= sizeof workdir)
			die("TMPDIR too long");
		if (!mkdtemp(workdir)) {
			workdir[0] = '\0';
			die("mkdtemp under %s: %s", tmp, strerror(errno));
		}
		workdir_made = 1;
	}
	snprintf(workdir_fs, sizeof workdir_fs, "%s", fs_name(workdir));
	fprintf(stderr, "mapkv-bench: work directory %s (%s)\n", workdir,
		workdir_fs);
	if (fs_is_ram(workdir))
		fprintf(stderr,
			"mapkv-bench: WARNING: %s is in memory, syncs cost "
			"nothing there: use -d DIR on a disk\n",
			workdir);

	build_data();
	run_all();
	cleanup();
	report();
	return 0;
}
