/*
 * dump.c: dump and load in the text format of LMDB's mdb_dump/mdb_load
 * (itself Berkeley DB's db_dump format), so data moves between mapkv,
 * LMDB and Berkeley DB with their own tools:
 *
 *   VERSION=3
 *   format=bytevalue          (or print)
 *   database=NAME             (named trees only)
 *   type=btree
 *   HEADER=END
 *    6b6579                   one line per key, then one per value, each
 *    76616c7565               after one blank
 *   DATA=END
 *
 * bytevalue writes every byte as two hex digits; print writes printable
 * ASCII as itself, a backslash as two, and every other byte as \HH.
 * Several sections may follow each other (a dump of every tree).
 *
 * Loading is lenient where other tools are: header keywords it does not
 * need (mapsize, db_pagesize ...) are ignored, and in print format a
 * backslash not followed by a backslash or two hex digits stands for
 * itself, because LMDB 0.9's mdb_dump -p writes backslashes undoubled.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"

/* ---------------------------------------------------------------- dump */

static void dump_bytes(FILE *f, const mapkv_val *v, int print)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = v->data;
	size_t i;

	fputc(' ', f);
	for (i = 0; i < v->size; i++) {
		if (!print) {
			fputc(digits[p[i] >> 4], f);
			fputc(digits[p[i] & 15], f);
		} else if (p[i] == '\\') {
			fputs("\\\\", f);
		} else if (p[i] >= 0x20 && p[i] < 0x7f) {
			fputc(p[i], f);
		} else {
			fputc('\\', f);
			fputc(digits[p[i] >> 4], f);
			fputc(digits[p[i] & 15], f);
		}
	}
	fputc('\n', f);
}

/* One section: the tree @name (NULL: main) as @txn sees it. */
static int dump_tree(struct shell *sh, FILE *f, mapkv_txn *txn,
		     const char *name, int print)
{
	mapkv_dbi dbi = 0;
	mapkv_cursor *cur;
	mapkv_val k, v;
	struct progress pr;
	uint64_t n = 0;
	int rc;
	const char *c;

	if (name) {
		/* The header line "database=NAME" carries any byte but a
		 * new line, and the loader takes a carriage return at the
		 * end of a line as part of the line's end (CRLF files). */
		size_t len = strlen(name);

		for (c = name; *c && *c != '\n'; c++)
			;
		if (*c || (len && name[len - 1] == '\r')) {
			sh_error(sh,
				 "the name of tree %s %s: the dump format "
				 "cannot carry it",
				 name,
				 *c ? "holds a new line"
				    : "ends with a carriage return");
			return -1;
		}
		rc = mapkv_dbi_open(txn, name, 0, &dbi);
		if (rc == MAPKV_NOTFOUND) {
			sh_error(sh, "no such tree: %s", name);
			return -1;
		}
		if (rc) {
			sh_error_rc(sh, rc, "cannot open the tree");
			return -1;
		}
	}
	rc = mapkv_cursor_open(txn, dbi, &cur);
	if (rc) {
		sh_error_rc(sh, rc, "cannot open a cursor");
		return -1;
	}
	fprintf(f, "VERSION=3\nformat=%s\n", print ? "print" : "bytevalue");
	if (name)
		fprintf(f, "database=%s\n", name);
	fputs("type=btree\nHEADER=END\n", f);
	progress_start(&pr, sh, "dump");
	for (rc = mapkv_cursor_get(cur, &k, &v, MAPKV_FIRST); rc == 0;
	     rc = mapkv_cursor_get(cur, &k, &v, MAPKV_NEXT)) {
		if (sh_interrupted) {
			rc = -1;
			break;
		}
		dump_bytes(f, &k, print);
		dump_bytes(f, &v, print);
		progress_tick(&pr, ++n);
		if (ferror(f))
			break;
	}
	progress_end(&pr);
	mapkv_cursor_close(cur);
	if (rc == -1) {
		sh_error(sh, "interrupted");
		return -1;
	}
	if (rc != MAPKV_NOTFOUND && rc != 0) {
		sh_error_rc(sh, rc, "dump failed");
		return -1;
	}
	fputs("DATA=END\n", f);
	if (ferror(f)) {
		sh_error(sh, "dump: write error: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct names {
	char **v;
	size_t n, cap;
};

static int collect_name(void *ctx, const char *name)
{
	struct names *ns = ctx;

	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		char **v = realloc(ns->v, cap * sizeof *v);

		if (!v)
			return MAPKV_NOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	if (!(ns->v[ns->n] = strdup(name)))
		return MAPKV_NOMEM;
	ns->n++;
	return 0;
}

int sh_dump(struct shell *sh, FILE *f, const struct dump_opts *o)
{
	struct names ns = {0};
	mapkv_txn *txn;
	size_t i;
	int own, rc = 0;

	if (sh_txn(sh, 0, &txn, &own))
		return -1;
	if (!o->all) {
		const char *tree = o->tree;

		if (!tree && !o->main_tree)
			tree = sh->tree;
		rc = dump_tree(sh, f, txn, tree, o->print);
		goto out;
	}
	/* -a: the main tree, then every named tree in name order (names
	 * first: no cursor runs inside the listing callback). */
	rc = mapkv_dbi_list(txn, collect_name, &ns);
	if (rc) {
		sh_error_rc(sh, rc, "cannot list the trees");
		rc = -1;
		goto out;
	}
	rc = dump_tree(sh, f, txn, NULL, o->print);
	for (i = 0; rc == 0 && i < ns.n; i++)
		rc = dump_tree(sh, f, txn, ns.v[i], o->print);
out:
	for (i = 0; i < ns.n; i++)
		free(ns.v[i]);
	free(ns.v);
	fflush(f);
	return sh_txn_end(sh, txn, own, 0, rc == 0);
}

/* ---------------------------------------------------------------- load */

struct reader {
	FILE *f;
	const char *name;
	unsigned long line;
	char *buf;
	size_t cap;
	ssize_t len;
};

/* Next line without its end of line; 0 at the end of the input. */
static int next_line(struct reader *r)
{
	r->len = getline(&r->buf, &r->cap, r->f);
	if (r->len < 0)
		return 0;
	r->line++;
	if (r->len > 0 && r->buf[r->len - 1] == '\n')
		r->buf[--r->len] = '\0';
	if (r->len > 0 && r->buf[r->len - 1] == '\r')
		r->buf[--r->len] = '\0';
	return 1;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode a data line (after its leading blank) in place; returns the
 * length, or -1 for bad hex. */
static ssize_t decode(char *s, size_t n, int print)
{
	size_t i = 0, o = 0;
	int h, l;

	while (i < n) {
		if (!print) {
			if (i + 1 >= n ||
			    (h = hexval((unsigned char)s[i])) < 0 ||
			    (l = hexval((unsigned char)s[i + 1])) < 0)
				return -1;
			s[o++] = (char)(h << 4 | l);
			i += 2;
		} else if (s[i] != '\\') {
			s[o++] = s[i++];
		} else if (i + 1 < n && s[i + 1] == '\\') {
			s[o++] = '\\';
			i += 2;
		} else if (i + 2 < n &&
			   (h = hexval((unsigned char)s[i + 1])) >= 0 &&
			   (l = hexval((unsigned char)s[i + 2])) >= 0) {
			s[o++] = (char)(h << 4 | l);
			i += 3;
		} else {
			s[o++] = s[i++]; /* a lone backslash (see the top) */
		}
	}
	return (ssize_t)o;
}

struct header {
	int print;
	char *database;
};

/* Read a header up to HEADER=END. Returns 1 when one was read, 0 at the
 * end of the input (before VERSION=), -1 after an error. */
static int read_header(struct shell *sh, struct reader *r, struct header *h)
{
	int version = 0;

	free(h->database);
	memset(h, 0, sizeof *h);
	for (;;) {
		char *eq;

		if (!next_line(r)) {
			if (!version)
				return 0;
			sh_error(sh, "%s:%lu: the input ends inside a header",
				 r->name, r->line);
			return -1;
		}
		if (!version) {
			if (r->len == 0)
				continue; /* blank lines between sections */
			if (strcmp(r->buf, "VERSION=3") != 0) {
				sh_error(sh,
					 "%s:%lu: expected VERSION=3 at the "
					 "start of a dump",
					 r->name, r->line);
				return -1;
			}
			version = 3;
			continue;
		}
		if (strcmp(r->buf, "HEADER=END") == 0)
			return 1;
		eq = strchr(r->buf, '=');
		if (!eq) {
			sh_error(sh,
				 "%s:%lu: expected KEYWORD=VALUE in the "
				 "header",
				 r->name, r->line);
			return -1;
		}
		*eq++ = '\0';
		if (strcmp(r->buf, "format") == 0) {
			if (strcmp(eq, "print") == 0) {
				h->print = 1;
			} else if (strcmp(eq, "bytevalue") == 0) {
				h->print = 0;
			} else {
				sh_error(sh, "%s:%lu: unknown format=%s",
					 r->name, r->line, eq);
				return -1;
			}
		} else if (strcmp(r->buf, "type") == 0) {
			if (strcmp(eq, "btree") != 0) {
				sh_error(sh,
					 "%s:%lu: type=%s is not supported "
					 "(only btree)",
					 r->name, r->line, eq);
				return -1;
			}
		} else if (strcmp(r->buf, "database") == 0) {
			free(h->database);
			if (!(h->database = strdup(eq))) {
				sh_error(sh, "out of memory");
				return -1;
			}
		} else if ((strcmp(r->buf, "duplicates") == 0 ||
			    strcmp(r->buf, "dupsort") == 0) &&
			   strcmp(eq, "0") != 0) {
			sh_error(sh,
				 "%s:%lu: duplicate keys are not supported "
				 "by mapkv",
				 r->name, r->line);
			return -1;
		}
		/* other keywords (mapsize, db_pagesize...) do not apply */
	}
}

/* Load one section's data lines into @dbi. */
static int load_data(struct shell *sh, struct reader *r, mapkv_txn *txn,
		     mapkv_dbi dbi, int print, unsigned flags,
		     struct progress *pr, uint64_t *n)
{
	char *key = NULL;
	size_t keycap = 0;
	ssize_t keylen = -1, len;
	unsigned long keyline = 0;
	int rc = -1, prc;

	for (;;) {
		if (!next_line(r)) {
			sh_error(sh, "%s:%lu: the input ends before DATA=END",
				 r->name, r->line);
			goto out;
		}
		if (strcmp(r->buf, "DATA=END") == 0) {
			if (keylen >= 0) {
				sh_error(sh, "%s:%lu: a key without a value",
					 r->name, keyline);
				goto out;
			}
			rc = 0;
			goto out;
		}
		if (r->len == 0 || r->buf[0] != ' ') {
			sh_error(sh,
				 "%s:%lu: expected a data line (starting "
				 "with a blank) or DATA=END",
				 r->name, r->line);
			goto out;
		}
		len = decode(r->buf + 1, (size_t)r->len - 1, print);
		if (len < 0) {
			sh_error(sh, "%s:%lu: bad hex digits", r->name,
				 r->line);
			goto out;
		}
		if (keylen < 0) {
			/* a key: keep it until its value arrives */
			if ((size_t)len + 1 > keycap) {
				char *k = realloc(key, (size_t)len + 1);

				if (!k) {
					sh_error(sh, "out of memory");
					goto out;
				}
				key = k;
				keycap = (size_t)len + 1;
			}
			memcpy(key, r->buf + 1, (size_t)len);
			keylen = len;
			keyline = r->line;
			continue;
		} else {
			mapkv_val k = {key, (size_t)keylen};
			mapkv_val v = {r->buf + 1, (size_t)len};

			prc = mapkv_put(txn, dbi, &k, &v, flags);
			if (prc && prc != MAPKV_EXISTS) {
				char what[300];

				snprintf(what, sizeof what,
					 "%s:%lu: cannot store the key",
					 r->name, keyline);
				sh_error_rc(sh, prc, what);
				goto out;
			}
			keylen = -1;
			(*n)++;
			progress_tick(pr, *n);
			if (sh_interrupted) {
				sh_error(sh, "interrupted");
				goto out;
			}
		}
	}
out:
	free(key);
	return rc;
}

int sh_load(struct shell *sh, FILE *f, const char *fname, const char *tree,
	    int nooverwrite)
{
	struct reader r = {f, fname, 0, NULL, 0, 0};
	struct header h = {0, NULL};
	struct progress pr;
	mapkv_txn *txn;
	mapkv_dbi dbi;
	uint64_t n = 0;
	int own, rc = 0, hr;

	/* One transaction for the whole load: a load that fails half way
	 * leaves the database as it was (unless BEGIN is open). */
	if (sh_txn(sh, 1, &txn, &own))
		return -1;
	progress_start(&pr, sh, "load");
	while (rc == 0 && (hr = read_header(sh, &r, &h)) != 0) {
		const char *target = tree ? tree : h.database;

		if (hr < 0) {
			rc = -1;
			break;
		}
		if (!target)
			target = sh->tree; /* the tree in use */
		dbi = 0;
		if (target) {
			int orc =
				mapkv_dbi_open(txn, target, MAPKV_CREATE, &dbi);

			if (orc) {
				sh_error_rc(sh, orc, "cannot create the tree");
				rc = -1;
				break;
			}
		}
		rc = load_data(sh, &r, txn, dbi, h.print,
			       nooverwrite ? MAPKV_NOOVERWRITE : 0, &pr, &n);
	}
	progress_end(&pr);
	if (rc == 0 && ferror(f)) {
		sh_error(sh, "%s: read error: %s", fname, strerror(errno));
		rc = -1;
	}
	free(h.database);
	free(r.buf);
	return sh_txn_end(sh, txn, own, 1, rc == 0);
}
