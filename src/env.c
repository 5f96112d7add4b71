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

#include "txn.h"

#define BLANK_LIMIT (2u * MK_MAX_PAGE)

static uint64_t default_max_size(void)
{
	return sizeof(void *) >= 8 ? (64ull << 30) : (1ull << 30);
}

/* Choose the meta to open at from the first bytes of the file. @buf holds
 * the first @len bytes (up to MK_MAX_PAGE + one meta). Page 1's position
 * depends on the page size, which page 0 may be too damaged to tell, so
 * each possible size is tried. */
static int choose_meta(const uint8_t *buf, size_t len, uint64_t file_size,
		       mk_meta *out)
{
	mk_meta m, best;
	int have = 0, mismatch = 0;
	for (unsigned ps = 0; ps <= MK_MAX_PAGE; ps = ps ? ps * 2 : MK_MIN_PAGE) {
		if (ps + MK_META_SIZE + 4 > len)
			break;
		int rc = pg_meta_decode(buf + ps, len - ps, &m);
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
		if (have && m.page_size != best.page_size)
			continue;
		if (!have || m.txnid > best.txnid) {
			best = m;
			have = 1;
		}
	}
	if (have) {
		*out = best;
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
	uint8_t expect[MK_META_SIZE + 4];
	mk_meta m;
	memset(&m, 0, sizeof(m));
	m.version = MK_FORMAT_VERSION;
	m.last_pgno = MK_NUM_META;
	uint8_t page[MK_MIN_PAGE];
	pg_meta_encode(page, sizeof(page), &m);
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

static int read_head(mapkv_env *env, uint8_t *buf, size_t *got,
		     uint64_t *size)
{
	int rc = env->vfs->size(env->file, size);
	if (rc)
		return rc;
	return env->vfs->read(env->file, buf, BLANK_LIMIT, 0, got);
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
	size_t want = env->psize + MK_META_SIZE + 4;
	if ((rc = env->vfs->read(env->file, buf, want, 0, &got)))
		return rc;
	if (is_blank(buf, got, size)) {
		txn_read_meta(env, m); /* still the blank database */
		return 0;
	}
	if ((rc = choose_meta(buf, got, size, m)))
		return rc;
	if (m->page_size != env->psize)
		return MAPKV_CORRUPT;
	if (size > env->file_size) {
		uint64_t len = (size + env->gran - 1) / env->gran * env->gran;
		if (len > env->max_size)
			return MAPKV_FULL;
		if (len > env->map_len) {
			rc = env->vfs->map_extend(env->file, env->map,
						  env->map_len, len);
			if (rc)
				return rc;
			env->map_len = len;
		}
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
	pg_meta_encode(buf, env->psize, m);
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
	if (env->readers.slots)
		vfs->free(vfs, env->readers.slots);
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

static void *zalloc(os_vfs *vfs, size_t n)
{
	void *p = vfs->alloc(vfs, n);
	if (p)
		memset(p, 0, n);
	return p;
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
	env->readers.nslots = o.max_readers ? o.max_readers : 126;
	uint64_t maxsz = o.max_size ? o.max_size : default_max_size();
	size_t plen = strlen(path);
	if (!(env->path = vfs->alloc(vfs, plen + 1))) {
		rc = MAPKV_NOMEM;
		goto fail;
	}
	memcpy(env->path, path, plen + 1);
	if ((rc = os_mutex_create(&env->wmutex)) ||
	    (rc = os_mutex_create(&env->mutex)))
		goto fail;
	env->readers.slots =
		zalloc(vfs, (env->readers.nslots + 1) * sizeof(lk_slot));
	env->dbis = zalloc(vfs, env->max_dbs * sizeof(dbi_slot));
	env->wscratch = vfs->alloc(vfs, 4 * (size_t)MK_MAX_PAGE);
	if (!env->readers.slots || !env->dbis || !env->wscratch) {
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
		size_t os = env->gran;
		env->psize = os < MK_MIN_PAGE	? MK_MIN_PAGE
			     : os > MK_MAX_PAGE ? MK_MAX_PAGE
						: (unsigned)os;
		empty_meta(&m, env->psize);
		if (!(o.flags & MAPKV_RDONLY)) {
			if ((rc = init_file(env, &m, created)))
				goto fail;
			size = 2ull * env->psize;
		}
	} else {
		if ((rc = choose_meta(head, got, size, &m)))
			goto fail;
		env->psize = m.page_size;
	}
	unsigned unit = env->gran > env->psize ? (unsigned)env->gran : env->psize;
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
	env->split_node = vfs->alloc(vfs, (env->psize / 8 + 2) * sizeof(void *));
	env->split_size =
		vfs->alloc(vfs, (env->psize / 8 + 2) * sizeof(unsigned));
	if (!env->split_node || !env->split_size) {
		rc = MAPKV_NOMEM;
		goto fail;
	}
	if ((rc = vfs->map(env->file, env->max_size, maplen,
			   (void **)&env->map)))
		goto fail;
	env->map_len = maplen;
	txn_publish_meta(env, &m);
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
