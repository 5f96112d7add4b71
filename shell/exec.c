/*
 * exec.c: runs parsed statements against the database.
 *
 * Transactions: after BEGIN every statement runs in sh->txn until COMMIT
 * or ROLLBACK, and a statement that fails leaves that transaction open for
 * the user to decide (the library may have marked it failed, in which case
 * only ROLLBACK is left, and the message says so). Without BEGIN each
 * statement runs in a transaction of its own: a read-only one for reads,
 * a write one for changes, committed only when the statement succeeded.
 *
 * The current tree is kept by name and opened in each transaction, so a
 * tree dropped or rolled back underneath the shell gives a clear "no such
 * tree" instead of a stale handle.
 */
#include <stdlib.h>
#include <string.h>

#include "shell.h"
#include "tokenize.h"

int sh_txn(struct shell *sh, int write, mapkv_txn **txn, int *own)
{
	int rc;

	if (sh->txn) {
		*txn = sh->txn;
		*own = 0;
		return 0;
	}
	rc = mapkv_txn_begin(sh->env, write ? 0 : MAPKV_RDONLY, txn);
	if (rc) {
		sh_error_rc(sh, rc,
			    write ? "cannot begin a write transaction"
				  : "cannot begin a read transaction");
		return -1;
	}
	*own = 1;
	return 0;
}

int sh_txn_end(struct shell *sh, mapkv_txn *txn, int own, int write, int ok)
{
	int rc;

	if (!own)
		return ok ? 0 : -1;
	if (ok && write) {
		rc = mapkv_txn_commit(txn);
		if (rc) {
			sh_error_rc(sh, rc,
				    "commit failed, nothing was changed");
			return -1;
		}
		return 0;
	}
	mapkv_txn_abort(txn);
	return ok ? 0 : -1;
}

int sh_open_tree(struct shell *sh, mapkv_txn *txn, mapkv_dbi *dbi)
{
	int rc;

	if (!sh->tree) {
		*dbi = 0;
		return 0;
	}
	rc = mapkv_dbi_open(txn, sh->tree, 0, dbi);
	if (rc == MAPKV_NOTFOUND) {
		sh_error(sh,
			 "no such tree: %s (USE MAIN goes back to the main "
			 "tree)",
			 sh->tree);
		return -1;
	}
	if (rc) {
		sh_error_rc(sh, rc, "cannot open the tree");
		return -1;
	}
	return 0;
}

/* Errors after which the library has failed the write transaction. */
static int txn_failing(int rc)
{
	return rc != MAPKV_EXISTS && rc != MAPKV_BAD_KEY &&
	       rc != MAPKV_BAD_VALUE && rc != MAPKV_INVALID &&
	       rc != MAPKV_NOTFOUND;
}

static void write_error(struct shell *sh, int rc, const char *what)
{
	if (sh->txn && txn_failing(rc)) {
		char msg[256];

		snprintf(msg, sizeof msg,
			 "%s (the transaction has failed: ROLLBACK)", what);
		sh_error_rc(sh, rc, msg);
	} else {
		sh_error_rc(sh, rc, what);
	}
}

static mapkv_val tok_val(const struct token *t)
{
	mapkv_val v = {t->val, t->vlen};
	return v;
}

/* A tree name as a C string (malloc'd), or NULL after an error. */
static char *tree_name(struct shell *sh, const struct token *t)
{
	char *s;

	if (t->vlen == 0 || t->vlen > 255 || memchr(t->val, 0, t->vlen)) {
		sh_error(sh, "tree names are 1 to 255 bytes, without NUL");
		return NULL;
	}
	s = malloc(t->vlen + 1);
	if (!s) {
		sh_error(sh, "out of memory");
		return NULL;
	}
	memcpy(s, t->val, t->vlen);
	s[t->vlen] = '\0';
	return s;
}

/* "key not found: ..." with the key escaped as in text mode. */
static void not_found(struct shell *sh, const mapkv_val *key)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f) {
		sh_error(sh, "key not found");
		return;
	}
	out_text(f, key->data, key->size > 200 ? 200 : key->size);
	fclose(f);
	sh_error(sh, "key not found: %s%s", buf, key->size > 200 ? "..." : "");
	free(buf);
}

/* ---------------------------------------------------------------- ranges */

static int cmp(const void *a, size_t an, const void *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static int cmp_tok(const mapkv_val *k, const struct token *t)
{
	return cmp(k->data, k->size, t->val, t->vlen);
}

static int has_prefix(const mapkv_val *k, const struct token *p)
{
	return k->size >= p->vlen && memcmp(k->data, p->val, p->vlen) == 0;
}

/* Put the cursor on the first key >= b (bounds longer than a key can be
 * are cut: the caller skips keys below the real bound). */
static int seek_ge(mapkv_cursor *cur, const void *b, size_t n, mapkv_val *k,
		   mapkv_val *v)
{
	if (n == 0)
		return mapkv_cursor_get(cur, k, v, MAPKV_FIRST);
	k->data = b;
	k->size = n > MAPKV_MAX_KEY_SIZE ? MAPKV_MAX_KEY_SIZE : n;
	return mapkv_cursor_get(cur, k, v, MAPKV_SEEK);
}

/* Put the cursor on the last key below b (<= b when @incl). */
static int seek_le(mapkv_cursor *cur, const void *b, size_t n, int incl,
		   mapkv_val *k, mapkv_val *v)
{
	int rc = seek_ge(cur, b, n, k, v), c;

	if (rc == MAPKV_NOTFOUND)
		return mapkv_cursor_get(cur, k, v, MAPKV_LAST);
	if (rc)
		return rc;
	c = cmp(k->data, k->size, b, n);
	if (c > 0 || (c == 0 && !incl))
		return mapkv_cursor_get(cur, k, v, MAPKV_PREV);
	return 0;
}

/* The smallest string above every key that starts with p: p with its
 * trailing 0xff bytes cut and the last byte left incremented. Returns its
 * length, 0 when there is none (p empty or all 0xff). */
static size_t prefix_end(const struct token *p, unsigned char *buf)
{
	size_t n = p->vlen;

	memcpy(buf, p->val, n);
	while (n > 0 && buf[n - 1] == 0xff)
		n--;
	if (n > 0)
		buf[n - 1]++;
	return n;
}

enum range_op { R_SCAN, R_COUNT, R_DEL };

/* Walk the keys a statement's clauses select, in order (or reverse), and
 * print, count or delete them. FROM and TO are inclusive; PREFIX narrows
 * further; LIMIT caps the number of keys. */
static int walk(struct shell *sh, mapkv_txn *txn, mapkv_dbi dbi,
		const struct stmt *st, enum range_op op, uint64_t *count)
{
	static const char *what[] = {"scan", "count", "delete"};
	unsigned char *end = NULL;
	size_t endn = 0;
	mapkv_cursor *cur;
	mapkv_val k, v;
	struct progress pr;
	int rc, dir = st->reverse ? MAPKV_PREV : MAPKV_NEXT;
	uint64_t n = 0;

	*count = 0;
	if (st->has_limit && st->limit == 0)
		return 0;
	rc = mapkv_cursor_open(txn, dbi, &cur);
	if (rc) {
		sh_error_rc(sh, rc, "cannot open a cursor");
		return -1;
	}
	if (st->prefix) {
		end = malloc(st->prefix->vlen + 1);
		if (!end) {
			mapkv_cursor_close(cur);
			sh_error(sh, "out of memory");
			return -1;
		}
		endn = prefix_end(st->prefix, end);
	}
	if (!st->reverse) {
		const struct token *lo = st->from;

		if (st->prefix && (!lo || cmp(st->prefix->val, st->prefix->vlen,
					      lo->val, lo->vlen) > 0))
			lo = st->prefix;
		if (lo)
			rc = seek_ge(cur, lo->val, lo->vlen, &k, &v);
		else
			rc = mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST);
	} else if (st->to &&
		   (!endn || cmp(st->to->val, st->to->vlen, end, endn) < 0)) {
		rc = st->to->vlen ? seek_le(cur, st->to->val, st->to->vlen, 1,
					    &k, &v)
				  : MAPKV_NOTFOUND;
	} else if (endn) {
		rc = seek_le(cur, end, endn, 0, &k, &v);
	} else {
		rc = mapkv_cursor_get(cur, &k, &v, MAPKV_LAST);
	}
	progress_start(&pr, sh, what[op]);
	while (rc == 0) {
		if (sh_interrupted) {
			rc = -1;
			break;
		}
		/* Keys outside the range on the side we came from are
		 * skipped (cut bounds); on the far side they end the walk. */
		if (st->from && cmp_tok(&k, st->from) < 0) {
			if (st->reverse)
				break;
			goto next;
		}
		if (st->to && cmp_tok(&k, st->to) > 0) {
			if (!st->reverse)
				break;
			goto next;
		}
		if (st->prefix && !has_prefix(&k, st->prefix)) {
			if ((cmp_tok(&k, st->prefix) < 0) == !st->reverse)
				goto next;
			break;
		}
		if (op == R_SCAN) {
			out_pair(sh, &k, &v);
		} else if (op == R_DEL) {
			rc = mapkv_cursor_del(cur);
			if (rc)
				break;
		}
		n++;
		progress_tick(&pr, n);
		if (st->has_limit && n >= st->limit)
			break;
	next:
		rc = mapkv_cursor_get(cur, &k, &v, dir);
	}
	progress_end(&pr);
	mapkv_cursor_close(cur);
	free(end);
	*count = n;
	if (rc == -1) {
		sh_error(sh, "interrupted");
		return -1;
	}
	if (rc && rc != MAPKV_NOTFOUND) {
		write_error(sh, rc,
			    op == R_DEL ? "delete failed" : "scan failed");
		return -1;
	}
	return 0;
}

static int no_clauses(const struct stmt *st)
{
	return !st->from && !st->to && !st->prefix && !st->has_limit;
}

/* ---------------------------------------------------------------- statements
 */

struct list_ctx {
	struct shell *sh;
};

static int list_one(void *ctx, const char *name)
{
	struct list_ctx *lc = ctx;

	out_name(lc->sh, name);
	return 0;
}

/* Statements that work on keys of the current tree. */
static int exec_data(struct shell *sh, const struct stmt *st)
{
	int write = st->kind == ST_PUT || st->kind == ST_DEL ||
		    st->kind == ST_DEL_RANGE;
	mapkv_txn *txn;
	mapkv_dbi dbi;
	mapkv_val k, v;
	mapkv_stat_info si;
	uint64_t n;
	int own, ok = 0, rc;

	if (sh_txn(sh, write, &txn, &own))
		return -1;
	if (sh_open_tree(sh, txn, &dbi))
		goto done;
	switch (st->kind) {
	case ST_PUT:
		k = tok_val(st->a);
		v = tok_val(st->b);
		rc = mapkv_put(txn, dbi, &k, &v, 0);
		if (rc) {
			write_error(sh, rc, "PUT failed");
			goto done;
		}
		break;
	case ST_GET:
	case ST_EXISTS:
		k = tok_val(st->a);
		rc = mapkv_get(txn, dbi, &k, &v);
		if (rc && rc != MAPKV_NOTFOUND) {
			sh_error_rc(sh, rc, "GET failed");
			goto done;
		}
		if (st->kind == ST_EXISTS) {
			out_exists(sh, &k, rc == 0);
		} else if (rc) {
			not_found(sh, &k);
			goto done;
		} else {
			out_value(sh, &k, &v);
		}
		break;
	case ST_DEL:
		k = tok_val(st->a);
		rc = mapkv_del(txn, dbi, &k);
		if (rc == MAPKV_NOTFOUND) {
			not_found(sh, &k);
			goto done;
		}
		if (rc) {
			write_error(sh, rc, "DEL failed");
			goto done;
		}
		break;
	case ST_COUNT:
		if (no_clauses(st) && !st->reverse) {
			/* the tree record knows its entry count */
			rc = mapkv_stat(txn, dbi, &si);
			if (rc) {
				sh_error_rc(sh, rc, "COUNT failed");
				goto done;
			}
			out_number(sh, "count", si.entries);
			break;
		}
		if (walk(sh, txn, dbi, st, R_COUNT, &n))
			goto done;
		out_number(sh, "count", n);
		break;
	case ST_SCAN:
		if (walk(sh, txn, dbi, st, R_SCAN, &n))
			goto done;
		break;
	case ST_DEL_RANGE:
		if (no_clauses(st)) {
			/* DEL * (REVERSE changes nothing): empty the tree */
			rc = mapkv_stat(txn, dbi, &si);
			if (rc == 0)
				rc = mapkv_dbi_drop(txn, dbi, 0);
			if (rc) {
				write_error(sh, rc, "DEL failed");
				goto done;
			}
			out_number(sh, "deleted", si.entries);
			break;
		}
		if (walk(sh, txn, dbi, st, R_DEL, &n)) {
			if (!own)
				fprintf(stderr,
					"(%llu deleted before the error "
					"remain deleted in the open "
					"transaction)\n",
					(unsigned long long)n);
			goto done;
		}
		out_number(sh, "deleted", n);
		break;
	default:
		break;
	}
	ok = 1;
done:
	return sh_txn_end(sh, txn, own, write, ok);
}

/* USE, CREATE TREE, DROP TREE, TREES. */
static int exec_tree(struct shell *sh, const struct stmt *st)
{
	int write = st->kind == ST_CREATE_TREE || st->kind == ST_DROP_TREE;
	mapkv_txn *txn;
	mapkv_dbi dbi;
	struct list_ctx lc = {sh};
	char *name = NULL;
	int own, ok = 0, rc;

	if (st->a && !(name = tree_name(sh, st->a)))
		return -1;
	if (st->kind == ST_USE && !name) {
		free(sh->tree);
		sh->tree = NULL;
		return 0;
	}
	if (sh_txn(sh, write, &txn, &own)) {
		free(name);
		return -1;
	}
	switch (st->kind) {
	case ST_USE:
	case ST_DROP_TREE:
		rc = mapkv_dbi_open(txn, name, 0, &dbi);
		if (rc == MAPKV_NOTFOUND) {
			sh_error(sh, "no such tree: %s", name);
			goto done;
		}
		if (rc) {
			sh_error_rc(sh, rc, "cannot open the tree");
			goto done;
		}
		if (st->kind == ST_USE) {
			free(sh->tree);
			sh->tree = name;
			name = NULL;
			break;
		}
		rc = mapkv_dbi_drop(txn, dbi, 1);
		if (rc) {
			write_error(sh, rc, "DROP TREE failed");
			goto done;
		}
		break;
	case ST_CREATE_TREE:
		rc = mapkv_dbi_open(txn, name, 0, &dbi);
		if (rc == 0) {
			sh_error(sh, "tree %s already exists", name);
			goto done;
		}
		if (rc == MAPKV_NOTFOUND)
			rc = mapkv_dbi_open(txn, name, MAPKV_CREATE, &dbi);
		if (rc) {
			write_error(sh, rc, "CREATE TREE failed");
			goto done;
		}
		break;
	case ST_TREES:
		rc = mapkv_dbi_list(txn, list_one, &lc);
		if (rc) {
			sh_error_rc(sh, rc, "TREES failed");
			goto done;
		}
		break;
	default:
		break;
	}
	ok = 1;
done:
	rc = sh_txn_end(sh, txn, own, write, ok);
	/* Leave a tree that is gone (once the drop holds). */
	if (rc == 0 && st->kind == ST_DROP_TREE && sh->tree &&
	    strcmp(sh->tree, name) == 0) {
		free(sh->tree);
		sh->tree = NULL;
	}
	free(name);
	return rc;
}

int sh_exec(struct shell *sh, const struct stmt *st)
{
	int rc;

	switch (st->kind) {
	case ST_EMPTY:
		return 0;
	case ST_BEGIN:
		if (sh->txn) {
			sh_error(sh, "a transaction is already open: COMMIT or "
				     "ROLLBACK it first");
			return -1;
		}
		rc = mapkv_txn_begin(sh->env, 0, &sh->txn);
		if (rc) {
			sh->txn = NULL;
			sh_error_rc(sh, rc, "BEGIN failed");
			return -1;
		}
		return 0;
	case ST_COMMIT:
	case ST_ROLLBACK:
		if (!sh->txn) {
			sh_error(sh, "no transaction is open");
			return -1;
		}
		if (st->kind == ST_ROLLBACK) {
			mapkv_txn_abort(sh->txn);
			sh->txn = NULL;
			return 0;
		}
		/* The transaction is gone whatever commit returns. */
		rc = mapkv_txn_commit(sh->txn);
		sh->txn = NULL;
		if (rc) {
			sh_error_rc(sh, rc,
				    "COMMIT failed, the transaction was rolled "
				    "back");
			return -1;
		}
		return 0;
	case ST_USE:
	case ST_CREATE_TREE:
	case ST_DROP_TREE:
	case ST_TREES:
		return exec_tree(sh, st);
	default:
		return exec_data(sh, st);
	}
}
