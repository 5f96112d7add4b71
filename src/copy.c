/*
 * copy.c: hot copies of a database (mapkv_copy).
 *
 * Both kinds read a snapshot through a read transaction, so writers go on
 * meanwhile and the copy is the last commit as of the start.
 *  - A plain copy writes pages [2, last_pgno) of the snapshot as they are,
 *    then both meta pages (the snapshot's meta, with no run list, in its
 *    slot and under the next id in the other, so either alone opens), then
 *    syncs. Free pages may hold
 * anything (a writer may be reusing them while they are copied); the snapshot
 * never reads them.
 *  - A compacting copy builds a new database through the API: every tree,
 *    key by key in order, so every page comes out full (sequential inserts
 *    split at the new key) and nothing is free but what the commits of the
 *    copy itself freed.
 */
#include <errno.h>
#include <string.h>

#include "txn.h"

int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs);
void env_close(mapkv_env *env);

/* Create @path, failing if it exists. */
static int create_new(os_vfs *vfs, const char *path, os_file **f)
{
	int created = 0;
	int rc = vfs->open(vfs, path, OS_OPEN_CREATE, 0644, f, &created);
	if (rc)
		return rc;
	if (!created) {
		vfs->close(*f);
		*f = NULL;
		return MAPKV_EXISTS;
	}
	return 0;
}

static int copy_plain(mapkv_env *env, mapkv_txn *txn, const char *path)
{
	os_vfs *vfs = env->vfs;
	os_file *f;
	int rc = create_new(vfs, path, &f);
	if (rc)
		return rc;
	unsigned ps = env->psize;
	uint64_t last = txn->meta.last_pgno;
	/* Pages in chunks of 1 MiB straight from the map. */
	uint64_t chunk = (1u << 20) / ps;
	for (uint64_t p = MK_NUM_META; p < last && !rc; p += chunk) {
		uint64_t n = last - p < chunk ? last - p : chunk;
		os_iov iov = {env->map + p * ps, (size_t)(n * ps)};
		rc = vfs->write(f, &iov, 1, p * ps);
	}
	if (!rc)
		rc = vfs->sync(f);
	if (!rc) {
		/* The meta pages last: the copy is valid once they are. */
		uint8_t *buf = vfs->alloc(vfs, 2 * (size_t)ps);
		if (!buf) {
			rc = MAPKV_NOMEM;
		} else {
			/* Each slot as a commit would have written it. */
			mk_meta m = txn->meta;
			m.nruns = m.data_crc = 0;
			unsigned slot = (unsigned)(m.txnid % MK_NUM_META);
			pg_meta_encode(buf + slot * ps, ps, &m, NULL);
			m.txnid++; /* above every free-page record id */
			pg_meta_encode(buf + (1 - slot) * ps, ps, &m, NULL);
			os_iov iov = {buf, 2 * (size_t)ps};
			rc = vfs->write(f, &iov, 1, 0);
			if (!rc)
				rc = vfs->sync(f);
			vfs->free(vfs, buf);
		}
	}
	if (!rc)
		rc = vfs->sync_dir(vfs, path);
	vfs->close(f);
	return rc;
}

/* Commit to the destination of a compacting copy. MAPKV_PANIC there only
 * means that its meta page could not be written: for the copy (removed on
 * failure) that is the write error itself, which errno still holds. */
static int dst_commit(mapkv_txn *txn)
{
	int rc = mapkv_txn_commit(txn);
	if (rc != MAPKV_PANIC)
		return rc;
#ifdef EDQUOT
	if (errno == EDQUOT)
		return MAPKV_FULL;
#endif
	return errno == ENOSPC || errno == EFBIG ? MAPKV_FULL : MAPKV_IO;
}

/* Copy tree @src_dbi of @src into tree @dst_dbi of @dst (both open),
 * committing the destination every so many bytes to bound its memory. */
static int copy_tree(mapkv_txn *src, mapkv_dbi sdbi, mapkv_env *dst,
		     mapkv_txn **dtxn, mapkv_dbi ddbi)
{
	mapkv_cursor *cur;
	int rc = mapkv_cursor_open(src, sdbi, &cur);
	if (rc)
		return rc;
	mapkv_val k, v;
	uint64_t bytes = 0;
	while ((rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT)) == 0) {
		if ((rc = mapkv_put(*dtxn, ddbi, &k, &v, 0)))
			break;
		bytes += k.size + v.size;
		if (bytes > (256u << 20)) {
			bytes = 0;
			if ((rc = dst_commit(*dtxn)))
				break;
			*dtxn = NULL;
			if ((rc = mapkv_txn_begin(dst, 0, dtxn)))
				break;
		}
	}
	mapkv_cursor_close(cur);
	return rc == MAPKV_NOTFOUND ? 0 : rc;
}

struct names {
	mapkv_env *env;
	char **v;
	size_t n, cap;
};

static int collect(void *ctx, const char *name)
{
	struct names *ns = ctx;
	os_vfs *vfs = ns->env->vfs;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? 2 * ns->cap : 16;
		char **nv = vfs->realloc(vfs, ns->v, cap * sizeof(char *));
		if (!nv)
			return MAPKV_NOMEM;
		ns->v = nv;
		ns->cap = cap;
	}
	size_t len = strlen(name);
	char *s = vfs->alloc(vfs, len + 1);
	if (!s)
		return MAPKV_NOMEM;
	memcpy(s, name, len + 1);
	ns->v[ns->n++] = s;
	return 0;
}

static int copy_compact(mapkv_env *env, mapkv_txn *txn, const char *path)
{
	os_vfs *vfs = env->vfs;
	os_file *f;
	int rc = create_new(vfs, path, &f);
	if (rc)
		return rc;
	vfs->close(f);
	mapkv_env *dst;
	mapkv_options o;
	memset(&o, 0, sizeof(o));
	o.flags = MAPKV_NOSYNC;
	o.max_dbs = env->max_dbs;
	if ((rc = env_open_vfs(&dst, path, &o, vfs)))
		return rc;
	struct names ns = {env, NULL, 0, 0};
	mapkv_txn *dtxn = NULL;
	rc = txn_dbi_list(txn, collect, &ns);
	if (!rc)
		rc = mapkv_txn_begin(dst, 0, &dtxn);
	if (!rc)
		rc = copy_tree(txn, 0, dst, &dtxn, 0);
	for (size_t i = 0; i < ns.n && !rc; i++) {
		mapkv_dbi s, d;
		rc = mapkv_dbi_open(txn, ns.v[i], 0, &s);
		if (!rc)
			rc = mapkv_dbi_open(dtxn, ns.v[i], MAPKV_CREATE, &d);
		if (!rc)
			rc = copy_tree(txn, s, dst, &dtxn, d);
	}
	if (dtxn) {
		if (rc)
			mapkv_txn_abort(dtxn);
		else
			rc = dst_commit(dtxn);
	}
	/* Drop the growth slack: the copy ends at its last page. */
	mapkv_envinfo info;
	if (!rc && !(rc = mapkv_env_info(dst, &info)) &&
	    info.file_size > info.pages_used * dst->psize)
		rc = dst->vfs->resize(dst->file, info.pages_used * dst->psize);
	if (!rc)
		rc = dst->vfs->sync(dst->file);
	if (!rc)
		rc = vfs->sync_dir(vfs, path);
	env_close(dst);
	for (size_t i = 0; i < ns.n; i++)
		vfs->free(vfs, ns.v[i]);
	if (ns.v)
		vfs->free(vfs, ns.v);
	return rc;
}

int env_copy(mapkv_env *env, const char *path, unsigned flags)
{
	mapkv_txn *txn;
	int rc = txn_begin(env, MAPKV_RDONLY, &txn);
	if (rc)
		return rc;
	if (flags & MAPKV_COPY_COMPACT)
		rc = copy_compact(env, txn, path);
	else
		rc = copy_plain(env, txn, path);
	txn_abort(txn);
	return rc;
}
