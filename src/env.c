/*
 * env.c: opening, creating and closing an environment; reading the meta
 * pages.
 *
 * Creating a file is crash-safe from the first byte: a file whose every
 * byte is zero (a 0-byte file, or one whose first meta pages never reached
 * the disk) is a "blank" file and opens as an empty database, initialised
 * again by the first writable open. Only a file with bytes of its own and
 * no valid meta page is refused (MAPKV_CORRUPT / MAPKV_VERSION_MISMATCH).
 */
#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "txn.h"

#define BLANK_LIMIT (2u * MK_MAX_PAGE)

static uint64_t default_max_size(void)
{
	return sizeof(void *) >= 8 ? (64ull << 30) : (1ull << 30);
}

/* Are the pages a one-sync commit listed in its meta page (image @img)
 * what the commit wrote? They are re-read from the file. */
static int verify_runs(mapkv_env *env, const uint8_t *img, const mk_meta *m)
{
	unsigned ps = m->page_size;
	if (m->nruns == 0)
		return 0;
	uint8_t *pbuf = env->vfs->alloc(env->vfs, ps);
	if (!pbuf)
		return MAPKV_NOMEM;
	uint32_t c = 0;
	int rc = 0;
	for (uint32_t i = 0; i < m->nruns && !rc; i++) {
		pgno_t p;
		uint32_t n;
		pg_meta_run(img, i, &p, &n);
		for (uint32_t j = 0; j < n && !rc; j++) {
			size_t got;
			rc = env->vfs->read(env->file, pbuf, ps,
					    (uint64_t)(p + j) * ps, &got);
			if (!rc && got < ps)
				rc = MAPKV_CORRUPT;
			c = ck_crc32c(c, pbuf, ps);
		}
	}
	env->vfs->free(env->vfs, pbuf);
	if (rc)
		return rc;
	return c == m->data_crc ? 0 : MAPKV_CORRUPT;
}

/* Choose the meta to open at from the first bytes of the file. @buf holds
 * the first @len bytes (both meta pages). Page 1's position depends on the
 * page size, which page 0 may be too damaged to tell, so each possible
 * size is tried. The newest valid meta whose commit verifies wins (a meta
 * with id @trusted, published by this process, needs no verification);
 * *bad gets the slot of the other meta page when that one is invalid or
 * failed verification (a torn or lost commit: see replace_meta), or -1. */
static int choose_meta(mapkv_env *env, const uint8_t *buf, size_t len,
		       uint64_t file_size, uint64_t trusted, mk_meta *out,
		       int *bad)
{
	mk_meta cand[2];
	size_t coff[2];
	int nc = 0, mismatch = 0, rejected = -1;
	*bad = -1;
	for (unsigned ps = 0; ps <= MK_MAX_PAGE;
	     ps = ps ? ps * 2 : MK_MIN_PAGE) {
		mk_meta m;
		if (ps + MK_META_RUNS > len)
			break;
		size_t avail = len - ps;
		int rc = pg_meta_decode(buf + ps, avail, &m);
		if (rc == MAPKV_VERSION_MISMATCH)
			mismatch = 1;
		if (rc)
			continue;
		/* Page 1 is valid only where its own page size puts it. */
		if (ps != 0 && ps != m.page_size)
			continue;
		/* A meta that points past the end of the file belongs to a
		 * truncated file; the empty database of a creation (id 0)
		 * points to no page and is fine in a short file. */
		if (m.txnid == 0 &&
		    (m.trees[0].root || m.trees[1].root || m.trees[2].root))
			continue;
		if (m.txnid != 0 && m.last_pgno * m.page_size > file_size)
			continue;
		if (nc == 1 && m.page_size != cand[0].page_size)
			continue;
		if (nc < 2) {
			cand[nc] = m;
			coff[nc++] = ps;
		}
	}
	if (nc == 2 && cand[1].txnid > cand[0].txnid) {
		mk_meta t = cand[0];
		cand[0] = cand[1];
		cand[1] = t;
		size_t o = coff[0];
		coff[0] = coff[1];
		coff[1] = o;
	}
	for (int i = 0; i < nc; i++) {
		if (cand[i].txnid != trusted) {
			int rc = verify_runs(env, buf + coff[i], &cand[i]);
			if (rc == MAPKV_CORRUPT) {
				rejected = coff[i] ? 1 : 0;
				continue;
			}
			if (rc)
				return rc;
		}
		*out = cand[i];
		int slot = coff[i] ? 1 : 0;
		/* The other slot: rejected above, or not among the valid. */
		if (rejected == 1 - slot || nc == 1)
			*bad = 1 - slot;
		return 0;
	}
	return mismatch ? MAPKV_VERSION_MISMATCH : MAPKV_CORRUPT;
}

/* Is the file one that mapkv_open began to create but never finished?
 * Such a file is short, and holds nothing but zeros and, where a meta
 * page would be, a prefix of the empty database's meta page (a write torn
 * anywhere, not only at sector boundaries). The page size and checksum
 * bytes of that meta may hold anything; every other byte must match. */
static int is_blank(const uint8_t *buf, size_t got, uint64_t file_size)
{
	if (file_size > BLANK_LIMIT)
		return 0;
	uint8_t expect[MK_META_RUNS];
	mk_meta m;
	memset(&m, 0, sizeof(m));
	m.version = MK_FORMAT_VERSION;
	m.last_pgno = MK_NUM_META;
	uint8_t page[MK_MIN_PAGE];
	pg_meta_encode(page, sizeof(page), &m, NULL);
	memcpy(expect, page, sizeof(expect));
	for (size_t i = 0; i < got; i++) {
		if (!buf[i])
			continue;
		size_t off = i;
		if (i >= MK_MIN_PAGE) {
			/* Page 1 sits at one of the possible page sizes. */
			size_t ps = MK_MIN_PAGE;
			while (ps * 2 <= i)
				ps *= 2;
			off = i - ps;
		}
		if (off >= sizeof(expect))
			return 0;
		if ((off >= 8 && off < 12) || off >= MK_META_SIZE)
			continue;
		if (buf[i] != expect[off])
			return 0;
	}
	return 1;
}

static int read_head(mapkv_env *env, uint8_t *buf, size_t *got, uint64_t *size)
{
	int rc = env->vfs->size(env->file, size);
	if (rc)
		return rc;
	return env->vfs->read(env->file, buf, BLANK_LIMIT, 0, got);
}

/* Read the meta pages and choose the one to open at (*blank: the file is
 * blank, *m not set). @stable: no commit can happen meanwhile (this
 * process holds the writer lock, or is alone on the lock file), so a
 * commit whose listed pages fail verification is a torn or lost commit.
 * Otherwise (a read-only environment with a private reader table) a later
 * commit may have reused those pages since the head was read: the newest
 * commit's pages cannot be reused while it is the newest, so the head is
 * read again, and only a failure on a head that did not change counts. */
static int read_meta(mapkv_env *env, int stable, mk_meta *m, uint64_t *size,
		     int *blank, int *bad)
{
	uint8_t *head = env->wscratch; /* 4 pages >= 2 * BLANK_LIMIT */
	uint8_t *again = head + BLANK_LIMIT;
	for (int tries = 0;; tries++) {
		size_t got, got2;
		uint64_t size2;
		int rc = read_head(env, head, &got, size);
		if (rc)
			return rc;
		*blank = is_blank(head, got, *size);
		if (*blank)
			return 0;
		rc = choose_meta(env, head, got, *size, UINT64_MAX, m, bad);
		if (stable || tries >= 64 || (rc != MAPKV_CORRUPT && *bad < 0))
			return rc;
		int rc2 = read_head(env, again, &got2, &size2);
		if (rc2)
			return rc2;
		if (got2 == got && memcmp(head, again, got) == 0)
			return rc;
	}
}

int env_pid_alive(void *ctx, uint64_t pid)
{
	mapkv_env *env = ctx;
	return env->vfs->pid_alive(env->vfs, pid);
}

/* Make the map cover @pages pages (another process may have grown the
 * file). The base address never moves: the new range is mapped inside the
 * reservation. */
int env_map_to(mapkv_env *env, uint64_t pages)
{
	uint64_t need = pages * env->psize;
	if (need <= env->map_len)
		return 0;
	int rc = 0;
	/* The exclusive map lock (outside the mutex: its holder waits for
	 * every other thread to leave the map) when growth replaces it. */
	if (env->map_lock)
		os_rwlock_wrlock(env->map_lock);
	os_mutex_lock(env->map_mutex);
	uint64_t old = env->map_len;
	if (need > old) {
		uint64_t len = (need + env->gran - 1) / env->gran * env->gran;
		if (len > env->max_size)
			rc = MAPKV_FULL; /* opened with a smaller max_size */
		else if (!(rc = env->vfs->map_extend(env->file, env->map, old,
						     len)))
			env->map_len = len;
	}
	if (rc == MAPKV_MAP_LOST)
		atomic_store(&env->map_lost, 1);
	os_mutex_unlock(env->map_mutex);
	if (env->map_lock)
		os_rwlock_wrunlock(env->map_lock);
	return rc;
}

/* Re-read the meta pages from the file (a writer starts from the disk, as
 * another process may have committed) and map any growth. Called under
 * the writer lock: no commit runs meanwhile. */
int env_load_meta(mapkv_env *env, mk_meta *m)
{
	uint8_t *buf = env->wscratch; /* 4 pages >= MK_MAX_PAGE + 180 */
	uint64_t size;
	size_t got;
	int rc = env->vfs->size(env->file, &size);
	if (rc)
		return rc;
	size_t want = 2 * (size_t)env->psize;
	if ((rc = env->vfs->read(env->file, buf, want, 0, &got)))
		return rc;
	if (is_blank(buf, got, size)) {
		txn_read_meta(env, m); /* still the blank database */
		return 0;
	}
	int bad;
	mk_meta pub;
	txn_read_meta(env, &pub); /* published, so already verified */
	if ((rc = choose_meta(env, buf, got, size, pub.txnid, m, &bad)))
		return rc;
	if (m->page_size != env->psize)
		return MAPKV_CORRUPT;
	if (size > env->file_size) {
		/* Another process grew the file. */
		if ((rc = env_map_to(env, size / env->psize)))
			return rc;
		env->file_size = size;
	}
	return 0;
}

/* Is the lock file still the one this environment mapped, whole? Another
 * program may have truncated it (a store into the map would then be a
 * SIGBUS), removed it or renamed another file over it (a new opener would
 * build a second table: see MAPKV_LOCK_CONFLICT). Once it is not, the
 * environment refuses every transaction (MAPKV_LOCK_LOST). One fstat:
 * asked at write transactions' begin and by the reader-table calls, not
 * at read transactions' (doc/reliability.md). */
int env_check_lock(mapkv_env *env)
{
	if (atomic_load(&env->lk_lost))
		return MAPKV_LOCK_LOST;
	if (env->lk_private || !env->vfs->info)
		return 0;
	os_fileinfo fi;
	int rc = env->vfs->info(env->lkfile, &fi);
	if (rc)
		return rc;
	if (fi.size >= env->lk_len && fi.nlink > 0 &&
	    env->lk->magic == LK_MAGIC && env->lk->version == LK_VERSION &&
	    env->lk->nslots == env->readers.nslots)
		return 0;
	atomic_store(&env->lk_lost, 1);
	return MAPKV_LOCK_LOST;
}

static void empty_meta(mk_meta *m, unsigned psize)
{
	memset(m, 0, sizeof(*m));
	m->magic = MK_MAGIC;
	m->version = MK_FORMAT_VERSION;
	m->page_size = psize;
	m->last_pgno = MK_NUM_META;
}

/* Write the two meta pages of an empty database and make them durable. */
static int init_file(mapkv_env *env, const mk_meta *m)
{
	size_t ps = env->psize;
	uint8_t *buf = env->vfs->alloc(env->vfs, 2 * ps);
	if (!buf)
		return MAPKV_NOMEM;
	pg_meta_encode(buf, env->psize, m, NULL);
	memcpy(buf + ps, buf, ps);
	os_iov iov = {buf, 2 * ps};
	int rc = env->vfs->write(env->file, &iov, 1, 0);
	env->vfs->free(env->vfs, buf);
	if (!rc)
		rc = env->vfs->sync(env->file);
	return rc;
}

/* Overwrite the meta page in @slot (damaged, or holding a commit that
 * never fully reached the disk) with the meta @good opened at, under the
 * next id (the one that belongs in this slot): both slots are valid again,
 * with the same trees, and a lost commit cannot come back to life when a
 * later commit rewrites its pages. @good is updated to the new id. */
static int replace_meta(mapkv_env *env, unsigned slot, mk_meta *good)
{
	uint8_t *buf = env->vfs->alloc(env->vfs, env->psize);
	if (!buf)
		return MAPKV_NOMEM;
	mk_meta m = *good;
	m.nruns = m.data_crc = 0;
	/* The next id, which belongs in this slot. Not the one before: the
	 * trees' free-page records carry ids up to the good meta's, and the
	 * next commit must have an id above them all. */
	m.txnid++;
	/* A meta with an id above 0 that points past the end of the file is
	 * ignored (choose_meta), and the next commit would then take its id
	 * again: the two slots would hold one id, and the older trees could
	 * win at the next open. A file shorter than the pages the meta
	 * names (a creation's empty database, cut short) gets them first. */
	uint64_t size, need = m.last_pgno * (uint64_t)env->psize;
	int rc = env->vfs->size(env->file, &size);
	if (!rc && size < need)
		rc = env->vfs->resize(env->file, need);
	if (rc) {
		env->vfs->free(env->vfs, buf);
		return rc;
	}
	pg_meta_encode(buf, env->psize, &m, NULL);
	os_iov iov = {buf, env->psize};
	rc = env->vfs->write_sync(env->file, &iov, 1,
				  (uint64_t)slot * env->psize);
	env->vfs->free(env->vfs, buf);
	if (!rc && m.txnid > good->txnid)
		*good = m;
	return rc;
}

/* The page size of a new database: the system's, within the format's
 * range. */
static unsigned default_psize(os_vfs *vfs)
{
	size_t os = vfs->page_size ? vfs->page_size(vfs)
				   : vfs->map_granularity(vfs);
	return os < MK_MIN_PAGE   ? MK_MIN_PAGE
	       : os > MK_MAX_PAGE ? MK_MAX_PAGE
				  : (unsigned)os;
}

/* The meta to open at, from the file (read_meta; @stable as there). With
 * @stable, a writable environment also writes the empty database into a
 * blank file, and replaces a meta page that is damaged or holds a commit
 * that never fully reached the disk: both only while no other process can
 * be writing, or a creator that had already committed would lose its
 * commits, and a commit in flight its meta page. */
static int open_meta(mapkv_env *env, int stable, mk_meta *m, uint64_t *size)
{
	int blank, bad, rc;
	int fix = stable && !(env->flags & MAPKV_RDONLY);
	if ((rc = read_meta(env, stable, m, size, &blank, &bad)))
		return rc;
	if (blank) {
		/* New, empty, or created by an open that never finished. */
		env->psize = default_psize(env->vfs);
		empty_meta(m, env->psize);
		if (fix) {
			if ((rc = init_file(env, m)))
				return rc;
			*size = 2ull * env->psize;
		}
		return 0;
	}
	env->psize = m->page_size;
	if (bad >= 0 && fix)
		rc = replace_meta(env, (unsigned)bad, m);
	return rc;
}

static void *zalloc(os_vfs *vfs, size_t n)
{
	void *p = vfs->alloc(vfs, n);
	if (p)
		memset(p, 0, n);
	return p;
}

/* Give the lock file @len bytes of written zeros. The table is stored to
 * through a shared map, and a store into a hole that a full disk cannot
 * back kills the process with SIGBUS; writing the blocks first turns a
 * full disk into MAPKV_FULL here. (wscratch is free: the meta pages have
 * been read.) */
static int lock_fill(mapkv_env *env, os_file *f, uint64_t len)
{
	size_t chunk = 4 * (size_t)MK_MAX_PAGE;
	memset(env->wscratch, 0, chunk);
	for (uint64_t off = 0; off < len; off += chunk) {
		os_iov iov = {env->wscratch,
			      len - off < chunk ? (size_t)(len - off) : chunk};
		int rc = env->vfs->write(f, &iov, 1, off);
		if (rc)
			return rc;
	}
	return 0;
}

static void table_init(mapkv_env *env, unsigned nslots, const mk_meta *m,
		       const os_fileinfo *db)
{
	lk_header *h = env->lk;
	h->magic = LK_MAGIC;
	h->version = LK_VERSION;
	h->nslots = nslots;
	h->page_size = env->psize;
	h->meta[0] = *m;
	h->db_dev = db ? db->dev : 0;
	h->db_ino = db ? db->ino : 0;
	atomic_store(&h->meta_seq, 0);
}

/* Follow the symbolic links of env->path (the file is open: it exists),
 * so that every name of one database leads to one lock file, beside the
 * real file, and a new file's own folder is synced. A path that cannot be
 * resolved (a folder on the way that may not be searched) is kept as
 * given: the identity lock still refuses a second table. */
static int resolve_path(mapkv_env *env)
{
	os_vfs *vfs = env->vfs;
	char *real;
	if (!vfs->real_path)
		return 0;
	int rc = vfs->real_path(vfs, env->path, &real);
	if (rc)
		return rc == MAPKV_IO ? 0 : rc;
	vfs->free(vfs, env->path);
	env->path = real;
	return 0;
}

/* The lock file: the (resolved) path and "-lock". */
static char *lock_path(mapkv_env *env)
{
	size_t n = strlen(env->path);
	char *lp = env->vfs->alloc(env->vfs, n + 6);
	if (lp) {
		memcpy(lp, env->path, n);
		memcpy(lp + n, "-lock", 6);
	}
	return lp;
}

/* Byte LK_ID_BASE + a hash of the lock file's identity (lock.h). */
static uint64_t id_offset(const os_fileinfo *lk)
{
	uint64_t h = lk->dev * 0x9e3779b97f4a7c15ull ^ lk->ino;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 32;
	return LK_ID_BASE + h % LK_ID_SPAN;
}

/* Hold the identity byte of our lock file on the database for the
 * environment's lifetime, and refuse if any other lock file's byte is
 * held: the database is in use through another lock table (lock.h). */
static int claim_identity(mapkv_env *env, const os_fileinfo *lk)
{
	os_vfs *vfs = env->vfs;
	if (!vfs->lock_test)
		return 0;
	uint64_t off = id_offset(lk), end = LK_ID_BASE + LK_ID_SPAN;
	int held = 0;
	int rc = vfs->lock_byte(env->file, off, 0, 1);
	if (!rc && off > LK_ID_BASE)
		rc = vfs->lock_test(env->file, LK_ID_BASE, off - LK_ID_BASE,
				    &held);
	if (!rc && !held && off + 1 < end)
		rc = vfs->lock_test(env->file, off + 1, end - off - 1, &held);
	if (!rc && held)
		rc = MAPKV_LOCK_CONFLICT;
	return rc;
}

/* No other process has the lock file open: whatever it holds was left by
 * processes that are gone. Read the meta pages now, while no one can
 * commit (a writable opener also takes the writer lock, which orders it
 * with a writer that does not use this lock file, if there were one),
 * start the table afresh (its blocks written: see lock_fill) and publish
 * that meta. It must be the newest commit: the meta read before the
 * locks were taken may be stale by any number of commits of processes
 * that opened and closed meanwhile, and a reader registering a stale
 * snapshot would read pages those commits freed and a writer may reuse. */
static int setup_alone(mapkv_env *env, unsigned nslots, const os_fileinfo *db,
		       mk_meta *m, uint64_t *size)
{
	os_vfs *vfs = env->vfs;
	os_file *f = env->lkfile;
	int wlock = !(env->flags & MAPKV_RDONLY);
	int rc;
	if (wlock && (rc = vfs->lock(env->file, OS_LOCK_WRITER, 1)))
		return rc;
	env->lk_len = lk_file_size(nslots);
	if (!(rc = open_meta(env, 1, m, size)) && !(rc = vfs->resize(f, 0)) &&
	    !(rc = lock_fill(env, f, env->lk_len)) &&
	    !(rc = vfs->map_rw(f, env->lk_len, (void **)&env->lk)))
		table_init(env, nslots, m, db);
	if (wlock)
		vfs->unlock(env->file, OS_LOCK_WRITER);
	if (!rc)
		rc = vfs->lock_byte(f, LK_BYTE_ALIVE, 0, 1);
	return rc;
}

static int valid_psize(uint32_t ps)
{
	return ps >= MK_MIN_PAGE && ps <= MK_MAX_PAGE && !(ps & (ps - 1));
}

/* Other processes have the lock file open: map their table and open at
 * the published meta, the newest commit (lock.h). The meta pages are not
 * read: a commit in another process may be rewriting them and the pages
 * they list. */
static int setup_shared(mapkv_env *env, const os_fileinfo *db, mk_meta *m,
			uint64_t *size)
{
	os_vfs *vfs = env->vfs;
	os_file *f = env->lkfile;
	uint64_t lsize;
	int rc;
	if ((rc = vfs->lock_byte(f, LK_BYTE_ALIVE, 0, 1)) ||
	    (rc = vfs->size(f, &lsize)))
		return rc;
	/* Its size under the init lock, before mapping: never a SIGBUS. A
	 * table in use that is not whole was truncated or overwritten by
	 * another program under its users. */
	if (lsize < LK_HEADER || lsize > lk_file_size(MAPKV_MAX_READERS))
		return MAPKV_LOCK_LOST;
	env->lk_len = (size_t)lsize;
	if ((rc = vfs->map_rw(f, env->lk_len, (void **)&env->lk)))
		return rc;
	lk_header *h = env->lk;
	if (h->magic == LK_MAGIC && h->version != LK_VERSION)
		return MAPKV_VERSION_MISMATCH; /* another release's */
	if (h->magic != LK_MAGIC || !valid_psize(h->page_size) ||
	    h->nslots == 0 || h->nslots > MAPKV_MAX_READERS ||
	    lk_file_size(h->nslots) > env->lk_len)
		return MAPKV_LOCK_LOST;
	/* A table of another file that had this name (the database was
	 * replaced while processes still use the old one). */
	if (db && (h->db_dev || h->db_ino) &&
	    (h->db_dev != db->dev || h->db_ino != db->ino))
		return MAPKV_LOCK_CONFLICT;
	env->psize = h->page_size;
	txn_read_meta(env, m);
	if (m->page_size != env->psize)
		return MAPKV_CORRUPT;
	if ((rc = vfs->size(env->file, size)))
		return rc;
	if (m->txnid && m->last_pgno * env->psize > *size)
		return MAPKV_CORRUPT; /* truncated by another program */
	return 0;
}

/* The lock file cannot be opened for writing (a read-only file system or
 * folder) and the environment is read-only: a reader table of its own (see
 * mapkv_open in mapkv.h). */
static int setup_private(mapkv_env *env, unsigned nslots, mk_meta *m,
			 uint64_t *size)
{
	int rc = open_meta(env, 0, m, size);
	if (rc)
		return rc;
	env->lk_private = 1;
	env->lk_len = lk_file_size(nslots);
	if (!(env->lk = zalloc(env->vfs, env->lk_len)))
		return MAPKV_NOMEM;
	table_init(env, nslots, m, NULL);
	return 0;
}

/* Set up the reader table and published meta in the lock file (lock.h),
 * and choose the meta to open at (*m, with the page size in env->psize and
 * the file's size in *size). Everything happens under the lock file's
 * init lock, so openers of one lock file take turns. */
static int lock_open(mapkv_env *env, unsigned nslots, unsigned mode, mk_meta *m,
		     uint64_t *size)
{
	os_vfs *vfs = env->vfs;
	char *lp = lock_path(env);
	int created, rc;
	if (!lp)
		return MAPKV_NOMEM;
	rc = vfs->open(vfs, lp, OS_OPEN_CREATE, mode, &env->lkfile, &created);
	vfs->free(vfs, lp);
	if (rc) {
		env->lkfile = NULL;
		if (!(env->flags & MAPKV_RDONLY))
			return rc;
		rc = setup_private(env, nslots, m, size);
	} else {
		os_file *f = env->lkfile;
		os_fileinfo lk, db, *dbp = NULL;
		if ((rc = vfs->lock_byte(f, LK_BYTE_INIT, 1, 1)))
			return rc;
		if (vfs->info && !(rc = vfs->info(f, &lk)) &&
		    !(rc = vfs->info(env->file, &db))) {
			dbp = &db;
			rc = claim_identity(env, &lk);
		}
		if (!rc) {
			rc = vfs->lock_byte(f, LK_BYTE_ALIVE, 1, 0);
			if (rc == 0)
				rc = setup_alone(env, nslots, dbp, m, size);
			else if (rc == MAPKV_BUSY)
				rc = setup_shared(env, dbp, m, size);
		}
		vfs->unlock_byte(f, LK_BYTE_INIT);
	}
	if (rc)
		return rc;
	env->readers.nslots = env->lk->nslots;
	env->readers.slots = (lk_slot *)((uint8_t *)env->lk + LK_HEADER);
	return 0;
}

static void env_free(mapkv_env *env)
{
	os_vfs *vfs = env->vfs;
	if (env->map)
		vfs->unmap(env->file, env->map, env->max_size);
	/* The database file (and with it the writer lock and the identity
	 * byte) before the lock file: a process holds its place in the lock
	 * file until it no longer touches the database. */
	if (env->file)
		vfs->close(env->file);
	if (env->dbis) {
		for (unsigned i = 0; i < env->max_dbs; i++)
			if (env->dbis[i].name)
				vfs->free(vfs, env->dbis[i].name);
		vfs->free(vfs, env->dbis);
	}
	if (env->lk_private && env->lk)
		vfs->free(vfs, env->lk);
	else if (env->lk)
		vfs->unmap_rw(env->lkfile, env->lk, env->lk_len);
	if (env->lkfile)
		vfs->close(env->lkfile);
	if (env->map_mutex)
		os_mutex_destroy(env->map_mutex);
	if (env->map_lock)
		os_rwlock_destroy(env->map_lock);
	if (env->wscratch)
		vfs->free(vfs, env->wscratch);
	if (env->split_node)
		vfs->free(vfs, env->split_node);
	if (env->split_size)
		vfs->free(vfs, env->split_size);
	if (env->wmutex)
		os_mutex_destroy(env->wmutex);
	if (env->mutex)
		os_mutex_destroy(env->mutex);
	if (env->path)
		vfs->free(vfs, env->path);
	vfs->free(vfs, env);
}

/* The smallest unit of the map for a database of @psize pages. */
static unsigned map_unit(const mapkv_env *env, unsigned psize)
{
	return env->gran > psize ? (unsigned)env->gran : psize;
}

int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs)
{
	mapkv_options o;
	int rc, created = 0;
	*out = NULL;
	if (opts)
		o = *opts;
	else
		memset(&o, 0, sizeof(o));
	if (o.flags & ~(MAPKV_RDONLY | MAPKV_NOSYNC | MAPKV_NOCREATE))
		return MAPKV_INVALID;
	/* Limits that no file can meet are refused before one is made: more
	 * readers than the lock file may have, more trees than a handle can
	 * number (and max_dbs + 1 would wrap), or a size below the smallest
	 * database (two pages of a new file). */
	if (o.max_readers > MAPKV_MAX_READERS || o.max_dbs > MAPKV_MAX_DBS)
		return MAPKV_INVALID;
	mapkv_env *env = zalloc(vfs, sizeof(*env));
	if (!env)
		return MAPKV_NOMEM;
	env->vfs = vfs;
	env->flags = o.flags;
	env->gran = vfs->map_granularity(vfs);
	if (o.max_size &&
	    o.max_size < 2ull * map_unit(env, default_psize(vfs))) {
		vfs->free(vfs, env);
		return MAPKV_INVALID;
	}
	env->max_dbs = (o.max_dbs ? o.max_dbs : 128) + 1;
	unsigned nslots = o.max_readers ? o.max_readers : 126;
	uint64_t maxsz = o.max_size ? o.max_size : default_max_size();
	size_t plen = strlen(path);
	if (!(env->path = vfs->alloc(vfs, plen + 1))) {
		rc = MAPKV_NOMEM;
		goto fail;
	}
	memcpy(env->path, path, plen + 1);
	if ((rc = os_mutex_create(&env->wmutex)) ||
	    (rc = os_mutex_create(&env->mutex)) ||
	    (rc = os_mutex_create(&env->map_mutex)))
		goto fail;
	env->dbis = zalloc(vfs, env->max_dbs * sizeof(dbi_slot));
	env->wscratch = vfs->alloc(vfs, 4 * (size_t)MK_MAX_PAGE);
	if (!env->dbis || !env->wscratch) {
		rc = MAPKV_NOMEM;
		goto fail;
	}
	atomic_store(&env->ndbis, 1);
	env->pid = vfs->pid(vfs);

	int oflags = (o.flags & MAPKV_RDONLY) ? OS_OPEN_RDONLY : 0;
	if (!(o.flags & (MAPKV_RDONLY | MAPKV_NOCREATE)))
		oflags |= OS_OPEN_CREATE;
	if ((rc = vfs->open(vfs, path, oflags, o.mode ? o.mode : 0644,
			    &env->file, &created)))
		goto fail;
	if ((rc = resolve_path(env)))
		goto fail;
	/* The new file's directory entry, durable before anything in the
	 * file is (it is blank until the first opener writes it). */
	if (created && (rc = vfs->sync_dir(vfs, env->path)))
		goto fail;

	uint64_t size;
	mk_meta m;
	if ((rc = lock_open(env, nslots, o.mode ? o.mode : 0644, &m, &size)))
		goto fail;
	unsigned unit = map_unit(env, env->psize);
	maxsz = maxsz / unit * unit;
	uint64_t maplen = (size + env->gran - 1) / env->gran * env->gran;
	if (maxsz < maplen) {
		/* An existing file larger than the limit: refused when the
		 * caller set the limit, accepted as the limit by default. */
		if (o.max_size) {
			rc = MAPKV_FULL;
			goto fail;
		}
		maxsz = (maplen + unit - 1) / unit * unit;
	}
	if (maxsz < 2ull * unit)
		maxsz = 2ull * unit;
	env->max_size = maxsz;
	env->file_size = size;
	env->split_node =
		vfs->alloc(vfs, (env->psize / 8 + 2) * sizeof(void *));
	env->split_size =
		vfs->alloc(vfs, (env->psize / 8 + 2) * sizeof(unsigned));
	if (!env->split_node || !env->split_size) {
		rc = MAPKV_NOMEM;
		goto fail;
	}
	/* With the default limit, settle for less address space when the
	 * system (a 32-bit process, ulimit -v, valgrind) will not reserve
	 * 64 GiB: halve it down to what the file needs. */
	while ((rc = vfs->map(env->file, env->max_size, maplen,
			      (void **)&env->map)) == MAPKV_IO &&
	       !o.max_size && env->max_size / 2 >= maplen &&
	       env->max_size / 2 >= (64u << 20))
		env->max_size = env->max_size / 2 / unit * unit;
	if (rc)
		goto fail;
	env->map_len = maplen;
	int replaces = 0;
	env->map_growth = vfs->map_growth
				  ? vfs->map_growth(env->file, &replaces)
				  : "unknown";
	if (replaces && (rc = os_rwlock_create(&env->map_lock)))
		goto fail;
	*out = env;
	return 0;
fail:
	env_free(env);
	return rc;
}

/* In a child after fork() (MAPKV_FORKED), what the environment holds in
 * the lock file and on the database (locks shared with the parent through
 * the inherited descriptors, the parent's reader slots) is the parent's:
 * only this process's memory and descriptors are let go. */
int env_forked(const mapkv_env *env)
{
	return env->pid != env->vfs->pid(env->vfs);
}

void env_close(mapkv_env *env)
{
	if (env->wtxn)
		txn_abort(env->wtxn);
	env_free(env);
}
