/*
 * api.c: the public mapkv_* functions. Each checks its arguments, the
 * state of the handles it is given, and maps the result of the layers
 * below to the documented codes; a write that fails for any reason other
 * than a bad argument marks its transaction failed (only abort is left).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "txn.h"

int env_open_vfs(mapkv_env **out, const char *path, const mapkv_options *opts,
		 os_vfs *vfs);
void env_close(mapkv_env *env);
int env_copy(mapkv_env *env, const char *path, unsigned flags);
int txn_check(mapkv_txn *txn, mapkv_check_fn fn, mapkv_progress_fn progress,
	      void *ctx, uint64_t *problems);

int mapkv_open(mapkv_env **env, const char *path, const mapkv_options *opts)
{
	if (!env)
		return MAPKV_INVALID;
	*env = NULL;
	if (!path || !*path)
		return MAPKV_INVALID;
	return env_open_vfs(env, path, opts, os_default_vfs());
}

void mapkv_close(mapkv_env *env)
{
	if (env)
		env_close(env);
}

int mapkv_sync(mapkv_env *env)
{
	if (!env)
		return MAPKV_INVALID;
	if (env_forked(env))
		return MAPKV_FORKED;
	if (env->flags & MAPKV_RDONLY)
		return 0;
	if (atomic_load(&env->panic))
		return MAPKV_PANIC;
	/* A failed sync is final: what it should have made durable may be
	 * lost, so a later sync must not report success (see txn.c). */
	int rc = env->vfs->sync(env->file);
	if (rc)
		atomic_store(&env->panic, 1);
	return rc;
}

int mapkv_env_info(mapkv_env *env, mapkv_envinfo *info)
{
	if (!env || !info)
		return MAPKV_INVALID;
	memset(info, 0, sizeof(*info));
	mapkv_txn *txn;
	int rc = env_forked(env) ? MAPKV_FORKED : env_check_lock(env);
	if (rc || (rc = txn_begin(env, MAPKV_RDONLY | TXN_INTERNAL, &txn)))
		return rc;
	uint64_t nfree = 0;
	rc = txn_count_free(txn, &nfree);
	info->page_size = env->psize;
	info->max_size = env->max_size;
	info->file_size = env->file_size;
	info->last_txnid = txn->meta.txnid;
	info->pages_used = txn->meta.last_pgno;
	info->pages_free = nfree;
	info->max_readers = env->readers.nslots;
	txn_abort(txn);
	info->num_readers = lk_count(&env->readers);
	info->oldest_reader_txnid = lk_oldest(&env->readers, 0);
	info->shared_lock_file = !env->lk_private;
	info->map_growth = env->map_growth;
	uint64_t now = env->vfs->time_ns(env->vfs);
	for (unsigned i = 0; i <= env->readers.nslots; i++) {
		lk_slot *s = &env->readers.slots[i];
		uint64_t id = atomic_load(&s->txnid);
		if (id && id == info->oldest_reader_txnid) {
			uint64_t st = atomic_load(&s->start);
			info->oldest_reader_pid = atomic_load(&s->pid);
			info->oldest_reader_age_ms =
				now > st ? (now - st) / 1000000u : 0;
			break;
		}
	}
	return rc;
}

int mapkv_txn_begin(mapkv_env *env, unsigned flags, mapkv_txn **txn)
{
	if (txn)
		*txn = NULL;
	if (!env || !txn || (flags & ~(MAPKV_RDONLY | MAPKV_TRY)))
		return MAPKV_INVALID;
	return txn_begin(env, flags, txn);
}

int mapkv_txn_commit(mapkv_txn *txn)
{
	if (!txn)
		return MAPKV_INVALID;
	return txn_commit(txn);
}

void mapkv_txn_abort(mapkv_txn *txn)
{
	if (txn)
		txn_abort(txn);
}

uint64_t mapkv_txn_id(const mapkv_txn *txn)
{
	return txn ? txn->txnid : 0;
}

/* Common checks of a transaction used for reading. */
static int check_txn(mapkv_txn *txn)
{
	if (!txn)
		return MAPKV_INVALID;
	if (txn->state != TXN_ACTIVE)
		return MAPKV_BAD_TXN;
	return 0;
}

static int check_write(mapkv_txn *txn)
{
	int rc = check_txn(txn);
	if (rc)
		return rc;
	if (txn->flags & MAPKV_RDONLY)
		return MAPKV_READONLY;
	return 0;
}

static int check_key(const mapkv_val *key)
{
	if (!key)
		return MAPKV_INVALID;
	if (key->size == 0 || key->size > MAPKV_MAX_KEY_SIZE)
		return MAPKV_BAD_KEY;
	if (!key->data)
		return MAPKV_INVALID;
	return 0;
}

int mapkv_dbi_open(mapkv_txn *txn, const char *name, unsigned flags,
		   mapkv_dbi *dbi)
{
	int rc = check_txn(txn);
	if (rc)
		return rc;
	if (!dbi || (flags & ~MAPKV_CREATE))
		return MAPKV_INVALID;
	return txn_dbi_open(txn, name, flags, dbi);
}

int mapkv_dbi_drop(mapkv_txn *txn, mapkv_dbi dbi, int del)
{
	int rc = check_write(txn);
	if (rc)
		return rc;
	return txn_dbi_drop(txn, dbi, del);
}

int mapkv_dbi_close(mapkv_env *env, mapkv_dbi dbi)
{
	if (!env)
		return MAPKV_INVALID;
	if (env_forked(env))
		return MAPKV_FORKED;
	return txn_dbi_close(env, dbi);
}

int mapkv_dbi_list(mapkv_txn *txn, int (*fn)(void *ctx, const char *name),
		   void *ctx)
{
	int rc = check_txn(txn);
	if (rc)
		return rc;
	if (!fn)
		return MAPKV_INVALID;
	return txn_dbi_list(txn, fn, ctx);
}

int mapkv_get(mapkv_txn *txn, mapkv_dbi dbi, const mapkv_val *key,
	      mapkv_val *val)
{
	int rc = check_txn(txn);
	if (rc)
		return rc;
	if ((rc = check_key(key)))
		return rc;
	if (!val)
		return MAPKV_INVALID;
	txn_tree *tt;
	if ((rc = txn_tree_get(txn, dbi, &tt)))
		return rc;
	return bt_get(&txn->pg, &tt->rec, key->data, key->size, val);
}

int mapkv_put(mapkv_txn *txn, mapkv_dbi dbi, const mapkv_val *key,
	      const mapkv_val *val, unsigned flags)
{
	int rc = check_write(txn);
	if (rc)
		return rc;
	if ((rc = check_key(key)))
		return rc;
	if (!val || (!val->data && val->size) || (flags & ~MAPKV_NOOVERWRITE))
		return MAPKV_INVALID;
	if ((uint64_t)val->size > MAPKV_MAX_VALUE_SIZE)
		return MAPKV_BAD_VALUE;
	txn_tree *tt;
	if ((rc = txn_tree_get(txn, dbi, &tt)))
		return rc;
	tt->state |= TT_DIRTY;
	txn->mod_seq++;
	rc = bt_put(&txn->pg, &tt->rec, key->data, key->size, val->data,
		    val->size, flags, NULL);
	if (rc && rc != MAPKV_EXISTS && rc != MAPKV_BAD_VALUE)
		return txn_fail(txn, rc);
	return rc;
}

int mapkv_del(mapkv_txn *txn, mapkv_dbi dbi, const mapkv_val *key)
{
	int rc = check_write(txn);
	if (rc)
		return rc;
	if ((rc = check_key(key)))
		return rc;
	txn_tree *tt;
	if ((rc = txn_tree_get(txn, dbi, &tt)))
		return rc;
	txn->mod_seq++;
	rc = bt_del(&txn->pg, &tt->rec, key->data, key->size);
	if (rc == 0)
		tt->state |= TT_DIRTY;
	if (rc && rc != MAPKV_NOTFOUND)
		return txn_fail(txn, rc);
	return rc;
}

int mapkv_cursor_open(mapkv_txn *txn, mapkv_dbi dbi, mapkv_cursor **cur)
{
	if (cur)
		*cur = NULL;
	int rc = check_txn(txn);
	if (rc)
		return rc;
	if (!cur)
		return MAPKV_INVALID;
	txn_tree *tt;
	_Atomic uint32_t *live;
	if ((rc = txn_tree_ref(txn, dbi, &tt, &live)))
		return rc;
	return cur_open(txn, dbi, tt, live, cur);
}

/* The tree a cursor's handle names in its transaction. */
static int cursor_tree(mapkv_cursor *cur, txn_tree **tt)
{
	mapkv_txn *txn = cur->txn;
	if (!txn || txn->state != TXN_ACTIVE)
		return MAPKV_BAD_TXN;
	int rc = txn_tree_check(cur->tt, cur->live, cur->dbi);
	if (rc)
		return rc;
	*tt = cur->tt;
	return 0;
}

int mapkv_cursor_get(mapkv_cursor *cur, mapkv_val *key, mapkv_val *val, int op)
{
	if (!cur)
		return MAPKV_INVALID;
	return cur_get(cur, key, val, op);
}

int mapkv_cursor_del(mapkv_cursor *cur)
{
	if (!cur)
		return MAPKV_INVALID;
	txn_tree *tt;
	int rc = cursor_tree(cur, &tt);
	if (rc)
		return rc;
	mapkv_txn *txn = cur->txn;
	if (txn->flags & MAPKV_RDONLY)
		return MAPKV_READONLY;
	txn->mod_seq++;
	rc = cur_del(cur, &tt->rec);
	if (rc == 0)
		tt->state |= TT_DIRTY;
	else if (rc != MAPKV_NOTFOUND)
		return txn_fail(txn, rc);
	return rc;
}

void mapkv_cursor_close(mapkv_cursor *cur)
{
	if (cur)
		cur_close(cur);
}

int mapkv_stat(mapkv_txn *txn, mapkv_dbi dbi, mapkv_stat_info *st)
{
	int rc = check_txn(txn);
	if (rc)
		return rc;
	if (!st)
		return MAPKV_INVALID;
	txn_tree *tt;
	if ((rc = txn_tree_get(txn, dbi, &tt)))
		return rc;
	st->page_size = txn->env->psize;
	st->depth = tt->rec.depth;
	st->branch_pages = tt->rec.branch_pages;
	st->leaf_pages = tt->rec.leaf_pages;
	st->overflow_pages = tt->rec.overflow_pages;
	st->entries = tt->rec.entries;
	return 0;
}

int mapkv_check_progress(mapkv_txn *txn, mapkv_check_fn fn,
			 mapkv_progress_fn progress, void *ctx,
			 uint64_t *problems)
{
	if (problems)
		*problems = 0;
	int rc = check_txn(txn);
	if (rc)
		return rc;
	/* A writer's free pages are not recorded until it commits. */
	if (!(txn->flags & MAPKV_RDONLY))
		return MAPKV_INVALID;
	return txn_check(txn, fn, progress, ctx, problems);
}

int mapkv_check(mapkv_txn *txn, mapkv_check_fn fn, void *ctx,
		uint64_t *problems)
{
	return mapkv_check_progress(txn, fn, NULL, ctx, problems);
}

int mapkv_copy(mapkv_env *env, const char *path, unsigned flags)
{
	if (!env || !path || !*path || (flags & ~MAPKV_COPY_COMPACT))
		return MAPKV_INVALID;
	if (env_forked(env))
		return MAPKV_FORKED;
	int rc = env_check_lock(env);
	if (rc)
		return rc;
	rc = env_copy(env, path, flags);
	if (rc && rc != MAPKV_EXISTS) {
		int e = errno; /* the copy's error, not the unlink's */
		env->vfs->remove(env->vfs, path); /* no half-made copy */
		errno = e;
	}
	return rc;
}

int env_pid_alive(void *env, uint64_t pid);

static int cmp_reader(const void *a, const void *b)
{
	const mapkv_reader_info *x = a, *y = b;
	return x->txnid < y->txnid ? -1 : x->txnid > y->txnid;
}

int mapkv_reader_list(mapkv_env *env, mapkv_reader_info *out, unsigned max,
		      unsigned *count)
{
	if (!env || !count || (max && !out))
		return MAPKV_INVALID;
	if (env_forked(env))
		return MAPKV_FORKED;
	int rc = env_check_lock(env);
	if (rc)
		return rc;
	uint64_t now = env->vfs->time_ns(env->vfs);
	unsigned n = 0;
	for (unsigned i = 0; i <= env->readers.nslots; i++) {
		lk_slot *s = &env->readers.slots[i];
		uint64_t pid = atomic_load(&s->pid);
		uint64_t id = atomic_load(&s->txnid);
		if (pid == 0 || pid == UINT64_MAX || id == 0)
			continue;
		if (n < max) {
			uint64_t st = atomic_load(&s->start);
			out[n].pid = pid;
			out[n].txnid = id;
			out[n].age_ms = now > st ? (now - st) / 1000000u : 0;
		}
		n++;
	}
	if (max)
		qsort(out, n < max ? n : max, sizeof(*out), cmp_reader);
	*count = n;
	return 0;
}

int mapkv_reader_check(mapkv_env *env, unsigned *dead)
{
	if (!env)
		return MAPKV_INVALID;
	/* In a child after fork() the slots of env->pid are the parent's. */
	if (env_forked(env))
		return MAPKV_FORKED;
	int rc = env_check_lock(env);
	if (rc)
		return rc;
	unsigned n = lk_reap(&env->readers, env->pid, env_pid_alive, env);
	if (dead)
		*dead = n;
	return 0;
}
