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
 * another process may have committed) and map any growth. */
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

static void empty_meta(mk_meta *m, unsigned psize)
{
	memset(m, 0, sizeof(*m));
	m->magic = MK_MAGIC;
	m->version = MK_FORMAT_VERSION;
	m->page_size = psize;
	m->last_pgno = MK_NUM_META;
}

/* Write the two meta pages of an empty database and make them durable,
 * directory entry included. */
static int init_file(mapkv_env *env, const mk_meta *m, int created)
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
	if (!rc && created)
		rc = env->vfs->sync_dir(env->vfs, env->path);
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

/* One meta page is torn, damaged or holds a commit that never fully
 * reached the disk: under the writer lock (a writer of another process
 * may be writing that very page), look again and, if it is still so,
 * replace it. On return @m is the meta to open at. */
static int repair_meta(mapkv_env *env, mk_meta *m)
{
	int rc = env->vfs->lock(env->file, OS_LOCK_WRITER, 1);
	if (rc)
		return rc;
	uint8_t *head = env->wscratch;
	size_t got;
	uint64_t size;
	int bad;
	if (!(rc = read_head(env, head, &got, &size)) &&
	    !(rc = choose_meta(env, head, got, size, UINT64_MAX, m, &bad)) &&
	    bad >= 0)
		rc = replace_meta(env, (unsigned)bad, m);
	env->vfs->unlock(env->file, OS_LOCK_WRITER);
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
 * full disk into MAPKV_FULL here. (wscratch is free: open has read the
 * head of the database already.) */
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

/* Set up the reader table and published meta in the lock file (lock.h),
 * rebuilding the file when no other process has it open. A read-only
 * environment that cannot open the lock file for writing (a read-only
 * directory or file system) keeps a private table instead: see the
 * header. */
static int lock_open(mapkv_env *env, const char *path, unsigned nslots,
		     unsigned mode, const mk_meta *m)
{
	os_vfs *vfs = env->vfs;
	size_t plen = strlen(path);
	char *lp = vfs->alloc(vfs, plen + 6);
	if (!lp)
		return MAPKV_NOMEM;
	memcpy(lp, path, plen);
	memcpy(lp + plen, "-lock", 6);
	int created, rc;
	rc = vfs->open(vfs, lp, OS_OPEN_CREATE, mode, &env->lkfile, &created);
	vfs->free(vfs, lp);
	if (rc) {
		env->lkfile = NULL;
		if (!(env->flags & MAPKV_RDONLY))
			return rc;
		env->lk_private = 1;
		env->lk_len = lk_file_size(nslots);
		if (!(env->lk = zalloc(vfs, env->lk_len)))
			return MAPKV_NOMEM;
		env->lk->magic = LK_MAGIC;
		env->lk->version = LK_VERSION;
		env->lk->nslots = nslots;
		env->lk->page_size = env->psize;
		env->lk->meta[0] = *m;
		goto view;
	}
	os_file *f = env->lkfile;
	if ((rc = vfs->lock_byte(f, LK_BYTE_INIT, 1, 1)))
		return rc;
	rc = vfs->lock_byte(f, LK_BYTE_ALIVE, 1, 0);
	if (rc == 0) {
		/* Alone: whatever the file holds was left by processes that
		 * are gone. Start it afresh, its blocks written (not a hole
		 * made by a resize: see lock_fill). */
		env->lk_len = lk_file_size(nslots);
		if (!(rc = vfs->resize(f, 0)) &&
		    !(rc = lock_fill(env, f, env->lk_len)) &&
		    !(rc = vfs->map_rw(f, env->lk_len, (void **)&env->lk))) {
			env->lk->magic = LK_MAGIC;
			env->lk->version = LK_VERSION;
			env->lk->nslots = nslots;
			env->lk->page_size = env->psize;
			env->lk->meta[0] = *m;
			atomic_store(&env->lk->meta_seq, 0);
			rc = vfs->lock_byte(f, LK_BYTE_ALIVE, 0, 1);
		}
	} else if (rc == MAPKV_BUSY) {
		uint64_t size;
		if (!(rc = vfs->lock_byte(f, LK_BYTE_ALIVE, 0, 1)) &&
		    !(rc = vfs->size(f, &size))) {
			if (size < LK_HEADER || size > (1u << 30)) {
				rc = MAPKV_CORRUPT;
			} else {
				env->lk_len = (size_t)size;
				rc = vfs->map_rw(f, env->lk_len,
						 (void **)&env->lk);
			}
		}
		if (!rc &&
		    (env->lk->magic != LK_MAGIC ||
		     env->lk->version != LK_VERSION ||
		     env->lk->page_size != env->psize || env->lk->nslots == 0 ||
		     lk_file_size(env->lk->nslots) > env->lk_len))
			rc = MAPKV_CORRUPT; /* not a lock file of ours */
	}
	vfs->unlock_byte(f, LK_BYTE_INIT);
	if (rc)
		return rc;
view:
	env->readers.nslots = env->lk->nslots;
	env->readers.slots = (lk_slot *)((uint8_t *)env->lk + LK_HEADER);
	return 0;
}

static void env_free(mapkv_env *env)
{
	os_vfs *vfs = env->vfs;
	if (env->map)
		vfs->unmap(env->file, env->map, env->max_size);
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
	mapkv_env *env = zalloc(vfs, sizeof(*env));
	if (!env)
		return MAPKV_NOMEM;
	env->vfs = vfs;
	env->flags = o.flags;
	env->gran = vfs->map_granularity(vfs);
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

	uint8_t *head = env->wscratch;
	size_t got;
	uint64_t size;
	mk_meta m;
	if ((rc = read_head(env, head, &got, &size)))
		goto fail;
	if (is_blank(head, got, size)) {
		/* New, empty, or created by an open that never finished. */
		size_t os = vfs->page_size ? vfs->page_size(vfs) : env->gran;
		env->psize = os < MK_MIN_PAGE   ? MK_MIN_PAGE
			     : os > MK_MAX_PAGE ? MK_MAX_PAGE
						: (unsigned)os;
		empty_meta(&m, env->psize);
		if (!(o.flags & MAPKV_RDONLY)) {
			if ((rc = init_file(env, &m, created)))
				goto fail;
			size = 2ull * env->psize;
		}
	} else {
		int bad;
		if ((rc = choose_meta(env, head, got, size, UINT64_MAX, &m,
				      &bad)))
			goto fail;
		env->psize = m.page_size;
		if (bad >= 0 && !(o.flags & MAPKV_RDONLY) &&
		    (rc = repair_meta(env, &m)))
			goto fail;
	}
	unsigned unit =
		env->gran > env->psize ? (unsigned)env->gran : env->psize;
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
	if ((rc = lock_open(env, path, nslots, o.mode ? o.mode : 0644, &m)))
		goto fail;
	*out = env;
	return 0;
fail:
	env_free(env);
	return rc;
}

void env_close(mapkv_env *env)
{
	if (env->wtxn)
		txn_abort(env->wtxn);
	env_free(env);
}
